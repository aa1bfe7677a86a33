"""The agents' workspace over real sockets: the load counter, the frozen state after a
reconnect, handover notes, resolve outcomes, @mentions, customer presence, macros."""

from __future__ import annotations

import uuid

import pytest

from hub.store import agents
from tests.events import publish_signed
from tests.test_chat_flow import add_agent, online_agent, uid

pytestmark = pytest.mark.usefixtures("clean")


async def test_going_online_answers_with_the_load_after_the_chats_it_got(hub, db):
    """The console showed "Load 1/3" with three chats: the answer to `agent.status` was the
    load from before routing, and it arrived after the newer `agent.state` frames."""
    await add_agent(db, "lara", ["payment"], capacity=3)
    users = [await hub.client(uid()) for _ in range(3)]
    for u in users:
        await u.request({"type": "chat.open", "topic": "payment", "handoff": "agent"})
    agent = await hub.client("lara", "agent", name="Lara")
    state = await agent.request({"type": "agent.status", "status": "online"})
    assert state["active"] == 3 and state["capacity"] == 3
    for _ in range(3):
        await agent.expect("chat.assigned")
    for c in (agent, *users):
        await c.close()


async def test_an_unfrozen_account_shows_unfrozen_after_a_reconnect(hub, services, db):
    """The alert strip said "Account frozen" after a reload for an account already unfrozen:
    the chat's stored alert was never told of the unfreeze."""
    await agents.upsert(
        db, username="secu", password="pw", name="Secu", skills=["security"], capacity=1
    )
    secu = await hub.client("secu", "agent")
    await secu.request({"type": "agent.status", "status": "online"})
    user_id = uid()
    base = {
        "type": "security.alert",
        "user_id": user_id,
        "occurred_at": "2026-11-25T08:00:00+00:00",
    }
    frozen = {**base, "event_id": f"ev-{uuid.uuid4().hex}", "alert": "account_frozen",
              "severity": "critical", "details": {"rule": "velocity"}}  # fmt: skip
    await publish_signed(services.redis_url, [frozen])
    got = await secu.expect("chat.assigned")
    assert got["alert"]["alert"] == "account_frozen" and not got["alert"].get("unfrozen")
    unfrozen = {**base, "event_id": f"ev-{uuid.uuid4().hex}", "alert": "account_unfrozen",
                "severity": "info", "details": {"by": "secu"}}  # fmt: skip
    await publish_signed(services.redis_url, [unfrozen])
    await secu.expect("customer.event", user_id=user_id)
    await secu.close()
    again = await hub.client("secu", "agent")  # a reload
    resumed = await again.expect("chat.assigned", conversation_id=got["conversation_id"])
    assert resumed["alert"]["unfrozen"] is True
    await again.close()


async def test_transfer_with_a_note_shows_it_first_to_the_receiving_agent(hub, db):
    alice = await online_agent(hub, db, "alice", ["payment"])
    user = await hub.client(uid(), name="Zhang San")
    cid = (await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent"}))[
        "conversation_id"
    ]
    await alice.expect("chat.assigned", conversation_id=cid)
    bob = await online_agent(hub, db, "bob", ["payment"])
    note = "Refund 120 CNY already requested, waiting on the bank"
    await alice.request(
        {"type": "chat.transfer", "conversation_id": cid, "to_agent": "bob", "note": note}
    )
    got = await bob.expect("chat.assigned", conversation_id=cid)
    assert got["handover"]["from"] == {"id": "alice", "name": "Alice"}
    assert got["handover"]["note"] == note
    assert [n["text"] for n in got["notes"]] == [note]  # kept as a note too
    await user.quiet(lambda f: note in str(f), 0.3)  # never to the customer
    await bob.close()
    again = await hub.client("bob", "agent")  # still there after a reload
    resumed = await again.expect("chat.assigned", conversation_id=cid)
    assert resumed["handover"]["note"] == note
    for c in (alice, again, user):
        await c.close()


async def test_resolve_with_an_outcome_and_tags_is_counted_in_stats(hub, db):
    alice = await online_agent(hub, db, "alice", ["payment"], capacity=3)
    boss = await add_agent(db, "boss", ["payment"], supervisor=True)
    del boss
    cids = []
    for _ in range(3):
        user = await hub.client(uid())
        opened = await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent"})
        cids.append(opened["conversation_id"])
        await alice.expect("chat.assigned", conversation_id=opened["conversation_id"])
    await alice.request({"type": "chat.resolve", "conversation_id": cids[0],
                         "outcome": "follow_up", "tags": ["Refund", "bank"]})  # fmt: skip
    await alice.request(
        {"type": "chat.resolve", "conversation_id": cids[1], "tags": ["refund"]}
    )  # no outcome: solved
    await alice.request({"type": "chat.resolve", "conversation_id": cids[2], "outcome": "spam"})
    bad = await alice.request(
        {"type": "chat.resolve", "conversation_id": cids[2], "outcome": "maybe"}
    )
    assert bad["type"] == "error" and bad["code"] in ("bad_frame", "invalid")
    async with hub.http(hub.token("boss", "supervisor")) as http:
        stats = (await http.get("/api/stats")).json()
    assert stats["outcomes"] == {"solved": 1, "follow_up": 1, "duplicate": 0, "spam": 1}
    assert stats["top_tags"][0] == {"tag": "refund", "count": 2}
    assert {"tag": "bank", "count": 1} in stats["top_tags"]
    await alice.close()


