"""WebSocket pings for every socket of the node from one timer.

uvicorn's own keepalive arms two timers per socket for each ping (the next ping, the pong
deadline) and builds each ping frame through websockets; with 10,000 idle sockets that was
most of an idle node's CPU. Here the sockets sit on a wheel of `SLOTS` slots, one slot
visited per `interval_s / SLOTS`: each socket of the slot is sent a ping frame built once
per visit, and a socket still owing the pong of the previous visit's ping (one interval
ago) is failed with 1011, as uvicorn's keepalive with `ping_timeout = ping_interval` does.
"""

from __future__ import annotations

import asyncio
import os

from hub.ws import uvicorn_fast
from hub.ws.connection import Connection

SLOTS = 20


class Keepalive:
    def __init__(self, interval_s: float, slots: int = SLOTS) -> None:
        self.interval_s = interval_s
        self._slots: list[set[Connection]] = [set() for _ in range(slots)]
        self._cursor = 0
        self._slot_of: dict[Connection, int] = {}

    @property
    def step_s(self) -> float:
        return self.interval_s / len(self._slots)

    def add(self, conn: Connection) -> None:
        """Ping `conn` from one interval on (nothing under a server without the direct
        path: there is no ping through ASGI)."""
        if self.interval_s <= 0 or not conn.direct:
            return
        slot = self._cursor  # visited last: one whole interval from now
        self._slots[slot].add(conn)
        self._slot_of[conn] = slot

    def remove(self, conn: Connection) -> None:
        slot = self._slot_of.pop(conn, None)
        if slot is not None:
            self._slots[slot].discard(conn)

    def __len__(self) -> int:
        return len(self._slot_of)

    def beat(self) -> None:
        """Visit the next slot: ping its sockets, fail those that never answered."""
        self._cursor = (self._cursor + 1) % len(self._slots)
        sockets = self._slots[self._cursor]
        if not sockets:
            return
        payload = os.urandom(4)
        frame = uvicorn_fast.ping_frame(payload)
        now = asyncio.get_running_loop().time()  # uvicorn's clock for the pong's delay
        for conn in tuple(sockets):
            if not conn.ping(frame, payload, now):
                self.remove(conn)

    async def run(self) -> None:
        """Beat forever, one slot per `step_s`."""
        if self.interval_s <= 0:
            return
        while True:
            await asyncio.sleep(self.step_s)
            self.beat()
