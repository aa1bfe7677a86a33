"""Standard transfers: the worker that settles them when they are due.

A standard transfer debits the payer at once and parks the money on '@clearing'. It is
due `settlement_delay_s` later, within business hours (payments.business_calendar sets
its `expected_by`). The worker then credits the payee and marks it `succeeded` (the
"arrival"), or refunds the payer and marks it `failed`: `account_frozen` when the payer's
account was frozen meanwhile, `network_error` when the payee cannot receive any more
(frozen or gone) — in one DB transaction, with the event in the outbox.

Imports run one way: settlement -> ledger -> business_calendar.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from payments import ledger, outbox
from supporthub_core.db import acquire, fetch_one

log = logging.getLogger(__name__)

MAX_IDLE_S = 1.0  # the worker looks at least this often
BATCH = 100


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
            row = await fetch_one(
                conn,
                "update transactions set status = 'succeeded', settled_at = $2"
                " where transaction_id = $1 returning *",
                transaction_id,
                now,
            )
        await outbox.append(conn, [ledger.status_event(row, now)])
    return row


async def settle_due(pool: asyncpg.Pool, limit: int = BATCH) -> list[asyncpg.Record]:
    """Settle the transfers due now, each in its own transaction."""
    async with acquire(pool) as conn:
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
    async with acquire(pool) as conn:
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
