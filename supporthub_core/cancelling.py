"""Stopping background tasks even when one of them swallows its cancellation.

On Python 3.11 `asyncio.wait_for` can lose a cancellation that arrives as the awaited
thing completes (fixed in 3.12), and a library call can catch one while it reconnects;
the task then goes on with its loop, and a plain `gather` after `cancel()` waits for it
for ever (seen: a node's membership beat inside a Redis call as Redis came back, which
kept the node from stopping). Cancelling again until the task ends is the remedy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task], *, round_s: float = 1.0, rounds: int = 10
) -> list[asyncio.Task]:
    """Cancel `tasks` and wait for them to end, cancelling those still running again every
    `round_s`. Gives up after `rounds` rounds; returns the tasks that never ended (logged),
    so a stuck task cannot keep a process from stopping."""
    tasks = list(tasks)
    pending = {t for t in tasks if not t.done()}
    for _ in range(rounds):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=round_s)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: whoever ran it has logged it
    for task in pending:
        log.error("task %s did not stop when cancelled %d times", task.get_name(), rounds)
    return list(pending)
