"""What a supervisor does, on real servers: assign a queued chat, watch a chat live
(read-only), take one over (its agent is told); each in the audit log."""

from __future__ import annotations

import pytest

from tests.test_chat_flow import add_agent, online_agent, uid

pytestmark = pytest.mark.usefixtures("clean")


async def test_assign_a_queued_chat_to_a_chosen_agent(hub, db):
    boss = await online_agent(hub, db, "sam", ["payment"], capacity=0, supervisor=True)
    alice = await online_agent(hub, db, "alice", ["account"])
    user = await hub.client(uid())
    cid = (await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent",
                               "text": "help"}))["conversation_id"]  # fmt: skip
    assert (await user.expect("chat.queued", conversation_id=cid))["position"] == 1
    ack = await boss.request({"type": "chat.assign", "conversation_id": cid, "agent_id": "alice"})
    assert ack["type"] == "ack" and ack["agent_id"] == "alice"
    await alice.expect("chat.assigned", conversation_id=cid)
    async with hub.http(hub.token("sam", "supervisor")) as http:
        audit = (await http.get("/api/audit", params={"action": "chat.assign"})).json()
    assert audit[0]["conversation_id"] == cid and audit[0]["details"]["agent_id"] == "alice"
    for c in (boss, alice, user):
        await c.close()


async def test_watch_a_chat_live_read_only_then_take_it_over(hub, db):
    alice = await online_agent(hub, db, "alice", ["payment"])
    boss = await online_agent(hub, db, "sam", ["account"], capacity=1, supervisor=True)
    user = await hub.client(uid(), name="Lin")
    cid = (await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent",
                               "text": "my refund?"}))["conversation_id"]  # fmt: skip
    await alice.expect("chat.assigned", conversation_id=cid)
    await alice.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "a1",
                         "text": "Checking now"})  # fmt: skip

    # watch: the chat so far, then every new frame of it, wrapped
    ack = await boss.request({"type": "chat.watch", "conversation_id": cid})
    assert ack["type"] == "ack" and ack["watching"] is True
    snap = await boss.expect("chat.watching", conversation_id=cid)
    assert [m["text"] for m in snap["history"]] == ["my refund?", "Checking now"]
    assert snap["agent"] == {"id": "alice", "name": "Alice"} and snap["user"]["name"] == "Lin"
    assert snap["feedback"] == []  # nothing tagged as feedback in it yet
    await user.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "u2",
                        "text": "thanks"})  # fmt: skip
    seen = await boss.expect("watch.event", conversation_id=cid)
    assert seen["frame"]["type"] == "message" and seen["frame"]["text"] == "thanks"
    # read-only: watching does not let the supervisor write
    wrote = await boss.request({"type": "chat.send", "conversation_id": cid,
                                "client_msg_id": "s1", "text": "hi"})  # fmt: skip
    assert wrote["type"] == "error"
    # the customer and the agent are not told of the watcher
    await user.quiet(lambda f: "watch" in f["type"], 0.2)

    # take it over: the supervisor becomes the agent, Alice is told
    taken = await boss.request({"type": "chat.takeover", "conversation_id": cid})
    assert taken["type"] == "ack" and taken["agent_id"] == "sam" and taken["from_agent"] == "alice"
    moved = await alice.expect("chat.transferred", conversation_id=cid)
    assert moved["reason"] == "taken_over" and moved["to_agent"] == "sam"
    await boss.expect("chat.assigned", conversation_id=cid)
    await user.expect(lambda f: f["type"] == "chat.assigned" and f["agent"]["id"] == "sam")
    sent = await boss.request({"type": "chat.send", "conversation_id": cid,
                               "client_msg_id": "s2", "text": "I'm Sam, I'll finish this"})  # fmt: skip
    assert sent["type"] == "ack"
    gone = await alice.request({"type": "chat.send", "conversation_id": cid,
                                "client_msg_id": "a2", "text": "still here"})  # fmt: skip
    assert gone["type"] == "error" and gone["code"] == "forbidden"

    # refusals: not a supervisor, yours already, not assigned
    assert (await alice.request({"type": "chat.takeover", "conversation_id": cid}))[
        "code"
    ] == "forbidden"
    assert (await boss.request({"type": "chat.takeover", "conversation_id": cid}))[
        "code"
    ] == "conflict"
    assert (await boss.request({"type": "chat.takeover", "conversation_id": "nope"}))[
        "code"
    ] == "not_found"
    assert (await alice.request({"type": "chat.watch", "conversation_id": cid}))[
        "code"
    ] == "forbidden"

    # stop watching: no more events
    stop = await boss.request({"type": "chat.watch", "conversation_id": cid, "watch": False})
    assert stop["watching"] is False
    before = len(boss.frames)
    await user.request(
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": "u3", "text": "bye"}
    )
    await boss.expect(lambda f: f["type"] == "message" and f["text"] == "bye")  # as its agent
    assert not [f for f in boss.frames[before:] if f["type"] == "watch.event"]
    async with hub.http(hub.token("sam", "supervisor")) as http:
        actions = [
            a["action"] for a in (await http.get("/api/audit", params={"actor_id": "sam"})).json()
        ]
    assert "chat.takeover" in actions and "chat.watch" in actions
    for c in (alice, boss, user):
        await c.close()


async def test_take_over_needs_the_supervisor_online(hub, db):
    alice = await online_agent(hub, db, "alice", ["payment"])
    await add_agent(db, "sam", ["payment"], supervisor=True)
    boss = await hub.client("sam", "supervisor", name="Sam")  # connected, not online
    user = await hub.client(uid())
    cid = (await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent",
                               "text": "hi"}))["conversation_id"]  # fmt: skip
    await alice.expect("chat.assigned", conversation_id=cid)
    refused = await boss.request({"type": "chat.takeover", "conversation_id": cid})
    assert refused["type"] == "error" and refused["code"] == "conflict"
    for c in (alice, boss, user):
        await c.close()
