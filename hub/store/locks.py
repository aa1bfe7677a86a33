"""PostgreSQL advisory locks: work that one node at a time does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


@asynccontextmanager
async def try_hold(db: asyncpg.Connection, key: int) -> AsyncIterator[bool]:
    """Run the block in a transaction holding the lock `key` when no other transaction
    holds it. The block gets whether it holds it; when not, it should leave the work to
    the holder. The lock is transaction-scoped (released at COMMIT or rollback, also when
    the connection dies), never a session lock, so it means the same through a
    transaction-pooling PgBouncer; keep the block short, it is one transaction."""
    async with db.transaction():
        yield bool(await db.fetchval("select pg_try_advisory_xact_lock($1)", key))
