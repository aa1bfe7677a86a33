"""From `POST /api/payments` to the `notification` frame on the user's devices: the
payments module, the outbox, Redis, the hub and the bot, all real."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import asyncpg
import pytest

from hub.store import agents
from payments.seed import add_account
from tests.conftest import start_hub
from tests.verification import pass_verification

pytestmark = pytest.mark.usefixtures("clean")


def uid(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def pay(
    server, payer: str, payee: str, amount: str = "10.00", speed: str = "instant"
) -> dict:
    async with server.http(server.token(payer)) as http:
        r = await http.post("/api/payments", json={"to_account": payee, "amount": amount, "speed": speed,
                                                   "idempotency_key": uuid.uuid4().hex})  # fmt: skip
    assert r.status_code == 202, r.text
    return r.json()


async def test_standard_payment_processing_then_succeeded_on_both_devices(hub, services):
    payer, payee = uid(), uid()
    await add_account(services.dsn, payer, "Payer", "500.00")
    await add_account(services.dsn, payee, "Payee", "0.00")
    phone, tablet = await hub.client(payer), await hub.client(payer, proto="supporthub.msgpack.v1")
    payment = await pay(hub, payer, payee, "200.00", "standard")
    assert payment["status"] == "processing" and payment["expected_by"]
    for device in (phone, tablet):
        first = await device.expect("notification", timeout=15)
        assert first["kind"] == "transaction.status"
        assert first["data"]["transaction_id"] == payment["transaction_id"]
        assert first["data"]["status"] == "processing" and first["data"]["expected_by"]
        assert first["data"]["speed"] == "standard" and first["data"]["amount"] == "200.00"
        second = await device.expect("notification", timeout=20)
        assert second["data"]["status"] == "succeeded" and second["seq"] == first["seq"] + 1
    async with hub.http(hub.token(payee)) as http:
        assert (await http.get(f"/api/accounts/{payee}")).json()["balance"] == "200.00"
    for c in (phone, tablet):
        await c.close()


async def test_failed_payment_notifies_with_the_reason(hub, services):
    payer = uid()
    await add_account(services.dsn, payer, "Poor", "5.00")
    await add_account(services.dsn, "shop-1", "Shop", "0.00")
    device = await hub.client(payer)
    payment = await pay(hub, payer, "shop-1", "50.00")
    assert payment["status"] == "failed" and payment["reason"] == "insufficient_balance"
    n = await device.expect("notification", timeout=15)
    assert n["data"]["status"] == "failed" and n["data"]["reason"] == "insufficient_balance"
    assert "余额不足" in n["body"]
    await device.close()


async def test_burst_freezes_the_account_alerts_devices_and_opens_urgent_chat(hub, services, db):
    await agents.upsert(
        db, username="guard", password="pw", name="Guard", skills=["security"], capacity=2
    )
    guard = await hub.client("guard", "agent", name="Guard")
    await guard.request({"type": "agent.status", "status": "online"})
    user_id = uid()
    await add_account(services.dsn, user_id, "Victim", "1000.00")
    await add_account(services.dsn, "shop-2", "Shop", "0.00")
    phone, laptop = await hub.client(user_id), await hub.client(user_id)
    results = [await pay(hub, user_id, "shop-2", "1.00") for _ in range(11)]
    assert [r["status"] for r in results[:10]] == ["succeeded"] * 10
    assert results[10]["status"] == "failed" and results[10]["reason"] == "account_frozen"
    for device in (phone, laptop):
        alerts = []
        while len(alerts) < 2:
            n = await device.expect("notification", timeout=15)
            if n["kind"] == "security.alert":
                alerts.append(n["data"]["alert"])
                assert n["data"]["severity"] in ("critical", "warning")
        assert alerts == ["suspicious_activity", "account_frozen"]
        await device.expect("chat.opened", topic="security", timeout=10)
    urgent = await guard.expect("chat.assigned", timeout=15)
    assert urgent["priority"] == "urgent" and urgent["alert"]["alert"] == "account_frozen"
    cid = urgent["conversation_id"]
    # the security agent confirms with the customer, then unfreezes
    await guard.request(
        {
            "type": "chat.send",
            "conversation_id": cid,
            "client_msg_id": "g1",
            "text": "请确认是否本人操作？",
        }
    )
    await phone.expect("message", conversation_id=cid, client_msg_id="g1")
    async with hub.http(hub.token("guard", "agent")) as http:
        account = (await http.get(f"/api/accounts/{user_id}")).json()
        assert account["frozen"] is True
    await pass_verification(hub, guard, phone, cid)
    async with hub.http(hub.token("guard", "agent")) as http:
        r = await http.post(
            f"/api/accounts/{user_id}/unfreeze", json={"reason": "confirmed with customer"}
        )
        assert r.status_code == 200, r.text
    n = await phone.expect(
        lambda f: f.get("type") == "notification" and f["data"].get("alert") == "account_unfrozen",
        timeout=15,
    )
    assert n["data"]["severity"] == "info"
    assert (await pay(hub, user_id, "shop-2", "1.00"))["status"] == "succeeded"
    for c in (guard, phone, laptop):
        await c.close()


async def test_redis_outage_mid_stream_loses_nothing(services):
    server = await start_hub(services)
    try:
        payer = uid()
        await add_account(services.dsn, payer, "Payer", "100.00")
        await add_account(services.dsn, "shop-3", "Shop", "0.00")
        device = await server.client(payer)
        await pay(server, payer, "shop-3")
        assert (await device.expect("notification", timeout=15))["seq"] == 1
        services.redis.stop()
        try:
            for _ in range(3):
                await pay(server, payer, "shop-3")  # events wait in the outbox
            await asyncio.sleep(0.5)
        finally:
            services.redis.start()
        seqs = [(await device.expect("notification", timeout=30))["seq"] for _ in range(3)]
        assert seqs == [2, 3, 4]
        await device.quiet("notification", 1.0)
        await device.close()
    finally:
        await server.stop()


async def test_hub_down_mid_stream_catches_up_from_the_outbox(isolated):
    # a database and Redis of its own: no other hub may consume the events while this one is down
    payer = uid()
    await add_account(isolated.dsn, payer, "Payer", "100.00")
    await add_account(isolated.dsn, "shop-4", "Shop", "0.00")
    server = await start_hub(isolated)
    device = await server.client(payer)
    await pay(server, payer, "shop-4")
    assert (await device.expect("notification", timeout=15))["seq"] == 1
    await device.close()
    await server.stop()

    # a payments-only process keeps taking payments and publishing while no hub listens
    from tests.conftest import make_settings

    pay_app = await _payments_only(isolated, make_settings())
    try:
        for _ in range(2):
            await pay(pay_app, payer, "shop-4")
        await asyncio.sleep(1.0)  # the relay has published them to nobody
    finally:
        await pay_app.stop()
    db = await asyncpg.connect(isolated.dsn)
    try:
        assert await db.fetchval("select count(*) from outbox where published_at is null") == 0
        assert await db.fetchval("select count(*) from notifications") == 1

        server = await start_hub(isolated)
        try:
            back = await server.client(payer, resume={"notifications_after": 1})
            frames = [await back.expect("notification", timeout=20) for _ in range(2)]
            assert sorted(f["seq"] for f in frames) == [2, 3]
            assert {f["data"]["status"] for f in frames} == {"succeeded"}
            await back.quiet("notification", 1.0)
            await back.close()
        finally:
            await server.stop()
        assert await db.fetchval("select count(*) from notifications") == 3
    finally:
        await db.close()


async def test_events_that_never_crossed_redis_are_read_from_the_outbox(isolated):
    server = await start_hub(isolated)
    db = await asyncpg.connect(isolated.dsn)
    outbox = server.hub.outbox
    try:
        payer = uid()
        await add_account(isolated.dsn, payer, "Payer", "100.00")
        await add_account(isolated.dsn, "shop-6", "Shop", "0.00")
        isolated.redis.stop()
        try:
            await pay(server, payer, "shop-6")
            await pay(server, payer, "shop-6")
            await outbox.catch_up()  # the periodic poll may have been first: either will do
            stored = await db.fetch(
                "select seq, data from notifications where user_id = $1 order by seq", payer
            )
            assert [r["seq"] for r in stored] == [1, 2]
            assert {json.loads(r["data"])["status"] for r in stored} == {"succeeded"}
            # read again from the start, the poll finds both stored and hands on nothing
            await db.execute("update event_cursor set after_id = 0")
            assert await outbox.catch_up() == 0
            assert await db.fetchval("select count(*) from notifications") == 2
        finally:
            isolated.redis.start()
    finally:
        await db.close()
        await server.stop()


async def _payments_only(services, settings):
    """`supporthub payments` as the tests can run it: the payments app without a hub."""
    import socket

    import uvicorn

    from hub.services.broadcasts import announcer
    from hub.services.verification import passed_verification
    from payments.service import create_app
    from tests.conftest import SECRET, HubServer

    app = create_app(settings, dsn=services.dsn, redis_url=services.redis_url, secret=SECRET,
                     announce=announcer(SECRET), verified=passed_verification)  # fmt: skip
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return HubServer(f"http://127.0.0.1:{port}", "", app, server, task)


async def test_bot_tells_the_live_status_of_a_transaction_and_follows_up(hub, services):
    payer = uid()
    await add_account(services.dsn, payer, "Payer", "300.00")
    await add_account(services.dsn, "shop-5", "Shop", "0.00")
    device = await hub.client(payer)
    payment = await pay(hub, payer, "shop-5", "88.00", "standard")
    tx = payment["transaction_id"]
    cid = (await device.request({"type": "chat.open", "topic": "arrival"}))["conversation_id"]
    await device.expect(lambda f: f.get("type") == "message" and f["sender"]["role"] == "bot")
    await device.request(
        {
            "type": "chat.send",
            "conversation_id": cid,
            "client_msg_id": "q",
            "text": f"{tx} 钱还没到账",
        }
    )
    answer = await device.expect(
        lambda f: f.get("type") == "message" and f["sender"]["role"] == "bot", timeout=10
    )
    assert "88.00" in answer["text"] and ("处理中" in answer["text"] or "处理" in answer["text"])
    follow = await device.expect(lambda f: f.get("type") == "message" and f["sender"]["role"] == "bot"
                                 and f["text"].startswith("交易状态更新"), timeout=20)  # fmt: skip
    assert "88.00" in follow["text"] and "成功" in follow["text"]
    await device.close()
