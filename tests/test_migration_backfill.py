"""Migrations 0018 on a store that already holds data: a campaign's counts start from what
the copies, acknowledgements and marks say, and a chat tagged twice as a whole (which the
old index let through) keeps its first item. Each test takes its migration back, writes
the state the old code left, and migrates again, as an upgrade does."""

from __future__ import annotations

import asyncpg

from hub.store import campaigns
from hub.store import notifications as notif_store
from supporthub_core.db import init_connection, migrate


async def connect(dsn: str) -> asyncpg.Connection:
    db = await asyncpg.connect(dsn)
    await init_connection(db)
    return db


async def take_back(db: asyncpg.Connection, name: str, undo: str) -> None:
    await db.execute(undo)
    await db.execute("delete from schema_migrations where version like $1", f"%{name}")


async def test_counts_of_earlier_campaigns_are_backfilled_then_kept(isolated):
    db = await connect(isolated.dsn)
    try:
        await take_back(db, "0018_campaign_counts.sql",
                        "drop trigger campaign_read_counted on users; drop table campaign_counts")  # fmt: skip
        cid = await db.fetchval(
            "insert into campaigns (texts, audience, send_at, status, created_by, delivered)"
            " values ('{}', '{\"kind\": \"all\"}', now(), 'sent', 't', 3) returning id"
        )
        await db.execute(
            "insert into users (id, notif_seq, notif_acked) values"
            " ('a', 2, 2), ('b', 2, 1), ('c', 1, 0), ('d', 1, 1)"
        )  # a, b: read; c: not yet; d: a late copy (not in `delivered`), read
        await db.execute(
            "insert into notifications (id, user_id, seq, kind, title, body, campaign_id)"
            " values ('n1', 'a', 2, 'system.notice', 't', 'b', $1),"
            " ('n2', 'b', 1, 'system.notice', 't', 'b', $1),"
            " ('n3', 'c', 1, 'system.notice', 't', 'b', $1),"
            " ('n4', 'd', 1, 'system.notice', 't', 'b', $1),"
            " ('n5', 'b', 2, 'transaction.status', 't', 'b', null)",
            cid,
        )
        await db.execute(
            "insert into campaign_marks (campaign_id, user_id, clicked_at, dismissed_at)"
            " values ($1, 'a', now(), null), ($1, 'c', now(), now())",
            cid,
        )
        assert await migrate(isolated.dsn) == ["hub.store:0018_campaign_counts.sql"]
        assert await campaigns.counts(db, cid) == {
            "delivered": 4, "read": 3, "clicked": 2, "dismissed": 1,
        }  # fmt: skip
        await notif_store.ack(db, "c", 1)
        await notif_store.ack(db, "c", 1)  # no further: counted once
        await campaigns.mark(db, cid, "d", "dismissed")
        assert await campaigns.counts(db, cid) == {
            "delivered": 4, "read": 4, "clicked": 2, "dismissed": 2,
        }  # fmt: skip
    finally:
        await db.close()


async def test_a_chat_tagged_twice_before_keeps_its_first_item(isolated):
    db = await connect(isolated.dsn)
    try:
        await take_back(
            db,
            "0019_feedback_note.sql",
            "drop index feedback_chat_tag; drop index feedback_conversation;"
            " alter table feedback drop column note;"
            " create unique index feedback_chat on feedback (conversation_id)"
            " where kind = 'tagged' and message_id is null",
        )
        await db.execute("insert into users (id) values ('u')")
        await db.execute(
            "insert into conversations (id, user_id, topic, status) values ('c', 'u', 'other', 'closed')"
        )
        await db.execute(
            "insert into feedback (id, kind, source, text, conversation_id, tagged_by, created_at)"
            " values ('f1', 'suggestion', 'agent', 'add a dark mode', 'c', 'alice', now() - interval '1 hour'),"
            " ('f2', 'suggestion', 'agent', 'add a dark mode', 'c', 'sam', now()),"
            " ('f3', 'suggestion', 'bot', 'add a dark mode', 'c', null, now())"
        )  # fmt: skip
        assert await migrate(isolated.dsn) == ["hub.store:0019_feedback_note.sql"]
        left = await db.fetch("select id from feedback order by id")
        assert [r["id"] for r in left] == ["f1", "f3"]
    finally:
        await db.close()
