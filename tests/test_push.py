"""Push to closed apps, with real parts: a hub with Web Push on, its own PostgreSQL
database and Redis, the payments module making real payments, and a push service on a
loopback port that checks each push as a browser's would (VAPID signature, RFC 8291
decryption with the device's keys)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from hub.store import agents
from payments.seed import add_account
from tests.conftest import start_hub
from tests.events import publish_signed
from tests.pushservice import (
    SUBJECT,
    VAPID,
    PushEnv,
    push_env,  # noqa: F401  (a fixture)
)


@pytest.fixture(scope="module")
def env(push_env: PushEnv) -> PushEnv:  # noqa: F811
    return push_env


def uid(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_the_vapid_key_is_the_configured_one(env: PushEnv):
    async with env.hub.http() as http:
        r = await http.get("/api/push/vapid-public-key")
    assert r.status_code == 200 and r.json() == {"key": VAPID.public_key}
    # what browsers take as applicationServerKey: an uncompressed P-256 point, URL-safe
    raw = __import__("base64").urlsafe_b64decode(r.json()["key"] + "=")
    assert len(raw) == 65 and raw[0] == 4 and "=" not in r.json()["key"]


async def test_a_payment_notification_for_a_user_with_no_socket_is_pushed(env: PushEnv):
    payer = uid()
    await add_account(env.iso.dsn, payer, "Payer", "5.00")
    phone = env.push.device(uid("phone"))
    await env.register(payer, phone)
    payment = await env.pay(payer, "nobody-" + payer, "50.00")
    assert payment["status"] == "failed"
    push = await env.push.next_push(phone.name)
    db = await env.db()
    try:
        row = await db.fetchrow(
            "select id, kind, title, body from notifications where user_id = $1", payer
        )
    finally:
        await db.close()
    assert push.payload["notification_id"] == row["id"]
    assert push.payload["kind"] == "transaction.status"
    assert (push.payload["title"], push.payload["body"]) == (row["title"], row["body"])
    assert push.payload["ts"] and "conversation_id" not in push.payload
    assert "data" not in push.payload  # the event's own fields stay in the app
    assert push.claims["sub"] == SUBJECT and push.claims["aud"] == env.push.url
    assert int(push.headers["ttl"]) > 0 and push.headers["urgency"] == "normal"
    assert len(push.headers["topic"]) <= 32


async def test_a_security_alert_push_says_only_open_the_app(env: PushEnv):
    user_id = uid()
    await add_account(env.iso.dsn, user_id, "Li", "10.00")
    laptop = env.push.device(uid("laptop"))
    # registered over the socket, as the widget does; then the app is closed
    client = await env.hub.client(user_id)
    ack = await client.request(
        {"type": "push.register", "kind": "webpush", "subscription": laptop.subscription()}
    )
    assert ack["type"] == "ack" and ack["subscription_id"]
    await client.close()
    async with env.hub.http(env.hub.token("hub", "service")) as http:
        for device_id, name in (("old-phone", "Phone"), ("evil", "Stolen iPad")):
            r = await http.post("/api/devices/login", json={"user_id": user_id, "device_id": device_id,
                                                            "device_name": name, "ip": "203.0.113.66"})  # fmt: skip
            assert r.status_code == 200, r.text
    push = await env.push.next_push(laptop.name)
    assert push.payload["kind"] == "security.alert"
    assert push.payload["title"] == "安全提醒"
    assert push.payload["body"] == "您的账户有一条安全提醒——请打开应用查看"
    text = str(push.payload)
    assert "iPad" not in text and "203.0.113" not in text and "evil" not in text
    assert push.headers["urgency"] == "high"
    # in English for an English user
    db = await env.db()
    await db.execute("update users set lang = 'en' where id = $1", user_id)
    await db.close()
    env.hub.hub.languages.forget(user_id)
    async with env.hub.http(env.hub.token("hub", "service")) as http:
        await http.post("/api/devices/login", json={"user_id": user_id, "device_id": "evil-2"})
    push = await env.push.next_push(laptop.name)
    assert push.payload["body"] == "Security alert on your account — open the app"


async def test_a_user_with_a_live_socket_gets_no_push(env: PushEnv):
    payer = uid()
    await add_account(env.iso.dsn, payer, "Payer", "100.00")
    tablet = env.push.device(uid("tablet"))
    await env.register(payer, tablet)
    # a socket on this node counts; presence is cluster-wide (the bus subscription)
    client = await env.hub.client(payer)
    await env.pay(payer, "shop-" + payer, "1.00")
    n = await client.expect("notification", timeout=15)
    await env.hub.hub.push_out.settled()
    await asyncio.sleep(0.3)
    assert env.push.pushes_for(tablet.name) == [] and env.push.attempts.get(tablet.name) is None
    await client.close()
    await env.pay(payer, "shop-" + payer, "1.00")
    push = await env.push.next_push(tablet.name)
    assert push.payload["notification_id"] != n["notification_id"]
    assert env.push.attempts[tablet.name] == 1


async def test_a_subscription_answered_410_is_deleted(env: PushEnv):
    payer = uid()
    await add_account(env.iso.dsn, payer, "Payer", "100.00")
    old, new = env.push.device(uid("old")), env.push.device(uid("new"))
    await env.register(payer, old)
    await env.register(payer, new)
    assert len(await env.subscriptions(payer)) == 2
    env.push.answer(old.name, 410)
    await env.pay(payer, "shop-" + payer, "2.00")
    await env.push.next_push(new.name)
    await env.hub.hub.push_out.settled()
    left = await env.subscriptions(payer)
    assert [s["endpoint"] for s in left] == [new.endpoint]
    assert env.push.attempts[old.name] == 1  # gone means gone: no retry


async def test_5xx_and_429_are_retried_with_backoff(env: PushEnv):
    payer = uid()
    await add_account(env.iso.dsn, payer, "Payer", "100.00")
    watch = env.push.device(uid("watch"))
    await env.register(payer, watch)
    env.push.answer(watch.name, 503, (429, {"Retry-After": "0"}), 500)
    await env.pay(payer, "shop-" + payer, "3.00")
    push = await env.push.next_push(watch.name)
    assert push.payload["kind"] == "transaction.status"
    assert env.push.attempts[watch.name] == 4
    assert len(await env.subscriptions(payer)) == 1


async def test_an_agents_reply_to_an_offline_user_is_pushed(env: PushEnv):
    db = await env.db()
    try:
        await agents.upsert(db, username="pushy", password="pw", name="Wang Fang",
                            skills=["payment"], capacity=3)  # fmt: skip
    finally:
        await db.close()
    agent = await env.hub.client("pushy", "agent", name="Wang Fang")
    await agent.request({"type": "agent.status", "status": "online"})
    user_id = uid()
    user = await env.hub.client(user_id, name="Zhao")
    opened = await user.request(
        {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": "转账没到"}
    )
    cid = opened["conversation_id"]
    await agent.expect("chat.assigned", conversation_id=cid)
    phone = env.push.device(uid("phone"))
    await user.request(
        {"type": "push.register", "kind": "webpush", "subscription": phone.subscription()}
    )
    # a reply while the app is open is not pushed
    await agent.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "a1",
                         "text": "我来查一下"})  # fmt: skip
    await user.expect("message", conversation_id=cid, client_msg_id="a1")
    await env.hub.hub.push_out.settled()
    assert env.push.pushes_for(phone.name) == []
    await user.close()
    ack = await agent.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "a2",
                               "text": "已经到账了，请查看余额"})  # fmt: skip
    push = await env.push.next_push(phone.name)
    assert push.payload == {
        "message_id": ack["message_id"],
        "kind": "chat.message",
        "title": "客服Wang Fang回复了您",
        "body": "已经到账了，请查看余额",
        "ts": push.payload["ts"],
        "conversation_id": cid,
    }
    assert push.headers["urgency"] == "high"
    # the user's own messages and the system's are never pushed back to them
    await env.hub.hub.push_out.settled()
    assert len(env.push.pushes_for(phone.name)) == 1
    await _resolve(agent, cid)


async def test_a_pushed_reply_holds_only_the_masked_text(env: PushEnv):
    db = await env.db()
    try:
        await agents.upsert(db, username="pushmask", password="pw", name="Wang Fang",
                            skills=["security"], capacity=3)  # fmt: skip
    finally:
        await db.close()
    agent = await env.hub.client("pushmask", "agent", name="Wang Fang")
    await agent.request({"type": "agent.status", "status": "online"})
    user = await env.hub.client(uid(), name="Zhao")
    opened = await user.request({"type": "chat.open", "topic": "security", "handoff": "agent"})
    cid = opened["conversation_id"]
    await agent.expect("chat.assigned", conversation_id=cid)
    phone = env.push.device(uid("phone"))
    await user.request(
        {"type": "push.register", "kind": "webpush", "subscription": phone.subscription()}
    )
    await user.close()
    await agent.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "a1",
                         "text": "退款已退回尾号卡 4111 1111 1111 1111"})  # fmt: skip
    push = await env.push.next_push(phone.name)
    assert push.payload["body"] == "退款已退回尾号卡 **** **** **** 1111"
    await _resolve(agent, cid)


async def test_a_broadcast_reaches_offline_devices(env: PushEnv):
    user_id = uid()
    ipad = env.push.device(uid("ipad"))
    await env.register(user_id, ipad)
    async with env.hub.http(env.hub.token("ops", "supervisor")) as http:
        r = await http.post("/api/broadcasts", json={"title": "维护通知", "body": "今晚 2 点维护"})
    assert r.status_code == 202
    push = await env.push.next_push(ipad.name)
    assert push.payload["kind"] == "system.notice"
    assert (push.payload["title"], push.payload["body"]) == ("维护通知", "今晚 2 点维护")
    assert push.payload["notification_id"]


async def test_a_notice_stored_in_chunks_reaches_every_offline_device_once(env: PushEnv):
    """Web Push pages through all of a notice's copies, so it starts once the last chunk
    is stored (the frame that says the notice is complete), not with the first chunk's
    frame: here the last user's chunk waits for a transaction holding their row."""
    from hub.services.broadcasts import NoticeSender

    devices = {}
    for _ in range(5):  # after the module's other users: three chunks of 2 at the end
        user_id = uid("zz")
        devices[user_id] = env.push.device(uid("tablet"))
        await env.register(user_id, devices[user_id])
    hub = env.hub.hub
    holder = await env.db()
    try:
        async with holder.transaction():
            last = await holder.fetchval(
                "select id from users where id = any($1::text[]) order by id desc limit 1"
                " for update",
                list(devices),
            )
            sender = NoticeSender(hub.store.pool, hub.node.bus.redis, hub.secret, hub.node, 2)
            notice = asyncio.ensure_future(sender.announce("分批通知", "b", {}))
            first = await holder.fetchval(  # stored in an earlier chunk than `last`'s
                "select min(id) from users where id = any($1::text[])", list(devices)
            )

            async def stored() -> bool:
                return bool(await holder.fetchval(
                    "select count(*) from notifications where user_id = $1", first
                ))  # fmt: skip

            for _ in range(300):
                if await stored():
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # the first chunks' frames are heard meanwhile
            assert not notice.done() and last != first
        await notice
        for device in devices.values():
            push = await env.push.next_push(device.name)
            assert (push.payload["kind"], push.payload["title"]) == ("system.notice", "分批通知")
        await asyncio.sleep(0.3)
        for device in devices.values():
            assert len(env.push.pushes_for(device.name)) == 1, device.name
    finally:
        await holder.close()


