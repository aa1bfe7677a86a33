"""Group commit: one task writes whatever queued up while the previous COMMIT ran.

Callers submit a write and await its future; the future resolves only after the batch
that holds it has committed, so nothing is acked or pushed before it is durable. One
transaction per batch, set-based statements inside, turns thousands of small writes a
second into a few round trips each.

The engine does not know what it writes: it is generic over the write type and is given
the function that commits one batch in one transaction (`hub.store.Store` gives it the
message and notification SQL of hub.store.messages and hub.store.notifications).

No wait is unbounded: a write whose COMMIT has not come within `timeout` seconds fails
with `Unavailable` (one still queued is dropped, never stored after its caller was told
it failed; one committing, with `wait_for_commit`, waits for that COMMIT's outcome), a
COMMIT running longer is abandoned, and a writer task that dies is logged,
replaced at once, and the writes it held fail with `Unavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import time
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
DEFAULT_TIMEOUT_S = 10.0
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

    __slots__ = ("ops", "future", "many", "deadline", "then", "left")

    def __init__(
        self,
        ops: list,
        future: asyncio.Future,
        many: bool,
        deadline: float,
        then: Callable[[], None] | None = None,
        left: Callable[[], None] | None = None,
    ):
        self.ops = ops
        self.future = future
        self.many = many
        self.deadline = deadline  # event-loop time
        # called by the writer task right after its COMMIT resolved `future`: whoever
        # waits for it may act in this loop turn instead of the next (awaiting the future
        # stays the way to hear of every outcome)
        self.then = then
        # called once the writes have left the writer for good (committed, failed,
        # dropped): unlike the future, not while a COMMIT holding them may still run
        self.left = left


class GroupWriter(Generic[Op]):
    """One writer task: each COMMIT holds whatever queued while the previous one ran."""

    def __init__(
        self,
        commit: Commit[Op],
        *,
        max_batch: int = 2000,
        timeout: float = DEFAULT_TIMEOUT_S,
        name: str = "group-writer",
        wait_for_commit: bool = False,
    ):
        """`wait_for_commit`: a write whose batch is committing when its `timeout` passes
        hears that COMMIT's outcome (bounded by `timeout` too) instead of `Unavailable`
        at once, so that its caller is never told it failed while it may still be stored
        (a chat open told `unavailable` is sent again)."""
        self._wait_for_commit = wait_for_commit
        self._commit = commit
        self._max_batch = max_batch
        self._timeout = timeout
        self._name = name
        self._pending: deque[_Pending] = deque()
        self._committing: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._closing = False

    def start(self) -> None:
        """Start the writer task (again, after it died)."""
        self._task = asyncio.create_task(self._run(), name=self._name)
        self._task.add_done_callback(self._on_exit)

    async def close(self) -> None:
        """Finish every write in flight, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task])
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _on_exit(self, task: asyncio.Task) -> None:
        """The task ended: after `close()` that is the plan; otherwise it died. Nobody
        awaits the writer, so say so loudly, fail what it held and start a new one."""
        died = None if task.cancelled() else task.exception()
        stranded = [*self._committing, *self._pending]
        self._committing = []
        self._pending.clear()
        _fail(stranded, Unavailable("the store writer stopped, try again"))
        _leave(stranded)
        if self._closing:
            return
        if died is None:  # cancelled: only the event loop's shutdown does that
            log.error("group writer %s was cancelled; writes fail from now on", self._name)
            self._closing = True
            return
        metrics.WRITER_RESTARTS.inc()
        log.error("group writer %s died; restarting it", self._name, exc_info=died)
        self.start()

    @property
    def idle(self) -> bool:
        """Nothing queued and no COMMIT under way."""
        return not self._pending and not self._committing

    def _queue(
        self,
        ops: list,
        many: bool,
        then: Callable[[], None] | None = None,
        left: Callable[[], None] | None = None,
    ) -> asyncio.Future:
        if self._closing:
            raise Unavailable("node is shutting down")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        deadline = loop.time() + self._timeout
        self._pending.append(_Pending(ops, future, many, deadline, then, left))
        if self._watchdog is None:
            self._watchdog = loop.call_at(deadline, self._expire)
        self._wake.set()
        return future

    # Deadlines are kept by one timer per writer, not one per write (as `wait_for` would):
    # writes queue in order with the same timeout, so the oldest is always the next due.
    def _expire(self) -> None:
        """Fail the writes past their deadline: those queued are dropped, those in the
        COMMIT under way learn nothing more (the COMMIT itself is bounded too)."""
        self._watchdog = None
        now = asyncio.get_running_loop().time()
        late = Unavailable("the store did not answer in time, try again")
        committing = [] if self._wait_for_commit else self._committing
        for item in committing:
            if item.deadline <= now and not item.future.done():
                item.future.set_exception(late)
        pending = self._pending
        while pending and pending[0].deadline <= now:
            item = pending.popleft()
            if not item.future.done():
                item.future.set_exception(late)
            _leave([item])
        due = next((i.deadline for i in committing if not i.future.done()), None)
        if due is None and pending:
            due = pending[0].deadline
        if due is not None:
            self._watchdog = asyncio.get_running_loop().call_at(due, self._expire)

    def enqueue(self, op: Op, left: Callable[[], None] | None = None) -> asyncio.Future:
        """Queue a write; the future resolves after the COMMIT that holds it. `left`
        (optional) is called once the write has left the writer for good."""
        return self._queue([op], False, None, left)

    def enqueue_batch(
        self,
        ops: list[Op],
        then: Callable[[], None] | None = None,
        left: Callable[[], None] | None = None,
    ) -> asyncio.Future:
        """Queue writes that resolve together, as a list of results in order; `then`
        (optional) is called in the writer's loop turn once their COMMIT resolved them,
        `left` once they have left the writer for good."""
        return self._queue(ops, True, then, left)

    async def submit(self, op: Op) -> Any:
        """One write; its result once committed, or `Unavailable` after `timeout`."""
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
                await self._commit_batch(batch)
            if self._closing:
                return

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        self._committing = batch  # failed by `_on_exit` if the task dies meanwhile
        ops = [op for item in batch for op in item.ops]
        started = time.perf_counter()
        try:
            results = await self._commit_with_retry(ops)
        except HubError as exc:
            _fail(batch, exc)
        else:
            metrics.WRITER_COMMIT.observe(time.perf_counter() - started)
            if len(results) != len(ops):
                raise RuntimeError(f"a commit returned {len(results)} results for {len(ops)}")
            metrics.WRITER_BATCH.observe(len(ops))
            _resolve(batch, results)
        self._committing = []
        _leave(batch)

    async def _commit_with_retry(self, ops: list[Op]) -> list[Any]:
        for attempt in range(ATTEMPTS):
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._commit(ops)
            except RETRY_SOON:
                await asyncio.sleep(0.01 * (attempt + 1))
            except TimeoutError:
                # its callers have been told already; the next batch must not wait too
                log.warning("group commit took over %.1fs; abandoned", self._timeout)
                raise Unavailable("the store did not answer in time, try again") from None
            except Exception as exc:  # connection lost, server down: fail the batch, keep running
                log.warning("group commit failed: %s", exc)
                if attempt < ATTEMPTS - 1 and isinstance(exc, RETRY_AFTER_PAUSE):
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                raise Unavailable("the store is unavailable, try again") from None
        raise Unavailable("the store is busy, try again")


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
        if item.then is not None:
            _call_then(item.then)


