"""Frames queued by many tasks, published to every node together: one signed fan-out
publish (`FANOUT_CHANNEL`) per chunk instead of one Redis command and one signature per
frame.

A group commit resolves all its writes' futures at once, in the batch's order, and the
tasks waiting on them resume one after the other in that order before anything else of
theirs runs; each queues its frames as it resumes, so what one COMMIT stored goes out in
one publish, in seq order. While a publish is under way new frames wait for the next one,
as writes wait for the next COMMIT. Frames are published in the order they were queued,
one publish at a time: two frames of one conversation never overtake each other here.
"""

from __future__ import annotations

import asyncio
import logging

from hub.cluster.bus import FANOUT_CHANNEL, FANOUT_CHUNK, Bus
from hub.ws.protocol import encode_msgpack

log = logging.getLogger(__name__)


class FanoutQueue:
    def __init__(self, bus: Bus, head: tuple = ()):
        self._bus = bus
        self._head = list(head)  # items that open every chunk (a publisher's origin marker)
        self._items: list[tuple] = []
        self._published: asyncio.Future | None = None  # resolves when _items went out
        self._task: asyncio.Task | None = None

    def add(self, items: list[tuple]) -> asyncio.Future:
        """Queue (channel, frame bytes) items; the future resolves once the publish that
        carries them is done (failed publishes are logged by the bus, not raised)."""
        if self._published is None:
            self._published = asyncio.get_running_loop().create_future()
        published = self._published
        self._items.extend(items)
        if self._task is None:
            # starts after the tasks resumed before it: a whole COMMIT's frames go together
            self._task = asyncio.create_task(self._drain(), name="fanout-queue")
        return published

    async def _drain(self) -> None:
        try:
            while self._items:
                items, published = self._items, self._published
                self._items, self._published = [], None
                try:
                    for i in range(0, len(items), FANOUT_CHUNK):
                        chunk = encode_msgpack([*self._head, *items[i : i + FANOUT_CHUNK]])
                        await self._bus.publish(FANOUT_CHANNEL, chunk)  # logs failures
                except Exception:
                    log.exception("fan-out of %d frames failed", len(items))
                finally:
                    if published is not None and not published.done():
                        published.set_result(None)
        finally:
            self._task = None
            if self._published is not None:
                # cancelled (the node stops) with frames queued: nobody waits for ever
                self._published.set_result(None)
                self._published = None
