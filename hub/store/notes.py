"""Private notes agents leave on a conversation: staff see them, the user never does."""

from __future__ import annotations

import asyncpg

from hub.store.ids import new_id
from supporthub_core.db import fetch_one


def note_view(r: asyncpg.Record) -> dict:
    return {
        "note_id": r["id"],
        "conversation_id": r["conversation_id"],
        "agent": {"id": r["agent_id"], "name": r["agent_name"]},
        "text": r["text"],
        "ts": r["created_at"].isoformat(),
    }


async def add(
    db: asyncpg.Connection, conversation_id: str, agent_id: str, agent_name: str, text: str
) -> dict:
    """Store a note; returns it as `listing` shows it."""
    row = await fetch_one(
        db,
        "insert into notes (id, conversation_id, agent_id, agent_name, text)"
        " values ($1, $2, $3, $4, $5) returning *",
        new_id(), conversation_id, agent_id, agent_name, text,
    )  # fmt: skip
    return note_view(row)


async def listing(db: asyncpg.Connection, conversation_id: str) -> list[dict]:
    """The conversation's notes, oldest first."""
    rows = await db.fetch(
        "select * from notes where conversation_id = $1 order by created_at", conversation_id
    )
    return [note_view(r) for r in rows]
