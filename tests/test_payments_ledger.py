"""The ledger against real PostgreSQL: conservation under concurrency, idempotency,
every refusal, standard settlement, freezing and unfreezing."""

from __future__ import annotations

import asyncio
import random
import uuid
from decimal import Decimal

import pytest

from payments import ledger, outbox, settlement
from payments.ledger import LedgerConfig, PaymentRequest
from supporthub_core.db import create_pool
from supporthub_core.errors import Conflict, NotFound
from tests.conftest import make_settings

CFG = LedgerConfig.from_settings(make_settings())
# for load tests: no freezing in the way
LAX = LedgerConfig.from_settings(make_settings(risk_velocity_max=1000, risk_failures_max=1000))


@pytest.fixture
async def pool(services, clean):
    p = await create_pool(services.dsn, min_size=2, max_size=12)
    yield p
    await p.close()


async def accounts(db, **balances: str) -> None:
    for user_id, balance in balances.items():
        await ledger.upsert_account(db, user_id, user_id.title(), Decimal(balance))


async def pay(pool, payer, payee, amount, *, speed="instant", key=None, cfg=CFG) -> dict:
    req = PaymentRequest(payee, Decimal(amount), speed, key or uuid.uuid4().hex)
    async with pool.acquire() as conn:
        return await ledger.pay(conn, cfg, payer, req)


async def balance(db, user_id) -> Decimal:
    return await db.fetchval("select balance from accounts where user_id = $1", user_id)


async def events(db, user_id, type_=None) -> list[dict]:
    rows = await db.fetch(
        "select payload, type from outbox where user_id = $1 order by id", user_id
    )
    return [outbox.decode(r["payload"]) for r in rows if type_ in (None, r["type"])]


async def check_books(db) -> None:
    """Double entry holds: postings balance, balances are the sums of their entries."""
    unbalanced = await db.fetch(
        "select posting_id from ledger_entries group by posting_id having sum(amount) <> 0"
    )
    assert not unbalanced
    mismatched = await db.fetch(
        "select a.user_id, a.balance, coalesce(sum(e.amount), 0) as entries from accounts a"
        " left join ledger_entries e on e.account = a.user_id"
        " group by a.user_id, a.balance having a.balance <> coalesce(sum(e.amount), 0)"
    )
    assert not mismatched, mismatched
    in_flight = await db.fetchval(
        "select coalesce(sum(amount), 0) from transactions where status = 'processing'"
    )
    clearing = await db.fetchval(
        "select coalesce(sum(amount), 0) from ledger_entries where account = '@clearing'"
    )
    assert clearing == in_flight
    assert await db.fetchval("select count(*) from accounts where balance < 0") == 0


async def test_concurrent_payments_conserve_money(pool, db):
    await accounts(db, a="100.00", b="50.00", c="20.00", d="0.00")
    rng = random.Random(1)
    users = ["a", "b", "c", "d"]
    jobs = []
    for _ in range(50):
        payer, payee = rng.sample(users, 2)
        amount = f"{rng.randint(1, 4000) / 100:.2f}"
        speed = rng.choice(["instant", "standard"])
        jobs.append(pay(pool, payer, payee, amount, speed=speed, cfg=LAX))
    results = await asyncio.gather(*jobs)
    assert {r["status"] for r in results} <= {"succeeded", "processing", "failed"}
    assert {r.get("reason") for r in results if r["status"] == "failed"} <= {"insufficient_balance"}
    total = await db.fetchval("select sum(balance) from accounts")
    clearing = await db.fetchval(
        "select coalesce(sum(amount), 0) from ledger_entries where account = '@clearing'"
    )
    assert total + clearing == Decimal("170.00")
    await check_books(db)
    assert await db.fetchval("select count(*) from transactions") == 50
    # one status event per payment, plus one per standard transfer settled since (the
    # session's hub runs a settlement worker on this database: under load, the first
    # transfers fall due before this line)
    processing = [r["transaction_id"] for r in results if r["status"] == "processing"]
    settled_sql = "select count(*) from transactions where transaction_id = any($1) and status <> 'processing'"
    settled_before = await db.fetchval(settled_sql, processing)
    events = await db.fetchval("select count(*) from outbox where type = 'transaction.status'")
    settled_after = await db.fetchval(settled_sql, processing)
    assert 50 + settled_before <= events <= 50 + settled_after
    # and once every standard transfer has arrived, all the money is back on accounts
    for r in results:
        if r["status"] == "processing":
            await wait_settled(pool, db, r["transaction_id"])
    assert await db.fetchval("select sum(balance) from accounts") == Decimal("170.00")
    await check_books(db)


