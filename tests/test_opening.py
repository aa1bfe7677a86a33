"""Chats opened many to a statement (hub.store.opening), on a real PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest

from hub.store.opening import ChatOpen, open_chats

pytestmark = pytest.mark.usefixtures("clean")


def opened(cid: str, user: str, lang: str | None, status: str = "queued") -> ChatOpen:
    return ChatOpen(cid, user, "payment", "normal", status, lang, "app", 7 * 86_400)


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


async def test_an_open_the_store_refuses_fails_alone(db):
    await db.execute("insert into users (id) values ('op-known')")
    rows = await open_chats(db, [opened("k1", "op-known", None), opened("u1", "op-nobody", None)])
    assert rows[0]["id"] == "k1"
    assert isinstance(rows[1], asyncpg.ForeignKeyViolationError)
    ids = [r["id"] for r in await db.fetch("select id from conversations order by id")]
    assert ids == ["k1"]
