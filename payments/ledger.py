"""Accounts, transfers and idempotency: one DB transaction per state change.

Invariants kept here:
- Money is exact: `Decimal` with two places, never floats; `numeric(18,2)` in the store.
- Double entry: each posting's `ledger_entries` sum to zero and an account's balance is
  the sum of its entries. In-flight standard transfers sit on '@clearing'; money that
  enters or leaves the system (opening balances, adjustments) comes from '@funding'.
- No negative balance: checked before debiting, and by a CHECK constraint.
- A payment locks the payer's and payee's rows (`select ... for update`, in user-id
  order, so two opposite payments cannot deadlock) before it reads balances or history.
- The same idempotency key (per payer) never moves money twice: it is looked up again
  once the payer's row is locked (a concurrent retry waits for the first attempt), and
  the unique constraint catches anything that still races.
- Each state change writes its events to the outbox in the same transaction, and a freeze
  its `account.freeze` audit entry (`mark_frozen`, whoever freezes).

Event sequence per transaction (`transaction.status`, to the payer):
- instant: `succeeded` (debit and credit commit together; it is never seen processing);
- standard: `processing` (with `expected_by`) when the payer is debited, then
  `succeeded` when the settlement worker credits the payee, or `failed`/`network_error`
  with the refund when the payee cannot receive any more;
- refused: `failed` with its reason. Security alerts raised by a payment come before
  that payment's `transaction.status` event.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from payments import business_calendar, outbox, risk
from supporthub_core import audit
from supporthub_core.db import fetch_one
from supporthub_core.errors import Conflict, Invalid, NotFound

CURRENCY = "CNY"
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000.00")  # per payment
MAX_BALANCE = Decimal("9999999999999999.99")  # numeric(18,2)
CLEARING = "@clearing"
FUNDING = "@funding"
SPEEDS = ("instant", "standard")
_AMOUNT = re.compile(r"[0-9]{1,16}(\.[0-9]{1,2})?")
_DEVICE_LOCK = 0x5061  # two-key advisory lock namespace for a user's logins

TxRow = asyncpg.Record


# --- values -----------------------------------------------------------------------------


def parse_amount(
    value: object,
    *,
    field: str = "amount",
    allow_zero: bool = False,
    maximum: Decimal = MAX_AMOUNT,
) -> Decimal:
    """A positive amount with at most two decimals, at most `maximum`, from a decimal
    string (or an int). Floats are refused: they cannot say 0.10 exactly."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid(f'{field}: must be a decimal string such as "12.50"')
    text = str(value)
    if not _AMOUNT.fullmatch(text):
        raise Invalid(f'{field}: must be a decimal string with at most 2 decimals, such as "12.50"')
    amount = Decimal(text).quantize(CENT)
    if amount <= 0 and not (allow_zero and amount == 0):
        raise Invalid(f"{field}: must be more than 0")
    if amount > maximum:
        raise Invalid(f"{field}: must be at most {maximum}")
    return amount


def money(value: Decimal) -> str:
    """Amounts leave the service as decimal strings with exactly two places."""
    return str(Decimal(value).quantize(CENT))


def new_transaction_id() -> str:
    return "tx_" + secrets.token_hex(8)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    rules: risk.RiskRules
    calendar: business_calendar.BusinessCalendar
    settlement_delay_s: float = 30.0
    maintenance: bool = False  # settings.maintenance: on whatever the runtime switch says

    @classmethod
    def from_settings(cls, settings: Any) -> LedgerConfig:
        return cls(
            rules=risk.RiskRules.from_settings(settings),
            calendar=business_calendar.BusinessCalendar.parse(
                settings.business_hours, settings.business_days, settings.business_tz
            ),
            settlement_delay_s=settings.settlement_delay_s,
            maintenance=settings.maintenance,
        )


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    to_account: str
    amount: Decimal
    speed: str
    idempotency_key: str
    memo: str | None = None


# --- views ------------------------------------------------------------------------------


