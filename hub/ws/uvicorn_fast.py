"""The direct write path: the one module that reaches into uvicorn's internals.

Why: fan-out sends one frame to thousands of sockets. Through ASGI each send is a
coroutine (`await send(...)`) and its scheduling; under uvicorn's sans-I/O WebSocket
protocol (`ws="websockets-sansio"`), the object behind the ASGI `send` owns the socket's
transport, so a frame can be written at once, synchronously, when the transport is
writable. That protocol object is private to uvicorn; what we rely on, all on
`uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol`:

* the ASGI `send` is a bound method of the protocol (`send.__self__`);
* `conn`: the websockets `ServerProtocol` (`state`, `extensions`, `send_binary`,
  `send_text`, `data_to_send`; and `_state`, what its `state` property returns, read
  directly per frame: a property call per frame was ~1 % of a busy node);
* `transport`: the asyncio transport (`write`, `abort`);
* `writable`: an `asyncio.Event` cleared while the transport has paused writing;
* `close_sent`, `disconnected`: flags set when the close frame went out, when the peer
  went away;
* `pending_ping_payload`, `ping_sent_at`, `keepalive_timeout()`: the keepalive state its
  `handle_pong` clears when the peer answers, and what it does when the peer does not
  (`ping`: the hub sends the pings itself, uvicorn's per-socket timers are off);
* `request`, `response`: the handshake, kept for the connection's life unless dropped;
* `queue`: the receive queue (`put_nowait`, `get`, `empty`: all the protocol uses of it)
  and `writable` (`set`, `clear`, `is_set`, `wait`), replaced after the handshake by lean
  equivalents (`lighten`).

pyproject.toml pins uvicorn to the versions this was tested with, and
tests/test_ws_fast_path.py fails if a connection of a real server stops getting the
direct path. Under any other server (or a uvicorn without these), `protocol_of` returns
None and connections send through ASGI: correct, only slower; such connections are
counted in `supporthub_ws_without_fast_path_total`.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from websockets.protocol import State

_SansIO: type | None
try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    _SansIO = WebSocketsSansIOProtocol
except ImportError:  # another server, or a uvicorn without the sans-I/O protocol
    _SansIO = None

OPEN = State.OPEN
_REQUIRED = ("conn", "transport", "writable", "close_sent", "disconnected")
_HEADER16 = struct.Struct("!BBH")
_HEADER64 = struct.Struct("!BBQ")


def protocol_of(send: Any) -> Any | None:
    """uvicorn's sans-I/O protocol behind an ASGI `send`, if that is what runs us and it
    has everything `write_frame` uses; otherwise None."""
    proto = getattr(send, "__self__", None)
    if _SansIO is None or not isinstance(proto, _SansIO):
        return None
    if not all(hasattr(proto, name) for name in _REQUIRED):
        return None
    if not hasattr(getattr(proto, "conn", None), "_state"):  # what `write_frame` reads
        return None
    return proto


def write_frame(proto: Any, data: bytes, binary: bool) -> bool:
    """Write one message on the socket now if the transport takes it; False when the
    caller must queue it and send through ASGI instead (closing, paused, gone)."""
    if proto.close_sent or proto.disconnected or not proto.writable.is_set():
        return False
    ws = proto.conn
    if ws._state is not OPEN:
        return False  # closing: let the ASGI path report it
    if ws.extensions:  # e.g. per-message deflate: the protocol must frame it
        if binary:
            ws.send_binary(data)
        else:
            ws.send_text(data)
        proto.transport.write(b"".join(ws.data_to_send()))
        return True
    # A server frame is a 2-10 byte header and the payload (RFC 6455 5.2, unmasked);
    # building it here skips a Frame object and the protocol's buffers per message.
    opcode = 0x82 if binary else 0x81
    n = len(data)
    if n < 126:
        header = bytes((opcode, n))
    elif n < 65536:
        header = _HEADER16.pack(opcode, 126, n)
    else:
        header = _HEADER64.pack(opcode, 127, n)
    proto.transport.write(header + data)
    return True


def ping_frame(payload: bytes) -> bytes:
    """A server's ping frame (unmasked, fewer than 126 bytes of payload)."""
    return bytes((0x89, len(payload))) + payload