async def test_registration_is_validated(env: PushEnv):
    user_id = uid()
    good = env.push.device(uid("good"))
    sub = good.subscription()
    client = await env.hub.client(user_id)

    async def register(subscription, kind="webpush"):
        return await client.request(
            {"type": "push.register", "kind": kind, "subscription": subscription}
        )

    bad_keys = [
        {**sub, "keys": {**sub["keys"], "p256dh": sub["keys"]["p256dh"][:-4]}},
        {**sub, "keys": {**sub["keys"], "p256dh": "BAAA" + sub["keys"]["p256dh"][4:]}},
        {**sub, "keys": {**sub["keys"], "auth": sub["keys"]["auth"] + "AAAA"}},
        {**sub, "keys": {"p256dh": sub["keys"]["p256dh"]}},
        {"keys": sub["keys"]},
    ]
    for bad in bad_keys:
        err = await register(bad)
        assert (err["type"], err["code"]) == ("error", "bad_frame"), bad
    assert (await register(sub, kind="fcm"))["code"] == "bad_frame"
    for endpoint in ("http://push.example.com/x", "ftp://127.0.0.1/x", "https://10.0.0.1/x",
                     "https://evil.example.com/push"):  # fmt: skip
        err = await register({**sub, "endpoint": endpoint})
        assert (err["type"], err["code"]) == ("error", "invalid"), endpoint
    assert (await register(sub))["type"] == "ack"
    # the connection stays open after bad frames
    assert (await client.request({"type": "ping"}))["type"] == "pong"
    await client.close()

    # agents do not register devices
    db = await env.db()
    try:
        await agents.upsert(db, username="pushy-2", password="pw", name="Li Lei",
                            skills=["payment"], capacity=3)  # fmt: skip
    finally:
        await db.close()
    agent = await env.hub.client("pushy-2", "agent")
    err = await agent.request({"type": "push.register", "kind": "webpush", "subscription": sub})
    assert err["type"] == "error" and err["code"] == "forbidden"
    await agent.close()

    async with env.hub.http(env.hub.token(user_id)) as http:
        r = await http.post("/api/push/subscriptions", json={"kind": "webpush",
                                                            "subscription": bad_keys[0]})  # fmt: skip
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid"
        r = await http.post("/api/push/subscriptions", json={"kind": "webpush", "subscription": {
            **sub, "endpoint": "https://169.254.169.254/latest"}})  # fmt: skip
        assert r.status_code == 422
        assert (await http.post("/api/push/subscriptions", content=b"[")).status_code == 400
    async with env.hub.http() as http:
        r = await http.post(
            "/api/push/subscriptions", json={"kind": "webpush", "subscription": sub}
        )
        assert r.status_code == 401
    async with env.hub.http(env.hub.token("a1", "agent")) as http:
        r = await http.post(
            "/api/push/subscriptions", json={"kind": "webpush", "subscription": sub}
        )
        assert r.status_code == 403


