"""The payments service's accounts, where it shares the hub's database (a dev setup):
only development tools read them, the hub itself never relies on them."""

from __future__ import annotations

import asyncpg


async def name(db: asyncpg.Connection, user_id: str) -> str | None:
    return await db.fetchval("select name from accounts where user_id = $1", user_id)


async def existing(db: asyncpg.Connection, user_ids: list[str]) -> list[str]:
    """Those of `user_ids` that have an account."""
    rows = await db.fetch("select user_id from accounts where user_id = any($1::text[])", user_ids)
    return [r["user_id"] for r in rows]


async def frozen(db: asyncpg.Connection, user_id_prefix: str) -> list[str]:
    """Frozen accounts whose user id starts with `user_id_prefix`."""
    rows = await db.fetch(
        "select user_id from accounts where frozen and starts_with(user_id, $1)", user_id_prefix
    )
    return [r["user_id"] for r in rows]