def ping(proto: Any, frame: bytes, payload: bytes, now: float) -> bool:
    """The keepalive beat of one socket: False (and the socket failed with 1011, as
    uvicorn's own keepalive does) when the peer has not answered the previous ping;
    otherwise `frame` (`ping_frame(payload)`) is written and the answer awaited. uvicorn's
    `handle_pong` clears `pending_ping_payload` when the matching pong comes back."""
    if proto.close_sent or proto.disconnected:
        return True
    if proto.pending_ping_payload is not None:
        proto.keepalive_timeout()
        return False
    if proto.conn.state is not OPEN:
        return True
    proto.pending_ping_payload = payload
    proto.ping_sent_at = now
    proto.transport.write(frame)
    return True


def forget_handshake(send: Any) -> None:
    """Drop the handshake's request and response the protocol keeps, and empty the
    request's headers: a socket may live for hours and they are never read again."""
    proto = protocol_of(send)
    if proto is not None:
        request = proto.request
        if request is not None:
            # websockets' parser keeps the request in its suspended frame for the socket's
            # life (a local of `ServerProtocol.parse`): what it holds goes, the shell stays
            request.headers.clear()
        proto.request = None
        proto.response = None


class LeanQueue:
    """What the protocol uses of its receive queue (`put_nowait`, `get`, `empty`), in a
    list and at most one future: an `asyncio.Queue` holds three deques and an `Event`
    with a fourth, about 2.5 KB per socket that waits for hours with nothing in them.
    Unbounded, like the queue it replaces (the protocol pauses reading after each
    message until the app takes it)."""

    __slots__ = ("_items", "_ready")

    def __init__(self, items: list | None = None) -> None:
        self._items: list = items or []
        self._ready: asyncio.Future | None = None  # awaited by the reader while empty

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        ready = self._ready
        if ready is not None:
            self._ready = None
            if not ready.done():
                ready.set_result(None)

    async def get(self) -> Any:
        """The next item; one reader at a time (the app's read loop). A reader cancelled
        while it waits (a timeout) leaves the queue as it was."""
        while not self._items:
            ready = self._ready
            if ready is None or ready.done():
                ready = self._ready = asyncio.get_running_loop().create_future()
            await ready
        return self._items.pop(0)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class LeanEvent(asyncio.Event):
    """An `asyncio.Event` whose waiters are a list, not a deque (624 bytes empty)."""

    def __init__(self) -> None:
        super().__init__()
        self._waiters = []  # type: ignore[assignment]  # append, remove, iterate: all it does


def lighten(send: Any) -> None:
    """Swap the protocol's receive queue and `writable` event for lean ones (what they
    hold comes along). Call it once the handshake is answered, before anything waits on
    either: here, in the app, nobody else reads them."""
    proto = protocol_of(send)
    if proto is None:
        return
    queue = proto.queue
    if isinstance(queue, asyncio.Queue) and not getattr(queue, "_getters", None):
        items = []
        while not queue.empty():
            items.append(queue.get_nowait())
        proto.queue = LeanQueue(items)
    writable = proto.writable
    if type(writable) is asyncio.Event and not getattr(writable, "_waiters", None):
        lean = LeanEvent()
        if writable.is_set():
            lean.set()
        proto.writable = lean


def buffered_bytes(send: Any) -> int:
    """Bytes the transport holds that the peer has not taken yet, under any uvicorn
    WebSocket protocol (each keeps its transport as `transport`); 0 under another server."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        return 0
    try:
        return transport.get_write_buffer_size()
    except (AttributeError, RuntimeError):  # closed already
        return 0


def abort_connection(send: Any) -> None:
    """Drop the TCP connection now, under any uvicorn WebSocket protocol (each keeps its
    transport as `transport`); nothing under another server."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        transport.abort()
