"""One client socket: frames go straight to the socket when it can take them, otherwise
into a bounded queue drained by a writer task that exists only while there is a backlog.

Fan-out never awaits a socket: `push()` either writes already-encoded bytes to the
transport at once (hub.ws.uvicorn_fast, when the transport is writable and nothing is
queued) or appends them to the queue and returns. When the queue is full, or the bytes
waiting for the client (the queue's and what the transport still holds) pass
`max_buffered_bytes`, the client is too slow; it is cut off (1013, counted) and resumes
from the store when it reconnects, so a stalled phone never slows delivery to anyone
else and never grows the node's memory without bound: the transport takes frames
directly only while it is below its high-water mark, and everything past that waits in
the queue, where it is counted. Idle connections hold no task and no queue: a few hundred bytes of ours.

A connection also remembers the newest `seq` it was sent per stream (its notifications,
each conversation) so that the same frame arriving twice (a bus retry, a replay racing a
live push) is sent once, and a frame that arrives ahead of an earlier one waits for it:
every stream reaches the client in seq order. Queue places are not a stream (a place may
be skipped), but each carries the number of the routing pass that computed it: a place
or an assignment from an older pass than the newest one this device heard of that chat
from is dropped (hub.rules.queue.is_news), since two nodes' passes can be announced out of
their commit order.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable

from hub import metrics
from hub.rules.notices import LOCALIZED, localize
from hub.rules.queue import is_news
from hub.ws.protocol import encode_json_bytes, encode_msgpack
from hub.ws.uvicorn_fast import abort_connection, buffered_bytes, ping, protocol_of, write_frame
from supporthub_core.auth import Claims
from supporthub_core.errors import CloseCode

log = logging.getLogger(__name__)

_CLOSE = object()
NOTIFICATIONS = "\x00notifications"  # the stream key of a user's notifications
MAX_AHEAD = 256  # frames waiting for a gap to fill, per connection, before giving up
GAP_WAIT_S = 0.5  # how long they wait for a late frame before the store is asked


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
        "_proto",
        "binary",
        "claims",
        "session_id",
        "_out",
        "_max_queue",
        "_max_bytes",
        "_queued_bytes",
        "_writer",
        "closed",
        "close_code",
        "limiter",
        "bad_frames",
        "notif_seq",
        "conv_seq",
        "queue_told",
        "ahead",
        "gap_timer",
        "on_gap",
        "held",
        "channels",
        "expiry",
        "locale",
        "client_kind",
        "__weakref__",
    )

    def __init__(
        self,
        send,
        *,
        binary: bool,
        max_queue: int,
        limiter: RateLimiter,
        max_bytes: int = 4 * 1024 * 1024,
    ):
        self._send = send
        self._proto = protocol_of(send)
        if self._proto is None:
            _without_fast_path()
        self.binary = binary
        self.claims: Claims | None = None
        self.session_id = ""
        self._out: deque | None = None
        self._max_queue = max_queue
        self._max_bytes = max_bytes
        self._queued_bytes = 0
        self._writer: asyncio.Task | None = None
        self.closed = False
        self.close_code = 0
        self.limiter = limiter
        self.bad_frames: deque[float] | None = None
        self.notif_seq = 0
        self.conv_seq: dict[str, int] = {}
        # conversation -> the routing pass of the newest place or assignment it was sent
        self.queue_told: dict[str, int] | None = None
        # frames ahead of a gap, waiting for the ones before them: stream -> seq -> frame
        self.ahead: dict[str, dict[int, tuple[dict, bytes]]] | None = None
        self.gap_timer: asyncio.TimerHandle | None = None
        self.on_gap: Callable[[Connection], None] | None = None  # fetch a gap from the store
        self.held: list | None = None  # frames held back while a resume replays
        self.channels: tuple[str, ...] = ()
        self.expiry: asyncio.TimerHandle | None = None  # closes the session at the token's exp
        # A user device's (language, IANA time zone) from its hello, either may be None;
        # None: the device said neither, and gets notifications as stored for the user.
        self.locale: tuple[str | None, str | None] | None = None
        self.client_kind: str = "app"  # "web": a browser page (its handshake had an Origin)

    @property
    def identity(self) -> Claims:
        """Who signed in: every frame after `hello` comes from a connection that has."""
        if self.claims is None:
            raise RuntimeError("a frame handled before hello")
        return self.claims

    @property
    def direct(self) -> bool:
        """True when frames can be written straight to the socket (hub.ws.uvicorn_fast)."""
        return self._proto is not None

    # --- outgoing ----------------------------------------------------------------------

    def encode(self, frame: dict) -> bytes:
        return encode_msgpack(frame) if self.binary else encode_json_bytes(frame)

    def send_frame(self, frame: dict) -> None:
        """A frame meant for this connection only (ack, error, welcome...)."""
        self._enqueue(self.encode(frame))

    def push(self, frame: dict, data: bytes) -> None:
        """A fanned-out frame with its bytes encoded once for every connection of a codec.

        Streams (the notifications, each conversation) go out in seq order, each frame
        once: a frame seen already is dropped, and a frame ahead of a gap waits (at most
        `GAP_WAIT_S`, at most `MAX_AHEAD` of them) for the frames before it. Frames of
        one stream stored by two nodes (two nodes that briefly both own a user, a replay
        racing the live bus) can arrive out of order; the late one fills the gap and
        the waiting ones follow it. A gap still open after `GAP_WAIT_S` is a frame lost on
        its way: `on_gap` fetches it from the store (again and again while the store is
        down). More than `MAX_AHEAD` waiting: the connection is closed (1013) and the client
        resumes from the store."""
        if self.held is not None:
            self.held.append((frame, data))
            return
        pass_no = frame.get("queue_seq")
        if pass_no is not None and not self.told_queue(frame["conversation_id"], pass_no):
            return  # a place (or an assignment) a later routing pass overtook
        if self.locale is not None and frame.get("type") in LOCALIZED:
            local = localize(frame, *self.locale)
            if local is not None:  # this device reads another language or zone
                data = self.encode(local)
        kind = frame.get("type")
        if kind == "notification":
            stream, seq, last = NOTIFICATIONS, frame["seq"], self.notif_seq
        elif kind == "message":
            stream, seq = frame["conversation_id"], frame["seq"]
            last = self.conv_seq.get(stream, 0)
        else:
            if kind == "chat.assigned" and "history" in frame:  # the agent's copy: a stream
                history = frame["history"]
                self._enqueue(data)
                self.set_base(frame["conversation_id"], history[-1]["seq"] if history else 0)
                return
            self._enqueue(data)
            return
        if seq == last + 1 and self.ahead is None:  # the usual case
            if stream is NOTIFICATIONS:
                self.notif_seq = seq
            else:
                self.conv_seq[stream] = seq
            self._enqueue(data)
            return
        self._in_order(stream, seq, last, frame, data)

    def push_next_notification(self, seq: int, data: bytes) -> bool:
        """Notification `seq`, already encoded for this connection's codec, when it simply
        follows the last one sent (no gap waiting, no replay holding frames back, no device
        language to render it in): sent or queued as `push` would, and True. False: nothing
        done, the caller takes `push` with the whole frame."""
        if (
            seq != self.notif_seq + 1
            or self.ahead is not None
            or self.held is not None
            or self.locale is not None
        ):
            return False
        self.notif_seq = seq
        self._enqueue(data)
        return True

    def _in_order(self, stream: str, seq: int, last: int, frame: dict, data: bytes) -> None:
        if self.closed:
            return
        ahead = self.ahead.get(stream) if self.ahead is not None else None
        if seq <= last or (ahead is not None and seq in ahead):
            return  # sent already, or waiting already
        if seq == last + 1:
            self._enqueue(data)
            self._set_last(stream, seq)
            if ahead:
                self._advance(stream)
            return
        if self.ahead is None:
            self.ahead = {}
        self.ahead.setdefault(stream, {})[seq] = (frame, data)
        if sum(map(len, self.ahead.values())) > MAX_AHEAD:
            # a gap that does not fill: the client resumes from the store, in order
            metrics.STREAM_GAPS.labels("cut_off").inc()
            self.close(CloseCode.TRY_AGAIN, "fell behind: reconnect and resume", flush=False)
            self.abort()
            return
        self.wait_for_gap()

    def wait_for_gap(self) -> None:
        """Look at the open gaps again in `GAP_WAIT_S`."""
        if self.gap_timer is None and self.ahead is not None and not self.closed:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self.gap_timer = loop.call_later(GAP_WAIT_S, self._gap_expired)

    def _set_last(self, stream: str, seq: int) -> None:
        if stream == NOTIFICATIONS:
            self.notif_seq = seq
        else:
            self.conv_seq[stream] = seq

    def _last(self, stream: str) -> int:
        return self.notif_seq if stream == NOTIFICATIONS else self.conv_seq.get(stream, 0)

    def _advance(self, stream: str) -> None:
        """Send what waited on `stream` and now follows on without a gap; forget what the
        client has had already."""
        if self.ahead is None or stream not in self.ahead:
            return
        ahead = self.ahead[stream]
        last = self._last(stream)
        for seq in [s for s in ahead if s <= last]:
            del ahead[seq]
        while last + 1 in ahead:
            last += 1
            self._enqueue(ahead.pop(last)[1])
        self._set_last(stream, last)
        if not ahead:
            del self.ahead[stream]
            if not self.ahead:
                self._no_gaps()

    def _no_gaps(self) -> None:
        self.ahead = None
        if self.gap_timer is not None:
            self.gap_timer.cancel()
            self.gap_timer = None

    def _gap_expired(self) -> None:
        self.gap_timer = None
        if self.closed or self.ahead is None:
            return
        if self.on_gap is not None:
            self.on_gap(self)
        else:
            self.flush_gaps()

    def flush_gaps(self) -> None:
        """Give up waiting: send every waiting frame, each stream in seq order. Not while
        frames are held (a catch-up under way): one of them may fill the gap."""
        if self.held is not None:
            self.wait_for_gap()
            return
        ahead = self.ahead
        self._no_gaps()
        if not ahead:
            return
        for stream, waiting in ahead.items():
            last = self._last(stream)
            for seq in sorted(waiting):
                if seq > last:
                    self._enqueue(waiting[seq][1])
                    last = seq
            self._set_last(stream, last)

    def told_queue(self, conversation_id: str, pass_no: int | None) -> bool:
        """Record that this device hears of `conversation_id`'s place (or assignment) from
        routing pass `pass_no`; False when it heard from a later pass already (stale)."""
        told = self.queue_told
        if not is_news(told.get(conversation_id) if told is not None else None, pass_no):
            return False
        if pass_no is not None:
            if told is None:
                told = self.queue_told = {}
            told[conversation_id] = pass_no
        return True

    def set_base(self, stream: str, seq: int) -> None:
        """Everything up to `seq` on this stream is known to the client."""
        if stream == NOTIFICATIONS:
            self.notif_seq = max(self.notif_seq, seq)
        else:
            self.conv_seq[stream] = max(self.conv_seq.get(stream, 0), seq)
        if self.ahead is not None:
            self._advance(stream)

    def hold(self) -> None:
        self.held = []

    def release(self) -> None:
        held, self.held = self.held or [], None
        for frame, data in in_seq_order(held):
            self.push(frame, data)

    def _enqueue(self, data: bytes) -> None:
        if self.closed:
            return
        metrics.FRAMES_OUT.value += 1
        proto = self._proto
        if self._writer is None and proto is not None:
            if write_frame(proto, data, self.binary):
                metrics.FRAMES_DIRECT.value += 1
                return
        out = self._out
        if out is None:
            out = self._out = deque()
        queued = self._queued_bytes + len(data)
        waiting = queued + buffered_bytes(self._send)  # and what the transport holds
        if len(out) >= self._max_queue:
            metrics.QUEUE_DROPS.inc()
            self._cut_off("frames", waiting)
            return
        if waiting > self._max_bytes:
            self._cut_off("bytes", waiting)
            return
        self._queued_bytes = queued
        out.append(data)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    def _cut_off(self, reason: str, buffered: int) -> None:
        """A slow consumer: drop what waits for it and the connection."""
        metrics.SLOW_CONSUMERS.labels(reason).inc()
        metrics.SLOW_CONSUMER_BYTES.observe(buffered)
        self.close(CloseCode.TRY_AGAIN, "too slow: reconnect and resume", flush=False)
        self.abort()

    def close(self, code: int = CloseCode.NORMAL, reason: str = "", *, flush: bool = True) -> None:
        """Stop accepting frames; what is queued is sent (unless `flush` is False), then
        the close frame."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self._no_gaps()
        out = self._out
        if out is None:
            out = self._out = deque()
        elif not flush:
            out.clear()
            self._queued_bytes = 0
        out.append((_CLOSE, code, reason))
        if self._writer is None:
            try:
                self._writer = asyncio.get_running_loop().create_task(self._drain())
            except RuntimeError:  # no running loop: nothing can be sent anyway
                pass

    def ping(self, frame: bytes, payload: bytes, now: float) -> bool:
        """A keepalive ping (hub.ws.keepalive), `frame` built once for many sockets.
        False: the peer never answered the previous one, and the socket is failed (1011)."""
        if self._proto is None:
            return True
        return ping(self._proto, frame, payload, now)

    def abort(self) -> None:
        """Drop the TCP connection now. A client that stopped reading cannot receive a
        close frame (our writes wait for it), so a slow consumer is cut off instead; it
        resumes from the store when it comes back."""
        abort_connection(self._send)

    @property
    def queued(self) -> int:
        return len(self._out) if self._out is not None else 0

    async def _drain(self) -> None:
        """The backlog writer: sends queued frames in order through ASGI, then ends."""
        send, out = self._send, self._out
        try:
            while out:
                item = out.popleft()
                if type(item) is tuple:
                    await send({"type": "websocket.close", "code": item[1], "reason": item[2]})
                    return
                self._queued_bytes -= len(item)
                if self.binary:
                    await send({"type": "websocket.send", "bytes": item})
                else:
                    await send({"type": "websocket.send", "text": item.decode()})
        except (OSError, RuntimeError, asyncio.CancelledError):
            self.closed = True  # the peer went away mid-send; the reader sees the disconnect
        except Exception as exc:  # e.g. uvicorn's ClientDisconnected
            log.debug("send failed: %r", exc)
            self.closed = True
        finally:
            self._writer = None
            if self._out is not None and not self._out:
                self._out = None

    async def finish(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for queued frames and the close frame to go out."""
        writer = self._writer
        if writer is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(writer), timeout)
        except (TimeoutError, asyncio.CancelledError):
            writer.cancel()


def _without_fast_path() -> None:
    metrics.WS_WITHOUT_FAST_PATH.inc()
    _warn_once()


@functools.cache
def _warn_once() -> None:
    log.warning(
        "the server's WebSocket protocol allows no direct writes: every frame goes through"
        " ASGI, slower (see hub.ws.uvicorn_fast)"
    )


def _stream_of(frame: dict) -> str | None:
    kind = frame.get("type")
    if kind == "notification":
        return NOTIFICATIONS
    if kind == "message":
        return frame["conversation_id"]
    return None


def in_seq_order(held: list[tuple[dict, bytes]]) -> list[tuple[dict, bytes]]:
    """Held frames with each stream's frames sorted by seq, in the places that stream's
    frames held: frames from two nodes (or a replay and the live bus) can arrive out of
    order, and a client must see every stream in seq order. Other frames keep their
    place, so `chat.opened` still comes before the chat's first message."""
    places: dict[str, list[int]] = {}
    for i, (frame, _) in enumerate(held):
        stream = _stream_of(frame)
        if stream is not None:
            places.setdefault(stream, []).append(i)
    if not places:
        return held
    ordered = list(held)
    for positions in places.values():
        items = sorted((held[i] for i in positions), key=lambda item: item[0]["seq"])
        for i, item in zip(positions, items, strict=True):
            ordered[i] = item
    return ordered
