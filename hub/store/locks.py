"""PostgreSQL advisory locks: work that one node at a time does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


@asynccontextmanager
async def try_hold(db: asyncpg.Connection, key: int) -> AsyncIterator[bool]:
    """Hold the session lock `key` for the block when no other session holds it. The block
    gets whether it holds it; when not, it should leave the work to the holder."""
    got = await db.fetchval("select pg_try_advisory_lock($1)", key)
    if not got:
        yield False
        return
    try:
        yield True
    finally:
        await db.execute("select pg_advisory_unlock($1)", key)