async def test_concurrent_retries_with_one_key_move_money_once(pool, db):
    await accounts(db, a="100.00", b="0.00")
    results = await asyncio.gather(*[pay(pool, "a", "b", "30.00", key="k-1") for _ in range(20)])
    assert len({r["transaction_id"] for r in results}) == 1
    assert {r["status"] for r in results} == {"succeeded"}
    assert await balance(db, "a") == Decimal("70.00")
    assert await balance(db, "b") == Decimal("30.00")
    assert await db.fetchval("select count(*) from transactions") == 1
    assert len(await events(db, "a", "transaction.status")) == 1
    # the key belongs to the payer: another payer may use it too
    await accounts(db, c="10.00")
    other = await pay(pool, "c", "b", "1.00", key="k-1")
    assert other["transaction_id"] != results[0]["transaction_id"]
    # the same key for a different payment is a conflict, not a second payment
    with pytest.raises(Conflict):
        await pay(pool, "a", "b", "31.00", key="k-1")
    await check_books(db)


@pytest.mark.parametrize(
    ("payee", "amount", "reason"),
    [
        ("b", "100.01", "insufficient_balance"),
        ("nobody", "1.00", "invalid_payee"),
        ("a", "1.00", "invalid_payee"),  # paying yourself
        ("frozen", "1.00", "invalid_payee"),  # a frozen payee cannot receive
    ],
)
async def test_business_refusals_are_recorded_and_move_nothing(pool, db, payee, amount, reason):
    await accounts(db, a="100.00", b="0.00", frozen="0.00")
    await db.execute("update accounts set frozen = true where user_id = 'frozen'")
    result = await pay(pool, "a", payee, amount)
    assert (result["status"], result["reason"]) == ("failed", reason)
    row = await db.fetchrow("select * from transactions")
    assert (row["status"], row["reason"], row["to_user"]) == ("failed", reason, payee)
    assert await balance(db, "a") == Decimal("100.00")
    [ev] = await events(db, "a")
    assert ev["type"] == "transaction.status"
    assert (ev["status"], ev["reason"], ev["amount"]) == ("failed", reason, amount)
    assert await db.fetchval("select count(*) from ledger_entries where transaction_id is not null") == 0  # fmt: skip


async def test_a_frozen_account_cannot_pay(pool, db):
    await accounts(db, a="100.00", b="0.00")
    await db.execute("update accounts set frozen = true where user_id = 'a'")
    result = await pay(pool, "a", "b", "1.00")
    assert (result["status"], result["reason"]) == ("failed", "account_frozen")
    assert await balance(db, "a") == Decimal("100.00")
    assert [e["reason"] for e in await events(db, "a")] == ["account_frozen"]


async def test_maintenance_refuses_payments(pool, db):
    await accounts(db, a="100.00", b="0.00")
    async with pool.acquire() as conn:
        state = await ledger.set_maintenance(conn, True, "upgrade", "tester")
    assert state["active"] and state["changed"]
    result = await pay(pool, "a", "b", "1.00")
    assert (result["status"], result["reason"]) == ("failed", "maintenance")
    async with pool.acquire() as conn:
        await ledger.set_maintenance(conn, False, None, "tester")
    assert (await pay(pool, "a", "b", "1.00"))["status"] == "succeeded"
    # settings.maintenance is on whatever the switch says
    forced = LedgerConfig.from_settings(make_settings(maintenance=True))
    assert (await pay(pool, "a", "b", "1.00", cfg=forced))["reason"] == "maintenance"
    assert await balance(db, "a") == Decimal("99.00")


async def test_a_payer_without_account_is_not_found_and_nothing_is_recorded(pool, db):
    await accounts(db, b="0.00")
    with pytest.raises(NotFound):
        await pay(pool, "ghost", "b", "1.00")
    assert await db.fetchval("select count(*) from transactions") == 0
    assert await db.fetchval("select count(*) from outbox") == 0