async def test_a_device_moves_to_the_user_who_registers_it_and_can_unregister(env: PushEnv):
    first, second = uid(), uid()
    shared = env.push.device(uid("shared"))
    one = await env.register(first, shared)
    again = await env.register(first, shared)
    assert again["subscription_id"] == one["subscription_id"]
    await env.register(second, shared)
    assert await env.subscriptions(first) == []
    [mine] = await env.subscriptions(second)
    assert mine["endpoint"] == shared.endpoint
    async with env.hub.http(env.hub.token(first)) as http:
        r = await http.request("DELETE", f"/api/push/subscriptions/{mine['subscription_id']}")
        assert r.status_code == 404  # not theirs
    async with env.hub.http(env.hub.token(second)) as http:
        r = await http.request(
            "DELETE", "/api/push/subscriptions", json={"endpoint": shared.endpoint}
        )
        assert r.status_code == 204
        r = await http.request(
            "DELETE", "/api/push/subscriptions", json={"endpoint": shared.endpoint}
        )
        assert r.status_code == 404
    client = await env.hub.client(second)
    await client.request({"type": "push.register", "kind": "webpush",
                          "subscription": shared.subscription()})  # fmt: skip
    ack = await client.request({"type": "push.unregister", "endpoint": shared.endpoint})
    assert ack == {"type": "ack", "id": ack["id"], "removed": True}
    await client.close()
    assert await env.subscriptions(second) == []


