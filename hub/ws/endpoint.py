"""`GET /ws`: origin check, subprotocol negotiation, hello/welcome, then a read loop that
decodes each frame once and dispatches it through a table of handlers.

This is a plain ASGI app (not Starlette's WebSocket wrapper) so that the hot path is one
dict per frame and nothing else. Every bad frame becomes an `error` frame here; the
connection stays open unless the client keeps misbehaving.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hub import metrics
from hub.ws import uvicorn_fast
from hub.ws.connection import Connection, RateLimiter
from hub.ws.protocol import (
    JSON,
    MSGPACK,
    Hello,
    decode_raw,
    encode_json,
    encode_msgpack,
    error_frame,
    frame_id,
    parse_frame,
)
from supporthub_core.auth import verify_token
from supporthub_core.context import request_id, request_id_from
from supporthub_core.errors import (
    BadFrame,
    CloseCode,
    Forbidden,
    HubError,
    RateLimited,
    TooLarge,
    Unauthorized,
    as_hub_error,
)

if TYPE_CHECKING:
    from hub.composition import Hub

log = logging.getLogger(__name__)

# Each handler takes the model of its own frame type; the table pairs them by the `type`
# string, which a type checker cannot follow, so the frame is Any here.
Handler = Callable[["Hub", Connection, Any], Awaitable[None]]


def choose_subprotocol(offered: list[str]) -> str | None:
    """The first one the client offers that we speak; None means JSON without a header."""
    for proto in offered:
        if proto in (MSGPACK, JSON):
            return proto
    return None


def origin_allowed(scope: dict, allowed: list[str]) -> bool:
    origin = next((v for k, v in scope.get("headers") or () if k == b"origin"), None)
    if origin is None:
        return True  # an app or a script, not a browser
    return origin.decode("latin-1").rstrip("/") in allowed


class OpenPerAddress:
    """Sockets open at once per client address on this node. An address has an entry
    only while it holds a socket, and leaves when its last one closes: the table is as
    big as the open sockets at most, and nothing ever empties it wholesale."""

    __slots__ = ("max_open", "open")

    def __init__(self, max_open: int):
        self.max_open = max_open
        self.open: dict[str, int] = {}

    def take(self, key: str) -> bool:
        held = self.open.get(key, 0)
        if held >= self.max_open:
            return False
        self.open[key] = held + 1
        return True

    def release(self, key: str) -> None:
        left = self.open.get(key, 1) - 1
        if left <= 0:
            self.open.pop(key, None)
        else:
            self.open[key] = left


# `chat.send`s of one socket in flight at once (hub.ws.handlers.PIPELINED); one more waits
# for the oldest: a socket cannot queue unbounded work
MAX_PIPELINED = 32


class WebSocketEndpoint:
    def __init__(
        self,
        hub: Hub,
        handlers: dict[str, tuple[Handler, frozenset[str]]],
        pipelined: dict[str, Callable[..., Awaitable[Any]]] | None = None,
    ):
        self.hub = hub
        self.handlers = handlers
        self.pipelined = pipelined or {}
        self.open = OpenPerAddress(hub.settings.max_connections_per_address)

    async def __call__(self, scope, receive, send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        s = self.hub.settings
        if not origin_allowed(scope, s.origins):
            # before the upgrade (HTTP 403): a page of another site learns nothing more
            await send({"type": "websocket.close", "code": CloseCode.POLICY})
            return
        if self.hub.node.draining:
            metrics.WS_REFUSED.labels("draining").inc()
            await _refuse(scope, send, CloseCode.GOING_AWAY, "node shutting down", "unavailable")
            return
        address = self.hub.addresses.of_scope(scope)
        key = self.hub.addresses.key(address)
        if not self.open.take(key):
            metrics.WS_REFUSED.labels("open").inc()
            await _refuse(scope, send, CloseCode.POLICY, TOO_MANY_OPEN, "rate_limited")
            return
        token = request_id.set(request_id_from(scope.get("headers")))
        try:
            limits = self.hub.limits
            if not await limits.hit(limits.ws_opens, key):
                metrics.WS_REFUSED.labels("rate").inc()
                await _refuse(scope, send, CloseCode.TRY_AGAIN, TOO_FAST, "rate_limited")
                return
            await self._session(scope, receive, send, address)
        finally:
            request_id.reset(token)
            self.open.release(key)

    async def _session(self, scope, receive, send, address: str) -> None:
        s = self.hub.settings
        proto = choose_subprotocol(scope.get("subprotocols") or [])
        rid = request_id.get() or ""
        accept: dict = {"type": "websocket.accept", "headers": [(b"x-request-id", rid.encode())]}
        if proto is not None:
            accept["subprotocol"] = proto
        web = any(k == b"origin" for k, _ in scope.get("headers") or ())
        await send(accept)
        _forget_handshake(scope, send)
        started = time.monotonic()
        conn = Connection(
            send,
            binary=proto == MSGPACK,
            max_queue=s.send_queue_frames,
            limiter=RateLimiter(s.rate_per_s, s.rate_burst),
            max_bytes=s.max_buffered_bytes,
        )
        if web:  # a browser page (apps and scripts send no Origin)
            conn.client_kind = "web"
        registered = False
        peer_code: int | None = None
        self.hub.keepalive.add(conn)
        try:
            if not await self._hello(conn, receive):
                return
            registered = True
            log.info("ws open: %s %s from %s", conn.identity.role, conn.identity.sub, address)
            peer_code = await self._read_loop(conn, receive)
        finally:
            self.hub.keepalive.remove(conn)
            if registered:
                await self.hub.sessions.unregister(conn)
            by_server = conn.closed and peer_code is None
            if not conn.closed:
                conn.close(CloseCode.NORMAL)
            await conn.finish()
            who = f"{conn.identity.role} {conn.identity.sub}" if registered else "before welcome"
            code = conn.close_code if by_server else peer_code
            log.info("ws closed: %s from %s after %.1fs, code %s by %s", who, address,
                     time.monotonic() - started, code if code is not None else "-",
                     "server" if by_server else "client")  # fmt: skip

    async def _hello(self, conn: Connection, receive) -> bool:
        """Wait for a hello with a good token. A bad or missing token closes with 4001; a
        hello whose token is good but whose other fields are malformed (`resume`, `lang`)
        gets an error and the client may send a corrected hello in the time left."""
        s = self.hub.settings
        deadline = time.monotonic() + s.hello_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                conn.send_frame(error_frame("unauthorized", "no hello within the time limit"))
                conn.close(CloseCode.UNAUTHORIZED, "hello timeout")
                return False
            if message["type"] != "websocket.receive":
                return False
            raw = None
            try:
                raw = decode_raw(*_payload(message))
                if raw["type"] != "hello":
                    raise BadFrame("the first frame must be hello")
                claims = verify_token(self.hub.secret, raw.get("token"))
                if claims.role == "service":
                    raise Forbidden("service tokens cannot open a session")
            except HubError as exc:
                conn.send_frame(error_frame("unauthorized", exc.message, frame_id(raw)))
                conn.close(CloseCode.UNAUTHORIZED, "bad or missing token")
                return False
            try:
                hello = parse_frame(raw)
                if not isinstance(hello, Hello):
                    raise BadFrame("the first frame must be hello")
                break
            except BadFrame as exc:
                self._refuse(conn, BadFrame(f"hello: {exc.message}"), frame_id(raw))
                if conn.closed:
                    return False
        conn.claims = claims
        conn.session_id = uuid.uuid4().hex
        try:
            await self.hub.sessions.register(conn, hello)
        except Unauthorized as exc:  # a well-signed token of an agent gone or disabled
            await self.hub.sessions.unregister(conn)
            conn.send_frame(error_frame("unauthorized", exc.message, frame_id(raw)))
            conn.close(CloseCode.UNAUTHORIZED, exc.message[:100])
            return False
        except Exception as exc:
            if as_hub_error(exc) is None:
                log.exception("could not register a connection")
            else:
                log.warning("could not register a connection: %r", exc)
            await self.hub.sessions.unregister(conn)
            conn.send_frame(
                error_frame("unavailable", "the hub cannot take this session now, retry later")
            )
            conn.close(CloseCode.TRY_AGAIN, "try again")
            return False
        return True

    async def _read_loop(self, conn: Connection, receive) -> int | None:
        """Until the client goes (its close code) or the server closes (None).

        Frames are handled one after the other, except `chat.send`s in a row: each is
        queued for the store at once and the next frame read while it commits (so that a
        socket's messages share group commits instead of waiting one COMMIT and one
        publish each), up to `MAX_PIPELINED` at a time; their answers keep their order,
        and any other frame waits until the sends before it are done."""
        inflight: deque[asyncio.Task] = deque()
        try:
            return await self._read_frames(conn, receive, inflight)
        finally:
            if inflight:  # queued writes commit anyway: let their answers and pushes go
                await asyncio.wait(inflight)

    async def _read_frames(self, conn: Connection, receive, inflight: deque) -> int | None:
        s = self.hub.settings
        handlers = self.handlers
        while not conn.closed:
            message = await receive()
            if message["type"] != "websocket.receive":
                return int(message.get("code", CloseCode.NORMAL))  # websocket.disconnect
            if conn.closed:
                return None  # closed meanwhile by the server (token expired...)
            metrics.FRAMES_IN.inc()
            raw = None
            try:
                data, binary = _payload(message)
                if len(data) > s.max_frame_bytes:
                    raise TooLarge("frame too large")
                raw = decode_raw(data, binary)
                if not conn.limiter.allow():
                    raise RateLimited("too many frames, slow down")
                frame = parse_frame(raw)
                entry = handlers.get(raw["type"])
                if entry is None:
                    raise BadFrame(f"{raw['type']} is not accepted here")
                handler, roles = entry
                role = conn.identity.role
                if role not in roles:
                    raise Forbidden(f"{raw['type']} is not allowed for role {role}")
                while inflight and inflight[0].done():
                    inflight.popleft()
                pipelined = self.pipelined.get(raw["type"])
                if pipelined is None:
                    if inflight:
                        await asyncio.wait(inflight)
                        inflight.clear()
                    await handler(self.hub, conn, frame)
                    continue
                if len(inflight) >= MAX_PIPELINED:
                    await asyncio.wait([inflight.popleft()])
                before = inflight[-1] if inflight else None
                inflight.append(
                    asyncio.create_task(self._pipelined(conn, pipelined, frame, raw, before))
                )
            except Exception as exc:
                self._failed(conn, exc, raw)
        return None

    async def _pipelined(self, conn: Connection, handler, frame, raw: dict, before) -> None:
        try:
            await handler(self.hub, conn, frame, before)
        except Exception as exc:
            if before is not None:
                await asyncio.wait([before])
            self._failed(conn, exc, raw)

    def _failed(self, conn: Connection, exc: Exception, raw: dict | None) -> None:
        if isinstance(exc, HubError):
            self._refuse(conn, exc, frame_id(raw))
            return
        # the store or the bus down: `unavailable` (nothing was done, retry later)
        error = as_hub_error(exc)
        if error is None:
            log.error("handler failed", exc_info=exc)
            conn.send_frame(error_frame("invalid", "internal error", frame_id(raw)))
        else:
            log.warning("%s: %r", raw.get("type") if raw else "frame", exc)
            self._refuse(conn, error, frame_id(raw))

    def _refuse(self, conn: Connection, exc: HubError, fid: str | None) -> None:
        metrics.BAD_FRAMES.labels(exc.code).inc()
        conn.send_frame(error_frame(exc.code, exc.message, fid, exc.details))
        if isinstance(exc, TooLarge):
            conn.close(CloseCode.TOO_BIG, "frame too large")
            return
        if exc.code in ("bad_frame", "rate_limited"):
            s = self.hub.settings
            now = time.monotonic()
            bad = conn.bad_frames
            if bad is None:
                bad = conn.bad_frames = deque()
            bad.append(now)
            while bad and now - bad[0] > s.bad_frames_window_s:
                bad.popleft()
            if len(bad) > s.bad_frames_limit:
                conn.close(CloseCode.POLICY, "too many bad frames")


TOO_MANY_OPEN = "too many connections from this address"
TOO_FAST = "too many new connections from this address: retry later"


async def _refuse(scope: dict, send, code: int, reason: str, error_code: str) -> None:
    """Refuse a socket after the upgrade, so that the client can tell why (a refusal
    before it is a bare HTTP 403, like a refused origin): `error {code, message}`, then
    the close frame with `code` and `reason`."""
    proto = choose_subprotocol(scope.get("subprotocols") or [])
    accept: dict = {"type": "websocket.accept"}
    if proto is not None:
        accept["subprotocol"] = proto
    frame = error_frame(error_code, reason)
    if proto == MSGPACK:
        message = {"type": "websocket.send", "bytes": encode_msgpack(frame)}
    else:
        message = {"type": "websocket.send", "text": encode_json(frame)}
    try:
        await send(accept)
        await send(message)
        await send({"type": "websocket.close", "code": code, "reason": reason})
    except (OSError, RuntimeError) as exc:  # gone already
        log.debug("refused socket went away: %r", exc)


def _forget_handshake(scope: dict, send) -> None:
    """The handshake's request, response and headers are never read again; a socket may
    live for hours, so let them go (about a fifth of a connection's memory)."""
    scope["headers"] = []
    uvicorn_fast.forget_handshake(send)
    uvicorn_fast.lighten(send)  # and a lean receive queue and `writable` event


def _payload(message: dict) -> tuple[bytes | str, bool]:
    data = message.get("bytes")
    if data is not None:
        return data, True
    text = message.get("text")
    if text is None:
        raise BadFrame("empty frame")
    return text, False