async def wait_settled(pool, db, tx_id, timeout=10.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await settlement.settle_due(pool)
        row = await db.fetchrow("select * from transactions where transaction_id = $1", tx_id)
        if row["status"] != "processing":
            return row
        assert asyncio.get_running_loop().time() < deadline, "not settled in time"
        await asyncio.sleep(0.1)


async def test_standard_transfer_settles_after_the_delay(pool, db):
    await accounts(db, a="100.00", b="0.00")
    result = await pay(pool, "a", "b", "40.00", speed="standard")
    assert result["status"] == "processing" and "expected_by" in result
    row = await db.fetchrow("select * from transactions")
    delay = (row["expected_by"] - row["created_at"]).total_seconds()
    assert delay == pytest.approx(1.0, abs=0.01)  # the test settings' settlement delay
    assert await balance(db, "a") == Decimal("60.00")
    assert await balance(db, "b") == Decimal("0.00")
    await check_books(db)
    assert await settlement.settle_due(pool) == []  # not before it is due
    settled = await wait_settled(pool, db, result["transaction_id"])
    assert settled["status"] == "succeeded" and settled["settled_at"] >= row["expected_by"]
    assert await balance(db, "b") == Decimal("40.00")
    statuses = [e["status"] for e in await events(db, "a", "transaction.status")]
    assert statuses == ["processing", "succeeded"]
    processing, succeeded = await events(db, "a", "transaction.status")
    assert processing["expected_by"] == row["expected_by"].isoformat()
    assert "expected_by" not in succeeded
    await check_books(db)


async def test_standard_transfer_to_an_account_frozen_meanwhile_is_refunded(pool, db):
    await accounts(db, a="100.00", b="0.00")
    result = await pay(pool, "a", "b", "40.00", speed="standard")
    await db.execute("update accounts set frozen = true where user_id = 'b'")
    settled = await wait_settled(pool, db, result["transaction_id"])
    assert (settled["status"], settled["reason"]) == ("failed", "network_error")
    assert await balance(db, "a") == Decimal("100.00")
    assert await balance(db, "b") == Decimal("0.00")
    last = (await events(db, "a", "transaction.status"))[-1]
    assert (last["status"], last["reason"]) == ("failed", "network_error")
    await check_books(db)


async def test_a_freeze_stops_the_standard_transfers_still_on_their_way(pool, db):
    await accounts(db, a="100.00", b="0.00")
    sent = [await pay(pool, "a", "b", "2.00", speed="standard") for _ in range(10)]
    assert {r["status"] for r in sent} == {"processing"}
    assert await balance(db, "a") == Decimal("80.00")
    eleventh = await pay(pool, "a", "b", "2.00", speed="standard")
    assert (eleventh["status"], eleventh["reason"]) == ("failed", "account_frozen")
    rows = await db.fetch("select status, reason from transactions where speed = 'standard'")
    assert {(r["status"], r["reason"]) for r in rows} == {("failed", "account_frozen")}
    assert await balance(db, "a") == Decimal("100.00")  # every cent back with the payer
    assert await balance(db, "b") == Decimal("0.00")
    kinds = [(e["type"], e.get("alert") or e.get("status")) for e in await events(db, "a")]
    assert kinds[10:] == [
        ("security.alert", "suspicious_activity"),
        ("security.alert", "account_frozen"),
        *[("transaction.status", "failed")] * 11,  # the ten stopped, then the eleventh
    ]
    assert await settlement.settle_due(pool) == []
    await check_books(db)


async def test_a_manual_freeze_stops_pending_transfers_and_settlement_refunds_stragglers(pool, db):
    await accounts(db, a="100.00", b="0.00")
    first = await pay(pool, "a", "b", "30.00", speed="standard")
    async with pool.acquire() as conn:
        await ledger.freeze(conn, "a", "customer reported a stolen phone", "bob")
    row = await db.fetchrow(
        "select status, reason from transactions where transaction_id = $1",
        first["transaction_id"],
    )
    assert (row["status"], row["reason"]) == ("failed", "account_frozen")
    # one the freeze could not reach (the settlement worker held it): refunded at settlement
    async with pool.acquire() as conn:
        await ledger.unfreeze(conn, "a", "checked", "bob")
    second = await pay(pool, "a", "b", "40.00", speed="standard")
    await db.execute("update accounts set frozen = true where user_id = 'a'")
    settled = await wait_settled(pool, db, second["transaction_id"])
    assert (settled["status"], settled["reason"]) == ("failed", "account_frozen")
    assert await balance(db, "a") == Decimal("100.00")
    assert await balance(db, "b") == Decimal("0.00")
    await check_books(db)


async def test_the_eleventh_rapid_payment_freezes_and_an_unfreeze_restores(pool, db):
    await accounts(db, a="100.00", b="0.00")
    results = [await pay(pool, "a", "b", "1.00") for _ in range(12)]
    assert [r["status"] for r in results[:10]] == ["succeeded"] * 10
    assert (results[10]["status"], results[10]["reason"]) == ("failed", "account_frozen")
    assert (results[11]["status"], results[11]["reason"]) == ("failed", "account_frozen")
    acc = await ledger.get_account(db, "a")
    assert acc["frozen"] and "11 outgoing payments within 60 s" in acc["frozen_reason"]
    assert await balance(db, "a") == Decimal("90.00")

    evs = await events(db, "a")
    kinds = [(e["type"], e.get("alert") or e.get("status")) for e in evs]
    # the freeze alerts come right before the 11th payment's failure
    assert kinds[10:13] == [
        ("security.alert", "suspicious_activity"),
        ("security.alert", "account_frozen"),
        ("transaction.status", "failed"),
    ]
    frozen_alert = evs[11]
    assert frozen_alert["severity"] == "critical"
    details = frozen_alert["details"]
    assert details["rule"] == "velocity" and details["count"] == 11 and details["window_s"] == 60
    assert details["transaction_ids"][-1] == results[10]["transaction_id"]
    assert results[0]["transaction_id"] in details["transaction_ids"]

    async with pool.acquire() as conn:
        await ledger.unfreeze(conn, "a", "verified by phone", "bob")
        with pytest.raises(Conflict):
            await ledger.unfreeze(conn, "a", "again", "bob")
        with pytest.raises(NotFound):
            await ledger.unfreeze(conn, "nobody", "x", "bob")
    last = (await events(db, "a"))[-1]
    assert (last["alert"], last["severity"]) == ("account_unfrozen", "info")
    assert last["details"]["reason"] == "verified by phone" and last["details"]["by"] == "bob"
    # counting starts again after the unfreeze
    assert (await pay(pool, "a", "b", "1.00"))["status"] == "succeeded"
    await check_books(db)


async def test_concurrent_burst_lets_exactly_ten_through(pool, db):
    await accounts(db, a="100.00", b="0.00", c="0.00")
    results = await asyncio.gather(*[pay(pool, "a", "bc"[i % 2], "1.00") for i in range(15)])
    assert sorted(r["status"] for r in results).count("succeeded") == 10
    assert {r.get("reason") for r in results if r["status"] == "failed"} == {"account_frozen"}
    assert await balance(db, "a") == Decimal("90.00")
    assert len([e for e in await events(db, "a") if e.get("alert") == "account_frozen"]) == 1


async def test_repeated_failures_freeze(pool, db):
    await accounts(db, a="5.00", b="0.00")
    results = [await pay(pool, "a", "b", "10.00") for _ in range(6)]
    assert {r["reason"] for r in results} == {"insufficient_balance"}
    acc = await ledger.get_account(db, "a")
    assert acc["frozen"]
    alerts = await events(db, "a", "security.alert")
    assert alerts[-1]["details"]["rule"] == "repeated_failures"
    assert (await pay(pool, "a", "b", "1.00"))["reason"] == "account_frozen"


async def test_demo_seed_is_idempotent_and_consistent(services, clean, db):
    from payments.seed import DEMO_ACCOUNTS, add_account, seed_demo_accounts

    await seed_demo_accounts(services.dsn)
    await seed_demo_accounts(services.dsn)
    for user_id, name, amount in DEMO_ACCOUNTS:
        assert await balance(db, user_id) == amount
        assert await db.fetchval("select name from users where id = $1", user_id) == name
    assert await db.fetchval("select count(*) from transactions") == 6
    await check_books(db)
    account = await add_account(services.dsn, "u-alice", "Alice 张", "12.30")
    assert account["balance"] == "12.30" and account["currency"] == "CNY"
    await check_books(db)
