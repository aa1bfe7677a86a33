"""The store of record: every SQL statement of the hub lives in this package, grouped by
aggregate (conversations, notes, messages, notifications, users, agents, presence, queue,
stats), and `Store` is the port the use cases receive."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import asyncpg

from hub.store.writer import Writers
from supporthub_core.db import create_pool


class Store:
    """The PostgreSQL pool and the group-commit writers of one hub process."""

    def __init__(self, dsn: str, *, pool_min: int, pool_max: int, writers: int, max_batch: int):
        self._dsn = dsn
        self._pool_size = (pool_min, pool_max)
        self._writers = (writers, max_batch)
        self._pool: asyncpg.Pool | None = None
        self._writer: Writers | None = None

    async def start(self) -> None:
        self._pool = await create_pool(
            self._dsn, min_size=self._pool_size[0], max_size=self._pool_size[1]
        )
        self._writer = Writers(self._pool, count=self._writers[0], max_batch=self._writers[1])
        self._writer.start()

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()  # finishes writes in flight
        if self._pool is not None:
            await self._pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "the store is not started"
        return self._pool

    @property
    def writer(self) -> Writers:
        assert self._writer is not None, "the store is not started"
        return self._writer

    def acquire(self, *, timeout: float | None = None) -> AbstractAsyncContextManager:
        """A connection for a few statements (`async with store.acquire() as db`)."""
        return self.pool.acquire(timeout=timeout)

    async def ping(self, timeout: float = 2) -> bool:
        """Whether PostgreSQL answers within `timeout` seconds (raises when it cannot)."""
        async with self.acquire(timeout=timeout) as db:
            return await db.fetchval("select 1", timeout=timeout) == 1