def payment_view(row: TxRow, *, viewer: str | None = None) -> dict:
    """A transaction as the API shows it; `reason` only when failed."""
    view: dict[str, Any] = {
        "transaction_id": row["transaction_id"],
        "status": row["status"],
        "from_account": row["from_user"],
        "to_account": row["to_user"],
        "amount": money(row["amount"]),
        "currency": row["currency"],
        "speed": row["speed"],
        "created_at": _iso(row["created_at"]),
    }
    if row["status"] == "failed":
        view["reason"] = row["reason"]
        if row.get("maintenance_until") is not None:
            view["maintenance_until"] = _iso(row["maintenance_until"])
    if row["expected_by"] is not None:
        view["expected_by"] = _iso(row["expected_by"])
    if row["settled_at"] is not None:
        view["settled_at"] = _iso(row["settled_at"])
    if row["memo"] is not None:
        view["memo"] = row["memo"]
    keys = row.keys()
    if "from_name" in keys:  # lists join the accounts: people are shown by name
        view["from_name"] = row["from_name"]
        view["to_name"] = row["to_name"]
    if viewer is not None:
        view["direction"] = "out" if row["from_user"] == viewer else "in"
    return view


def account_view(row: asyncpg.Record) -> dict:
    view = {
        "user_id": row["user_id"],
        "name": row["name"],
        "balance": money(row["balance"]),
        "currency": row["currency"],
        "frozen": row["frozen"],
        "created_at": _iso(row["created_at"]),
    }
    if row["frozen"]:
        view["frozen_reason"] = row["frozen_reason"]
        view["frozen_at"] = _iso(row["frozen_at"])
    return view


def status_event(row: TxRow, at: datetime) -> dict:
    """The CONTRACT's `transaction.status` event for the row's current state: exactly
    its fields (`reason` only when failed, `expected_by` only while processing)."""
    processing = row["status"] == "processing"
    extra = {}
    if row["status"] == "failed" and row.get("maintenance_until") is not None:
        extra["maintenance_until"] = _iso(row["maintenance_until"])  # the window's expected end
    return outbox.event(
        "transaction.status",
        row["from_user"],
        at,
        transaction_id=row["transaction_id"],
        status=row["status"],
        reason=row["reason"] if row["status"] == "failed" else None,
        amount=money(row["amount"]),
        currency=row["currency"],
        speed=row["speed"],
        expected_by=_iso(row["expected_by"]) if processing else None,
        **extra,
    )


def alert_event(user_id: str, alert: risk.Alert, at: datetime) -> dict:
    return outbox.event(
        "security.alert",
        user_id,
        at,
        alert=alert.alert,
        severity=alert.severity,
        details=dict(alert.details),
    )


# --- building blocks --------------------------------------------------------------------


async def lock_accounts(conn: asyncpg.Connection, user_ids: Iterable[str]) -> dict[str, Any]:
    """Lock the accounts that exist among `user_ids`, always in user-id order."""
    rows = await conn.fetch(
        "select * from accounts where user_id = any($1::text[]) order by user_id for update",
        sorted(set(user_ids)),
    )
    return {r["user_id"]: r for r in rows}


async def post(
    conn: asyncpg.Connection,
    entries: Sequence[tuple[str, Decimal]],
    *,
    kind: str,
    transaction_id: str | None = None,
) -> None:
    """One balanced posting: the entries sum to zero; user accounts' balances follow.
    The caller holds the locks of the user accounts involved."""
    assert sum(amount for _, amount in entries) == 0, "a posting must balance"
    posting_id = uuid.uuid4().hex
    await conn.execute(
        "insert into ledger_entries (posting_id, transaction_id, account, amount, kind)"
        " select $1, $2, a, m, $5 from unnest($3::text[], $4::numeric[]) as t(a, m)",
        posting_id,
        transaction_id,
        [account for account, _ in entries],
        [amount for _, amount in entries],
        kind,
    )
    for account, amount in entries:
        if not account.startswith("@"):
            await conn.execute(
                "update accounts set balance = balance + $2 where user_id = $1", account, amount
            )


async def maintenance_state(conn: asyncpg.Connection) -> dict:
    """The switch and its window: `in_force` when it is on and its start has come."""
    row = await conn.fetchrow(
        "select *, active and (starts_at is null or starts_at <= now()) as in_force"
        " from payments_maintenance where id = 1"
    )
    if row is None:
        return {"active": False, "message": None, "in_force": False, "functions": []}
    return {
        "active": row["active"],
        "message": row["message"],
        "updated_by": row["updated_by"],
        "updated_at": _iso(row["updated_at"]),
        "in_force": row["in_force"],
        "starts_at": _iso(row["starts_at"]),
        "expected_end": _iso(row["expected_end"]),
        "functions": list(row["functions"]),
    }


def window_of(state: dict) -> dict:
    """The window as announced to customers (`data.window` of the notice)."""
    return {
        "active": bool(state["active"]),
        "starts_at": state.get("starts_at"),
        "expected_end": state.get("expected_end"),
        "functions": list(state.get("functions") or []),
    }


