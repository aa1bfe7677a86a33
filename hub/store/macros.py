"""Macros: reply snippets agents keep for themselves (`personal`) or share (`team`)."""

from __future__ import annotations

import asyncpg

from hub.store.ids import new_id
from supporthub_core.db import fetch_one

FIELDS = ("title", "body_zh", "body_en", "topics")


def macro_view(r: asyncpg.Record) -> dict:
    return {
        "id": r["id"],
        "scope": r["scope"],
        "owner_id": r["owner_id"],
        "title": r["title"],
        "body_zh": r["body_zh"],
        "body_en": r["body_en"],
        "topics": list(r["topics"]),
        "updated_at": r["updated_at"].isoformat(),
    }


async def visible_to(db: asyncpg.Connection, agent_id: str) -> list[dict]:
    """The team's macros and the agent's own, by title."""
    rows = await db.fetch(
        "select * from macros where scope = 'team' or owner_id = $1 order by lower(title), id",
        agent_id,
    )
    return [macro_view(r) for r in rows]


async def get(db: asyncpg.Connection, macro_id: str) -> asyncpg.Record | None:
    return await db.fetchrow("select * from macros where id = $1", macro_id)


async def create(db: asyncpg.Connection, scope: str, owner_id: str, fields: dict) -> dict:
    row = await fetch_one(
        db,
        "insert into macros (id, scope, owner_id, title, body_zh, body_en, topics)"
        " values ($1, $2, $3, $4, $5, $6, $7) returning *",
        new_id(), scope, owner_id, fields["title"], fields["body_zh"], fields["body_en"],
        fields["topics"],
    )  # fmt: skip
    return macro_view(row)


async def update(db: asyncpg.Connection, macro_id: str, fields: dict) -> dict:
    row = await fetch_one(
        db,
        "update macros set title = $2, body_zh = $3, body_en = $4, topics = $5,"
        " updated_at = now() where id = $1 returning *",
        macro_id, fields["title"], fields["body_zh"], fields["body_en"], fields["topics"],
    )  # fmt: skip
    return macro_view(row)


async def delete(db: asyncpg.Connection, macro_id: str) -> None:
    await db.execute("delete from macros where id = $1", macro_id)
