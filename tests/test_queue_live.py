"""The honest queue on real servers: one place per customer across the topics that share
agents, waits from measured handle times, "nobody online" said plainly with the choice to
leave a message, re-offers only when they help, returning customers on two nodes, and
service levels that act."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from hub.store import agents, service_levels
from supporthub_core.db import init_connection
from tests.conftest import start_hub

pytestmark = pytest.mark.usefixtures("clean")


@pytest.fixture
async def iso_db(isolated):
    """A connection to a database of this test's own: a hub with settings of its own (SLA
    targets, idle closing, opening hours) must not share the store with the session's hub,
    whose sweeper would judge the same chats by the default settings."""
    conn = await asyncpg.connect(isolated.dsn)
    await init_connection(conn)
    yield conn
    await conn.close()


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def online(server, db, name: str, skills: list[str], capacity: int = 1, **kw):
    await agents.upsert(
        db, username=name, password="pw", name=name.title(), skills=skills, capacity=capacity,
        **kw,
    )  # fmt: skip
    c = await server.client(name, "supervisor" if kw.get("supervisor") else "agent")
    await c.request({"type": "agent.status", "status": "online"})
    return c


async def open_chat(client, topic: str, lang: str = "zh") -> str:
    opened = await client.request(
        {"type": "chat.open", "topic": topic, "handoff": "agent", "lang": lang}
    )
    return opened["conversation_id"]


async def test_customers_on_different_topics_of_one_team_get_one_line(hub, db):
    agent = await online(hub, db, "allround", ["account", "technical", "other"])
    filler = await hub.client(uid())
    busy = await open_chat(filler, "account")
    await agent.expect("chat.assigned", conversation_id=busy)
    users = [await hub.client(uid()) for _ in range(3)]
    topics = ("account", "technical", "other")  # three topics, one priority, one agent
    cids = [await open_chat(u, t) for u, t in zip(users, topics, strict=True)]
    got = [
        await u.expect("chat.queued", conversation_id=c) for u, c in zip(users, cids, strict=True)
    ]
    # not three "you are next": one line over the chats that wait for the same agent
    assert [g["position"] for g in got] == [1, 2, 3]
    assert [g["ahead"] for g in got] == [0, 1, 2]
    assert got[2]["queue_size"] == 3 and all(g["staffed"] is True for g in got)
    assert got[0]["eta_s"] < got[1]["eta_s"] < got[2]["eta_s"]
    # the line moves live: the first is served, the others move up
    await agent.request({"type": "chat.resolve", "conversation_id": busy})
    await agent.expect("chat.assigned", conversation_id=cids[0])
    assert (await users[2].expect("chat.queued", conversation_id=cids[2], position=2))["ahead"] == 1
    for c in (agent, filler, *users):
        await c.close()


async def test_a_customers_own_earlier_chat_is_never_ahead_of_them(hub, db):
    agent = await online(hub, db, "solo", ["payment", "account"])
    filler = await hub.client(uid())
    await agent.expect("chat.assigned", conversation_id=await open_chat(filler, "payment"))
    her_id = uid()
    her = await hub.client(her_id)
    first = await open_chat(her, "payment")
    assert (await her.expect("chat.queued", conversation_id=first))["position"] == 1
    second = await open_chat(her, "account")
    again = await her.expect("chat.queued", conversation_id=second)
    assert again["position"] == 1 and again["ahead"] == 0  # not "1 person ahead of you"
    other = await hub.client(uid())
    theirs = await open_chat(other, "payment")
    assert (await other.expect("chat.queued", conversation_id=theirs))["position"] == 2
    for c in (agent, filler, her, other):
        await c.close()


async def test_eta_comes_from_measured_handle_times_and_its_error_is_reported(services, db):
    server = await start_hub(services)
    try:
        await agents.upsert(
            db, username="steady", password="pw", name="Steady", skills=["payment"], capacity=1
        )
        # seven chats of ten minutes each: steady's rolling handle time is
        # (7 x 600 + 3 x 180) / 10 = 474 s, not the default 180
        for _ in range(7):
            user_id, cid = uid(), uuid.uuid4().hex
            await db.execute("insert into users (id) values ($1)", user_id)
            await db.execute(
                "insert into conversations (id, user_id, topic, status, agent_id, enqueued_at,"
                " assigned_at, resolved_at) values ($1, $2, 'payment', 'resolved', 'steady',"
                " now() - interval '2 hours', now() - interval '2 hours',"
                " now() - interval '2 hours' + interval '600 seconds')",
                cid, user_id,
            )  # fmt: skip
        # those chats were written here, not ended through the hub: store what ending them
        # would have stored (every node reads it from the agent's row)
        await service_levels.refresh_handle_times(db, 20, 180.0)
        agent = await server.client("steady", "agent")
        await agent.request({"type": "agent.status", "status": "online"})
        filler = await server.client(uid())
        busy = await open_chat(filler, "payment")
        await agent.expect("chat.assigned", conversation_id=busy)
        waiting = await server.client(uid())
        cid = await open_chat(waiting, "payment")
        told = await waiting.expect("chat.queued", conversation_id=cid)
        assert told["position"] == 1 and told["eta_s"] == 474 and told["staffed"] is True
        await agent.request({"type": "chat.resolve", "conversation_id": busy})
        await agent.expect("chat.assigned", conversation_id=cid)
        # ending a chat moves the agent's handle time: eight chats now, one of them short
        stored = await db.fetchval("select handle_time_s from agents where id = 'steady'")
        assert 300 < stored < 474
        row = await db.fetchrow(
            "select eta_told_s, eta_actual_s from conversations where id = $1", cid
        )
        assert row["eta_told_s"] == 474 and row["eta_actual_s"] is not None
        boss = server.token("boss", "supervisor")
        async with server.http(boss) as http:
            stats = (await http.get("/api/stats")).json()
        eta = stats["queue_eta"]
        assert eta["count"] == 1
        assert eta["mean_abs_error_s"] == pytest.approx(abs(row["eta_actual_s"] - 474), abs=0.01)
        assert eta["bias_s"] == pytest.approx(row["eta_actual_s"] - 474, abs=0.01)
        for c in (agent, filler, waiting):
            await c.close()
    finally:
        await server.stop()


async def test_nobody_online_is_said_plainly_and_a_message_can_be_left(isolated, iso_db):
    server = await start_hub(
        isolated, support_hours="09:00-18:00", support_days="0,1,2,3,4",
        chat_idle_close_s=1.0, routing_sweep_s=0.3,
    )  # fmt: skip
    try:
        await agents.upsert(
            iso_db, username="away1", password="pw", name="Away", skills=["feedback"], capacity=2
        )
        en = await server.client(uid())
        cid = await open_chat(en, "feedback", lang="en")
        # the customer leaves a message at once: the chat stays (never closed for
        # inactivity, here after a second)
        ack = await en.request({"type": "chat.leave_message", "conversation_id": cid})
        assert ack["message_left"] is True
        q = await en.expect("chat.queued", conversation_id=cid)
        assert q["position"] == 1 and q["staffed"] is False and q["leave_message"] is True
        assert q["notice"].startswith("No one who can help with this is online right now.")
        assert "push notification" in q["notice"]
        assert "Opening hours: 09:00-18:00 (Asia/Shanghai)" in q["notice"]
        assert q["hours"] == "09:00-18:00 (Asia/Shanghai)"
        said = await en.expect("message", conversation_id=cid)
        assert said["sender"]["role"] == "system" and said["text"] == q["notice"]
        zh = await server.client(uid())
        zcid = await open_chat(zh, "feedback")
        zq = await zh.expect("chat.queued", conversation_id=zcid)
        assert (
            zq["notice"].startswith("目前没有能处理此问题的客服在线") and "约" not in zq["notice"]
        )
        # a device that connects later sees the same
        again = await server.client(await _user_of(iso_db, cid))
        welcome = again.welcome
        assert welcome is not None
        item = next(c for c in welcome["conversations"] if c["conversation_id"] == cid)
        assert item["staffed"] is False and item["notice"] == q["notice"]
        assert item["message_left"] is True
        saved = await en.expect(
            lambda f: f.get("type") == "message" and "saved" in f.get("text", "")
        )
        assert "in the app" in saved["text"] and "push" in saved["text"]
        # the chat that left no message is closed when idle; the one that did stays
        await zh.expect("chat.closed", conversation_id=zcid, timeout=15)
        assert (
            await iso_db.fetchval("select status from conversations where id = $1", cid) == "queued"
        )
        for c in (en, zh, again):
            await c.close()
    finally:
        await server.stop()


async def _user_of(db, cid: str) -> str:
    return await db.fetchval("select user_id from conversations where id = $1", cid)


async def test_deadline_with_nobody_else_keeps_the_place_sets_away_and_alerts(isolated, iso_db):
    # two nodes: the supervisor and the customer on one, the agent on the other
    server = await start_hub(isolated, assignment_timeout_s=1.0, routing_sweep_s=0.3)
    other = await start_hub(isolated, assignment_timeout_s=1.0, routing_sweep_s=0.3)
    try:
        boss = await online(other, iso_db, "boss", ["feedback"], capacity=0, supervisor=True)
        lone = await online(server, iso_db, "lone", ["other"])
        user = await other.client(uid())
        cid = await open_chat(user, "other", lang="en")
        await lone.expect("chat.assigned", conversation_id=cid)
        gone = await lone.expect("chat.transferred", conversation_id=cid, timeout=10)
        assert gone["reason"] == "timeout"
        state = await lone.expect("agent.state", reason="unanswered", timeout=10)
        assert state["status"] == "away" and state["conversation_id"] == cid
        assert "did not answer a new chat in time" in state["text"]["en"]
        alert = await boss.expect("queue.alert", conversation_id=cid, timeout=10)
        assert alert["kind"] == "unanswered" and alert["agent_id"] == "lone"
        # the routing pass of either node may tell "nobody is online" before or after the
        # take-back's own message: both are true, the order is not the point here
        told = [await user.expect("message", conversation_id=cid, timeout=10)]
        while "you keep your place in the queue" not in told[-1]["text"]:
            told.append(await user.expect("message", conversation_id=cid, timeout=10))
        assert not any("connecting you to another agent" in m["text"] for m in told)
        q = await user.expect("chat.queued", conversation_id=cid, timeout=10)
        assert q["position"] == 1 and q["staffed"] is False  # said plainly: nobody is online
        row = await iso_db.fetchrow("select status, agent_id from conversations where id = $1", cid)
        assert row["status"] == "queued" and row["agent_id"] is None
        assert await iso_db.fetchval("select status from agents where id = 'lone'") == "away"
        await lone.quiet("chat.assigned", 1.0)  # never bounced back to the one who left it
        for c in (boss, lone, user):
            await c.close()
    finally:
        await server.stop()
        await other.stop()


async def test_returning_customer_gets_their_last_agent_on_two_nodes(services, db):
    a, b = await start_hub(services), await start_hub(services)
    try:
        xena = await online(a, db, "xena", ["payment"], capacity=3)
        back_id, stale_id = uid(), uid()
        back, stale = await b.client(back_id), await b.client(stale_id)
        for customer in (back, stale):
            cid = await open_chat(customer, "payment")
            await xena.expect("chat.assigned", conversation_id=cid)
            await xena.request({"type": "chat.send", "conversation_id": cid,
                                "client_msg_id": uuid.uuid4().hex, "text": "好的"})  # fmt: skip
            await xena.request({"type": "chat.resolve", "conversation_id": cid})
        # the stale customer's last chat was served eight days ago: past the window
        await db.execute(
            "update conversation_agents set assigned_at = now() - interval '8 days'"
            " where conversation_id in (select id from conversations where user_id = $1)",
            stale_id,
        )
        other = await b.client(uid())
        busy = await open_chat(other, "payment")
        await xena.expect("chat.assigned", conversation_id=busy)  # xena holds one now
        yuri = await online(b, db, "yuri", ["payment"], capacity=3)  # idle, on the other node
        new = await open_chat(back, "payment")
        got = await xena.expect("chat.assigned", conversation_id=new)  # not the idler yuri
        assert got["user"]["id"] == back_id
        assert (await back.expect("chat.assigned", conversation_id=new))["agent"]["id"] == "xena"
        late = await open_chat(stale, "payment")
        await yuri.expect("chat.assigned", conversation_id=late)  # least busy: window passed
        for c in (xena, yuri, back, stale, other):
            await c.close()
    finally:
        await a.stop()
        await b.stop()


async def test_service_levels_flag_then_escalate_or_reroute(isolated, iso_db):
    server = await start_hub(
        isolated, sla_first_response_s="normal=6,high=6", sla_at_risk=0.1,
        assignment_timeout_s=0, routing_sweep_s=0.3,
    )  # fmt: skip
    try:
        boss = await online(server, iso_db, "chief", ["feedback"], capacity=0, supervisor=True)
        await agents.upsert(
            iso_db, username="nobody", password="pw", name="N", skills=["technical"], capacity=1
        )
        user = await server.client(uid())
        stuck = await open_chat(user, "technical")
        risk = await boss.expect("sla.alert", conversation_id=stuck, state="at_risk", timeout=10)
        assert risk["kind"] == "first_response" and risk["priority"] == "normal"
        breach = await boss.expect("sla.alert", conversation_id=stuck, state="breached", timeout=10)
        assert breach["action"] == "escalated"
        # an assigned chat whose agent does not answer moves to a free colleague
        mute = await online(server, iso_db, "mute", ["account"], capacity=1)
        user2 = await server.client(uid())
        cid = await open_chat(user2, "account")
        await mute.expect("chat.assigned", conversation_id=cid)
        helper = await online(server, iso_db, "helper", ["account"], capacity=1)
        moved = await mute.expect("chat.transferred", conversation_id=cid, timeout=15)
        assert moved["reason"] == "sla"
        await helper.expect("chat.assigned", conversation_id=cid, timeout=10)
        rerouted = await boss.expect("sla.alert", conversation_id=cid, state="breached", timeout=10)
        assert rerouted["action"] == "rerouted"
        async with server.http(server.token("chief", "supervisor")) as http:
            sla = (await http.get("/api/stats")).json()["sla"]
        assert sla["breached"] == 2 and sla["escalated"] == 1 and sla["rerouted"] == 1
        assert sla["targets"]["first_response_s"]["normal"] == 6
        assert any(c["conversation_id"] == stuck and c["state"] == "breached" for c in sla["chats"])
        for c in (boss, user, mute, user2, helper):
            await c.close()
    finally:
        await server.stop()


async def test_a_transfer_to_a_team_nobody_staffs_now_says_so(hub, db):
    agent = await online(hub, db, "handy", ["account"])
    await agents.upsert(
        db, username="secoff", password="pw", name="Off", skills=["security"], capacity=1
    )
    user = await hub.client(uid())
    cid = await open_chat(user, "account", lang="en")
    await agent.expect("chat.assigned", conversation_id=cid)
    await agent.request({"type": "chat.transfer", "conversation_id": cid, "to_topic": "security"})
    told = await user.expect(
        lambda f: f.get("type") == "message" and f["sender"]["role"] == "system"
    )
    assert told["text"].startswith("Your chat was passed to the right team. No one there is free")
    q = await user.expect("chat.queued", conversation_id=cid)
    assert q["staffed"] is False and q["position"] == 1
    for c in (agent, user):
        await c.close()


async def test_the_wait_is_told_again_when_it_moves(hub, db):
    one = await online(hub, db, "tech-one", ["technical"])
    two = await online(hub, db, "tech-two", ["technical"])
    fillers = [await hub.client(uid()) for _ in range(2)]
    for filler in fillers:
        await open_chat(filler, "technical")
    for agent in (one, two):  # the least busy first: one chat each
        await agent.expect("chat.assigned")
    waiting = await hub.client(uid())
    cid = await open_chat(waiting, "technical")
    first = await waiting.expect("chat.queued", conversation_id=cid)
    assert (first["position"], first["eta_s"]) == (1, 90)  # two agents, 180 s each
    await two.request({"type": "agent.status", "status": "away"})
    again = await waiting.expect("chat.queued", conversation_id=cid)
    assert (again["position"], again["eta_s"], again["staffed"]) == (1, 180, True)
    for c in (one, two, waiting, *fillers):
        await c.close()
