"""Chat end to end over real sockets: open, queue, assign, messages, notes, transfer,
resolve, rate, several devices, reconnect."""

from __future__ import annotations

import uuid

import httpx
import pytest

from hub.cluster.bus import FANOUT_CHANNEL
from hub.store import agents

pytestmark = pytest.mark.usefixtures("clean")


async def add_agent(
    db, username: str, skills: list[str], capacity: int = 2, supervisor: bool = False
):
    await agents.upsert(db, username=username, password="pw-" + username, name=username.title(),
                        skills=skills, capacity=capacity, supervisor=supervisor)  # fmt: skip


async def online_agent(hub, db, username: str, skills: list[str], capacity: int = 2, **kw):
    await add_agent(db, username, skills, capacity, **kw)
    role = "supervisor" if kw.get("supervisor") else "agent"
    client = await hub.client(username, role, name=username.title())
    state = await client.request({"type": "agent.status", "status": "online"})
    assert state["type"] == "agent.state" and state["status"] == "online"
    return client


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def test_open_straight_to_agent_then_chat_both_ways(hub, db):
    agent = await online_agent(hub, db, "alice", ["payment"])
    user = await hub.client(uid(), name="Zhang San")
    opened = await user.request(
        {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": "我的转账失败了"}
    )
    assert opened["type"] == "chat.opened" and opened["status"] == "assigned"
    cid = opened["conversation_id"]
    assigned_user = await user.expect("chat.assigned", conversation_id=cid)
    assert assigned_user["agent"] == {"id": "alice", "name": "Alice"}
    assigned = await agent.expect("chat.assigned", conversation_id=cid)
    assert assigned["user"]["name"] == "Zhang San"
    assert assigned["topic"] == "payment" and assigned["priority"] == "high"
    assert [m["text"] for m in assigned["history"]] == ["我的转账失败了"]

    ack = await agent.request(
        {
            "type": "chat.send",
            "conversation_id": cid,
            "client_msg_id": "a1",
            "text": "您好，我来看看",
        }
    )
    assert (
        ack["type"] == "ack"
        and ack["seq"] == 2
        and ack["conversation_id"] == cid
        and ack["message_id"]
    )
    msg = await user.expect("message", conversation_id=cid, seq=2)
    assert msg["sender"] == {"role": "agent", "id": "alice", "name": "Alice"}
    assert msg["text"] == "您好，我来看看"

    ack = await user.request(
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": "u1", "text": "谢谢"}
    )
    assert ack["seq"] == 3
    got = await agent.expect("message", conversation_id=cid, seq=3)
    assert got["client_msg_id"] == "u1" and got["sender"]["role"] == "user"
    for c in (agent, user):
        await c.close()


async def test_resending_the_same_client_msg_id_yields_one_message(hub, db):
    agent = await online_agent(hub, db, "alice", ["account"])
    user = await hub.client(uid())
    cid = (await user.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
        "conversation_id"
    ]
    await agent.expect("chat.assigned", conversation_id=cid)
    acks = [
        await user.request(
            {"type": "chat.send", "conversation_id": cid, "client_msg_id": "same", "text": "hi"}
        )
        for _ in range(3)
    ]
    assert len({a["message_id"] for a in acks}) == 1 and {a["seq"] for a in acks} == {1}
    await agent.expect("message", conversation_id=cid, seq=1)
    await agent.quiet("message", 0.5)
    assert await db.fetchval("select count(*) from messages where conversation_id = $1", cid) == 1
    for c in (agent, user):
        await c.close()


async def test_queue_positions_then_assignment_when_an_agent_comes_online(hub, db):
    await add_agent(db, "bob", ["arrival"], capacity=1)
    users = [await hub.client(uid()) for _ in range(3)]
    cids = []
    for u in users:
        opened = await u.request({"type": "chat.open", "topic": "arrival", "handoff": "agent"})
        assert opened["status"] == "queued"
        cids.append(opened["conversation_id"])
    q = await users[2].expect("chat.queued", conversation_id=cids[2])
    assert q["position"] == 3 and q["eta_s"] > 0
    agent = await hub.client("bob", "agent", name="Bob")
    await agent.request({"type": "agent.status", "status": "online"})
    first = await agent.expect("chat.assigned")
    assert first["conversation_id"] == cids[0]  # FIFO
    await users[0].expect("chat.assigned", conversation_id=cids[0])
    q = await users[2].expect("chat.queued", conversation_id=cids[2], position=2)
    assert q["position"] == 2
    # resolving frees capacity: the next in line is assigned at once
    await agent.request({"type": "chat.resolve", "conversation_id": cids[0]})
    closed = await users[0].expect("chat.closed", conversation_id=cids[0])
    assert closed["by"] == "agent"
    nxt = await agent.expect("chat.assigned", conversation_id=cids[1])
    assert nxt["conversation_id"] == cids[1]
    for c in (*users, agent):
        await c.close()


async def test_priority_and_skills(hub, db):
    await add_agent(db, "sec", ["security", "payment", "account"], capacity=1)
    u_normal, u_high = await hub.client(uid()), await hub.client(uid())
    normal = (
        await u_normal.request({"type": "chat.open", "topic": "account", "handoff": "agent"})
    )["conversation_id"]
    high = (await u_high.request({"type": "chat.open", "topic": "payment", "handoff": "agent"}))[
        "conversation_id"
    ]
    agent = await hub.client("sec", "agent")
    await agent.request({"type": "agent.status", "status": "online"})
    got = await agent.expect("chat.assigned")
    assert got["conversation_id"] == high  # high (payment) before normal, though later
    # an agent without the skill gets nothing
    await add_agent(db, "techie", ["technical"], capacity=3)
    techie = await hub.client("techie", "agent")
    await techie.request({"type": "agent.status", "status": "online"})
    await techie.quiet("chat.assigned", 0.8)
    for c in (u_normal, u_high, agent, techie):
        await c.close()
    assert normal


async def test_notes_never_reach_the_user(hub, db):
    agent = await online_agent(hub, db, "alice", ["account"])
    user_id = uid()
    user = await hub.client(user_id)
    cid = (await user.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
        "conversation_id"
    ]
    await agent.expect("chat.assigned", conversation_id=cid)
    ack = await agent.request(
        {"type": "chat.note", "conversation_id": cid, "text": "VIP customer, check KYC"}
    )
    assert ack["type"] == "ack"
    note = await agent.expect("note", conversation_id=cid)
    assert note["text"] == "VIP customer, check KYC"
    await user.quiet(lambda f: "VIP" in str(f), 0.6)
    # not over REST either, nor through resume
    async with hub.http(hub.token(user_id)) as http:
        body = (await http.get(f"/api/conversations/{cid}")).json()
    assert "VIP" not in str(body) and "notes" not in body
    again = await hub.client(user_id, resume={"conversations": {cid: 0}})
    await again.quiet(lambda f: "VIP" in str(f), 0.5)
    async with hub.http(hub.token("alice", "agent")) as http:
        body = (await http.get(f"/api/conversations/{cid}")).json()
    assert body["notes"][0]["text"] == "VIP customer, check KYC"
    # a user cannot write notes
    err = await user.request({"type": "chat.note", "conversation_id": cid, "text": "x"})
    assert err["code"] == "forbidden"
    for c in (agent, user, again):
        await c.close()


async def test_transfer_to_agent_and_to_topic(hub, db):
    alice = await online_agent(hub, db, "alice", ["payment"])
    bob = await online_agent(hub, db, "bob", ["payment", "security"])
    user = await hub.client(uid())
    cid = (
        await user.request(
            {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": "help"}
        )
    )["conversation_id"]
    first = await user.expect("chat.assigned", conversation_id=cid)
    holder, other = (alice, bob) if first["agent"]["id"] == "alice" else (bob, alice)
    other_id = "bob" if holder is alice else "alice"
    await holder.expect("chat.assigned", conversation_id=cid)
    await holder.request(
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": "h1", "text": "one moment"}
    )
    ack = await holder.request(
        {"type": "chat.transfer", "conversation_id": cid, "to_agent": other_id}
    )
    assert ack["type"] == "ack", ack
    got = await other.expect("chat.assigned", conversation_id=cid)
    assert [m["text"] for m in got["history"]][:2] == ["help", "one moment"]
    told = await user.expect("chat.assigned", conversation_id=cid)
    assert told["agent"]["id"] == other_id
    await holder.expect("chat.transferred", conversation_id=cid)
    # the old agent can no longer write
    err = await holder.request(
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": "h2", "text": "x"}
    )
    assert err["code"] == "forbidden"
    # transfer to a topic: back to the queue with the new topic, away from this agent
    ack = await other.request(
        {"type": "chat.transfer", "conversation_id": cid, "to_topic": "security"}
    )
    assert ack["type"] == "ack"
    # bob is the only security agent: he gets it, even when he is the one who handed it
    # away (nobody else could ever take it; a chat never waits for an agent who is not there)
    await bob.expect("chat.assigned", conversation_id=cid)
    for c in (alice, bob, user):
        await c.close()


async def test_a_chat_transferred_to_another_topic_takes_that_topics_priority(hub, db):
    tech = await online_agent(hub, db, "tess", ["technical"])
    pay = await online_agent(hub, db, "paul", ["payment"])
    user = await hub.client(uid())
    cid = (
        await user.request(
            {"type": "chat.open", "topic": "technical", "handoff": "agent", "text": "app crashes"}
        )
    )["conversation_id"]
    assert (await tech.expect("chat.assigned", conversation_id=cid))["priority"] == "normal"
    ack = await tech.request(
        {"type": "chat.transfer", "conversation_id": cid, "to_topic": "payment"}
    )
    assert ack["type"] == "ack", ack
    got = await pay.expect("chat.assigned", conversation_id=cid)
    assert (got["topic"], got["priority"]) == ("payment", "high")
    for c in (tech, pay, user):
        await c.close()


async def test_transfer_errors(hub, db):
    alice = await online_agent(hub, db, "alice", ["payment"])
    user = await hub.client(uid())
    cid = (await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent"}))[
        "conversation_id"
    ]
    await alice.expect("chat.assigned", conversation_id=cid)
    err = await alice.request(
        {"type": "chat.transfer", "conversation_id": cid, "to_agent": "nobody"}
    )
    assert err["code"] == "not_found"
    await add_agent(db, "carol", ["payment"])
    err = await alice.request(
        {"type": "chat.transfer", "conversation_id": cid, "to_agent": "carol"}
    )
    assert err["code"] == "conflict"  # carol is offline
    err = await alice.request({"type": "chat.transfer", "conversation_id": cid})
    assert err["code"] == "invalid"
    for c in (alice, user):
        await c.close()


async def test_close_and_rate(hub, db):
    alice = await online_agent(hub, db, "alice", ["feedback"])
    user = await hub.client(uid())
    cid = (await user.request({"type": "chat.open", "topic": "feedback", "handoff": "agent"}))[
        "conversation_id"
    ]
    await alice.expect("chat.assigned", conversation_id=cid)
    err = await user.request({"type": "chat.rate", "conversation_id": cid, "score": 5})
    assert err["code"] == "conflict"  # not closed yet
    await user.request({"type": "chat.close", "conversation_id": cid})
    closed = await alice.expect("chat.closed", conversation_id=cid)
    assert closed["by"] == "user"
    err = await user.request({"type": "chat.rate", "conversation_id": cid, "score": 9})
    assert err["code"] == "bad_frame"
    ack = await user.request(
        {"type": "chat.rate", "conversation_id": cid, "score": 4, "comment": "快"}
    )
    assert ack["type"] == "ack"
    rated = await alice.expect("chat.rated", conversation_id=cid)
    assert rated["score"] == 4
    assert (await user.expect("chat.rated", conversation_id=cid))["score"] == 4  # all devices
    # once: the same rating again (a retry) is fine, a different one is refused
    again = {"type": "chat.rate", "conversation_id": cid, "score": 4, "comment": "快"}
    assert (await user.request(again))["type"] == "ack"
    err = await user.request({"type": "chat.rate", "conversation_id": cid, "score": 1})
    assert err["code"] == "conflict"
    assert await db.fetchval("select rating from conversations where id = $1", cid) == 4
    err = await user.request(
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": "late", "text": "x"}
    )
    assert err["code"] == "conflict"
    for c in (alice, user):
        await c.close()


async def test_every_device_of_the_user_sees_the_chat_and_typing_read_relay(hub, db):
    alice = await online_agent(hub, db, "alice", ["technical"])
    user_id = uid()
    phone, laptop = (
        await hub.client(user_id),
        await hub.client(user_id, proto="supporthub.msgpack.v1"),
    )
    cid = (await phone.request({"type": "chat.open", "topic": "technical", "handoff": "agent"}))[
        "conversation_id"
    ]
    await alice.expect("chat.assigned", conversation_id=cid)
    await laptop.expect("chat.assigned", conversation_id=cid)
    await phone.request(
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": "p1", "text": "from phone"}
    )
    mine = await laptop.expect("message", conversation_id=cid, seq=1)
    assert mine["text"] == "from phone"  # the sender's other device
    await phone.send({"type": "typing", "conversation_id": cid, "state": True})
    typing = await alice.expect("typing", conversation_id=cid)
    assert typing["state"] is True and typing["from"]["role"] == "user"
    await alice.send({"type": "read", "conversation_id": cid, "seq": 1})
    for device in (phone, laptop):
        read = await device.expect("read", conversation_id=cid)
        assert read["seq"] == 1
    # the sender's own connection gets the message once (ack + message, no duplicate)
    await phone.expect("message", conversation_id=cid, seq=1)
    await phone.quiet(lambda f: f.get("type") == "message" and f.get("seq") == 1, 0.4)
    for c in (alice, phone, laptop):
        await c.close()


async def test_reconnect_resumes_open_conversations_nothing_lost_nothing_doubled(hub, db):
    alice = await online_agent(hub, db, "alice", ["account"])
    user_id = uid()
    user = await hub.client(user_id)
    cid = (await user.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
        "conversation_id"
    ]
    await alice.expect("chat.assigned", conversation_id=cid)
    await alice.request(
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": "a1", "text": "m1"}
    )
    await user.expect("message", conversation_id=cid, seq=1)
    await user.close()
    for i in range(2, 5):
        await alice.request(
            {"type": "chat.send", "conversation_id": cid, "client_msg_id": f"a{i}", "text": f"m{i}"}
        )
    back = await hub.client(user_id, resume={"conversations": {cid: 1}})
    assert [c["conversation_id"] for c in back.welcome["conversations"]] == [cid]
    got = [await back.expect("message", conversation_id=cid) for _ in range(3)]
    assert [m["seq"] for m in got] == [2, 3, 4]
    await back.quiet("message", 0.5)
    # the agent reconnecting gets its chats back with history
    await alice.close()
    alice2 = await hub.client("alice", "agent")
    again = await alice2.expect("chat.assigned", conversation_id=cid)
    assert again["resumed"] is True and len(again["history"]) == 4
    for c in (back, alice2):
        await c.close()


async def test_rest_conversations_authorization(hub, db):
    alice = await online_agent(hub, db, "alice", ["account"])
    await add_agent(db, "bob", ["account"])
    await add_agent(db, "sam", ["account"], supervisor=True)
    owner, stranger = uid(), uid()
    user = await hub.client(owner)
    cid = (
        await user.request(
            {"type": "chat.open", "topic": "account", "handoff": "agent", "text": "hello"}
        )
    )["conversation_id"]
    await alice.expect("chat.assigned", conversation_id=cid)
    async with hub.http(hub.token(owner)) as http:
        r = await http.get(f"/api/conversations/{cid}")
        assert r.status_code == 200 and r.json()["messages"][0]["text"] == "hello"
        mine = (await http.get("/api/conversations")).json()["conversations"]
        assert [c["conversation_id"] for c in mine] == [cid]
    async with hub.http(hub.token(stranger)) as http:
        assert (await http.get(f"/api/conversations/{cid}")).status_code == 404
        assert (await http.get("/api/conversations")).json()["conversations"] == []
    async with hub.http(hub.token("bob", "agent")) as http:
        r = await http.get(f"/api/conversations/{cid}")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    async with hub.http(hub.token("sam", "supervisor")) as http:
        assert (await http.get(f"/api/conversations/{cid}")).status_code == 200
        listed = (await http.get("/api/conversations", params={"status": "assigned"})).json()
        assert [c["conversation_id"] for c in listed["conversations"]] == [cid]
        assert (await http.get("/api/conversations", params={"status": "nope"})).status_code == 422
        stats = (await http.get("/api/stats")).json()
        assert stats["agents"]["online"] == 1 and "csat" in stats and "waiting_time_s" in stats
    async with hub.http(hub.token("alice", "agent")) as http:
        assert (await http.get("/api/stats")).status_code == 403
    async with hub.http() as http:
        assert (await http.get(f"/api/conversations/{cid}")).status_code == 401
    for c in (alice, user):
        await c.close()


async def test_rest_conversation_is_read_by_every_agent_who_held_it(hub, db):
    alice = await online_agent(hub, db, "alice", ["account"])
    bob = await online_agent(hub, db, "bob", ["account"])
    await add_agent(db, "carol", ["account"])
    user = await hub.client(uid())
    cid = (await user.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
        "conversation_id"
    ]
    holder = (await user.expect("chat.assigned", conversation_id=cid))["agent"]["id"]
    other = "bob" if holder == "alice" else "alice"
    sender = alice if holder == "alice" else bob
    ack = await sender.request({"type": "chat.transfer", "conversation_id": cid, "to_agent": other})
    assert ack["type"] == "ack", ack
    for agent_id in (holder, other):  # the one who handed it over still reads it
        async with hub.http(hub.token(agent_id, "agent")) as http:
            r = await http.get(f"/api/conversations/{cid}")
            assert r.status_code == 200
            assert r.json()["participants"]["agents"] == [holder, other]
    async with hub.http(hub.token("carol", "agent")) as http:
        r = await http.get(f"/api/conversations/{cid}")
        assert r.status_code == 403 and r.json()["error"]["message"] == "not your conversation"
    async with hub.http(hub.token("payments", "service")) as http:
        assert (await http.get(f"/api/conversations/{cid}")).status_code == 403
    async with hub.http(hub.token("sam", "supervisor")) as http:
        assert (await http.get(f"/api/conversations/{cid}")).status_code == 200
        assert (await http.get("/api/conversations/nope")).status_code == 404
    for c in (alice, bob, user):
        await c.close()


async def test_agent_login(hub, db):
    await add_agent(db, "alice", ["account"])
    async with hub.http() as http:
        r = await http.post("/api/agents/login", json={"username": "alice", "password": "pw-alice"})
        assert r.status_code == 200
        token = r.json()["token"]
        r = await http.post("/api/agents/login", json={"username": "alice", "password": "wrong"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        r = await http.post("/api/agents/login", json={"username": "alice"})
        assert r.status_code == 422
        r = await http.post("/api/agents/login", content=b"{nope")
        assert r.status_code == 400
    client = await hub.client_with_token(token) if hasattr(hub, "client_with_token") else None
    assert client is None or client.welcome["role"] == "agent"


async def test_idle_chats_are_closed_with_a_system_message(services, db):
    from tests.conftest import start_hub

    server = await start_hub(services, chat_idle_close_s=1.0, routing_sweep_s=0.3)
    try:
        user = await server.client(uid())
        cid = (await user.request({"type": "chat.open", "topic": "other", "handoff": "agent"}))[
            "conversation_id"
        ]
        closed = await user.expect("chat.closed", conversation_id=cid, timeout=10)
        assert closed["by"] == "system"
        note = await user.expect(lambda f: f.get("type") == "message" and f["sender"]["role"] == "system"
                                 and "inactivity" not in f["text"] and "自动关闭" in f["text"])  # fmt: skip
        assert note["conversation_id"] == cid
        assert await db.fetchval("select status from conversations where id = $1", cid) == "closed"
        await user.close()
    finally:
        await server.stop()


async def test_an_agent_serving_a_customer_sees_their_past_chats(hub, db):
    bob = await online_agent(hub, db, "bob", ["account"], capacity=1)
    user_id = uid()
    user = await hub.client(user_id)
    old = (await user.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
        "conversation_id"
    ]
    await bob.expect("chat.assigned", conversation_id=old)
    await bob.request({"type": "chat.resolve", "conversation_id": old})
    await bob.request({"type": "agent.status", "status": "offline"})
    alice = await online_agent(hub, db, "alice", ["account"])
    async with hub.http(hub.token("alice", "agent")) as http:
        listed = (await http.get("/api/conversations", params={"user_id": user_id})).json()[
            "conversations"
        ]
        assert listed == []  # not serving this customer: nothing of theirs
    new = (await user.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
        "conversation_id"
    ]
    await alice.expect("chat.assigned", conversation_id=new)
    async with hub.http(hub.token("alice", "agent")) as http:
        listed = (await http.get("/api/conversations", params={"user_id": user_id})).json()[
            "conversations"
        ]
    assert {c["conversation_id"] for c in listed} == {old, new}
    for c in (bob, alice, user):
        await c.close()


async def test_password_guessing_is_rate_limited(hub, db):
    await add_agent(db, "guessme", ["account"])
    async with hub.http() as http:
        codes = [
            (
                await http.post(
                    "/api/agents/login", json={"username": "guessme", "password": f"x{i}"}
                )
            ).status_code
            for i in range(12)
        ]
        assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
        r = await http.post(
            "/api/agents/login", json={"username": "guessme", "password": "pw-guessme"}
        )
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    # the guesser's address is slowed down, not the agent: from elsewhere they still sign in
    elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=hub.url, transport=elsewhere) as http:
        r = await http.post(
            "/api/agents/login", json={"username": "guessme", "password": "pw-guessme"}
        )
        assert r.status_code == 200, r.text


async def test_dev_token_endpoint_exists_only_in_dev(services, hub):
    from payments.seed import add_account
    from tests.conftest import start_hub

    await add_account(services.dsn, "u-named", "Zhang Wei", "10.00")
    async with hub.http() as http:
        assert (await http.get("/api/dev/token", params={"user": "u-demo"})).status_code == 200
        # a demo user with a payment account is greeted by the account's name, not the id
        named = (await http.get("/api/dev/token", params={"user": "u-named"})).json()
        assert named["name"] == "Zhang Wei"
    server = await start_hub(services, dev=False)
    try:
        async with server.http() as http:
            r = await http.get("/api/dev/token")
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    finally:
        await server.stop()


async def test_stats_count_waits_and_first_responses_from_the_first_assignment(hub, db):
    alice = await online_agent(hub, db, "alice", ["payment"])
    await add_agent(db, "sam", ["payment"], supervisor=True)
    user = await hub.client(uid())
    cid = (
        await user.request(
            {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": "help"}
        )
    )["conversation_id"]
    await alice.expect("chat.assigned", conversation_id=cid)
    bob = await online_agent(hub, db, "bob", ["payment"])
    send = {"type": "chat.send", "conversation_id": cid, "client_msg_id": "r1", "text": "hi"}
    await alice.request(send)
    await alice.request({"type": "chat.transfer", "conversation_id": cid, "to_agent": "bob"})
    await bob.expect("chat.assigned", conversation_id=cid)
    await bob.request({"type": "chat.resolve", "conversation_id": cid})
    await user.request({"type": "chat.rate", "conversation_id": cid, "score": 4})
    # the story in round numbers: queued at -100 s, first assigned at -90 s, first reply at
    # -80 s, transferred at -10 s, resolved now
    await db.execute(
        "update conversations set created_at = now() - interval '100 s',"
        " enqueued_at = now() - interval '100 s', first_response_at = now() - interval '80 s',"
        " assigned_at = now() - interval '10 s', resolved_at = now() where id = $1",
        cid,
    )
    for agent_id, ago in (("alice", 90), ("bob", 10)):
        await db.execute(
            "update conversation_agents set assigned_at = now() - make_interval(secs => $3)"
            " where conversation_id = $1 and agent_id = $2",
            cid, agent_id, ago,
        )  # fmt: skip
    async with hub.http(hub.token("sam", "supervisor")) as http:
        stats = (await http.get("/api/stats")).json()
    assert stats["waiting_time_s"]["avg"] == pytest.approx(10, abs=1)
    assert stats["first_response_s"]["avg"] == pytest.approx(10, abs=1)
    assert stats["resolution_s"]["avg"] == pytest.approx(100, abs=1)
    assert stats["csat"] == {"avg": 4.0, "count": 1}
    for c in (alice, bob, user):
        await c.close()


@pytest.mark.parametrize("handoff", ["bot", "agent"])
async def test_chat_opened_comes_before_the_opening_message(hub, db, handoff):
    agent = await online_agent(hub, db, "alice", ["account"], capacity=20)
    user = await hub.client(uid(), proto="supporthub.msgpack.v1")
    for i in range(10):
        opened = await user.request(
            {"type": "chat.open", "topic": "account", "handoff": handoff, "text": f"q{i}"}
        )
        cid = opened["conversation_id"]
        await user.expect("message", conversation_id=cid, seq=1)
        order = [f["type"] for f in user.frames if f.get("conversation_id") == cid]
        assert order.index("chat.opened") < order.index("message"), order
    for c in (agent, user):
        await c.close()


async def test_a_user_switching_language_is_followed_by_texts_and_the_agent(hub, db, services):
    from tests.test_delivery import publish_events, tx_event

    agent = await online_agent(hub, db, "alice", ["account"])
    user_id = uid()
    user = await hub.client(user_id)
    cid = (
        await user.request(
            {"type": "chat.open", "topic": "account", "handoff": "agent", "text": "hi"}
        )
    )["conversation_id"]
    await agent.expect("chat.assigned", conversation_id=cid)
    ack = await user.request({"type": "user.lang", "lang": "en"})
    assert ack["type"] == "ack" and ack["lang"] == "en"
    told = await agent.expect("customer.lang", conversation_id=cid)
    assert told["lang"] == "en" and told["user_id"] == user_id
    assert await db.fetchval("select lang from users where id = $1", user_id) == "en"
    await publish_events(services, [tx_event(user_id)])
    n = await user.expect("notification")
    assert n["title"] == "Transfer succeeded"
    err = await user.request({"type": "user.lang", "lang": "fr"})
    assert err["code"] == "bad_frame"
    err = await agent.request({"type": "user.lang", "lang": "en"})
    assert err["code"] == "forbidden"
    for c in (agent, user):
        await c.close()


async def test_an_agent_serving_a_customer_opens_their_past_chats_read_only(hub, db):
    alice = await online_agent(hub, db, "alice", ["account"])
    await add_agent(db, "carol", ["account"])
    user_id = uid()
    user = await hub.client(user_id)
    past = (await user.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
        "conversation_id"
    ]
    await alice.expect("chat.assigned", conversation_id=past)
    await user.request({"type": "chat.send", "conversation_id": past, "client_msg_id": "p1",
                        "text": "上次的问题"})  # fmt: skip
    await alice.request({"type": "chat.resolve", "conversation_id": past})
    await alice.request({"type": "agent.status", "status": "offline"})
    carol = await online_agent(hub, db, "carol", ["account"])
    async with hub.http(hub.token("carol", "agent")) as http:  # not serving this customer yet
        assert (await http.get(f"/api/conversations/{past}")).status_code == 403
    now = (await user.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
        "conversation_id"
    ]
    await carol.expect("chat.assigned", conversation_id=now)
    async with hub.http(hub.token("carol", "agent")) as http:
        listed = await http.get("/api/conversations", params={"user_id": user_id})
        assert past in [c["conversation_id"] for c in listed.json()["conversations"]]
        r = await http.get(f"/api/conversations/{past}")
        assert r.status_code == 200, r.text
        assert [m["text"] for m in r.json()["messages"]][-2:][0] == "上次的问题"
    err = await carol.request({"type": "chat.send", "conversation_id": past, "client_msg_id": "x",
                               "text": "hi"})  # fmt: skip
    assert err["type"] == "error"  # read-only
    for c in (alice, carol, user):
        await c.close()


async def test_sends_of_one_socket_in_a_row_keep_their_order(hub, db):
    """A socket's chat.sends are pipelined (the next is read while the previous commits):
    their seqs and their acks still follow the order they were sent in, a resend in the
    middle answers with the original, and a frame of another kind (chat.close) is handled
    only after the sends before it are stored."""
    agent = await online_agent(hub, db, "pipe", ["other"])
    user = await hub.client(uid())
    cid = (await user.request({"type": "chat.open", "topic": "other", "handoff": "agent"}))[
        "conversation_id"
    ]
    await agent.expect("chat.assigned", conversation_id=cid)
    n = 60  # more than a socket may have in flight at once
    for k in range(n):
        await user.send({"type": "chat.send", "id": f"s{k}", "conversation_id": cid,
                         "client_msg_id": f"m{k}", "text": f"#{k}"})  # fmt: skip
        if k == 30:  # a resend of an earlier message, while others are in flight
            await user.send({"type": "chat.send", "id": "again", "conversation_id": cid,
                             "client_msg_id": "m3", "text": "#3"})  # fmt: skip
    await user.send({"type": "chat.close", "id": "close", "conversation_id": cid})
    await user.send({"type": "chat.send", "id": "late", "conversation_id": cid,
                     "client_msg_id": "late", "text": "after the close"})  # fmt: skip
    ids = [f"s{k}" for k in range(31)] + ["again"] + [f"s{k}" for k in range(31, n)]
    answers = [await user.expect(lambda f, i=i: f.get("id") == i) for i in [*ids, "close", "late"]]
    acks = {f["id"]: f for f in answers}
    assert [acks[f"s{k}"]["seq"] for k in range(n)] == list(range(1, n + 1))
    assert acks["again"]["message_id"] == acks["s3"]["message_id"] and acks["again"]["seq"] == 4
    assert acks["close"]["type"] != "error"
    assert acks["late"]["type"] == "error" and acks["late"]["code"] == "conflict"
    # the acks came in the order of the frames they answer
    acked = [f["id"] for f in user.frames if f.get("type") in ("ack", "error") and "id" in f]
    assert acked[acked.index("s0") :] == [*ids, "close", "late"]
    # ... and their frames were published in that order: the agent's socket got every one
    # live, in seq order (one overtaken by the next would be dropped as already seen)
    got = [await agent.expect("message", conversation_id=cid, timeout=20) for _ in range(n)]
    assert [(m["seq"], m["text"]) for m in got] == [(k + 1, f"#{k}") for k in range(n)]
    rows = await db.fetch(
        "select seq, text from messages where conversation_id = $1 order by seq", cid
    )
    assert [(r["seq"], r["text"]) for r in rows][:n] == [(k + 1, f"#{k}") for k in range(n)]


async def test_a_sockets_sends_are_published_in_the_order_they_were_sent(services, db):
    """Pipelined sends of one socket: a message whose publish is slow is not overtaken on
    the bus by the next ones, stored by later COMMITs while it is under way (the agent's
    socket would hold them back, wait for the gap and fetch the missing message from the
    store)."""
    import asyncio

    from hub import metrics
    from tests.conftest import start_hub

    await add_agent(db, "orderly", ["other"])
    server = await start_hub(services)
    try:
        agent = await server.client("orderly", "agent")
        await agent.request({"type": "agent.status", "status": "online"})
        user = await server.client(uid())
        opened = await user.request({"type": "chat.open", "topic": "other", "handoff": "agent"})
        cid = opened["conversation_id"]
        await agent.expect("chat.assigned", conversation_id=cid)
        bus = server.hub.chat.delivery.bus
        publish = bus.publish
        slowed: list[str] = []
        slow_one_out = asyncio.Event()

        async def first_one_slow(channel, payload):
            if not slowed and channel == FANOUT_CHANNEL and b"#0" in payload:
                slowed.append(channel)
                await asyncio.sleep(1.0)  # longer than a socket waits for a gap
                await publish(channel, payload)
                slow_one_out.set()
                return
            await publish(channel, payload)

        bus.publish = first_one_slow  # type: ignore[method-assign]
        gaps = metrics.STREAM_GAPS.labels("fetched")._value.get()
        for k in range(3):
            await user.send({"type": "chat.send", "id": f"o{k}", "conversation_id": cid,
                             "client_msg_id": f"o{k}", "text": f"#{k}"})  # fmt: skip
            for _ in range(3000):  # the next ones are stored while the first is published
                if slowed:
                    break
                await asyncio.sleep(0.01)
            assert slowed  # the first message's publish is the slow one
        acks = [await user.expect(lambda f, k=k: f.get("id") == f"o{k}") for k in range(3)]
        got = [await agent.expect("message", conversation_id=cid) for _ in range(3)]
        assert [m["text"] for m in got] == ["#0", "#1", "#2"]
        assert [a["seq"] for a in acks] == [m["seq"] for m in got]
        await asyncio.wait_for(slow_one_out.wait(), 30)
        assert metrics.STREAM_GAPS.labels("fetched")._value.get() == gaps  # none overtaken
        await user.close()
        await agent.close()
    finally:
        await server.stop()
