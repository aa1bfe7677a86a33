"""The group-commit engine on its own (no database): batching, bounded waits, and a
writer task that dies."""

from __future__ import annotations

import asyncio
import logging
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from hub.store.writer import GroupWriter, Writers
from supporthub_core.errors import Unavailable


class Recorder:
    """A commit function that stores every op and returns it doubled."""

    def __init__(self):
        self.batches: list[list[int]] = []

    async def __call__(self, ops: list[int]) -> list[int]:
        self.batches.append(list(ops))
        await asyncio.sleep(0)
        return [op * 2 for op in ops]


async def test_writes_queued_during_a_commit_share_the_next_one():
    commit = Recorder()
    writer = GroupWriter(commit, max_batch=3)
    writer.start()
    try:
        results = await asyncio.gather(*(writer.submit(i) for i in range(7)))
    finally:
        await writer.close()
    assert results == [i * 2 for i in range(7)]
    assert [len(b) for b in commit.batches] == [3, 3, 1]


async def test_a_hung_commit_fails_its_writes_in_time_and_the_next_batch_commits():
    commit = Recorder()
    hung = True

    async def sometimes_hangs(ops):
        if hung:
            await asyncio.Event().wait()
        return await commit(ops)

    writer = GroupWriter(sometimes_hangs, timeout=0.3)
    writer.start()
    try:
        with pytest.raises(Unavailable):
            await asyncio.wait_for(writer.submit(1), 2)
        hung = False
        assert await asyncio.wait_for(writer.submit(2), 2) == 4
    finally:
        await writer.close()
    assert commit.batches == [[2]]


async def test_a_write_that_timed_out_in_the_queue_is_never_stored():
    commit = Recorder()
    writer = GroupWriter(commit, timeout=0.2)
    with pytest.raises(Unavailable):  # no writer task yet: as if it were stuck
        await asyncio.wait_for(writer.submit(1), 2)
    writer.start()
    try:
        assert await writer.submit(2) == 4
    finally:
        await writer.close()
    assert commit.batches == [[2]]


async def test_with_wait_for_commit_a_write_whose_commit_started_hears_its_outcome():
    """A chat open told `unavailable` is sent again: it must not be told so while its
    batch may still store it. Its wait's deadline passes while its batch commits (it
    waited in the queue first); it gets the COMMIT's result, not `Unavailable`.

    Before, the deadline failed it while the COMMIT went on and stored it."""
    started = {1: asyncio.Event(), 2: asyncio.Event()}
    release = {1: asyncio.Event(), 2: asyncio.Event()}

    async def commit(ops):
        started[ops[0]].set()
        await release[ops[0]].wait()
        return [op * 2 for op in ops]

    timeout = 3.0
    writer = GroupWriter(commit, timeout=timeout, wait_for_commit=True)
    writer.start()
    loop = asyncio.get_running_loop()
    try:
        first = asyncio.ensure_future(writer.submit(1))
        await started[1].wait()
        second = asyncio.ensure_future(writer.submit(2))
        queued_at = loop.time()
        await asyncio.sleep(timeout * 0.4)  # it waits in the queue behind the first
        release[1].set()
        await started[2].wait()  # its batch commits from here, for `timeout` at most
        await asyncio.sleep(max(0.0, queued_at + timeout * 1.1 - loop.time()))
        assert not second.done()  # its own deadline has passed: it waits for the COMMIT
        release[2].set()
        assert await first == 2 and await second == 4
    finally:
        await writer.close()


async def test_a_dead_writer_task_fails_its_writes_and_is_replaced(caplog):
    broken = True

    async def commit(ops):
        if broken:
            return []  # a bug: fewer results than writes
        return [op * 2 for op in ops]

    writer = GroupWriter(commit, timeout=5)
    restarts = _restarts()
    writer.start()
    try:
        with caplog.at_level(logging.ERROR, logger="hub.store.writer"):
            with pytest.raises(Unavailable):
                await asyncio.wait_for(writer.submit(1), 2)
        assert "died; restarting it" in caplog.text
        assert _restarts() == restarts + 1
        broken = False
        assert await asyncio.wait_for(writer.submit(2), 2) == 4
    finally:
        await writer.close()


async def test_a_batch_write_past_its_deadline_yields_unavailable_for_its_part():
    async def hang(ops):
        await asyncio.Event().wait()

    writers = Writers(hang, shard_key=str, count=2, timeout=0.3)
    writers.start()
    try:
        results = await asyncio.wait_for(writers.submit_many(["a", "b", "c"]), 2)
    finally:
        await writers.close()
    assert all(isinstance(r, Unavailable) for r in results)


def _restarts() -> float:
    return REGISTRY.get_sample_value("supporthub_writer_restarts_total") or 0.0


async def test_a_batchs_follow_up_runs_in_its_commits_loop_turn_and_cannot_stop_the_writer(
    caplog,
):
    """`then` is called by the writer task right after the COMMIT resolved the batch
    (`settled()` has its results then); one that raises is logged, and the writer and
    the batch's waiter carry on."""
    writers = Writers(Recorder(), shard_key=str, count=2)
    writers.start()
    seen: list = []

    def then():
        seen.append((asyncio.current_task().get_name(), batch.settled()))
        raise RuntimeError("a follow-up that breaks")

    try:
        batch = writers.enqueue_many([1, 2, 3], then=then)
        assert batch.settled() is None
        assert await batch.results() == [2, 4, 6]
        assert await writers.submit(5) == 10
    finally:
        await writers.close()
    assert seen and all(name.startswith("group-writer") for name, _ in seen)
    assert seen[-1][1] == [2, 4, 6]  # the last part's COMMIT: all of it settled
    assert "a write's follow-up failed" in caplog.text


