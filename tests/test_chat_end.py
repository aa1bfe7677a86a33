"""The end of a chat is one transition: an agent's `chat.resolve` and the user's
`chat.close` racing each other both get an ack stating the one final state, and the
stored row agrees with it."""

from __future__ import annotations

import asyncio

import pytest

from tests.test_chat_flow import online_agent, uid

pytestmark = pytest.mark.usefixtures("clean")

PAIRS = 24


async def test_concurrent_resolve_and_close_end_in_one_consistent_state(hub, db):
    agent = await online_agent(hub, db, "alice", ["account"], capacity=PAIRS)
    users, cids = [], []
    for _ in range(PAIRS):
        user = await hub.client(uid())
        opened = await user.request({"type": "chat.open", "topic": "account", "handoff": "agent"})
        assert opened["status"] == "assigned", opened
        await agent.expect("chat.assigned", conversation_id=opened["conversation_id"])
        users.append(user)
        cids.append(opened["conversation_id"])

    async def race(user, cid):
        return await asyncio.gather(
            agent.request({"type": "chat.resolve", "conversation_id": cid}),
            user.request({"type": "chat.close", "conversation_id": cid}),
        )

    answers = await asyncio.gather(*(race(u, c) for u, c in zip(users, cids, strict=True)))
    outcomes = set()
    for cid, (resolved, closed) in zip(cids, answers, strict=True):
        row = await db.fetchrow("select status, closed_by from conversations where id = $1", cid)
        final = (row["status"], row["closed_by"])
        assert final in {("resolved", "agent"), ("closed", "user")}, final
        assert resolved["type"] == closed["type"] == "ack", (resolved, closed)
        # both sides are told the same final state, whoever won
        assert (resolved["status"], resolved["by"]) == final
        assert (closed["status"], closed["by"]) == final
        outcomes.add(final)
    for user, cid in zip(users, cids, strict=True):
        ended = await user.expect("chat.closed", conversation_id=cid)
        row = await db.fetchrow("select status, closed_by from conversations where id = $1", cid)
        assert ended["by"] == row["closed_by"]
        await user.quiet(lambda f, cid=cid: f.get("type") == "chat.closed"
                         and f.get("conversation_id") == cid, 0.05)  # fmt: skip
    # the agent's load counts none of them any more
    state = await agent.request({"type": "agent.status", "status": "online"})
    assert state["active"] == 0
    for c in (agent, *users):
        await c.close()


async def test_ending_an_ended_chat_again_is_an_idempotent_ack(hub, db):
    agent = await online_agent(hub, db, "alice", ["account"])
    user = await hub.client(uid())
    cid = (await user.request({"type": "chat.open", "topic": "account", "handoff": "agent"}))[
        "conversation_id"
    ]
    await agent.expect("chat.assigned", conversation_id=cid)
    first = await agent.request({"type": "chat.resolve", "conversation_id": cid})
    assert (first["type"], first["status"], first["by"]) == ("ack", "resolved", "agent")
    again = await agent.request({"type": "chat.resolve", "conversation_id": cid})
    assert (again["type"], again["status"], again["by"]) == ("ack", "resolved", "agent")
    late = await user.request({"type": "chat.close", "conversation_id": cid})
    assert (late["type"], late["status"], late["by"]) == ("ack", "resolved", "agent")
    # a chat still with the bot cannot be resolved by an agent: nothing to end there
    other = (await user.request({"type": "chat.open", "topic": "account"}))["conversation_id"]
    refused = await agent.request({"type": "chat.resolve", "conversation_id": other})
    assert refused["type"] == "error"
    for c in (agent, user):
        await c.close()
