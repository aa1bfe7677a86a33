"""The chat message batch as the store writes it (one statement per batch): who may write
is exactly hub.rules.access.may_write, files must be the sender's uploads to that chat,
a resent client_msg_id returns the original message (files included) and writes nothing,
and seq numbers follow the batch's order per conversation."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import asyncpg
import pytest

from hub.rules.access import may_write
from hub.store import agents
from hub.store.messages import MessageWrite, StoredMessage, write_messages
from supporthub_core.db import init_connection


@pytest.fixture
async def db(isolated):  # type: ignore[no-untyped-def]
    """A database of its own: the suite's running hub would act on these chats (requeue a
    chat whose agent is offline, write its system message) while the test counts rows."""
    conn = await asyncpg.connect(isolated.dsn)
    await init_connection(conn)
    yield conn
    await conn.close()


STATUSES = ("bot", "queued", "assigned", "resolved", "closed")
ROLES = ("user", "agent", "bot", "system", "service")


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def conversation(db, user_id: str, status: str, agent_id: str | None) -> str:
    cid = uid("c")
    await db.execute("insert into users (id) values ($1) on conflict do nothing", user_id)
    await db.execute(
        "insert into conversations (id, user_id, topic, status, agent_id)"
        " values ($1, $2, 'other', $3, $4)",
        cid, user_id, status, agent_id,
    )  # fmt: skip
    return cid


async def upload(db, cid: str, uploader_id: str, name: str = "a.png") -> str:
    aid = uid("att")
    await db.execute(
        "insert into attachments (id, conversation_id, uploader_role, uploader_id, name,"
        " content_type, size, sha256, width, height, thumbnail_size)"
        " values ($1, $2, 'user', $3, $4, 'image/png', 10, 'x', 2, 3, 5)",
        aid, cid, uploader_id, name,
    )  # fmt: skip
    return aid


async def stored(db, cid: str) -> list:
    return await db.fetch("select * from messages where conversation_id = $1 order by seq", cid)


async def test_who_may_write_is_exactly_the_access_rule(db):
    """Every role, every status, the right and the wrong sender, and no conversation at all:
    the store stores what may_write allows and refuses the rest with its error."""
    held = (await agents.upsert(db, username="mw-a", password="pw", name="A",
                                skills=["other"], capacity=5))["id"]  # fmt: skip
    other = (await agents.upsert(db, username="mw-b", password="pw", name="B",
                                 skills=["other"], capacity=5))["id"]  # fmt: skip
    user = uid("u")
    ops, convs = [], []
    for status, agent_id in itertools.product(STATUSES, (held, None)):
        cid = await conversation(db, user, status, agent_id)
        row = await db.fetchrow("select * from conversations where id = $1", cid)
        for role, sender in itertools.product(ROLES, (user, held, other, uid("x"))):
            ops.append(MessageWrite(cid, role, sender, "N", f"{role} {sender} {status}"))
            convs.append(row)
    ops.append(MessageWrite("no-such-conversation", "system", "system", "S", "nowhere"))
    convs.append(None)
    results = await write_messages(db, ops)
    assert len(results) == len(ops)
    for op, conv, res in zip(ops, convs, results, strict=True):
        expected = may_write(op.sender_role, op.sender_id, conv)
        if expected is None:
            assert isinstance(res, StoredMessage) and not res.duplicate, (op, res)
        else:
            assert type(res) is type(expected) and str(res) == str(expected), (op, res)
    # seq numbers follow the batch's order in each conversation, with no gaps
    for cid in {op.conversation_id for op in ops[:-1]}:
        mine = [r for r in results if isinstance(r, StoredMessage) and r.conversation_id == cid]
        rows = await stored(db, cid)
        assert [r["seq"] for r in rows] == list(range(1, len(mine) + 1))
        assert [(r["id"], r["text"]) for r in rows] == [(m.message_id, m.text) for m in mine]
        last = await db.fetchval("select last_seq from conversations where id = $1", cid)
        assert last == len(mine)


async def test_resend_returns_the_original_with_its_files(db):
    user = uid("u")
    cid = await conversation(db, user, "bot", None)
    first, second = await upload(db, cid, user, "one.png"), await upload(db, cid, user, "two.png")
    [orig] = await write_messages(
        db, [MessageWrite(cid, "user", user, "U", "hello", "k1", (second, first))]
    )
    assert isinstance(orig, StoredMessage) and orig.seq == 1 and not orig.duplicate
    assert [a["attachment_id"] for a in orig.attachments] == [second, first]
    assert orig.attachments[0] == {
        "attachment_id": second, "content_type": "image/png", "size": 10, "name": "two.png",
        "thumbnail": True, "width": 2, "height": 3,
    }  # fmt: skip
    # sent again (another text, no files: the original counts), twice in one batch, and
    # a new message after it
    again = await write_messages(
        db,
        [
            MessageWrite(cid, "user", user, "U", "changed", "k1"),
            MessageWrite(cid, "user", user, "U", "next", "k2"),
            MessageWrite(cid, "user", user, "U", "next again", "k2"),
            MessageWrite(cid, "agent", user, "U", "same key, other sender", "k9"),
        ],
    )
    dup, new, new_dup, refused = again
    assert dup.duplicate and dup.message_id == orig.message_id and dup.seq == 1
    assert dup.text == "hello" and dup.attachments == orig.attachments
    assert not new.duplicate and new.seq == 2 and new.text == "next"
    assert new_dup.duplicate and new_dup.message_id == new.message_id and new_dup.seq == 2
    assert isinstance(refused, Exception)
    rows = await stored(db, cid)
    assert [(r["seq"], r["text"]) for r in rows] == [(1, "hello"), (2, "next")]
    links = await db.fetch(
        "select attachment_id from message_attachments where message_id = $1 order by position",
        orig.message_id,
    )
    assert [r["attachment_id"] for r in links] == [second, first]


async def test_files_must_be_the_senders_uploads_to_that_chat(db):
    user, stranger = uid("u"), uid("u")
    cid = await conversation(db, user, "bot", None)
    elsewhere = await conversation(db, stranger, "bot", None)
    mine = await upload(db, cid, user)
    theirs = await upload(db, elsewhere, stranger)
    by_other = await upload(db, cid, "someone-else")
    results = await write_messages(
        db,
        [
            MessageWrite(cid, "user", user, "U", "ok", "a", (mine,)),
            MessageWrite(cid, "user", user, "U", "other chat", "b", (mine, theirs)),
            MessageWrite(cid, "user", user, "U", "other uploader", "c", (by_other,)),
            MessageWrite(cid, "user", user, "U", "missing", "d", ("no-such-file",)),
        ],
    )
    assert isinstance(results[0], StoredMessage) and results[0].seq == 1
    assert [str(r) for r in results[1:]] == [
        f"no such attachment in this conversation: {a}" for a in (theirs, by_other, "no-such-file")
    ]
    assert len(await stored(db, cid)) == 1


async def test_two_connections_writing_one_chat_number_it_without_gaps(isolated, db):
    """Batches from two nodes into the same conversations at once: each waits for the
    other's lock, and the numbers stay 1..n in each chat."""
    user = uid("u")
    cids = [await conversation(db, user, "bot", None) for _ in range(4)]
    conns = [await asyncpg.connect(isolated.dsn) for _ in range(2)]
    try:
        for c in conns:
            await init_connection(c)

        async def node(conn, tag: str, order: list[str]) -> None:
            for round_ in range(20):
                ops = [MessageWrite(c, "user", user, "U", f"{tag}{round_}") for c in order]
                for r in await write_messages(conn, ops):
                    assert isinstance(r, StoredMessage)

        await asyncio.gather(node(conns[0], "a", cids), node(conns[1], "b", cids[::-1]))
    finally:
        for c in conns:
            await c.close()
    for cid in cids:
        rows = await stored(db, cid)
        assert [r["seq"] for r in rows] == list(range(1, 41))
