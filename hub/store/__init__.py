"""The store of record: every SQL statement of the hub lives in this package, grouped by
aggregate (conversations, notes, messages, notifications, users, agents, presence, queue,
stats), and `Store` is the port the use cases receive."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, cast

import asyncpg
from asyncpg.pool import PoolAcquireContext, PoolConnectionProxy

from hub.rules.notif_heads import NotifHeads
from hub.store import messages, notifications
from hub.store.messages import MessageWrite
from hub.store.notifications import NotificationWrite
from hub.store.opening import ChatOpen, open_chats
from hub.store.writer import GroupWriter, Writers
from supporthub_core.db import as_connection, create_pool, ping
from supporthub_core.errors import Unavailable

log = logging.getLogger(__name__)

POOL_CLOSE_TIMEOUT_S = 10.0

Write = MessageWrite | NotificationWrite


class Store:
    """The PostgreSQL pool and the group-commit writers of one hub process."""

    def __init__(
        self,
        dsn: str,
        *,
        pool_min: int,
        pool_max: int,
        writers: int,
        max_batch: int,
        write_timeout_s: float = 10.0,
        acquire_timeout_s: float = 10.0,
        statement_cache: int | None = None,
    ):
        self._dsn = dsn
        self._pool_size = (pool_min, pool_max)
        self._writers = (writers, max_batch)
        self._write_timeout = write_timeout_s
        self._acquire_timeout = acquire_timeout_s
        self._statement_cache = statement_cache
        self._pool: asyncpg.Pool | None = None
        # routing passes have a connection of their own, and their announcements (the
        # assigned chats' histories, the queue for staff) another: a flood of requests
        # queued on the main pool (10,000 chats opened at once) must not hold up the pass
        # that serves them, nor a pass the frames of the one before
        self._routing_pool: asyncpg.Pool | None = None
        self._writer: Writers[Write] | None = None
        # new chats: stored many to a statement (thousands may open in one second)
        self._opener: GroupWriter[ChatOpen] | None = None
        # connections the group writers keep between COMMITs: a pool release costs a
        # reset query, one more round trip before every write's caller hears of its COMMIT
        self._kept: list[PoolConnectionProxy] = []
        # each user's last notification seq as this node's writers stored it: a batch is
        # numbered here, not by a counter row per user in PostgreSQL
        self._notif_heads = NotifHeads()

    async def start(self) -> None:
        """Open the pool and start the writers."""
        self._pool = await create_pool(
            self._dsn,
            min_size=self._pool_size[0],
            max_size=self._pool_size[1],
            statement_cache=self._statement_cache,
        )
        self._routing_pool = await create_pool(
            self._dsn, min_size=1, max_size=2, statement_cache=self._statement_cache
        )
        self._writer = Writers(
            self._commit,
            shard_key=shard_key,
            count=self._writers[0],
            max_batch=self._writers[1],
            timeout=self._write_timeout,
        )
        self._writer.start()
        # an open told `unavailable` is sent again: never told so while it may be stored
        self._opener = GroupWriter(
            self._open, max_batch=self._writers[1], timeout=self._write_timeout,
            name="chat-opener", wait_for_commit=True,
        )  # fmt: skip
        self._opener.start()

    async def close(self) -> None:
        """Finish the writes in flight, then close the pool."""
        if self._writer is not None:
            await self._writer.close()
        if self._opener is not None:
            await self._opener.close()
        if self._pool is not None:
            kept, self._kept = self._kept, []
            for conn in kept:
                await self._pool.release(conn)
            try:
                # graceful: waits for every connection to come back to the pool; one still
                # out (a request or task that outlived its cancellation) must not hold up
                # the node's shutdown for ever
                await asyncio.wait_for(self._pool.close(), POOL_CLOSE_TIMEOUT_S)
            except TimeoutError:
                log.warning("store: connections still in use after %.0f s; closing them",
                            POOL_CLOSE_TIMEOUT_S)  # fmt: skip
                self._pool.terminate()
        if self._routing_pool is not None:
            try:  # bounded as the main pool's: a pass cut off by the shutdown must not hang it
                await asyncio.wait_for(self._routing_pool.close(), POOL_CLOSE_TIMEOUT_S)
            except TimeoutError:
                log.warning("store: a routing connection still in use; closing it")
                self._routing_pool.terminate()

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "the store is not started"
        return self._pool

    @property
    def routing_pool(self) -> asyncpg.Pool:
        """Two connections: one for routing passes (hub.store.queue.route_once), one for
        what the passes announce after COMMIT (hub.store.assignments)."""
        assert self._routing_pool is not None, "the store is not started"
        return self._routing_pool

    @property
    def writer(self) -> Writers[Write]:
        assert self._writer is not None, "the store is not started"
        return self._writer

    @property
    def opener(self) -> GroupWriter[ChatOpen]:
        """Stores new chats (`await store.opener.submit(ChatOpen(...))`: the stored row)."""
        assert self._opener is not None, "the store is not started"
        return self._opener

    async def _open(self, opens: list[ChatOpen]) -> list[Any]:
        async with self.acquire() as db:
            return await open_chats(db, opens)

    def acquire(self, *, timeout: float | None = None) -> Acquired:
        """A connection for a few statements (`async with store.acquire() as db`);
        `Unavailable` when none frees up within `timeout` (default: the store's)."""
        if timeout is None:
            timeout = self._acquire_timeout
        return Acquired(self.pool.acquire(timeout=timeout))

    def acquire_routing(self) -> Acquired:
        """The routing pool's connection that passes leave free: for what a pass announces
        after COMMIT (waits for it, never for the main pool)."""
        return Acquired(self.routing_pool.acquire())

    def forget_notification_heads(self, users: Iterable[str] | None = None) -> None:
        """Read these users' heads (None: everyone's) from the store before numbering
        their next notifications: another writer numbered copies for them (a notice, a
        campaign, a freeze). Only a cost saved: a stale head makes a batch be numbered
        again, never a wrong seq."""
        if users is None:
            self._notif_heads.clear()
        else:
            self._notif_heads.forget(users)

    async def ping(self, timeout: float = 2) -> bool:
        """Whether PostgreSQL answers within `timeout` seconds (raises when it cannot)."""
        async with self.acquire(timeout=timeout) as db:
            return await ping(db, timeout)

    async def _commit(self, ops: list[Write]) -> list[Any]:
        """One group-commit batch: its messages, then its notifications, in one transaction."""
        msgs = [(i, op) for i, op in enumerate(ops) if isinstance(op, MessageWrite)]
        notes = [(i, op) for i, op in enumerate(ops) if isinstance(op, NotificationWrite)]
        results: list[Any] = [None] * len(ops)
        conn = (
            self._kept.pop()
            if self._kept
            else await self.pool.acquire(timeout=self._acquire_timeout)
        )
        done = False
        try:
            await self._write(cast(asyncpg.Connection, conn), msgs, notes, results)
            done = True
        finally:
            if done and len(self._kept) < self._writers[0]:
                self._kept.append(conn)
            else:  # back to the pool, which resets it (or drops it, when it broke)
                await self.pool.release(conn)
        return results

    async def _write(
        self, conn: asyncpg.Connection, msgs: list, notes: list, results: list[Any]
    ) -> None:
        if not msgs or not notes:
            # one statement is atomic on its own: no BEGIN and COMMIT round trips
            if msgs:
                stored = await messages.write_messages(conn, [m for _, m in msgs])
            else:
                stored = await notifications.write_notifications(
                    conn, [n for _, n in notes], self._notif_heads
                )
            for (i, _), r in zip(msgs or notes, stored, strict=True):
                results[i] = r
            return
        # both kinds: one transaction, so that a retried batch writes neither twice
        # messages first: every batch locks conversation rows before user rows (each in id
        # order), so two batches never deadlock
        async with conn.transaction():
            stored = await messages.write_messages(conn, [m for _, m in msgs])
            for (i, _), r in zip(msgs, stored, strict=True):
                results[i] = r
            if notes:
                stored = await notifications.write_notifications(
                    conn, [n for _, n in notes], self._notif_heads
                )
                for (i, _), r in zip(notes, stored, strict=True):
                    results[i] = r


class Acquired:
    """`pool.acquire()` whose timeout reaches the caller as `Unavailable`."""

    __slots__ = ("_acquiring",)

    def __init__(self, acquiring: PoolAcquireContext):
        self._acquiring = acquiring

    async def __aenter__(self) -> asyncpg.Connection:
        try:
            return as_connection(await self._acquiring.__aenter__())
        except TimeoutError:
            raise Unavailable("the store is busy, try again") from None

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._acquiring.__aexit__(*exc_info)


def shard_key(op: Write) -> str:
    """The row a write locks: its conversation (messages) or its user (notifications)."""
    return op.conversation_id if isinstance(op, MessageWrite) else op.user_id
