"""What a payment event causes besides the user's notification: a `customer.event` to the
agents serving the user, and the bot's follow-up in a chat where it watches the
transaction. Both come from what the batch's one write statement read of the users'
chats: no query after it, and no cache that another node's assignment could leave stale."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from hub.store import conversations as conv_store
from hub.store import notifications as notif_store
from hub.store.notifications import NotificationWrite, write_notifications
from supporthub_core.db import init_connection
from tests.conftest import start_hub
from tests.events import publish_signed, tx_event
from tests.test_chat_flow import add_agent, online_agent


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def _wait_for(predicate, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def _connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn


async def test_an_agent_assigned_on_another_node_gets_the_next_payment_event(isolated):
    """The node that stores the event is not the one that assigned the chat: the agent
    still gets the event right after the assignment, and no longer once the chat is
    resolved."""
    a = await start_hub(isolated)
    b = await start_hub(isolated)
    db = await _connect(isolated.dsn)
    try:
        await _wait_for(
            lambda: len(a.node.ring.nodes) == 2 and len(b.node.ring.nodes) == 2,
            "the nodes never saw each other",
        )
        # events for this user are stored on node a; everything else happens on node b
        user_id = next(
            u for u in (uid() for _ in range(1000)) if a.node.ring.owner(u) == a.node.node_id
        )
        agent = await online_agent(b, db, "nadia", ["payment"])
        user = await b.client(user_id)
        await publish_signed(isolated.redis_url, [tx_event(user_id)])
        await user.expect("notification")
        await a.hub.notifier.flushed()
        await agent.quiet("customer.event", 0.3)  # not serving the user yet

        cid = (await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent"}))[
            "conversation_id"
        ]
        await agent.expect("chat.assigned", conversation_id=cid)
        event = tx_event(user_id)
        await publish_signed(isolated.redis_url, [event])
        got = await agent.expect("customer.event", user_id=user_id)
        assert got["data"]["transaction_id"] == event["transaction_id"]
        assert got["kind"] == "transaction.status" and got["title"] and got["ts"]

        await agent.request({"type": "chat.resolve", "conversation_id": cid})
        await publish_signed(isolated.redis_url, [tx_event(user_id)])
        await user.expect("notification")
        await a.hub.notifier.flushed()
        await agent.quiet("customer.event", 0.3)  # the chat is over
        for c in (agent, user):
            await c.close()
    finally:
        await db.close()
        await a.stop()
        await b.stop()


async def test_the_bot_follows_up_in_the_chat_watching_the_transaction(isolated):
    server = await start_hub(isolated)
    db = await _connect(isolated.dsn)
    try:
        user_id, tx_id = uid(), f"tx_{uuid.uuid4().hex[:16]}"
        user = await server.client(user_id)
        cid = (await user.request({"type": "chat.open", "topic": "payment"}))["conversation_id"]
        greeting = await user.expect("message", conversation_id=cid)
        assert greeting["sender"]["role"] == "bot"
        await conv_store.save_bot_state(db, cid, {"watched": [tx_id]})

        await publish_signed(isolated.redis_url, [tx_event(user_id)])  # not the watched one
        await user.expect("notification")
        await server.hub.notifier.flushed()
        await user.quiet("message", 0.3)

        await publish_signed(isolated.redis_url, [tx_event(user_id, transaction_id=tx_id)])
        await user.expect("notification")
        follow_up = await user.expect("message", conversation_id=cid)
        assert follow_up["sender"]["role"] == "bot" and tx_id in follow_up["text"]
        state = await conv_store.bot_state(db, cid)
        assert tx_id not in state.get("watched", [])  # settled: no longer watched
        await user.close()
    finally:
        await db.close()
        await server.stop()


async def test_a_batch_asks_no_query_after_its_write(isolated, monkeypatch):
    """The agents serving the users and the bot's chats come with the write: the old
    follow-up queries are never made for notifications the pipeline stored."""
    server = await start_hub(isolated)
    db = await _connect(isolated.dsn)
    asked: list[str] = []

    def counting(name, fn):
        async def wrapper(*args, **kwargs):
            asked.append(name)
            return await fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        notif_store, "agents_serving", counting("agents", notif_store.agents_serving)
    )
    monkeypatch.setattr(
        conv_store, "open_with_bot_state", counting("bot", conv_store.open_with_bot_state)
    )
    try:
        agent = await online_agent(server, db, "omar", ["payment"])
        user_id = uid()
        user = await server.client(user_id)
        cid = (await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent"}))[
            "conversation_id"
        ]
        await agent.expect("chat.assigned", conversation_id=cid)
        asked.clear()
        await server.hub.notifier.handle([tx_event(user_id), tx_event(uid())])
        await agent.expect("customer.event", user_id=user_id)
        assert asked == []
        for c in (agent, user):
            await c.close()
    finally:
        await db.close()
        await server.stop()


@pytest.mark.usefixtures("clean")
async def test_the_write_returns_each_users_agents_and_bot_chats(db):
    await add_agent(db, "pia", ["payment"])
    await add_agent(db, "quinn", ["payment"])
    served, botted, alone = uid(), uid(), uid()
    for u in (served, botted, alone):
        await db.execute("insert into users (id) values ($1)", u)
    rows = [
        ("c-served-1", served, "assigned", "pia", None),
        ("c-served-2", served, "assigned", "quinn", None),
        ("c-served-old", served, "resolved", "quinn", None),
        ("c-bot", botted, "bot", None, {"watched": ["tx_1"]}),
        ("c-bot-plain", botted, "bot", None, None),
        ("c-bot-closed", botted, "closed", None, {"watched": ["tx_2"]}),
    ]
    for cid, user_id, status, agent_id, state in rows:
        await db.execute(
            "insert into conversations (id, user_id, topic, status, agent_id, bot_state, lang)"
            " values ($1, $2, 'payment', $3, $4, $5, 'en')",
            cid,
            user_id,
            status,
            agent_id,
            state,
        )
    ops = [
        NotificationWrite(u, "transaction.status", "t", "b", {}, f"ev-{uuid.uuid4().hex}")
        for u in (served, botted, alone, served)
    ]
    stored = await write_notifications(db, ops)
    by_user = {n.user_id: n for n in stored}
    assert sorted(by_user[served].agents or ()) == ["pia", "quinn"]
    assert by_user[served].bot_chats == ()
    assert by_user[botted].agents == () and by_user[botted].bot_chats == (("c-bot", "en"),)
    assert by_user[alone].agents == () and by_user[alone].bot_chats == ()
    assert [n.seq for n in stored] == [1, 1, 1, 2]
    # an event already stored yields None, and nothing else changes
    again = await write_notifications(db, [ops[0]])
    assert again == [None]
