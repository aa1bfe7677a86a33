"""One client socket: a bounded outgoing queue drained by a single writer task.

Fan-out never awaits a socket: `push()` appends already-encoded bytes to the queue and
returns. When the queue is full the client is too slow; it is disconnected (1013) and
resumes from the store when it reconnects, so a stalled phone never slows delivery to
anyone else and never grows the node's memory without bound.

A connection also remembers the newest `seq` it was sent per stream (its notifications,
each conversation) so that the same frame arriving twice (a bus retry, a replay racing a
live push) is sent once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from hub import metrics
from hub.auth import Claims
from hub.errors import CloseCode
from hub.protocol import encode_json, encode_msgpack

_CLOSE = object()


class RateLimiter:
    """Token bucket: `rate` frames a second on average, bursts of `burst`."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Connection:
    __slots__ = (
        "_send",
        "binary",
        "claims",
        "session_id",
        "_out",
        "_max_queue",
        "_waiter",
        "closed",
        "close_code",
        "limiter",
        "bad_frames",
        "notif_seq",
        "conv_seq",
        "held",
        "channels",
        "__weakref__",
    )

    def __init__(self, send, *, binary: bool, max_queue: int, limiter: RateLimiter):
        self._send = send
        self.binary = binary
        self.claims: Claims | None = None
        self.session_id = ""
        self._out: deque = deque()
        self._max_queue = max_queue
        self._waiter: asyncio.Future | None = None
        self.closed = False
        self.close_code = 0
        self.limiter = limiter
        self.bad_frames: deque[float] = deque()
        self.notif_seq = 0
        self.conv_seq: dict[str, int] = {}
        self.held: list | None = None  # frames held back while a resume replays
        self.channels: tuple[str, ...] = ()

    # --- outgoing ----------------------------------------------------------------------

    def encode(self, frame: dict) -> bytes | str:
        return encode_msgpack(frame) if self.binary else encode_json(frame)

    def send_frame(self, frame: dict) -> None:
        """A frame meant for this connection only (ack, error, welcome...)."""
        self._enqueue(self.encode(frame))

    def push(self, frame: dict, data: bytes | str) -> None:
        """A fanned-out frame with its bytes encoded once for every connection of a codec."""
        if self.held is not None:
            self.held.append((frame, data))
            return
        if self.is_duplicate(frame):
            return
        self._enqueue(data)

    def is_duplicate(self, frame: dict) -> bool:
        kind = frame.get("type")
        if kind == "notification":
            seq = frame["seq"]
            if seq <= self.notif_seq:
                return True
            self.notif_seq = seq
        elif kind == "message":
            cid, seq = frame["conversation_id"], frame["seq"]
            if seq <= self.conv_seq.get(cid, 0):
                return True
            self.conv_seq[cid] = seq
        return False

    def hold(self) -> None:
        self.held = []

    def release(self) -> None:
        held, self.held = self.held or [], None
        for frame, data in held:
            self.push(frame, data)

    def _enqueue(self, data: Any) -> None:
        if self.closed:
            return
        if len(self._out) >= self._max_queue:
            metrics.QUEUE_DROPS.inc()
            self.close(CloseCode.TRY_AGAIN, "send queue full: reconnect and resume", flush=False)
            self.abort()
            return
        self._out.append(data)
        metrics.FRAMES_OUT.inc()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self, code: int = CloseCode.NORMAL, reason: str = "", *, flush: bool = True) -> None:
        """Stop accepting frames; the writer sends what is queued (unless `flush` is
        False), then the close frame, and ends."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        if not flush:
            self._out.clear()
        self._out.append((_CLOSE, code, reason))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def abort(self) -> None:
        """Drop the TCP connection now. A client that stopped reading cannot receive a
        close frame (our writes wait for it), so a slow consumer is cut off instead; it
        resumes from the store when it comes back."""
        protocol = getattr(self._send, "__self__", None)  # uvicorn's protocol object
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.abort()

    @property
    def queued(self) -> int:
        return len(self._out)

    async def run_writer(self) -> None:
        """The only coroutine that writes to the socket."""
        send, out = self._send, self._out
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not out:
                    self._waiter = loop.create_future()
                    await self._waiter
                    self._waiter = None
                    continue
                item = out.popleft()
                if type(item) is tuple:
                    await send({"type": "websocket.close", "code": item[1], "reason": item[2]})
                    return
                if type(item) is bytes:
                    await send({"type": "websocket.send", "bytes": item})
                else:
                    await send({"type": "websocket.send", "text": item})
        except (OSError, RuntimeError):
            # the peer went away mid-send; the reader sees the disconnect
            self.closed = True