async def set_maintenance(
    conn: asyncpg.Connection,
    active: bool,
    message: str | None,
    by: str,
    *,
    starts_at: datetime | None = None,
    expected_end: datetime | None = None,
    functions: list[str] | None = None,
) -> dict:
    """Turn the runtime switch on or off, with its window when on (a start, the expected
    end, the functions it pauses); `changed` tells whether it flipped. Turning it off keeps
    the window's fields, so the end can be announced with what it was."""
    async with conn.transaction():
        before = await conn.fetchval(
            "select active from payments_maintenance where id = 1 for update"
        )
        if active:
            await conn.execute(
                "insert into payments_maintenance (id, active, message, updated_by, starts_at,"
                " expected_end, functions) values (1, true, $1, $2, $3, $4, $5)"
                " on conflict (id) do update set active = true, message = excluded.message,"
                " updated_by = excluded.updated_by, updated_at = now(),"
                " starts_at = excluded.starts_at, expected_end = excluded.expected_end,"
                " functions = excluded.functions",
                message,
                by,
                starts_at,
                expected_end,
                functions or [],
            )
        else:
            await conn.execute(
                "insert into payments_maintenance (id, active, message, updated_by)"
                " values (1, false, $1, $2) on conflict (id) do update set active = false,"
                " message = excluded.message, updated_by = excluded.updated_by, updated_at = now()",
                message,
                by,
            )
    state = await maintenance_state(conn)
    return {**state, "changed": bool(before) != active}


def _maintenance_applies(state: dict, speed: str) -> bool:
    functions = state.get("functions") or []
    return bool(state["in_force"]) and (not functions or speed in functions)


async def _by_key(conn: asyncpg.Connection, payer: str, key: str) -> TxRow | None:
    return await conn.fetchrow(
        "select * from transactions where from_user = $1 and idempotency_key = $2", payer, key
    )


def _replay(row: TxRow, req: PaymentRequest) -> dict:
    same = (
        row["to_user"] == req.to_account
        and row["amount"] == req.amount
        and row["speed"] == req.speed
    )
    if not same:
        raise Conflict(
            f"idempotency_key {req.idempotency_key!r} was used for a different payment"
            f" ({row['transaction_id']})"
        )
    return payment_view(row)


async def _profile(
    conn: asyncpg.Connection, payer: asyncpg.Record, rules: risk.RiskRules, now: datetime
) -> risk.PayerProfile:
    user_id = payer["user_id"]
    recent = await conn.fetch(
        "select transaction_id, amount, status, reason, created_at from transactions"
        " where from_user = $1 and created_at > $2::timestamptz - make_interval(secs => $3)"
        "   and created_at > coalesce($4::timestamptz, '-infinity')"
        " order by created_at desc limit 1000",
        user_id,
        now,
        rules.history_window_s,
        payer["unfrozen_at"],
    )
    typical = await conn.fetch(
        "select amount from transactions where from_user = $1 and status <> 'failed'"
        " order by created_at desc limit $2",
        user_id,
        risk.TYPICAL_SAMPLE,
    )
    device_at = await conn.fetchval(
        "select max(first_seen) from devices where user_id = $1 and alerted", user_id
    )
    unfrozen = payer["unfrozen_at"]
    return risk.PayerProfile(
        recent=[
            risk.PastPayment(
                r["transaction_id"],
                r["amount"],
                r["status"],
                r["reason"],
                r["created_at"].timestamp(),
            )
            for r in recent
        ],
        typical_amounts=[r["amount"] for r in typical],
        counted_since=unfrozen.timestamp() if unfrozen is not None else None,
        new_device_at=device_at.timestamp() if device_at is not None else None,
    )


# --- use cases --------------------------------------------------------------------------


async def pay(conn: asyncpg.Connection, cfg: LedgerConfig, payer: str, req: PaymentRequest) -> dict:
    """Make (or replay) a payment from `payer`. Business refusals are recorded as
    `failed` with a reason; a payer without an account is NotFound (nothing recorded)."""
    if req.speed not in SPEEDS:
        raise Invalid(f"speed: must be one of {', '.join(SPEEDS)}")
    if not (0 < req.amount <= MAX_AMOUNT) or req.amount != req.amount.quantize(CENT):
        raise Invalid(f"amount: must be more than 0 and at most {MAX_AMOUNT}, with 2 decimals")
    existing = await _by_key(conn, payer, req.idempotency_key)
    if existing is not None:
        return _replay(existing, req)
    try:
        async with conn.transaction():
            row, replayed = await _pay_locked(conn, cfg, payer, req)
    except asyncpg.UniqueViolationError:
        # a concurrent retry with the same key committed first
        existing = await _by_key(conn, payer, req.idempotency_key)
        if existing is None:
            raise
        return _replay(existing, req)
    if replayed:
        return _replay(row, req)
    return payment_view(row)