def _call_then(then: Callable[[], None]) -> None:
    try:
        then()
    except Exception:  # the writer task must live on; its waiter still hears of the result
        log.exception("a write's follow-up failed")


def _leave(items: list[_Pending]) -> None:
    for item in items:
        if item.left is not None:
            left, item.left = item.left, None
            left()


def _fail(batch: list[_Pending], exc: HubError) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)


class Writers(Generic[Op]):
    """Several group writers committing side by side. Each write goes to the writer its
    `shard_key` hashes to (a conversation for messages, a user for notifications), so two
    writers never lock the same row, and one stream's writes keep their order.

    Except when every writer is idle: then nothing is in flight, no order can be broken,
    and a batch goes whole to one writer (one COMMIT to wait for, not the slower of
    several). Its keys that hash elsewhere are *detoured*: their next writes follow them
    to that writer until all of theirs have left it, so a key is never in flight on two
    writers at once (two COMMITs racing for its row would number its writes out of order)."""

    def __init__(
        self,
        commit: Commit[Op],
        *,
        shard_key: Callable[[Op], str],
        count: int = 2,
        max_batch: int = 2000,
        timeout: float = DEFAULT_TIMEOUT_S,
    ):
        self._shard_key = shard_key
        self._writers = [
            GroupWriter(commit, max_batch=max_batch, timeout=timeout, name=f"group-writer-{i}")
            for i in range(max(1, count))
        ]
        # key -> [its writer, its writes in flight there], for keys away from their hash
        self._detours: dict[str, list[int]] = {}

    def start(self) -> None:
        """Start every writer task."""
        for w in self._writers:
            w.start()

    async def close(self) -> None:
        """Finish every write in flight, then stop."""
        for w in self._writers:
            await w.close()

    def _route(self, keys: list[str]) -> tuple[list[int], list[int]]:
        """(the writer each key's write goes to, each key's own writer by hash)."""
        n = len(self._writers)
        homes = [zlib.crc32(k.encode()) % n for k in keys]
        if n > 1 and all(w.idle for w in self._writers):
            return [homes[0]] * len(keys), homes
        detours = self._detours
        if not detours:
            return homes, homes
        return [
            detours[k][0] if k in detours else h for k, h in zip(keys, homes, strict=True)
        ], homes

    def _detour(self, keys: list[str], writer: int) -> Callable[[], None]:
        """Keep these keys' writes on `writer`; the callback releases them (once)."""
        detours = self._detours
        for k in keys:
            held = detours.get(k)
            if held is None:
                detours[k] = [writer, 1]
            else:
                held[1] += 1

        def release() -> None:
            for k in keys:
                held = detours[k]
                held[1] -= 1
                if not held[1]:
                    del detours[k]

        return release

    def enqueue(self, op: Op) -> asyncio.Future:
        """Queue a write; the future resolves after the COMMIT that holds it."""
        key = self._shard_key(op)
        (w,), (home,) = self._route([key])
        return self._writers[w].enqueue(op, self._detour([key], w) if w != home else None)

    def enqueue_many(self, ops: Sequence[Op], then: Callable[[], None] | None = None) -> BatchWrite:
        """Queue many writes now (one future per writer, not per write); await
        `.results()` later for their results in order. `then` (optional) is called in
        the loop turn of each COMMIT that resolves a part of them (`.settled()` tells
        whether all are)."""
        keys = [self._shard_key(op) for op in ops]
        targets, homes = self._route(keys)
        groups: dict[int, list[int]] = {}
        for i, w in enumerate(targets):
            groups.setdefault(w, []).append(i)
        parts = []
        for w, positions in groups.items():
            away = [] if targets is homes else [keys[i] for i in positions if homes[i] != w]
            left = self._detour(away, w) if away else None
            future = self._writers[w].enqueue_batch([ops[i] for i in positions], then, left)
            parts.append((positions, future))
        return BatchWrite(len(ops), parts)

    async def submit(self, op: Op) -> Any:
        """One write; its result once committed, or `Unavailable` after the timeout."""
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
        """Every write's result (or exception, `Unavailable` past the timeout) in the
        order they were queued."""
        for _, future in self.parts:
            try:
                await future
            except Exception:
                pass  # in its place in `_collect`
        return self._collect()

    def settled(self) -> list[Any] | None:
        """`results()` when every part is done, without a loop turn; None otherwise."""
        if all(future.done() for _, future in self.parts):
            return self._collect()
        return None

    def _collect(self) -> list[Any]:
        out: list[Any] = [None] * self.size
        for positions, future in self.parts:
            exc = future.exception()
            results = [exc] * len(positions) if exc is not None else future.result()
            for i, r in zip(positions, results, strict=True):
                out[i] = r
        return out