async def test_the_service_worker_is_served_for_the_widget_scope(env: PushEnv):
    async with env.hub.http() as http:
        r = await http.get("/widget/sw.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["service-worker-allowed"] == "/widget/"
    assert "push" in r.text and "notificationclick" in r.text


async def test_push_is_off_without_a_vapid_key(hub):
    async with hub.http() as http:
        r = await http.get("/api/push/vapid-public-key")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    client = await hub.client(uid())
    device_sub = {"endpoint": "http://127.0.0.1:9/push/x",
                  "keys": {"p256dh": "B" + "A" * 86, "auth": "A" * 22}}  # fmt: skip
    err = await client.request(
        {"type": "push.register", "kind": "webpush", "subscription": device_sub}
    )
    assert err["type"] == "error"
    await client.close()


async def test_a_frozen_customer_with_no_app_open_gets_the_alert_and_a_person(env: PushEnv):
    """No app connected: the freeze alert is pushed, a security agent gets the urgent chat,
    and the customer is pushed that a person has it (nothing more on the lock screen)."""
    db = await env.db()
    try:
        await agents.upsert(db, username="pushsec", password="pw", name="Guard",
                            skills=["security"], capacity=1)  # fmt: skip
    finally:
        await db.close()
    guard = await env.hub.client("pushsec", "agent", name="Guard")
    await guard.request({"type": "agent.status", "status": "online"})
    user_id = uid()
    phone = env.push.device(uid("phone"))
    await env.register(user_id, phone)
    await publish_signed(env.iso.redis_url, [{
        "event_id": f"ev-{uuid.uuid4().hex}", "type": "security.alert", "user_id": user_id,
        "occurred_at": "2026-11-25T08:00:00+00:00", "alert": "account_frozen",
        "severity": "critical", "details": {"rule": "velocity", "count": 11},
    }])  # fmt: skip
    got = await guard.expect(
        lambda f: f["type"] == "chat.assigned" and f.get("user", {}).get("id") == user_id,
        timeout=15,
    )
    assert got["priority"] == "urgent"
    pushes = [await env.push.next_push(phone.name) for _ in range(2)]
    by_kind = {p.payload["kind"]: p for p in pushes}
    assert set(by_kind) == {"security.alert", "chat.urgent"}
    person = by_kind["chat.urgent"]
    assert person.payload["conversation_id"] == got["conversation_id"]
    assert person.payload["body"] == "安全专员已接入您的对话——请打开应用查看"
    assert person.headers["urgency"] == "high"
    assert "Guard" not in str(person.payload) and "velocity" not in str(person.payload)
    await _resolve(guard, got["conversation_id"])


async def test_a_socket_on_another_node_counts_as_online(env: PushEnv):
    """Two hub nodes: the user's events are handled by one, their socket is on the other.
    (Last in this module: while the second node runs, users are split between the two.)"""
    first = env.hub
    second = await start_hub(env.iso, vapid_private_key=VAPID.private_key, vapid_subject=SUBJECT)
    try:
        for node in (first, second):
            await _eventually(lambda node=node: len(node.node.ring.nodes) == 2)
        me = first.node.node_id
        payer = next(u for u in (uid() for _ in range(200)) if first.node.ring.owner(u) == me)
        await add_account(env.iso.dsn, payer, "Payer", "100.00")
        phone = env.push.device(uid("phone"))
        await env.register(payer, phone)
        elsewhere = await second.client(payer)
        await env.pay(payer, "shop-" + payer, "1.00")
        await elsewhere.expect("notification", timeout=15)
        for node in (first, second):
            await node.hub.push_out.settled()
        assert env.push.attempts.get(phone.name) is None
        await elsewhere.close()
        await _eventually(lambda: env.offline(payer))
        await env.pay(payer, "shop-" + payer, "1.00")
        push = await env.push.next_push(phone.name)
        assert push.payload["kind"] == "transaction.status"
    finally:
        await second.stop()


async def _resolve(agent, cid: str) -> None:
    """End a test's chat and sign its agent off. An agent that only disconnects is marked
    away after `agent_grace_s` and its open chats go back to the queue, where a later test's
    agent with the same skill would be handed them first (this module shares one store)."""
    ack = await agent.request({"type": "chat.resolve", "conversation_id": cid})
    assert ack["type"] == "ack", ack
    await agent.request({"type": "agent.status", "status": "offline"})
    await agent.close()


async def _eventually(check, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_campaign_reaches_offline_devices(env: PushEnv):
    user_id = uid()
    tablet = env.push.device(uid("tablet"))
    await env.register(user_id, tablet)
    texts = {"zh": {"title": "谨防钓鱼网站", "body": "客服不会索要验证码。"},
             "en": {"title": "Beware of phishing", "body": "We never ask for codes."}}  # fmt: skip
    async with env.hub.http(env.hub.token("ops", "supervisor")) as http:
        r = await http.post("/api/campaigns", json={
            "texts": texts, "audience": {"kind": "list"}, "user_ids": [user_id]})  # fmt: skip
    assert r.status_code == 201, r.text
    push = await env.push.next_push(tablet.name)
    assert push.payload["kind"] == "system.notice" and push.payload["title"] == "谨防钓鱼网站"