async def test_an_at_mention_in_a_note_notifies_that_agent(hub, db):
    alice = await online_agent(hub, db, "alice", ["payment"])
    carol = await online_agent(hub, db, "carol", ["security"])
    user = await hub.client(uid(), name="Li Si")
    cid = (await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent"}))[
        "conversation_id"
    ]
    await alice.expect("chat.assigned", conversation_id=cid)
    await alice.request(
        {"type": "chat.note", "conversation_id": cid, "text": "@carol can you check the login?"}
    )
    got = await carol.expect("note.mention", conversation_id=cid)
    assert got["by"] == {"id": "alice", "name": "Alice"}
    assert got["note"]["text"] == "@carol can you check the login?"
    await alice.quiet("note.mention", 0.3)  # not the author
    await user.quiet(lambda f: "carol" in str(f), 0.3)
    for c in (alice, carol, user):
        await c.close()


MACRO = {
    "title": "Refund timing",
    "body_zh": "{customer_name}您好，您的 {latest_transaction} 退款将在 3 个工作日内到账。",
    "body_en": "Hi {customer_name}, the refund of {latest_transaction} arrives within 3 days.",
    "topics": ["payment"],
}


async def test_macros_create_list_and_who_may_change_them(hub, db):
    await add_agent(db, "alice", ["payment"])
    await add_agent(db, "bob", ["payment"])
    await add_agent(db, "boss", ["payment"], supervisor=True)
    alice = hub.http(hub.token("alice", "agent"))
    bob = hub.http(hub.token("bob", "agent"))
    boss = hub.http(hub.token("boss", "supervisor"))
    user = hub.http(hub.token(uid(), "user"))
    async with alice, bob, boss, user:
        mine = await alice.post("/api/macros", json=MACRO)
        assert mine.status_code == 201, mine.text
        mine = mine.json()
        assert mine["scope"] == "personal" and mine["owner_id"] == "alice"
        assert (await alice.post("/api/macros", json={**MACRO, "scope": "team"})).status_code == 403
        team = await boss.post("/api/macros", json={**MACRO, "title": "Greeting", "scope": "team",
                                                     "topics": [], "body_en": "Hi {agent_name}"})  # fmt: skip
        assert team.status_code == 201
        team = team.json()
        titles = lambda r: [m["title"] for m in r.json()["macros"]]  # noqa: E731
        assert titles(await alice.get("/api/macros")) == ["Greeting", "Refund timing"]
        assert titles(await bob.get("/api/macros")) == ["Greeting"]  # not alice's own
        assert (await user.get("/api/macros")).status_code == 403
        # the owner changes a personal macro; nobody else sees it to change
        changed = await alice.put(f"/api/macros/{mine['id']}", json={**MACRO, "title": "Refunds"})
        assert changed.status_code == 200 and changed.json()["title"] == "Refunds"
        assert (await bob.put(f"/api/macros/{mine['id']}", json=MACRO)).status_code == 404
        assert (await bob.delete(f"/api/macros/{mine['id']}")).status_code == 404
        # team macros: supervisors only
        assert (await alice.put(f"/api/macros/{team['id']}", json={**MACRO, "scope": "team"})).status_code == 403  # fmt: skip
        assert (await alice.delete(f"/api/macros/{team['id']}")).status_code == 403
        assert (await boss.delete(f"/api/macros/{team['id']}")).status_code == 204
        assert (await alice.delete(f"/api/macros/{mine['id']}")).status_code == 204
        assert titles(await alice.get("/api/macros")) == []
        bad = await alice.post("/api/macros", json={"title": "x", "topics": ["nope"]})
        assert bad.status_code == 422


async def test_the_serving_agent_sees_the_customer_come_and_go(hub, db):
    alice = await online_agent(hub, db, "alice", ["payment"])
    user_id = uid()
    phone = await hub.client(user_id, name="Wang Wu")
    cid = (await phone.request({"type": "chat.open", "topic": "payment", "handoff": "agent"}))[
        "conversation_id"
    ]
    got = await alice.expect("chat.assigned", conversation_id=cid)
    assert got["user"]["online"] is True and got["user"]["last_seen"]
    tablet = await hub.client(user_id)
    await alice.expect("customer.presence", user_id=user_id, online=True)
    await phone.close()
    still = await alice.expect("customer.presence", user_id=user_id)
    assert still["online"] is True  # the tablet is still there
    await tablet.close()
    gone = await alice.expect("customer.presence", user_id=user_id, online=False)
    assert gone["last_seen"]
    await alice.close()
