"""Standard transfers: when they are due (business hours), and the worker that settles them.

A standard transfer debits the payer at once and parks the money on '@clearing'. It is
due `settlement_delay_s` later; a due time outside the business windows (hours on
business days, in `business_tz`) moves to the start of the next window. The worker then
credits the payee and marks it `succeeded` (the "arrival"), or refunds the payer and marks
it `failed`: `account_frozen` when the payer's account was frozen meanwhile, `network_error`
when the payee cannot receive any more (frozen or gone) — in one DB transaction, with the
event in the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from payments import ledger, outbox

log = logging.getLogger(__name__)

MAX_IDLE_S = 1.0  # the worker looks at least this often
BATCH = 100


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Business windows: minute ranges [start, end) of a day, on some weekdays (Monday=0)."""

    windows: tuple[tuple[int, int], ...]
    days: frozenset[int]
    tz: ZoneInfo

    @classmethod
    def parse(cls, hours: str, days: str, tz: str) -> BusinessCalendar:
        """`hours` like "09:00-17:00" or "09:00-12:00,13:00-18:00" ("24:00" ends a day);
        `days` like "0,1,2,3,4"."""
        windows = []
        for part in hours.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                start_s, end_s = part.split("-")
                start, end = _minutes(start_s), _minutes(end_s)
            except ValueError:
                raise ValueError(f"business hours: bad window {part!r}") from None
            if not 0 <= start < end <= 24 * 60:
                raise ValueError(f"business hours: bad window {part!r}")
            windows.append((start, end))
        day_set = frozenset(int(d) for d in days.split(",") if d.strip())
        if not windows or not day_set or not day_set <= set(range(7)):
            raise ValueError("business hours: need at least one window and days within 0-6")
        return cls(tuple(sorted(windows)), day_set, ZoneInfo(tz))

    def _spans(self, day: date):
        if day.weekday() not in self.days:
            return
        for start, end in self.windows:
            # wall-clock times of that date in the business time zone
            yield _at_minute(day, start, self.tz), _at_minute(day, end, self.tz)

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.tz)
        return any(s <= local < e for s, e in self._spans(local.date()))

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when inside a window, else the start of the next window."""
        local = at.astimezone(self.tz)
        for offset in range(8):
            for start, end in self._spans(local.date() + timedelta(days=offset)):
                if start <= local < end:
                    return at
                if start > local:
                    return start.astimezone(at.tzinfo)
        raise AssertionError("a calendar with a business day has a window within 8 days")


def _minutes(text: str) -> int:
    hh, mm = text.strip().split(":")
    if len(mm) != 2:
        raise ValueError(text)
    return int(hh) * 60 + int(mm)


def _at_minute(day: date, minute: int, tz: ZoneInfo) -> datetime:
    if minute >= 24 * 60:
        return datetime.combine(day + timedelta(days=1), time(0), tz)
    return datetime.combine(day, time(minute // 60, minute % 60), tz)


def due_time(now: datetime, delay_s: float, calendar: BusinessCalendar) -> datetime:
    """When a standard transfer made at `now` should arrive."""
    return calendar.next_open(now + timedelta(seconds=delay_s))


async def settle_one(conn: asyncpg.Connection, transaction_id: str) -> asyncpg.Record | None:
    """Settle one due standard transfer; None when it is not processing any more (or
    another worker holds it)."""
    async with conn.transaction():
        tx = await conn.fetchrow(
            "select * from transactions where transaction_id = $1 and status = 'processing'"
            " for update skip locked",
            transaction_id,
        )
        if tx is None:
            return None
        accounts = await ledger.lock_accounts(conn, [tx["from_user"], tx["to_user"]])
        now = await conn.fetchval("select clock_timestamp()")
        payer, payee = accounts.get(tx["from_user"]), accounts.get(tx["to_user"])
        amount = tx["amount"]
        if payer is not None and payer["frozen"]:
            row = await ledger.refund(conn, tx, "account_frozen", now)
        elif payee is None or payee["frozen"]:
            row = await ledger.refund(conn, tx, "network_error", now)
        else:
            await ledger.post(
                conn,
                [(ledger.CLEARING, -amount), (tx["to_user"], amount)],
                kind="settlement",
                transaction_id=transaction_id,
            )
            row = await conn.fetchrow(
                "update transactions set status = 'succeeded', settled_at = $2"
                " where transaction_id = $1 returning *",
                transaction_id,
                now,
            )
        await outbox.append(conn, [ledger.status_event(row, now)])
    return row


async def settle_due(pool: asyncpg.Pool, limit: int = BATCH) -> list[asyncpg.Record]:
    """Settle the transfers due now, each in its own transaction."""
    async with pool.acquire() as conn:
        ids = await conn.fetch(
            "select transaction_id from transactions where status = 'processing'"
            " and expected_by <= clock_timestamp() order by expected_by limit $1",
            limit,
        )
        settled = []
        for r in ids:
            row = await settle_one(conn, r["transaction_id"])
            if row is not None:
                settled.append(row)
    return settled


async def seconds_to_next_due(pool: asyncpg.Pool) -> float:
    async with pool.acquire() as conn:
        left = await conn.fetchval(
            "select extract(epoch from min(expected_by) - clock_timestamp())::float8"
            " from transactions where status = 'processing'"
        )
    return MAX_IDLE_S if left is None else left


class SettlementWorker:
    """Settles due transfers for as long as it runs; errors are logged, never fatal."""

    def __init__(self, pool: asyncpg.Pool, on_settled=None):
        self.pool = pool
        self.on_settled = on_settled  # called after a commit that wrote events
        self.settled = 0

    async def run(self) -> None:
        delay = 0.0
        while True:
            try:
                done = await settle_due(self.pool)
                if done:
                    self.settled += len(done)
                    if self.on_settled is not None:
                        self.on_settled()
                    if len(done) >= BATCH:
                        continue
                wait = await seconds_to_next_due(self.pool)
                delay = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = min(max(delay * 2, 0.2), 5.0)
                log.warning("settlement: round failed (%s: %s); retrying", type(exc).__name__, exc)
                wait = delay
            await asyncio.sleep(min(max(wait, 0.02), MAX_IDLE_S))
