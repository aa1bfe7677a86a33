"""The transactional outbox: events written with their state change, relayed to Redis
as CONTRACT msgpack maps in signed envelopes (also across a Redis outage), and paged by
`GET /api/events`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import asyncpg
import msgpack
import pytest
import redis.asyncio as aioredis

from payments import ledger, outbox
from payments.seed import add_account
from supporthub_core.db import create_pool
from supporthub_core.event_signing import open_signed
from tests.conftest import make_settings
from tests.events import EVENTS_KEY
from tests.verification import record_passed_verification

CFG = ledger.LedgerConfig.from_settings(make_settings())
COMMON = {"event_id", "type", "user_id", "occurred_at"}
STATUS_FIELDS = COMMON | {"transaction_id", "status", "amount", "currency", "speed"}
ALERT_FIELDS = COMMON | {"alert", "severity", "details"}
_RELAY_LOCK = 0x5061_7952  # payments.outbox: the relay publishes only while it holds it


@pytest.fixture
async def funded(hub, services, clean):
    await add_account(services.dsn, "alice", "Alice", "1000.00")
    await add_account(services.dsn, "bob", "Bob", "0.00")
    return hub


async def post_payment(hub, amount="1.00", speed="instant", to="bob", user="alice") -> dict:
    payload = {
        "to_account": to,
        "amount": amount,
        "speed": speed,
        "idempotency_key": uuid.uuid4().hex,
    }
    async with hub.http(hub.token(user)) as http:
        resp = await http.post("/api/payments", json=payload)
    assert resp.status_code == 202, resp.text
    return resp.json()


def check_contract(ev: dict) -> None:
    datetime.fromisoformat(ev["occurred_at"])
    assert ev["event_id"].startswith("ev_")
    if ev["type"] == "transaction.status":
        expected = set(STATUS_FIELDS)
        if ev["status"] == "failed":
            expected.add("reason")
        if ev["status"] == "processing":
            expected.add("expected_by")
            datetime.fromisoformat(ev["expected_by"])
        assert set(ev) == expected, ev
        assert isinstance(ev["amount"], str) and ev["currency"] == "CNY"
    else:
        assert ev["type"] == "security.alert"
        assert set(ev) == ALERT_FIELDS, ev
        assert ev["severity"] in ("info", "warning", "critical")
        assert isinstance(ev["details"], dict)


class Listener:
    """A raw subscriber of `payments.events`, as a hub node would be: `messages` as they
    came, `events` opened with `key` (None: not opened)."""

    def __init__(self, url: str, key: str | None = EVENTS_KEY):
        self.key = key.encode() if key is not None else None
        self.redis = aioredis.from_url(url)
        self.pubsub = self.redis.pubsub()
        self.messages: list[bytes] = []
        self.events: list[dict] = []
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Listener:
        await self.pubsub.subscribe(outbox.CHANNEL)
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] == "message":
                self.messages.append(message["data"])
                if self.key is not None:
                    self.events.append(open_signed(message["data"], self.key))

    async def wait_for(self, count: int, timeout: float = 10) -> list[dict]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.events) < count:
            assert asyncio.get_running_loop().time() < deadline, self.events
            await asyncio.sleep(0.02)
        return self.events

    async def __aexit__(self, *exc) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.pubsub.aclose()
        await self.redis.aclose()


@pytest.fixture
async def relays_held(services):
    """Keep every relay from publishing (and so from updating outbox rows)."""
    blocker = await asyncpg.connect(services.dsn)
    await blocker.execute("select pg_advisory_lock($1)", _RELAY_LOCK)
    yield
    await blocker.close()


async def test_each_state_change_commits_with_its_event(funded, relays_held, db):
    """The outbox row was written by the very transaction that changed the state
    (same inserting xid), for a payment, a settlement and an unfreeze."""
    hub = funded
    paid = await post_payment(hub, "5.00")
    tx_xid = await db.fetchval(
        "select xmin::text from transactions where transaction_id = $1", paid["transaction_id"]
    )
    ev_xids = await db.fetch("select xmin::text as x, payload from outbox order by id")
    assert [r["x"] for r in ev_xids] == [tx_xid]

    standard = await post_payment(hub, "7.00", speed="standard")
    for _ in range(200):
        row = await db.fetchrow(
            "select status, xmin::text as x from transactions where transaction_id = $1",
            standard["transaction_id"],
        )
        if row["status"] == "succeeded":
            break
        await asyncio.sleep(0.05)
    assert row["status"] == "succeeded"
    last = await db.fetchrow("select xmin::text as x, payload from outbox order by id desc limit 1")
    assert last["x"] == row["x"] and outbox.decode(last["payload"])["status"] == "succeeded"

    await db.execute("update accounts set frozen = true where user_id = 'alice'")
    await db.execute("insert into agents (id, username, password_hash, name, skills) values ('sec', 'sec', 'x', 'Sec', '{security}')")  # fmt: skip
    await record_passed_verification(db, "alice")
    async with hub.http(hub.token("sec", "agent")) as http:
        resp = await http.post("/api/accounts/alice/unfreeze", json={"reason": "ok"})
    assert resp.status_code == 200
    acc_xid = await db.fetchval("select xmin::text from accounts where user_id = 'alice'")
    last = await db.fetchrow("select xmin::text as x, payload from outbox order by id desc limit 1")
    assert last["x"] == acc_xid and outbox.decode(last["payload"])["alert"] == "account_unfrozen"


async def test_a_failed_state_change_leaves_no_event(funded, db):
    hub = funded
    async with hub.http(hub.token("nobody")) as http:
        payload = {
            "to_account": "bob",
            "amount": "1.00",
            "speed": "instant",
            "idempotency_key": "k",
        }
        assert (await http.post("/api/payments", json=payload)).status_code == 404
    assert await db.fetchval("select count(*) from outbox") == 0


async def test_relay_publishes_contract_maps_in_order(funded, services, db):
    hub = funded
    async with Listener(services.redis_url) as listener:
        standard = await post_payment(hub, "3.00", speed="standard")
        failed = await post_payment(hub, "5000.00")
        events = await listener.wait_for(3)
    for ev in events:
        check_contract(ev)
    assert [(e["transaction_id"], e["status"]) for e in events] == [
        (standard["transaction_id"], "processing"),
        (failed["transaction_id"], "failed"),
        (standard["transaction_id"], "succeeded"),
    ]
    assert events[0]["amount"] == "3.00" and events[0]["speed"] == "standard"
    assert events[1]["reason"] == "insufficient_balance" and events[1]["user_id"] == "alice"
    await _wait_published(db)
    # each message signs exactly the bytes the outbox stored
    stored = [r["payload"] for r in await db.fetch("select payload from outbox order by id")]
    envelopes = [msgpack.unpackb(m, raw=False) for m in listener.messages]
    assert [set(e) for e in envelopes] == [{"event", "sig"}] * 3
    assert [e["event"] for e in envelopes] == stored


async def _wait_published(db, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await db.fetchval("select count(*) from outbox where published_at is null"):
        assert asyncio.get_running_loop().time() < deadline, "outbox not drained"
        await asyncio.sleep(0.05)


async def test_security_alerts_are_relayed_with_the_contract_fields(funded, services):
    hub = funded
    async with Listener(services.redis_url) as listener:
        for _ in range(11):
            await post_payment(hub)
        events = await listener.wait_for(13)
    for ev in events:
        check_contract(ev)
    alerts = [e for e in events if e["type"] == "security.alert"]
    assert [(a["alert"], a["severity"]) for a in alerts] == [
        ("suspicious_activity", "critical"),
        ("account_frozen", "critical"),
    ]
    assert alerts[1]["details"]["rule"] == "velocity" and alerts[1]["details"]["count"] == 11


async def test_events_wait_out_a_redis_outage_and_arrive_once(funded, services, db):
    hub = funded
    blocker = await asyncpg.connect(services.dsn)
    try:
        services.redis.stop()
        try:
            made = [await post_payment(hub, f"{i + 1}.00") for i in range(5)]
            await asyncio.sleep(0.6)  # the relay tries, fails, backs off
            assert await db.fetchval("select count(*) from outbox where published_at is null") == 5
            # hold the relays while Redis comes back and we subscribe, so none of the
            # events goes out before someone listens
            await blocker.execute("select pg_advisory_lock($1)", _RELAY_LOCK)
        finally:
            services.redis.start()
        async with Listener(services.redis_url) as listener:
            await blocker.execute("select pg_advisory_unlock($1)", _RELAY_LOCK)
            await listener.wait_for(5, timeout=15)
            await _wait_published(db)
            await asyncio.sleep(0.5)  # nothing more comes
            events = list(listener.events)
    finally:
        if not services.redis.running():
            services.redis.start()
        await blocker.close()
    assert sorted(e["transaction_id"] for e in events) == sorted(p["transaction_id"] for p in made)
    assert len({e["event_id"] for e in events}) == len(events) == 5
    assert [e["amount"] for e in events] == ["1.00", "2.00", "3.00", "4.00", "5.00"]


async def test_events_endpoint_pages_in_commit_order(funded, db):
    hub = funded
    made = [await post_payment(hub, f"{i + 1}.00") for i in range(5)]
    async with hub.http(hub.token("hub", "service")) as http:
        seen, cursor, pages = [], 0, 0
        while True:
            resp = await http.get("/api/events", params={"after_id": cursor, "limit": 2})
            assert resp.status_code == 200
            page = resp.json()
            if not page["events"]:
                assert page["next_after_id"] == cursor
                break
            pages += 1
            seen += page["events"]
            cursor = page["next_after_id"]
            assert cursor == page["events"][-1]["outbox_id"]
        assert (await http.get("/api/events", params={"after_id": "x"})).status_code == 422
    assert pages == 3
    ids = [e["outbox_id"] for e in seen]
    assert ids == sorted(ids) and len(ids) == 5
    assert [e["transaction_id"] for e in seen] == [p["transaction_id"] for p in made]
    for ev in seen:
        check_contract({k: v for k, v in ev.items() if k != "outbox_id"})
    stored = await db.fetch("select id, payload from outbox order by id")
    assert [outbox.decode(r["payload"]) | {"outbox_id": r["id"]} for r in stored] == seen

    async with hub.http(hub.token("alice")) as http:
        assert (await http.get("/api/events")).status_code == 403
    async with hub.http(hub.token("sam", "supervisor")) as http:
        assert len((await http.get("/api/events")).json()["events"]) == 5


async def test_a_slow_transaction_is_never_skipped_by_the_cursor(funded, services, db):
    """An event whose transaction has not committed yet holds later writers back, so a
    reader at the cursor never passes over it."""
    hub = funded
    pool = await create_pool(services.dsn, min_size=1, max_size=2)
    slow = await asyncpg.connect(services.dsn)
    try:
        async with hub.http(hub.token("hub", "service")) as http:

            async def read(after: int) -> dict:
                return (await http.get("/api/events", params={"after_id": after})).json()

            tx = slow.transaction()
            await tx.start()
            ev = outbox.event("security.alert", "alice", datetime.now().astimezone(),
                              alert="password_changed", severity="warning", details={})  # fmt: skip
            await outbox.append(slow, [ev])
            # a payment committing meanwhile waits for the slow writer's COMMIT
            req = ledger.PaymentRequest("bob", ledger.parse_amount("2.00"), "instant", "k-slow")

            async def pay() -> dict:
                async with pool.acquire() as conn:
                    return await ledger.pay(conn, CFG, "alice", req)

            paying = asyncio.create_task(pay())
            await asyncio.sleep(0.3)
            assert not paying.done()
            assert (await read(0))["events"] == []
            await tx.commit()
            payment = await asyncio.wait_for(paying, 10)
            page = await read(0)
    finally:
        await slow.close()
        await pool.close()
    assert [e.get("alert") or e.get("transaction_id") for e in page["events"]] == [
        "password_changed",
        payment["transaction_id"],
    ]
