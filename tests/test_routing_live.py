"""Routing on real servers: several nodes share one queue; agents who vanish."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from hub.store import agents
from tests.conftest import start_hub
from tests.events import publish_signed

pytestmark = pytest.mark.usefixtures("clean")


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def test_two_nodes_concurrent_opens_keep_every_invariant(services, db):
    a, b = await start_hub(services), await start_hub(services)
    try:
        for name in ("ag1", "ag2", "ag3"):
            await agents.upsert(
                db, username=name, password="pw", name=name, skills=["payment"], capacity=2
            )
        staff = []
        for i, name in enumerate(("ag1", "ag2", "ag3")):
            node = a if i % 2 == 0 else b
            c = await node.client(name, "agent")
            await c.request({"type": "agent.status", "status": "online"})
            staff.append(c)
        user_ids = [uid() for _ in range(12)]
        users = [await (a if i % 2 else b).client(u) for i, u in enumerate(user_ids)]
        opened = await asyncio.gather(
            *(
                u.request({"type": "chat.open", "topic": "payment", "handoff": "agent"})
                for u in users
            )
        )
        assert all(o["type"] == "chat.opened" for o in opened)
        await asyncio.sleep(1.0)
        rows = await db.fetch(
            "select id, status, agent_id, queue_position from conversations where user_id = any($1)",
            user_ids,
        )
        assert len(rows) == 12
        load = {}
        for r in rows:
            if r["status"] == "assigned":
                load[r["agent_id"]] = load.get(r["agent_id"], 0) + 1
        assert load == {"ag1": 2, "ag2": 2, "ag3": 2}  # full, never above capacity
        assert (
            await db.fetchval(
                "select count(*) from conversation_agents where conversation_id = any($1)",
                [r["id"] for r in rows],
            )
            == 6
        )  # each assigned once
        positions = sorted(r["queue_position"] for r in rows if r["status"] == "queued")
        assert positions == [1, 2, 3, 4, 5, 6]
        # every agent got exactly its own chats announced, across nodes
        for c, name in zip(staff, ("ag1", "ag2", "ag3"), strict=True):
            mine = {r["id"] for r in rows if r["agent_id"] == name}
            got = {(await c.expect("chat.assigned"))["conversation_id"] for _ in range(2)}
            assert got == mine
        for c in (*staff, *users):
            await c.close()
    finally:
        await a.stop()
        await b.stop()


async def test_agent_who_vanishes_loses_chats_to_the_head_of_the_queue(hub, db):
    await agents.upsert(
        db, username="gone", password="pw", name="Gone", skills=["account"], capacity=1
    )
    agent = await hub.client("gone", "agent")
    await agent.request({"type": "agent.status", "status": "online"})
    early, late = await hub.client(uid()), await hub.client(uid())
    first = (await early.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
        "conversation_id"
    ]
    await agent.expect("chat.assigned", conversation_id=first)
    second = (await late.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
        "conversation_id"
    ]
    await late.expect("chat.queued", conversation_id=second)
    await agent.close()
    # within the grace period nothing moves
    await asyncio.sleep(0.8)
    assert await db.fetchval("select status from conversations where id = $1", first) == "assigned"
    # after it, the chat goes back to the queue ahead of the one that came later
    back = await early.expect("chat.queued", conversation_id=first, timeout=10)
    assert back["position"] == 1
    # nobody else can take it: not "connecting you to another agent", but what is true
    told = await early.expect(
        lambda f: f.get("type") == "message" and f["sender"]["role"] == "system", timeout=10
    )
    assert told["text"].startswith("您的客服暂时离开了。目前没有其他能处理此问题的客服有空")
    assert await db.fetchval("select status from agents where id = 'gone'") == "away"
    # the agent returns and is online again: gets the customer back (previous agent)
    agent = await hub.client("gone", "agent")
    await agent.request({"type": "agent.status", "status": "online"})
    again = await agent.expect("chat.assigned", timeout=10)
    assert again["conversation_id"] == first
    for c in (agent, early, late):
        await c.close()


async def test_agent_back_within_grace_keeps_chats(hub, db):
    await agents.upsert(
        db, username="blip", password="pw", name="Blip", skills=["account"], capacity=1
    )
    agent = await hub.client("blip", "agent")
    await agent.request({"type": "agent.status", "status": "online"})
    user = await hub.client(uid())
    cid = (await user.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
        "conversation_id"
    ]
    await agent.expect("chat.assigned", conversation_id=cid)
    await agent.close()
    await asyncio.sleep(0.3)
    agent = await hub.client("blip", "agent")
    resumed = await agent.expect("chat.assigned", conversation_id=cid)
    assert resumed["resumed"] is True
    await asyncio.sleep(2.5)
    assert await db.fetchval("select status from conversations where id = $1", cid) == "assigned"
    for c in (agent, user):
        await c.close()


async def test_account_frozen_alert_opens_an_urgent_chat_for_a_security_agent(hub, services, db):
    await agents.upsert(
        db, username="gen", password="pw", name="Gen", skills=["account", "payment"], capacity=3
    )
    await agents.upsert(
        db, username="secu", password="pw", name="Secu", skills=["security"], capacity=1
    )
    gen = await hub.client("gen", "agent")
    await gen.request({"type": "agent.status", "status": "online"})
    waiting = await hub.client(uid())
    normal = (
        await waiting.request({"type": "chat.open", "topic": "security", "handoff": "agent"})
    )["conversation_id"]
    user_id = uid()
    phone, tablet = await hub.client(user_id), await hub.client(user_id)
    event = {
        "event_id": f"ev-{uuid.uuid4().hex}", "type": "security.alert", "user_id": user_id,
        "occurred_at": "2026-11-25T08:00:00+00:00", "alert": "account_frozen", "severity": "critical",
        "details": {"rule": "velocity", "count": 11, "window_s": 60},
    }  # fmt: skip
    await publish_signed(services.redis_url, [event, event])  # twice: handled once
    for device in (phone, tablet):
        n = await device.expect("notification", kind="security.alert")
        assert n["data"]["alert"] == "account_frozen" and n["data"]["severity"] == "critical"
        assert n["data"]["details"]["rule"] == "velocity"
        opened = await device.expect("chat.opened")
        assert opened["topic"] == "security" and opened["priority"] == "urgent"
    urgent = opened["conversation_id"]
    # the security agent comes online: the urgent chat goes first, ahead of the older one
    secu = await hub.client("secu", "agent")
    await secu.request({"type": "agent.status", "status": "online"})
    got = await secu.expect("chat.assigned")
    assert got["conversation_id"] == urgent and got["priority"] == "urgent"
    assert got["alert"]["alert"] == "account_frozen"
    assert got["history"][0]["sender"]["role"] == "system"
    await gen.quiet("chat.assigned", 0.3)  # the generalist has no security skill
    assert await db.fetchval("select count(*) from conversations where user_id = $1", user_id) == 1
    assert await db.fetchval("select status from conversations where id = $1", normal) == "queued"
    for c in (gen, waiting, phone, tablet, secu):
        await c.close()


async def test_unanswered_chat_is_taken_back_and_offered_to_another_agent(services, db):
    server = await start_hub(services, assignment_timeout_s=1.0, routing_sweep_s=0.3)
    try:
        # two agents who can take it, online before it arrives (no race with the deadline)
        staff = {}
        for name in ("slowpoke", "quick"):
            await agents.upsert(
                db, username=name, password="pw", name=name.title(), skills=["other"], capacity=1
            )
            staff[name] = await server.client(name, "agent")
            await staff[name].request({"type": "agent.status", "status": "online"})
        user = await server.client(uid())
        cid = (await user.request({"type": "chat.open", "topic": "other", "handoff": "agent"}))[
            "conversation_id"
        ]
        first_id = (await user.expect("chat.assigned", conversation_id=cid))["agent"]["id"]
        second_id = "quick" if first_id == "slowpoke" else "slowpoke"
        slow, quick = staff[first_id], staff[second_id]
        await slow.expect("chat.assigned", conversation_id=cid)
        taken = await slow.expect("chat.transferred", conversation_id=cid, timeout=10)
        assert taken["reason"] == "timeout"
        await quick.expect("chat.assigned", conversation_id=cid, timeout=10)
        requeued = await user.expect("message", conversation_id=cid, timeout=10)
        assert requeued["sender"]["role"] == "system"
        assert requeued["text"] == "您的客服暂时没有回复，正在为您转接另一位客服。"
        # the one who let it pass is away: not offered new chats, and told why
        assert await db.fetchval("select status from agents where id = $1", first_id) == "away"
        # the second lets it time out too: nobody else can take it now (the first is away),
        # so it is not bounced back and forth but waits at its place in the queue
        await quick.expect("chat.transferred", conversation_id=cid, timeout=10)
        kept = await user.expect("message", conversation_id=cid, timeout=10)
        assert "保留排队位置" in kept["text"]
        queued = await user.expect("chat.queued", conversation_id=cid, timeout=10)
        assert queued["position"] == 1 and queued["staffed"] is False
        row = await db.fetchrow("select status, agent_id from conversations where id = $1", cid)
        assert row["status"] == "queued" and row["agent_id"] is None
        for c in (slow, quick, user):
            await c.close()
    finally:
        await server.stop()


async def test_full_journey_across_two_nodes_nothing_lost(services, db):
    a, b = await start_hub(services), await start_hub(services)
    try:
        await agents.upsert(
            db, username="ana", password="pw", name="Ana", skills=["payment"], capacity=1
        )
        await agents.upsert(
            db, username="ben", password="pw", name="Ben", skills=["payment"], capacity=1
        )
        ana = await b.client("ana", "agent", name="Ana")
        await ana.request({"type": "agent.status", "status": "online"})
        u1_id, u2_id = uid(), uid()
        u1, u2 = await a.client(u1_id), await b.client(u2_id)
        c1 = (
            await u1.request(
                {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": "付款失败"}
            )
        )["conversation_id"]
        await ana.expect("chat.assigned", conversation_id=c1)
        assert (await u1.expect("chat.assigned", conversation_id=c1))["agent"]["id"] == "ana"
        c2 = (
            await u2.request(
                {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": "我也是"}
            )
        )["conversation_id"]
        assert (await u2.expect("chat.queued", conversation_id=c2))["position"] == 1
        # chat across nodes
        await ana.request(
            {"type": "chat.send", "conversation_id": c1, "client_msg_id": "a1", "text": "请稍等"}
        )
        assert (await u1.expect("message", conversation_id=c1, seq=2))["text"] == "请稍等"
        await u1.request(
            {"type": "chat.send", "conversation_id": c1, "client_msg_id": "u1", "text": "好的"}
        )
        await ana.expect("message", conversation_id=c1, seq=3)
        # ben comes online on node A; ana transfers c1 to him and gets c2 from the queue
        ben = await a.client("ben", "agent", name="Ben")
        await ben.request({"type": "agent.status", "status": "online"})
        assert (await ben.expect("chat.assigned"))[
            "conversation_id"
        ] == c2  # the waiting chat first
        await ben.request({"type": "chat.resolve", "conversation_id": c2})
        await u2.expect("chat.closed", conversation_id=c2)
        ack = await ana.request({"type": "chat.transfer", "conversation_id": c1, "to_agent": "ben"})
        assert ack["type"] == "ack", ack
        moved = await ben.expect("chat.assigned", conversation_id=c1)
        assert [m["text"] for m in moved["history"]][:3] == ["付款失败", "请稍等", "好的"]
        assert (await u1.expect("chat.assigned", conversation_id=c1))["agent"]["id"] == "ben"
        # u1 drops off; ben keeps writing; u1 comes back on the other node and resumes
        await u1.close()
        await ben.request(
            {
                "type": "chat.send",
                "conversation_id": c1,
                "client_msg_id": "b1",
                "text": "已为您处理",
            }
        )
        await ben.request({"type": "chat.resolve", "conversation_id": c1})
        back = await b.client(u1_id, resume={"conversations": {c1: 3}})
        texts = []
        while len(texts) < 3:
            texts.append((await back.expect("message", conversation_id=c1))["text"])
        assert texts[-1] != "好的" and "已为您处理" in texts
        seqs = sorted(m["seq"] for m in back.frames if m.get("type") == "message")
        assert seqs == list(range(4, 4 + len(seqs)))  # no gaps, no doubles
        ack = await back.request(
            {"type": "chat.rate", "conversation_id": c1, "score": 5, "comment": "谢谢"}
        )
        assert ack["type"] == "ack"
        assert (await ben.expect("chat.rated", conversation_id=c1))["score"] == 5
        for c in (ana, ben, u2, back):
            await c.close()
    finally:
        await a.stop()
        await b.stop()


async def test_a_burst_of_opens_announces_each_chat_once_and_places_only_move_forward(hub, db):
    """Passes commit while the frames of the last ones still go out (they are announced
    outside the pass): each agent still gets each of its chats exactly once, and each
    customer hears `chat.opened` first, then places that only move forward, then (once)
    `chat.assigned`, never a place after it.

    Before, opens inserted concurrently on pooled connections, each enqueued at its own
    transaction's start: a chat could commit after a pass had placed a later one, and
    come in ahead of it (a customer told place 3, then 4)."""
    names = ("burst1", "burst2")
    for name in names:
        await agents.upsert(
            db, username=name, password="pw", name=name, skills=["payment"], capacity=2
        )
    staff = {}
    for name in names:
        staff[name] = await hub.client(name, "agent")
        await staff[name].request({"type": "agent.status", "status": "online"})
    users = [await hub.client(uid()) for _ in range(40)]
    opened = await asyncio.gather(
        *(u.request({"type": "chat.open", "topic": "payment", "handoff": "agent"}) for u in users)
    )
    cids = [o["conversation_id"] for o in opened]
    assert all(o["type"] == "chat.opened" for o in opened)
    # the agents free their slots one after another: every resolve is a pass of its own,
    # and the queue moves forward by one while the frames of the pass before go out
    for _ in range(3):
        for name, agent in staff.items():
            busy = await db.fetch(
                "select id from conversations where agent_id = $1 and status = 'assigned'"
                " order by assigned_at",
                name,
            )
            await agent.request({"type": "chat.resolve", "conversation_id": busy[0]["id"]})
    rows = {
        r["id"]: r
        for r in await db.fetch(
            "select id, status, agent_id, queue_position from conversations where id = any($1)",
            cids,
        )
    }
    given = {
        r["conversation_id"]: r["agent_id"]
        for r in await db.fetch(
            "select conversation_id, agent_id from conversation_agents"
            " where conversation_id = any($1)",
            cids,
        )
    }
    assert len(given) == 2 * 2 + 3 * 2  # the first four slots, then one per resolve
    # wait for the last frame each side must get, then for anything late (a duplicate)
    for user, cid in zip(users, cids, strict=True):
        if cid in given:
            await user.expect("chat.assigned", conversation_id=cid)
        else:
            place = rows[cid]["queue_position"]
            await user.expect(
                lambda f, cid=cid, place=place: (
                    f.get("type") == "chat.queued"
                    and f["conversation_id"] == cid
                    and f["position"] == place
                )
            )
    for name, agent in staff.items():
        for _ in [c for c, a in given.items() if a == name]:
            await agent.expect("chat.assigned")
    await staff[names[0]].quiet("chat.assigned")
    for name, agent in staff.items():
        got = [f["conversation_id"] for f in agent.frames if f.get("type") == "chat.assigned"]
        assert sorted(got) == sorted(c for c, a in given.items() if a == name)  # each once
    for user, cid in zip(users, cids, strict=True):
        mine = [f for f in user.frames if f.get("conversation_id") == cid]
        kinds = [
            f["type"] for f in mine if f["type"] in ("chat.opened", "chat.queued", "chat.assigned")
        ]
        assert kinds[0] == "chat.opened", kinds
        places = [f["position"] for f in mine if f["type"] == "chat.queued"]
        assert places == sorted(places, reverse=True), places  # only forward
        if cid in given:
            assert kinds.count("chat.assigned") == 1, kinds
            assert "chat.queued" not in kinds[kinds.index("chat.assigned") :], kinds
        else:
            assert "chat.assigned" not in kinds and places[-1] == rows[cid]["queue_position"]
    for c in (*staff.values(), *users):
        await c.close()


async def test_places_told_by_two_nodes_never_go_backwards(isolated):
    """Two nodes announce their passes each after its own COMMIT: a pass of node A whose
    announcement is held up (here: its agent's history read waits for a table lock) goes
    out after a later pass of node B. The customer must not be told 3, 1, then 2: the
    stale place is dropped, the newer one stands.

    Before, every announcement reached the customer as it came: 3, 1, 2."""
    db = await asyncpg.connect(isolated.dsn)
    # no sweeps: every pass here is one the test caused, on the node it chose
    a = await start_hub(isolated, routing_sweep_s=3600)
    b = await start_hub(isolated, routing_sweep_s=3600)
    try:
        for name in ("ord-a", "ord-b"):
            await agents.upsert(
                db, username=name, password="pw", name=name, skills=["payment"], capacity=1
            )
        ag_a, ag_b = await a.client("ord-a", "agent"), await b.client("ord-b", "agent")
        for agent in (ag_a, ag_b):
            await agent.request({"type": "agent.status", "status": "online"})
        opens = {"type": "chat.open", "topic": "payment", "handoff": "agent"}
        for agent in (ag_a, ag_b):  # each agent full
            filler = await b.client(uid())
            await agent.expect(
                "chat.assigned", conversation_id=(await filler.request(opens))["conversation_id"]
            )
        w1, w2 = await b.client(uid()), await b.client(uid())
        await w1.request(opens)
        gone = (await w2.request(opens))["conversation_id"]
        her_id = uid()
        her = await b.client(her_id)
        cid = (await her.request(opens))["conversation_id"]
        await her.expect("chat.queued", conversation_id=cid, position=3)
        her_on_a = await a.client(her_id)  # her other device, on node A
        held = await db.fetchval(
            "select id from conversations where agent_id = 'ord-a' and status = 'assigned'"
        )
        # node A's next announcement waits: it reads the notes of the chat it gives out
        lock = db.transaction()
        await lock.start()
        await db.execute("lock table notes in access exclusive mode")
        try:
            resolving = asyncio.create_task(
                ag_a.request({"type": "chat.resolve", "conversation_id": held}, timeout=60)
            )
            # node A's pass committed (w1 to ord-a, her place 2) but is not announced yet
            while (
                await db.fetchval("select queue_position from conversations where id = $1", cid)
                != 2
            ):
                await asyncio.sleep(0.05)
            await w2.request({"type": "chat.close", "conversation_id": gone})  # a pass on B
            await her.expect("chat.queued", conversation_id=cid, position=1)
            # a device that signs in now reads place 1 in `welcome`: the late 2 is stale
            # for it too
            late = await b.client(her_id)
            (told,) = [c for c in late.welcome["conversations"] if c["conversation_id"] == cid]
            assert told["position"] == 1
        finally:
            await lock.rollback()
        await resolving  # node A's announcement is out
        # published by node A after its late announcement: reaches her after it
        await her_on_a.request(
            {"type": "chat.send", "conversation_id": cid, "client_msg_id": "after", "text": "hi"}
        )
        for device in (her, late):
            await device.expect("message", conversation_id=cid, client_msg_id="after")
        places = [
            [
                f["position"]
                for f in device.frames
                if f.get("type") == "chat.queued" and f["conversation_id"] == cid
            ]
            for device in (her, late)
        ]
        assert places == [[3, 1], []], places
        for c in (ag_a, ag_b, w1, w2, her, her_on_a, late):
            await c.close()
    finally:
        await a.stop()
        await b.stop()
        await db.close()