async def _pay_locked(
    conn: asyncpg.Connection, cfg: LedgerConfig, payer: str, req: PaymentRequest
) -> tuple[TxRow, bool]:
    accounts = await lock_accounts(conn, [payer, req.to_account])
    payer_acc = accounts.get(payer)
    if payer_acc is None:
        raise NotFound(f"{payer} has no payment account")
    # with the payer locked, a retry that raced us sees the first attempt's row
    existing = await _by_key(conn, payer, req.idempotency_key)
    if existing is not None:
        return existing, True

    now: datetime = await conn.fetchval("select clock_timestamp()")
    tx_id = new_transaction_id()
    events: list[dict] = []
    failure: str | None = None
    maintenance = await maintenance_state(conn)
    maintenance_until = None
    if cfg.maintenance or _maintenance_applies(maintenance, req.speed):
        failure = "maintenance"
        maintenance_until = maintenance.get("expected_end") if not cfg.maintenance else None
    elif payer_acc["frozen"]:
        failure = "account_frozen"
    else:
        payee = accounts.get(req.to_account)
        if payee is None or req.to_account == payer or payee["frozen"]:
            failure = "invalid_payee"
        elif payer_acc["balance"] < req.amount:
            failure = "insufficient_balance"
        profile = await _profile(conn, payer_acc, cfg.rules, now)
        attempt = risk.Attempt(tx_id, req.amount, now.timestamp(), failure)
        verdict = risk.assess_payment(cfg.rules, profile, attempt)
        events += [alert_event(payer, a, now) for a in verdict.alerts]
        if verdict.freeze:
            failure = failure or "account_frozen"
            frozen_by = Freezer("system", "risk", dict(verdict.alerts[-1].details))
            await mark_frozen(conn, payer, verdict.reason or "", now, frozen_by)
            events += await stop_pending_transfers(conn, payer, now)

    if failure is not None:
        status, expected_by, settled_at = "failed", None, None
    elif req.speed == "instant":
        status, expected_by, settled_at = "succeeded", None, now
    else:
        status, settled_at = "processing", None
        expected_by = business_calendar.due_time(now, cfg.settlement_delay_s, cfg.calendar)
    row = await fetch_one(
        conn,
        "insert into transactions (transaction_id, from_user, to_user, amount, currency, speed,"
        " status, reason, memo, idempotency_key, created_at, expected_by, settled_at,"
        " maintenance_until)"
        " values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) returning *",
        tx_id,
        payer,
        req.to_account,
        req.amount,
        CURRENCY,
        req.speed,
        status,
        failure,
        req.memo,
        req.idempotency_key,
        now,
        expected_by,
        settled_at,
        datetime.fromisoformat(maintenance_until) if maintenance_until else None,
    )
    if status == "succeeded":
        await post(
            conn,
            [(payer, -req.amount), (req.to_account, req.amount)],
            kind="payment",
            transaction_id=tx_id,
        )
    elif status == "processing":
        await post(
            conn,
            [(payer, -req.amount), (CLEARING, req.amount)],
            kind="payment",
            transaction_id=tx_id,
        )
    events.append(status_event(row, now))
    await outbox.append(conn, events)
    return row, False


async def get_payment(conn: asyncpg.Connection, transaction_id: str) -> TxRow | None:
    return await conn.fetchrow(
        "select * from transactions where transaction_id = $1", transaction_id
    )


@dataclass(frozen=True, slots=True)
class PaymentFilter:
    """What a payments list may be narrowed to (all optional, combined with AND)."""

    amount: Decimal | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    counterpart: str | None = None  # the other side's user id (or either side, for staff)


_WITH_NAMES = (
    "select t.*, fa.name as from_name, ta.name as to_name from transactions t"
    " left join accounts fa on fa.user_id = t.from_user"
    " left join accounts ta on ta.user_id = t.to_user"
)