def _home(key: object, writers: int = 2) -> int:
    return zlib.crc32(str(key).encode()) % writers


def _keys_by_home() -> tuple[list[int], list[int]]:
    """Small ints whose `str` hashes to writer 0, and to writer 1."""
    keys = range(100)
    return [k for k in keys if _home(k) == 0], [k for k in keys if _home(k) == 1]


class GatedCommit:
    """Records (writer task, ops) as each COMMIT starts; a COMMIT holding a gated key
    waits until the test opens its gate."""

    def __init__(self):
        self.started: list[tuple[str, list[int]]] = []
        self.gates: dict[int, asyncio.Event] = {}

    def gate(self, key: int) -> asyncio.Event:
        return self.gates.setdefault(key, asyncio.Event())

    async def __call__(self, ops: list[int]) -> list[int]:
        self.started.append((asyncio.current_task().get_name(), list(ops)))
        for op in ops:
            if op in self.gates:
                await self.gates[op].wait()
        return [op * 2 for op in ops]


async def _until(condition) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never held")


async def test_a_batch_queued_while_every_writer_is_idle_commits_whole_in_one_commit():
    """Nothing in flight: no order to keep, so the batch waits for one COMMIT, not for the
    slower of two."""
    commit = Recorder()
    writers = Writers(commit, shard_key=str, count=2)
    writers.start()
    try:
        assert await writers.enqueue_many(list(range(10))).results() == [i * 2 for i in range(10)]
    finally:
        await writers.close()
    assert commit.batches == [list(range(10))]


async def test_a_key_sent_to_another_writer_stays_there_while_its_writes_are_in_flight():
    """A key whose batch went whole to another writer than its own is never in flight on
    two writers: its next write queues behind the first, and only once all have left does
    it go back to its own writer."""
    on_0, on_1 = _keys_by_home()
    a, b, c = on_0[0], on_1[0], on_1[1]
    commit = GatedCommit()
    held = commit.gate(a)
    writers = Writers(commit, shard_key=str, count=2)
    writers.start()
    try:
        first = writers.enqueue_many([a, b])  # both idle: whole, to a's writer
        await _until(lambda: len(commit.started) == 1)
        second = writers.enqueue(b)  # b's own writer is idle, but b is in flight on 0
        assert await writers.submit(c) == c * 2  # writer 1 still serves its other keys
        await asyncio.sleep(0.05)
        assert not second.done()
        held.set()
        assert await first.results() == [a * 2, b * 2]
        assert await second == b * 2
        commit.gate(a).clear()
        busy = writers.enqueue(a)  # writer 0 busy again
        await _until(lambda: len(commit.started) == 4)
        assert await writers.submit(b) == b * 2  # b has left: its own writer again
        held.set()
        await busy
    finally:
        held.set()
        await writers.close()
    assert commit.started[:3] == [
        ("group-writer-0", [a, b]),
        ("group-writer-1", [c]),
        ("group-writer-0", [b]),
    ]
    assert commit.started[4] == ("group-writer-1", [b])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("batch"), st.lists(st.integers(0, 7), min_size=1, max_size=6)),
            st.tuples(st.just("one"), st.integers(0, 7)),
            st.tuples(st.just("open"), st.integers(0, 7)),
        ),
        max_size=40,
    )
)
def test_whatever_the_interleaving_a_key_is_never_in_flight_on_two_writers(steps):
    """Batches and single writes queued while COMMITs hang or finish in any order: at
    every moment each key's writes are queued or committing on one writer at most, and
    each key's writes start their COMMITs in the order they were queued."""
    asyncio.run(_interleave(steps))


async def _interleave(steps) -> None:
    queued: dict[int, list[int]] = {}  # key -> serials in queue order
    started: dict[int, list[int]] = {}
    serial = iter(range(10**6))
    gates = {k: asyncio.Event() for k in range(8)}

    async def commit(ops: list[tuple[int, int]]) -> list[int]:
        for key, n in ops:
            started.setdefault(key, []).append(n)
        for key, _ in ops:
            await gates[key].wait()
        return [n for _, n in ops]

    writers = Writers(commit, shard_key=lambda op: str(op[0]), count=3)
    writers.start()
    futures = []

    def write(key: int) -> tuple[int, int]:
        n = next(serial)
        queued.setdefault(key, []).append(n)
        return key, n

    try:
        for step, arg in steps:
            if step == "batch":
                futures.append(writers.enqueue_many([write(k) for k in arg]).results())
            elif step == "one":
                futures.append(writers.enqueue(write(arg)))
            else:
                gates[arg].set()
            for _ in range(3):
                await asyncio.sleep(0)
            _assert_one_writer_per_key(writers)
        for gate in gates.values():
            gate.set()
        await asyncio.gather(*futures)
    finally:
        for gate in gates.values():
            gate.set()
        await writers.close()
    assert started == queued


def _assert_one_writer_per_key(writers: Writers) -> None:
    holder: dict[int, int] = {}
    for i, w in enumerate(writers._writers):
        items = [*w._pending, *w._committing]
        for key in {op[0] for item in items for op in item.ops}:
            assert holder.setdefault(key, i) == i, f"key {key} in flight on two writers"
