"""Demo accounts for `supporthub dev`, and `supporthub account add`."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import asyncpg

from payments import ledger
from supporthub_core.db import connect, init_connection

# user id, name, balance after the demo history below
DEMO_ACCOUNTS = [
    ("u-alice", "Alice 张", Decimal("5000.00")),
    ("u-bob", "Bob 李", Decimal("1200.00")),
    ("u-carol", "Carol 王", Decimal("300.00")),
    ("u-dave", "Dave 赵", Decimal("80.00")),
]
# from, to, amount, speed, status, reason, memo, age
H = timedelta(hours=1)
DEMO_HISTORY = [
    ("u-alice", "u-bob", "200.00", "instant", "succeeded", None, "晚饭 dinner", 72 * H),
    ("u-bob", "u-carol", "50.00", "standard", "succeeded", None, "书 books", 48 * H),
    ("u-carol", "u-dave", "20.00", "instant", "succeeded", None, "咖啡 coffee", 24 * H),
    ("u-dave", "u-alice", "500.00", "instant", "failed", "insufficient_balance", "房租", 5 * H),
    ("u-alice", "u-nobody", "10.00", "instant", "failed", "invalid_payee", None, 2 * H),
    ("u-alice", "u-carol", "88.00", "standard", "succeeded", None, "红包 red packet", H),
]


async def _connect(dsn: str) -> asyncpg.Connection:
    conn = await connect(dsn)
    await init_connection(conn)
    return conn


async def add_account(dsn: str, user_id: str, name: str, balance: str | Decimal) -> dict:
    """Create an account (and the hub's user) or set its name and balance."""
    amount = ledger.parse_amount(
        str(balance), field="balance", allow_zero=True, maximum=ledger.MAX_BALANCE
    )
    conn = await _connect(dsn)
    try:
        row = await ledger.upsert_account(conn, user_id, name, amount)
    finally:
        await conn.close()
    return ledger.account_view(row)


async def seed_demo_accounts(dsn: str) -> None:
    """Idempotent: the demo users, their accounts and a little history, once."""
    conn = await _connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("select pg_advisory_xact_lock($1)", 0x5061_7953)  # "PayS"
            if await conn.fetchval("select 1 from accounts where user_id = $1", "u-alice"):
                return
            await _seed(conn)
    finally:
        await conn.close()


async def _seed(conn: asyncpg.Connection) -> None:
    net = {user_id: Decimal(0) for user_id, _, _ in DEMO_ACCOUNTS}
    for payer, payee, amount, _, status, *_ in DEMO_HISTORY:
        if status == "succeeded":
            net[payer] -= Decimal(amount)
            net[payee] += Decimal(amount)
    for user_id, name, balance in DEMO_ACCOUNTS:
        # the opening balance is what the history then brings to the demo balance
        await ledger.upsert_account(conn, user_id, name, balance - net[user_id])
    now = await conn.fetchval("select clock_timestamp()")
    for i, (payer, payee, amount, speed, status, reason, memo, age) in enumerate(DEMO_HISTORY):
        at = now - age
        tx_id = ledger.new_transaction_id()
        value = Decimal(amount)
        settled = at + (timedelta(minutes=30) if speed == "standard" else timedelta(0))
        await conn.execute(
            "insert into transactions (transaction_id, from_user, to_user, amount, currency,"
            " speed, status, reason, memo, idempotency_key, created_at, expected_by, settled_at)"
            " values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            tx_id,
            payer,
            payee,
            value,
            ledger.CURRENCY,
            speed,
            status,
            reason,
            memo,
            f"demo-{i}",
            at,
            settled if speed == "standard" else None,
            settled if status == "succeeded" else None,
        )
        if status != "succeeded":
            continue
        if speed == "instant":
            await ledger.post(
                conn, [(payer, -value), (payee, value)], kind="payment", transaction_id=tx_id
            )
        else:
            await ledger.post(
                conn,
                [(payer, -value), (ledger.CLEARING, value)],
                kind="payment",
                transaction_id=tx_id,
            )
            await ledger.post(
                conn,
                [(ledger.CLEARING, -value), (payee, value)],
                kind="settlement",
                transaction_id=tx_id,
            )