def _filter_sql(f: PaymentFilter, args: list[Any], counterpart_cols: str) -> str:
    where = []
    if f.amount is not None:
        args.append(f.amount)
        where.append(f"t.amount = ${len(args)}")
    if f.since is not None:
        args.append(f.since)
        where.append(f"t.created_at >= ${len(args)}")
    if f.until is not None:
        args.append(f.until)
        where.append(f"t.created_at < ${len(args)}")
    if f.counterpart is not None:
        args.append(f.counterpart)
        where.append(counterpart_cols.format(n=len(args)))
    return "".join(f" and {w}" for w in where)


async def list_payments(
    conn: asyncpg.Connection,
    user_id: str | None,
    limit: int,
    filters: PaymentFilter | None = None,
) -> list[dict]:
    """Newest first, with both sides' account names. For a user: what they paid, and what
    was paid to them (refused attempts of others are not shown to the payee). `filters`
    search the whole history, not only the latest `limit`."""
    f = filters or PaymentFilter()
    if user_id is None:
        args: list[Any] = [limit]
        cond = _filter_sql(f, args, "(t.from_user = ${n} or t.to_user = ${n})")
        rows = await conn.fetch(
            f"{_WITH_NAMES} where true{cond} order by t.created_at desc limit $1", *args
        )
        return [payment_view(r) for r in rows]
    args = [user_id, limit]
    out_cond = _filter_sql(f, args, "t.to_user = ${n}")
    in_args: list[Any] = [user_id, limit]
    in_cond = _filter_sql(f, in_args, "t.from_user = ${n}")
    assert in_args == args  # both halves bind the same values in the same order
    rows = await conn.fetch(
        f"({_WITH_NAMES} where t.from_user = $1{out_cond} order by t.created_at desc limit $2)"
        " union all"
        f" ({_WITH_NAMES} where t.to_user = $1 and t.from_user <> $1 and t.status <> 'failed'"
        f"{in_cond} order by t.created_at desc limit $2)"
        " order by created_at desc limit $2",
        *args,
    )
    return [payment_view(r, viewer=user_id) for r in rows]


async def agent_skills(conn: asyncpg.Connection, agent_id: str) -> list[str] | None:
    """The skills of a hub agent (None: no such agent), for the staff-only operations."""
    skills: list[str] | None = await conn.fetchval(
        "select skills from agents where id = $1", agent_id
    )
    return skills


