"""The group-commit engine on its own (no database): batching, bounded waits, and a
writer task that dies."""

from __future__ import annotations

import asyncio
import logging

import pytest
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
