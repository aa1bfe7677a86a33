"""Feedback items for the product team (suggestions, complaints, tagged messages, rating
comments) and what the webhook has taken of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from hub.store.ids import new_id

COLUMNS = (
    "feedback_id", "created_at", "kind", "source", "theme", "lang", "score", "topic",
    "conversation_id", "message_id", "user_id", "tagged_by", "text", "delivered", "note",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class NewFeedback:
    kind: str  # suggestion, complaint, rating, tagged
    source: str  # bot, agent, rating
    text: str
    theme: str = "other"
    lang: str | None = None
    score: int | None = None
    conversation_id: str | None = None
    message_id: str | None = None
    user_id: str | None = None
    topic: str | None = None
    tagged_by: str | None = None
    note: str | None = None  # the tagging agent's own words


async def add(db: asyncpg.Connection, item: NewFeedback) -> tuple[dict[str, Any], bool]:
    """Store `item`; (the stored item, True) — or (the one stored before, False) when this
    message, or this chat's rating, or this chat as a whole, is feedback already."""
    row = await db.fetchrow(
        "insert into feedback (id, kind, source, theme, text, lang, score, conversation_id,"
        " message_id, user_id, topic, tagged_by, note)"
        " values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        " on conflict do nothing returning *",
        new_id(), item.kind, item.source, item.theme, item.text, item.lang, item.score,
        item.conversation_id, item.message_id, item.user_id, item.topic, item.tagged_by,
        item.note,
    )  # fmt: skip
    if row is not None:
        return view(row), True
    # the unique indexes: a message once; a chat's rating once; a chat tagged as a whole once
    before = await db.fetchrow(
        "select * from feedback where (message_id = $1)"
        " or ($1::text is null and conversation_id = $2 and message_id is null"
        "     and case when $3 = 'rating' then kind = 'rating' else source = 'agent' end)"
        " order by created_at limit 1",
        item.message_id, item.conversation_id, item.kind,
    )  # fmt: skip
    assert before is not None  # the conflict was with it
    return view(before), False


async def tagged_in(db: asyncpg.Connection, cid: str) -> list[dict[str, Any]]:
    """What staff tagged as feedback in this conversation: its messages (`message_id`) and
    the chat as a whole (`message_id` null), oldest first."""
    return (await tagged_in_each(db, [cid]))[cid]


async def tagged_in_each(
    db: asyncpg.Connection, cids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """`tagged_in` of several conversations in one statement, by conversation."""
    rows = await db.fetch(
        "select conversation_id, id, message_id, tagged_by, note from feedback"
        " where conversation_id = any($1::text[]) and source = 'agent'"
        " order by conversation_id, created_at, id",
        cids,
    )
    tagged: dict[str, list[dict[str, Any]]] = {cid: [] for cid in cids}
    for r in rows:
        tagged[r["conversation_id"]].append(
            {"feedback_id": r["id"], "message_id": r["message_id"], "tagged_by": r["tagged_by"],
             "note": r["note"]}
        )  # fmt: skip
    return tagged


async def message_text(db: asyncpg.Connection, cid: str, message_id: str) -> str | None:
    """The text of a message of this conversation (None: no such message in it)."""
    text: str | None = await db.fetchval(
        "select text from messages where conversation_id = $1 and id = $2", cid, message_id
    )
    return text


async def recent(
    db: asyncpg.Connection,
    *,
    since_days: int,
    kind: str | None = None,
    theme: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "select * from feedback where created_at > now() - make_interval(days => $1)"
        " and ($2::text is null or kind = $2) and ($3::text is null or theme = $3)"
        " order by created_at desc, id limit $4",
        since_days, kind, theme, limit,
    )  # fmt: skip
    return [view(r) for r in rows]


async def themes(db: asyncpg.Connection, *, since_days: int) -> list[dict[str, Any]]:
    """The themes of the period, most items first, each with its newest example."""
    rows = await db.fetch(
        "select theme, count(*) as n,"
        " count(*) filter (where kind = 'suggestion') as suggestions,"
        " count(*) filter (where kind = 'complaint') as complaints,"
        " (array_agg(text order by created_at desc))[1] as example"
        " from feedback where created_at > now() - make_interval(days => $1)"
        " group by theme order by n desc, theme",
        since_days,
    )
    return [
        {
            "theme": r["theme"],
            "count": r["n"],
            "suggestions": r["suggestions"],
            "complaints": r["complaints"],
            "example": r["example"],
        }
        for r in rows
    ]


async def undelivered(
    db: asyncpg.Connection, *, since_days: int = 7, limit: int = 1000
) -> list[dict[str, Any]]:
    """Items the webhook never took (oldest first), from the last `since_days`."""
    rows = await db.fetch(
        "select * from feedback where delivered_at is null"
        " and created_at > now() - make_interval(days => $1) order by created_at limit $2",
        since_days, limit,
    )  # fmt: skip
    return [view(r) for r in rows]


async def attempted(db: asyncpg.Connection, feedback_id: str, delivered: bool) -> None:
    await db.execute(
        "update feedback set attempts = attempts + 1,"
        " delivered_at = case when $2 then now() else delivered_at end where id = $1",
        feedback_id, delivered,
    )  # fmt: skip


def view(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "feedback_id": r["id"],
        "created_at": _iso(r["created_at"]),
        "kind": r["kind"],
        "source": r["source"],
        "theme": r["theme"],
        "lang": r["lang"],
        "score": r["score"],
        "topic": r["topic"],
        "conversation_id": r["conversation_id"],
        "message_id": r["message_id"],
        "user_id": r["user_id"],
        "tagged_by": r["tagged_by"],
        "text": r["text"],
        "delivered": r["delivered_at"] is not None,
        "note": r["note"],
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
