"""Chats opened many to a statement (hub.store.opening), on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from hub.rules.opening import open_key
from hub.store.opening import ChatOpen, open_chats
from tests.conftest import start_hub

pytestmark = pytest.mark.usefixtures("clean")


def opened(
    cid: str, user: str, lang: str | None, status: str = "queued", key: str | None = None
) -> ChatOpen:
    return ChatOpen(cid, user, "payment", "normal", status, lang, "app", 7 * 86_400, key)


async def test_a_batch_stores_each_chat_in_order_with_the_languages_as_one_at_a_time(db):
    await db.execute(
        "insert into users (id, lang) values ('op-a', 'zh'), ('op-b', 'ja'), ('op-c', 'zh')"
    )
    rows = await open_chats(
        db,
        [
            opened("c1", "op-a", None),  # the stored language
            opened("c2", "op-a", "en"),  # names one: the chat's and, from now on, the user's
            opened("c3", "op-a", None),  # an earlier open of the batch named one
            opened("c4", "op-b", None),
            opened("c5", "op-c", "ms", status="bot"),
        ],
    )
    assert [r["id"] for r in rows] == ["c1", "c2", "c3", "c4", "c5"]
    assert [r["lang"] for r in rows] == ["zh", "en", "en", "ja", "ms"]
    users = dict(await db.fetch("select id, lang from users where id like 'op-%'"))
    assert users == {"op-a": "en", "op-b": "ja", "op-c": "ms"}
    queued = [r for r in rows if r["status"] == "queued"]
    # enqueued in the order they came: the queue serves them in that order
    assert [r["enqueued_at"] for r in queued] == sorted(r["enqueued_at"] for r in queued)
    assert len({r["enqueued_at"] for r in queued}) == len(queued)
    assert rows[4]["enqueued_at"] is None  # a bot chat is not in the queue


async def test_opens_with_one_key_by_one_customer_yield_one_chat_while_it_is_open(db):
    await db.execute("insert into users (id) values ('op-twice'), ('op-else')")
    key, other = open_key("payment", "转账没到账"), open_key("payment", "付款失败")
    rows = await open_chats(
        db,
        [
            opened("t1", "op-twice", None, key=key),
            opened("t2", "op-twice", None, key=key),  # the same again in the same batch
            opened("t3", "op-twice", None, key=other),  # another question: its own
            opened("t4", "op-else", None, key=key),  # another customer: theirs
        ],
    )
    assert [r["id"] for r in rows] == ["t1", "t1", "t3", "t4"]
    (again,) = await open_chats(db, [opened("t5", "op-twice", None, key=key)])  # later
    assert again["id"] == "t1"
    await db.execute("update conversations set status = 'closed' where id = 't1'")
    (after,) = await open_chats(db, [opened("t6", "op-twice", None, key=key)])  # it ended
    assert after["id"] == "t6"
    stored = await db.fetch("select id from conversations where user_id = 'op-twice' order by id")
    assert [r["id"] for r in stored] == ["t1", "t3", "t6"]


async def test_each_chat_stored_holds_its_opening_text_as_message_1(db):
    """The opening text is written by the statement that stores the chat: a chat the store
    has always holds it; an open that yields a chat already open writes none."""
    await db.execute("insert into users (id) values ('op-text')")
    key = open_key("payment", "转账没到账")

    def with_text(cid: str, text: str | None, k: str | None) -> ChatOpen:
        return ChatOpen(cid, "op-text", "payment", "normal", "bot", None, "app", 0, k, text, "Lin")

    rows = await open_chats(
        db, [with_text("w1", "转账没到账", key), with_text("w2", "转账没到账", key),
             with_text("w3", None, None)],
    )  # fmt: skip
    assert [r["id"] for r in rows] == ["w1", "w1", "w3"]
    stored = await db.fetch(
        "select conversation_id, id, seq, sender_role, sender_id, sender_name, text"
        " from messages where conversation_id like 'w%' order by conversation_id"
    )
    assert [tuple(r) for r in stored] == [
        ("w1", rows[0]["first_message_id"], 1, "user", "op-text", "Lin", "转账没到账")
    ]
    assert rows[2]["first_message_id"] is None
    seqs = dict(await db.fetch("select id, last_seq from conversations where id like 'w%'"))
    assert seqs == {"w1": 1, "w3": 0}


async def test_an_open_the_store_refuses_fails_alone(db):
    await db.execute("insert into users (id) values ('op-known')")
    rows = await open_chats(db, [opened("k1", "op-known", None), opened("u1", "op-nobody", None)])
    assert rows[0]["id"] == "k1"
    assert isinstance(rows[1], asyncpg.ForeignKeyViolationError)
    ids = [r["id"] for r in await db.fetch("select id from conversations order by id")]
    assert ids == ["k1"]


async def _blocked_opens(db, n: int) -> None:
    """Wait until `n` chat opens wait for the lock the test holds on their customer: the
    sessions that wait for a lock while they write into conversations."""
    while (
        await db.fetchval(
            "select count(distinct w.pid) from pg_locks w join pg_locks c on c.pid = w.pid"
            " and c.granted and c.locktype = 'relation'"
            " and c.relation = 'conversations'::regclass where not w.granted"
        )
        < n
    ):
        await asyncio.sleep(0.02)


async def test_an_open_whose_answer_was_lost_yields_the_same_chat_when_sent_again(hub, db):
    """The socket went away while the open was being stored (its answer lost), so the
    client sends it again: it gets the chat the first one stored, not a second one, and
    the opening text is in it once.

    Before, every open stored a chat of its own: two chats for one question."""
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    first = await hub.client(user_id)
    opens = {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": "转账没到账"}
    lock = db.transaction()
    await lock.start()
    try:  # the store waits: the customer's row is locked
        await db.execute("select 1 from users where id = $1 for update", user_id)
        await first.send({**opens, "id": "o1"})
        await _blocked_opens(db, 1)
        await first.close()  # the answer has nowhere to go
    finally:
        await lock.rollback()
    while (
        await db.fetchval(  # the first open goes on: stored, its text posted
            "select count(*) from messages m join conversations c on c.id = m.conversation_id"
            " where c.user_id = $1 and m.sender_role = 'user'",
            user_id,
        )
        < 1
    ):
        await asyncio.sleep(0.02)
    again = await hub.client(user_id)
    opened = await again.request(opens)
    rows = await db.fetch("select id from conversations where user_id = $1", user_id)
    assert [r["id"] for r in rows] == [opened["conversation_id"]]
    texts = await db.fetch(
        "select text from messages where conversation_id = $1 and sender_role = 'user'",
        opened["conversation_id"],
    )
    assert [t["text"] for t in texts] == ["转账没到账"]
    await again.close()


async def test_opens_of_one_topic_racing_on_two_nodes_store_one_chat(services, hub, db):
    """Two opens of the same topic by one customer, in flight at once on two nodes (a
    retry from another socket while the first still commits): one chat, both answers name
    it, its opening text once."""
    other = await start_hub(services)
    try:
        user_id = f"u-{uuid.uuid4().hex[:8]}"
        on_a, on_b = await hub.client(user_id), await other.client(user_id)
        opens = {"type": "chat.open", "topic": "account", "handoff": "bot", "text": "改手机号"}
        lock = db.transaction()
        await lock.start()
        try:
            await db.execute("select 1 from users where id = $1 for update", user_id)
            await on_a.send({**opens, "id": "a"})
            await on_b.send({**opens, "id": "b"})
            await _blocked_opens(db, 2)
        finally:
            await lock.rollback()
        answers = [await c.expect("chat.opened") for c in (on_a, on_b)]
        rows = await db.fetch("select id from conversations where user_id = $1", user_id)
        assert len(rows) == 1
        assert {a["conversation_id"] for a in answers} == {rows[0]["id"]}
        texts = await db.fetch(
            "select text from messages where conversation_id = $1 and sender_role = 'user'",
            rows[0]["id"],
        )
        assert [t["text"] for t in texts] == ["改手机号"]
        for c in (on_a, on_b):
            await c.close()
    finally:
        await other.stop()
