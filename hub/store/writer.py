"""Group commit: one task writes whatever queued up while the previous COMMIT ran.

Callers submit a write and await its future; the future resolves only after the batch
that holds it has committed, so nothing is acked or pushed before it is durable. One
transaction per batch, set-based statements inside, turns thousands of small writes a
second into a few round trips each.

The engine does not know what it writes: it is generic over the write type and is given
the function that commits one batch in one transaction (`hub.store.Store` gives it the
message and notification SQL of hub.store.messages and hub.store.notifications).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import asyncpg

from hub import metrics
from supporthub_core.errors import HubError, Unavailable

log = logging.getLogger(__name__)

Op = TypeVar("Op")

# Writes one batch in one transaction; one result per write, in order (an exception
# instance in place of a refused write).
Commit = Callable[[list[Op]], Awaitable[list[Any]]]

ATTEMPTS = 3
# A race lost to another transaction (a deadlock; another node stored the same unique
# row meanwhile): try again soon.
RETRY_SOON = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.UniqueViolationError,
)
# Lost the connection: try again after a pause.
RETRY_AFTER_PAUSE = (OSError, asyncpg.InterfaceError)


class _Pending:
    """Writes queued together with one future: a single write's result, or the list of
    results of a batch (an exception in place of a refused write)."""

    __slots__ = ("ops", "future", "many")

    def __init__(self, ops: list, future: asyncio.Future, many: bool):
        self.ops = ops
        self.future = future
        self.many = many


class GroupWriter(Generic[Op]):
    """One writer task: each COMMIT holds whatever queued while the previous one ran."""

    def __init__(self, commit: Commit[Op], *, max_batch: int = 2000):
        self._commit = commit
        self._max_batch = max_batch
        self._pending: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False

    def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.create_task(self._run(), name="group-writer")

    async def close(self) -> None:
        """Finish every write in flight, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    def _queue(self, ops: list, many: bool) -> asyncio.Future:
        if self._closing:
            raise Unavailable("node is shutting down")
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(ops, future, many))
        self._wake.set()
        return future

    def enqueue(self, op: Op) -> asyncio.Future:
        """Queue a write; the future resolves after the COMMIT that holds it."""
        return self._queue([op], False)

    def enqueue_batch(self, ops: list[Op]) -> asyncio.Future:
        """Queue writes that resolve together, as a list of results in order."""
        return self._queue(ops, True)

    async def submit(self, op: Op) -> Any:
        """One write; its result once committed."""
        return await self.enqueue(op)

    async def _run(self) -> None:
        pending = self._pending
        while True:
            await self._wake.wait()
            self._wake.clear()
            while pending:
                batch = [pending.popleft()]
                size = len(batch[0].ops)
                while pending and size + len(pending[0].ops) <= self._max_batch:
                    size += len(pending[0].ops)
                    batch.append(pending.popleft())
                await self._commit_with_retry(batch)
            if self._closing:
                return

    async def _commit_with_retry(self, batch: list[_Pending]) -> None:
        ops = [op for item in batch for op in item.ops]
        for attempt in range(ATTEMPTS):
            try:
                results = await self._commit(ops)
            except RETRY_SOON:
                await asyncio.sleep(0.01 * (attempt + 1))
                continue
            except Exception as exc:  # connection lost, server down: fail the batch, keep running
                log.warning("group commit failed: %s", exc)
                if attempt < ATTEMPTS - 1 and isinstance(exc, RETRY_AFTER_PAUSE):
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                _fail(batch, Unavailable("the store is unavailable, try again"))
                return
            metrics.WRITER_BATCH.observe(len(ops))
            _resolve(batch, results)
            return
        _fail(batch, Unavailable("the store is busy, try again"))


def _resolve(batch: list[_Pending], results: list[Any]) -> None:
    at = 0
    for item in batch:
        mine = results[at : at + len(item.ops)]
        at += len(item.ops)
        if item.future.done():
            continue
        if item.many:
            item.future.set_result(mine)
        elif isinstance(mine[0], BaseException):
            item.future.set_exception(mine[0])
        else:
            item.future.set_result(mine[0])


def _fail(batch: list[_Pending], exc: HubError) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)


class Writers(Generic[Op]):
    """Several group writers committing side by side. Each write goes to the writer its
    `shard_key` hashes to (a conversation for messages, a user for notifications), so two
    writers never lock the same row, and one stream's writes keep their order."""

    def __init__(
        self,
        commit: Commit[Op],
        *,
        shard_key: Callable[[Op], str],
        count: int = 2,
        max_batch: int = 2000,
    ):
        self._shard_key = shard_key
        self._writers = [GroupWriter(commit, max_batch=max_batch) for _ in range(max(1, count))]

    def start(self) -> None:
        """Start every writer task."""
        for w in self._writers:
            w.start()

    async def close(self) -> None:
        """Finish every write in flight, then stop."""
        for w in self._writers:
            await w.close()

    def _index(self, op: Op) -> int:
        return zlib.crc32(self._shard_key(op).encode()) % len(self._writers)

    def enqueue(self, op: Op) -> asyncio.Future:
        """Queue a write; the future resolves after the COMMIT that holds it."""
        return self._writers[self._index(op)].enqueue(op)

    def enqueue_many(self, ops: Sequence[Op]) -> BatchWrite:
        """Queue many writes now (one future per writer, not per write); await
        `.results()` later for their results in order."""
        groups: dict[int, list[int]] = {}
        for i, op in enumerate(ops):
            groups.setdefault(self._index(op), []).append(i)
        parts = [
            (positions, self._writers[w].enqueue_batch([ops[i] for i in positions]))
            for w, positions in groups.items()
        ]
        return BatchWrite(len(ops), parts)

    async def submit(self, op: Op) -> Any:
        """One write; its result once committed."""
        return await self.enqueue(op)

    async def submit_many(self, ops: Sequence[Op]) -> list[Any]:
        """Several writes; results (or exceptions) in order."""
        return await self.enqueue_many(ops).results()


class BatchWrite:
    """Writes queued by `Writers.enqueue_many`, spread over the writers."""

    __slots__ = ("size", "parts")

    def __init__(self, size: int, parts: list[tuple[list[int], asyncio.Future]]):
        self.size = size
        self.parts = parts

    async def results(self) -> list[Any]:
        """Every write's result (or exception) in the order they were queued."""
        out: list[Any] = [None] * self.size
        for positions, future in self.parts:
            try:
                results = await future
            except Exception as exc:
                results = [exc] * len(positions)
            for i, r in zip(positions, results, strict=True):
                out[i] = r
        return out


# hub.services.chat and hub.services.bot still import these names from here; they now
# live with the message SQL. Drop this once those modules import hub.store.messages.
_MOVED = {
    "MessageWrite": "hub.store.messages",
    "StoredMessage": "hub.store.messages",
    "new_id": "hub.store.ids",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