async def get_account(conn: asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("select * from accounts where user_id = $1", user_id)


@dataclass(frozen=True, slots=True)
class Freezer:
    """Who froze an account (the risk rules are `system`/`risk`), for the audit log."""

    role: str
    id: str
    details: dict


async def mark_frozen(
    conn: asyncpg.Connection, user_id: str, reason: str, now: datetime, by: Freezer
) -> asyncpg.Record:
    """The one place an account becomes frozen, risk rule or agent alike: the row, and its
    `account.freeze` audit entry in the same transaction."""
    row = await fetch_one(
        conn,
        "update accounts set frozen = true, frozen_reason = $2, frozen_at = $3"
        " where user_id = $1 returning *",
        user_id,
        reason,
        now,
    )
    details = {**by.details, "reason": reason}
    await audit.append(conn, audit.AuditEntry(by.role, by.id, "account.freeze", user_id,
                                              details=details))  # fmt: skip
    return row


async def freeze(
    conn: asyncpg.Connection, user_id: str, reason: str, by: str, *, by_role: str = "agent"
) -> asyncpg.Record:
    """Freeze by hand (a security agent): the same alerts as a risk freeze."""
    async with conn.transaction():
        acc = (await lock_accounts(conn, [user_id])).get(user_id)
        if acc is None:
            raise NotFound(f"no account {user_id}")
        if acc["frozen"]:
            raise Conflict(f"account {user_id} is already frozen")
        now = await conn.fetchval("select clock_timestamp()")
        details = {"reason": reason, "rule": "manual", "by": by, "transaction_ids": []}
        row = await mark_frozen(conn, user_id, reason, now, Freezer(by_role, by, details))
        await outbox.append(
            conn,
            [
                alert_event(user_id, risk.Alert("suspicious_activity", "critical", details), now),
                alert_event(user_id, risk.Alert("account_frozen", "critical", details), now),
                *await stop_pending_transfers(conn, user_id, now),
            ],
        )
    return row


async def stop_pending_transfers(conn: asyncpg.Connection, payer: str, now: datetime) -> list[dict]:
    """A frozen account's standard transfers still on their way are stopped and the money
    goes back to the payer (`failed`, `account_frozen`): a freeze is for activity the owner
    may not have made, and a security agent's unfreeze must not let it through afterwards.
    The caller holds the payer's account lock. Rows the settlement worker holds right now
    are skipped; it refunds them itself when it sees the payer frozen."""
    rows = await conn.fetch(
        "select * from transactions where from_user = $1 and status = 'processing'"
        " order by created_at for update skip locked",
        payer,
    )
    events = []
    for tx in rows:
        events.append(status_event(await refund(conn, tx, "account_frozen", now), now))
    return events


async def refund(conn: asyncpg.Connection, tx: TxRow, reason: str, now: datetime) -> TxRow:
    """Take a processing transfer's money back from clearing to the payer; mark it failed."""
    await post(
        conn,
        [(CLEARING, -tx["amount"]), (tx["from_user"], tx["amount"])],
        kind="refund",
        transaction_id=tx["transaction_id"],
    )
    return await fetch_one(
        conn,
        "update transactions set status = 'failed', reason = $2, settled_at = $3"
        " where transaction_id = $1 returning *",
        tx["transaction_id"],
        reason,
        now,
    )


async def unfreeze(conn: asyncpg.Connection, user_id: str, reason: str, by: str) -> asyncpg.Record:
    """Unfreeze; risk counters start again from now."""
    async with conn.transaction():
        acc = (await lock_accounts(conn, [user_id])).get(user_id)
        if acc is None:
            raise NotFound(f"no account {user_id}")
        if not acc["frozen"]:
            raise Conflict(f"account {user_id} is not frozen")
        now = await conn.fetchval("select clock_timestamp()")
        row = await fetch_one(
            conn,
            "update accounts set frozen = false, frozen_reason = null, unfrozen_at = $2"
            " where user_id = $1 returning *",
            user_id,
            now,
        )
        details = {"reason": reason, "by": by, "frozen_reason": acc["frozen_reason"]}
        alert = risk.Alert("account_unfrozen", "info", details)
        await outbox.append(conn, [alert_event(user_id, alert, now)])
    return row


async def record_login(
    conn: asyncpg.Connection,
    user_id: str,
    device_id: str,
    *,
    device_name: str | None = None,
    ip: str | None = None,
) -> dict:
    """Remember a device login; a new device of a user with other devices raises
    `new_device_login`. A user's logins are serialised so two new devices at once are
    judged one after the other."""
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock($1, hashtext($2))", _DEVICE_LOCK, user_id)
        known = [
            r["device_id"]
            for r in await conn.fetch("select device_id from devices where user_id = $1", user_id)
        ]
        verdict = risk.assess_login(known, device_id, device_name=device_name, ip=ip)
        now = await conn.fetchval("select clock_timestamp()")
        await conn.execute(
            "insert into devices (user_id, device_id, device_name, ip, alerted, first_seen, last_seen)"
            " values ($1, $2, $3, $4, $5, $6, $6) on conflict (user_id, device_id) do update set"
            " last_seen = excluded.last_seen,"
            " device_name = coalesce(excluded.device_name, devices.device_name),"
            " ip = coalesce(excluded.ip, devices.ip)",
            user_id,
            device_id,
            device_name,
            ip,
            bool(verdict.alerts),
            now,
        )
        await outbox.append(conn, [alert_event(user_id, a, now) for a in verdict.alerts])
    return {
        "user_id": user_id,
        "device_id": device_id,
        "new_device": device_id not in known,
        "alert": verdict.alerts[0].alert if verdict.alerts else None,
    }


async def upsert_account(
    conn: asyncpg.Connection, user_id: str, name: str, balance: Decimal
) -> asyncpg.Record:
    """Create an account or set its name and balance; the difference is posted against
    '@funding' so the ledger still explains every balance."""
    if balance < 0 or balance > MAX_BALANCE or balance != balance.quantize(CENT):
        raise Invalid("balance: must be between 0 and the maximum, with 2 decimals")
    async with conn.transaction():
        await conn.execute(
            "insert into users (id, name) values ($1, $2) on conflict (id) do update"
            " set name = coalesce(users.name, excluded.name)",
            user_id,
            name,
        )
        await conn.execute(
            "insert into accounts (user_id, name, currency) values ($1, $2, $3)"
            " on conflict (user_id) do update set name = excluded.name",
            user_id,
            name,
            CURRENCY,
        )
        acc = (await lock_accounts(conn, [user_id]))[user_id]
        delta = balance - acc["balance"]
        if delta:
            kind = "opening" if acc["balance"] == 0 else "adjustment"
            await post(conn, [(user_id, delta), (FUNDING, -delta)], kind=kind)
        account = await get_account(conn, user_id)
        assert account is not None  # upserted above, in this transaction
        return account
