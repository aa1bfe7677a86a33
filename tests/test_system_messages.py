"""System messages say what happened as `system {kind, params}` beside the customer's text,
so that an agent's console words them in the agent's language and voice: live, in the next
agent's history and in the REST transcript."""

from __future__ import annotations

import uuid

import pytest

from tests.events import publish_signed
from tests.test_chat_flow import online_agent, uid

pytestmark = pytest.mark.usefixtures("clean")


async def test_transfer_and_resolve_carry_kind_and_params(hub, db):
    alice = await online_agent(hub, db, "alice", ["payment"])
    user = await hub.client(uid(), name="Zhang San")
    opened = await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent",
                                 "text": "转账失败", "lang": "zh"})  # fmt: skip
    cid = opened["conversation_id"]
    await alice.expect("chat.assigned", conversation_id=cid)
    bob = await online_agent(hub, db, "bob", ["payment"])
    await alice.request({"type": "chat.transfer", "conversation_id": cid, "to_agent": "bob"})

    said = await user.expect("message", conversation_id=cid, seq=2, timeout=10)
    assert said["sender"]["role"] == "system"
    assert said["text"] == "您的对话已转接给 Bob。"  # the customer's words, as before
    assert said["system"] == {
        "kind": "transferred",
        "params": {"to": {"id": "bob", "name": "Bob"}, "from": {"id": "alice", "name": "Alice"},
                   "by": {"id": "alice", "name": "Alice"}},
    }  # fmt: skip
    await bob.expect("chat.assigned", conversation_id=cid)
    await bob.request({"type": "chat.resolve", "conversation_id": cid, "outcome": "duplicate"})
    done = await bob.expect("message", conversation_id=cid, seq=3, timeout=10)
    assert done["system"] == {
        "kind": "resolved", "params": {"by": {"id": "bob", "name": "Bob"}, "outcome": "duplicate"}
    }  # fmt: skip

    async with hub.http(hub.token("bob", "agent", name="Bob")) as http:
        body = (await http.get(f"/api/conversations/{cid}")).json()
    kinds = [m.get("system", {}).get("kind") for m in body["messages"]]
    assert kinds == [None, "transferred", "resolved"], kinds
    for c in (alice, bob, user):
        await c.close()


async def test_the_agent_learns_whether_the_chat_came_from_a_browser_or_an_app(hub, db):
    agent = await online_agent(hub, db, "alice", ["payment"], capacity=3)
    app = await hub.client(uid(), name="App User")  # no Origin: an app or a script
    web = await hub.client(uid(), name="Web User", origin=hub.url)  # a page of the hub's
    for user, channel in ((app, "app"), (web, "web")):
        opened = await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent"})
        got = await agent.expect("chat.assigned", conversation_id=opened["conversation_id"])
        assert got["channel"] == channel
    for c in (agent, app, web):
        await c.close()


async def test_a_frozen_accounts_chat_opens_with_a_kind(hub, db, services):
    from hub.store import agents

    await agents.upsert(db, username="secu", password="pw", name="Secu", skills=["security"],
                        capacity=1)  # fmt: skip
    secu = await hub.client("secu", "agent")
    await secu.request({"type": "agent.status", "status": "online"})
    user_id = uid()
    await publish_signed(services.redis_url, [{
        "event_id": f"ev-{uuid.uuid4().hex}", "type": "security.alert", "user_id": user_id,
        "occurred_at": "2026-11-25T08:00:00+00:00", "alert": "account_frozen",
        "severity": "critical", "details": {"rule": "velocity"},
    }])  # fmt: skip
    got = await secu.expect("chat.assigned", timeout=10)
    kinds = [m.get("system", {}).get("kind") for m in got["history"]]
    assert kinds[0] == "account_frozen", kinds
    assert got["channel"] is None  # opened by the hub, not by the customer
    await secu.close()
