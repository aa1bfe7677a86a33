"""Background tasks stop even when one swallows its cancellation (a node that could not
stop after a Redis restart: its membership beat lost the cancel inside a Redis call)."""

import asyncio

from hub.background import Background
from supporthub_core.cancelling import cancel_and_wait


async def _loses_one_cancel(ticks: list[int]) -> None:
    lost = False
    while True:
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if lost:
                raise
            lost = True  # as asyncio.wait_for on 3.11 or a library reconnecting may do
        ticks.append(1)


async def test_background_stop_ends_a_task_that_swallowed_its_cancellation():
    tasks, ticks = Background(), []
    task = tasks.spawn(_loses_one_cancel(ticks), "swallows-once")
    await asyncio.sleep(0.05)
    # the old stop (cancel once, then gather) waited for this task for ever
    await asyncio.wait_for(tasks.stop(), 30)
    assert task.cancelled()


async def test_a_task_that_never_stops_is_given_up_on_and_named():
    released = asyncio.Event()

    async def immortal() -> None:
        while not released.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                pass

    task = asyncio.create_task(immortal(), name="immortal")
    await asyncio.sleep(0.02)  # inside its loop (a task cancelled before it starts just ends)
    stuck = await cancel_and_wait([task], round_s=0.05, rounds=3)
    assert stuck == [task]
    released.set()
    await task


async def test_failed_tasks_have_their_exceptions_retrieved():
    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    assert await cancel_and_wait([task]) == []
