"""Users as the hub knows them: a name, a language and a time zone."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def langs(db: asyncpg.Connection, user_ids: list[str]) -> dict[str, str]:
    rows = await db.fetch("select id, lang from users where id = any($1::text[])", user_ids)
    return {r["id"]: r["lang"] for r in rows}


async def locales(db: asyncpg.Connection, user_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """user id -> (language, time zone or None) of the users that exist."""
    rows = await db.fetch("select id, lang, tz from users where id = any($1::text[])", user_ids)
    return {r["id"]: (r["lang"], r["tz"]) for r in rows}


async def set_tz(db: asyncpg.Connection, user_id: str, tz: str) -> None:
    await db.execute(
        "update users set tz = $2 where id = $1 and tz is distinct from $2", user_id, tz
    )


async def lang(db: asyncpg.Connection, user_id: str) -> str | None:
    return await db.fetchval("select lang from users where id = $1", user_id)


async def set_lang(db: asyncpg.Connection, user_id: str, lang: str) -> None:
    await db.execute("update users set lang = $2 where id = $1", user_id, lang)


async def brief(db: asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        "select id, name, lang, last_seen_at from users where id = $1", user_id
    )


async def switch_lang(db: asyncpg.Connection, user_id: str, lang: str) -> list[asyncpg.Record]:
    """The user's language, and that of their open chats; returns those chats."""
    async with db.transaction():
        await set_lang(db, user_id, lang)
        return await db.fetch(
            "update conversations set lang = $2 where user_id = $1"
            " and status = any('{bot,queued,assigned}'::text[]) returning id, agent_id",
            user_id, lang,
        )  # fmt: skip


async def seen(db: asyncpg.Connection, user_ids: list[str]) -> dict[str, datetime]:
    """The users' sockets opened or closed now; returns that time of each. Rows are locked
    in id order, as every statement that writes many users does, so none deadlocks."""
    rows = await db.fetch(
        "update users u set last_seen_at = now()"
        " from (select id from users where id = any($1::text[]) order by id for update) s"
        " where u.id = s.id returning u.id, u.last_seen_at",
        user_ids,
    )
    return {row["id"]: row["last_seen_at"] for row in rows}
