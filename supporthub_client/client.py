"""The reconnecting client: one object per signed-in session.

What it promises (the same as the JavaScript client, clients/js):
- `hello` is the first frame, with `resume` and the fields of `hello`; nothing else is sent
  before `welcome`.
- After a drop it reconnects by itself (exponential backoff with jitter) and resumes from
  the highest seq of every conversation and of the notifications received *without a
  gap*, so a replay only fills holes.
- Each `message` and `notification` is handed on once (by seq per stream and by id).
- `send_message` goes through an outbox (in memory, or a file with `FileOutbox`) until its
  `ack`: it survives reconnects and restarts, and its `client_msg_id` makes the hub store
  it once however often it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
import websockets

from supporthub_client.codec import decode, encode, protocol_of
from supporthub_client.events import Event, StateChange, parse

TokenSource = str | Callable[[], str] | Callable[[], Awaitable[str]]
SEEN_LIMIT = 2000
IDS_LIMIT = 5000
OUTBOX_LIMIT = 200
FINAL_ERRORS = frozenset(
    {"bad_frame", "forbidden", "not_found", "invalid", "conflict", "unauthorized"}
)
_counter = itertools.count(1)
log = logging.getLogger(__name__)


class HubError(Exception):
    """An `error` frame answering a request (`code`, `message`, the whole `frame`), or the
    client's own `timeout` / `disconnected` / `stopped`."""

    def __init__(self, code: str, message: str = "", frame: dict[str, Any] | None = None):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.frame = frame or {}


def client_msg_id() -> str:
    """A client message id unique across restarts and devices."""
    return f"m-{int(time.time() * 1000):x}-{secrets.token_hex(6)}-{next(_counter)}"


_new_client_msg_id = client_msg_id


class SeqTracker:
    """Per-stream duplicate filter with a gap-free watermark."""

    def __init__(self, watermark: int = 0) -> None:
        self.watermark = watermark
        self.ahead: set[int] = set()

    def accept(self, seq: Any) -> bool:
        """True the first time `seq` is seen."""
        if not isinstance(seq, int) or isinstance(seq, bool):
            return False
        if seq <= self.watermark or seq in self.ahead:
            return False
        self.ahead.add(seq)
        while self.watermark + 1 in self.ahead:
            self.watermark += 1
            self.ahead.discard(self.watermark)
        if len(self.ahead) > SEEN_LIMIT:  # a hole that never fills: give up on it
            lowest = min(self.ahead)
            self.watermark = lowest
            self.ahead.discard(lowest)
        return True

    @property
    def has_gap(self) -> bool:
        return bool(self.ahead)


class RecentIds:
    """A bounded set of ids, oldest forgotten first."""

    def __init__(self, limit: int = IDS_LIMIT) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str | None) -> bool:
        """True the first time `key` is seen (None is always new)."""
        if key is None:
            return True
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > self.limit:
            self._ids.popitem(last=False)
        return True


class OutboxStore(Protocol):
    """Where unsent `chat.send` frames are kept between runs."""

    def load(self) -> list[dict[str, Any]]: ...

    def save(self, frames: list[dict[str, Any]]) -> None: ...


class MemoryOutbox:
    """An outbox that lives as long as the object (share it to hand it to a new client)."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def load(self) -> list[dict[str, Any]]:
        return list(self.frames)

    def save(self, frames: list[dict[str, Any]]) -> None:
        self.frames = list(frames)


class FileOutbox:
    """An outbox in a JSON file, replaced atomically on every change."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        return [f for f in data if isinstance(f, dict)] if isinstance(data, list) else []

    def save(self, frames: list[dict[str, Any]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(frames))
        os.replace(tmp, self.path)


class _Pending:
    __slots__ = ("frame", "future", "retry", "durable", "sent", "tries", "match_type")

    def __init__(
        self, frame: dict[str, Any], retry: bool, durable: bool, match_type: str | None
    ) -> None:
        self.frame = frame
        self.future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.retry = retry
        self.durable = durable
        self.sent = False
        self.tries = 0
        self.match_type = match_type


class Client:
    """A session with the hub that survives drops. Use as `async with Client(...) as c:`
    or `await c.start()` / `await c.stop()`; read typed events with `async for event in
    c.events()` (or `await c.next_event()`), or register callbacks with `on(type, fn)`."""

    def __init__(
        self,
        url: str,
        token: TokenSource,
        *,
        codec: str = "json",
        hello: dict[str, Any] | None = None,
        notifications_after: int | None = None,
        conversations: dict[str, int] | None = None,
        outbox: OutboxStore | None = None,
        backoff_base: float = 0.4,
        backoff_max: float = 15.0,
        rng: random.Random | None = None,
        ping_interval: float | None = 20,
        request_timeout: float = 15,
        http_url: str | None = None,
        refresh_before: float | None = 60,
        queue_events: int = 10_000,
    ) -> None:
        self.url = url
        self._token_source = token
        self.codec = codec
        self.protocol = protocol_of(codec)
        self.hello_fields = dict(hello or {})
        self.notifications = (
            SeqTracker(notifications_after) if notifications_after is not None else None
        )
        self.conversations: dict[str, SeqTracker] = {
            cid: SeqTracker(seq) for cid, seq in (conversations or {}).items()
        }
        self.outbox_store: OutboxStore = outbox or MemoryOutbox()
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.rng = rng or random.Random()
        self.ping_interval = ping_interval
        self.request_timeout = request_timeout
        self.refresh_before = refresh_before  # seconds before the session's exp; None: never
        self.refreshes = 0  # tokens handed in with auth.refresh
        self._session_exp = 0.0
        self._refresh_timer: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.http_url = (http_url or _http_base_of(url)).rstrip("/")
        self.state = "idle"
        self.welcome: dict[str, Any] | None = None
        self.attempt = 0
        self.connects = 0  # how many welcomes so far
        self.close_codes: list[int | None] = []
        self._ws: Any = None
        self._task: asyncio.Task[None] | None = None
        # events() / next_event() read this queue: the newest `queue_events` are kept (0: no
        # queue, for a client that only registers callbacks with on())
        self.queue_events = queue_events
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._listeners: dict[str, list[Callable[[Any], Any]]] = {}
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._seen = RecentIds()
        self._open = asyncio.Event()
        self._restore_outbox()

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, wait: bool = True, timeout: float = 30) -> None:
        """Connect (in the background from now on); with `wait`, until the first welcome."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        if wait:
            await self.wait_open(timeout)

    async def wait_open(self, timeout: float = 30) -> None:
        """Until a welcome; HubError `unauthorized` when the hub refused a fixed token,
        TimeoutError when nothing answered in time."""
        opened = asyncio.ensure_future(self._open.wait())
        waits: set[asyncio.Future[Any]] = {opened}
        if self._task is not None:
            waits.add(self._task)
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
        if opened.done() and not opened.cancelled():
            return  # welcomed (it may have dropped again since: that is the next wait's)
        if self.state == "unauthorized":
            raise HubError("unauthorized", "the hub refused the token")
        if self._task is not None and self._task.done():
            raise HubError("stopped", "the client stopped before it was welcomed")
        raise TimeoutError(f"no welcome from {self.url} within {timeout} s")

    async def stop(self) -> None:
        """Close for good (unsent messages stay in the outbox store)."""
        self._set_state("stopped")
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
        task, self._task = self._task, None
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._fail_pending(HubError("stopped", "client stopped"), everything=True)

    @property
    def connected(self) -> bool:
        return self.state == "open"

    def backoff(self, attempt: int) -> float:
        """Seconds before reconnect attempt `attempt` (0-based): exponential, capped, and
        jittered over its upper half so that clients cut off together come back spread."""
        delay = min(self.backoff_max, self.backoff_base * 2 ** min(attempt, 16))
        return float(delay / 2 + self.rng.random() * delay / 2)

    async def drop(self) -> None:
        """Cut the socket now (as a network failure would); the client reconnects."""
        ws = self._ws
        if ws is not None:
            transport = getattr(ws, "transport", None)
            if transport is not None:
                transport.abort()
            else:  # pragma: no cover
                await ws.close()

    async def _token(self) -> str:
        src = self._token_source
        if isinstance(src, str):
            return src
        value = src()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value
        return str(value)

    async def _run(self) -> None:
        while self.state != "stopped":
            code: int | None = None
            self._set_state("connecting" if self.connects == 0 else "reconnecting")
            try:
                try:
                    token = await self._token()
                except Exception as exc:  # the app's token source failed: try again later
                    log.warning("no token for %s: %s", self.url, exc)
                    raise OSError("no token") from exc
                async with websockets.connect(
                    self.url,
                    subprotocols=[self.protocol],  # type: ignore[list-item]
                    max_size=None,
                    open_timeout=10,
                    ping_interval=self.ping_interval,
                ) as ws:
                    self._ws = ws
                    binary = ws.subprotocol == "supporthub.msgpack.v1"
                    hello = {**self.hello_fields, "type": "hello", "token": token}
                    hello["resume"] = self.resume_state()
                    await ws.send(encode(hello, binary))
                    async for raw in ws:
                        try:
                            frame = decode(raw)
                        except Exception:
                            continue
                        if isinstance(frame, dict):
                            await self._receive(frame, binary)
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
            except (OSError, TimeoutError, websockets.WebSocketException):
                code = None
            finally:
                ws_closed = self._ws
                self._ws = None
                if ws_closed is not None and code is None:
                    code = ws_closed.close_code
            if self.state == "stopped":
                return
            self.close_codes.append(code)
            self._open.clear()
            if self._refresh_timer is not None:
                self._refresh_timer.cancel()
            self._fail_pending(HubError("disconnected", "connection lost"), everything=False)
            if code == 4001 and isinstance(self._token_source, str):
                self._set_state("unauthorized", "the token was refused")
                return
            extra = 10 if code in (1008, 1009) else 0
            self._set_state("reconnecting")
            delay = self.backoff(self.attempt + extra)
            self.attempt += 1
            await asyncio.sleep(delay)

    def _schedule_refresh(self, exp: Any) -> None:
        """Hand in a fresh token (`auth.refresh`) `refresh_before` s before the session's exp."""
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
        if self.refresh_before is None or not isinstance(exp, int | float):
            return
        self._session_exp = float(exp)
        delay = max(1.0, exp - time.time() - self.refresh_before)
        self._refresh_timer = asyncio.get_running_loop().call_later(delay, self._start_refresh)

    def _start_refresh(self) -> None:
        task = asyncio.ensure_future(self._refresh())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _refresh(self) -> None:
        if not self.connected:
            return
        try:
            ack = await self.request({"type": "auth.refresh", "token": await self._token()})
        except (HubError, OSError, httpx.HTTPError):
            return  # the session ends at its exp; the reconnect asks for a token anew
        self.refreshes += 1
        exp = ack.get("exp")
        # the same token again moves nothing: stop (a fixed token ends with the session)
        if isinstance(exp, int | float) and exp > self._session_exp:
            self._schedule_refresh(exp)

    def resume_state(self) -> dict[str, Any]:
        """What to ask the hub to replay after (re)connecting."""
        resume: dict[str, Any] = {
            "conversations": {cid: t.watermark for cid, t in self.conversations.items()}
        }
        if self.notifications is not None:
            resume["notifications_after"] = self.notifications.watermark
        return resume

    # --- events -----------------------------------------------------------------------------

    def on(self, kind: str, fn: Callable[[Any], Any]) -> Callable[[], None]:
        """Call `fn(event)` for each event of a frame type ("*" for all, "state" for state
        changes); returns the unsubscriber."""
        self._listeners.setdefault(kind, []).append(fn)
        return lambda: self._listeners.get(kind, []).remove(fn)

    async def events(self) -> AsyncIterator[Event]:
        while True:
            yield await self._events.get()

    async def next_event(self, kind: str | None = None, timeout: float = 15) -> Event:
        """The next event (of frame type `kind`, skipping others)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await asyncio.wait_for(self._events.get(), max(0.0, deadline - loop.time()))
            if kind is None or getattr(event, "type", None) == kind:
                return event

    def _emit(self, kind: str, event: Event) -> None:
        if self.queue_events > 0:
            if self._events.qsize() >= self.queue_events:
                self._events.get_nowait()  # nobody reads them: forget the oldest
            self._events.put_nowait(event)
        for key in (kind, "*") if kind != "state" else (kind,):
            for fn in list(self._listeners.get(key, ())):
                try:
                    fn(event)
                except Exception:  # a listener's bug must not break the connection
                    log.exception("listener for %s failed", kind)

    def _set_state(self, state: str, detail: str | None = None) -> None:
        if self.state == state:
            return
        self.state = state
        self._emit("state", StateChange(state, detail))

    # --- receiving --------------------------------------------------------------------------

    async def _receive(self, frame: dict[str, Any], binary: bool) -> None:
        kind = frame.get("type")
        if not isinstance(kind, str):
            return
        if kind == "welcome":
            self.welcome = frame
            self.attempt = 0
            self.connects += 1
            if frame.get("role") == "user" and self.notifications is None:
                # no cursor was given: start where the welcome says the stream stands, so
                # that a reconnect does not replay the user's whole history
                at = frame.get("notifications_seq")
                self.notifications = SeqTracker(at if isinstance(at, int) else 0)
            self._set_state("open")
            self._open.set()
            self._schedule_refresh(frame.get("exp"))
            self._emit(kind, parse(frame))
            await self._flush()
            return
        if kind == "message":
            if not self.accept_message(frame):
                return
        elif kind == "notification":
            if not self.accept_notification(frame):
                return
        elif kind == "chat.assigned":
            for m in frame.get("history") or ():
                if isinstance(m, dict):
                    self.accept_message(m)
        fid = frame.get("id")
        if isinstance(fid, str) and fid in self._pending:
            self._settle(fid, frame)
        elif kind != "error":
            for pid, entry in list(self._pending.items()):
                if entry.match_type == kind and entry.sent:
                    self._settle(pid, frame)
                    break
        self._emit(kind, parse(frame))

    def track(self, conversation_id: str, seq: int = 0) -> SeqTracker:
        """Make sure a conversation is named in the next resume."""
        tracker = self.conversations.get(conversation_id)
        if tracker is None:
            tracker = self.conversations[conversation_id] = SeqTracker(seq)
        return tracker

    def forget(self, conversation_id: str) -> None:
        self.conversations.pop(conversation_id, None)

    def accept_message(self, m: dict[str, Any]) -> bool:
        cid = m.get("conversation_id")
        if not isinstance(cid, str):
            return False
        fresh = self.track(cid).accept(m.get("seq"))
        mid = m.get("message_id")
        fresh_id = self._seen.add(f"m:{mid}" if isinstance(mid, str) else None)
        return fresh and fresh_id

    def accept_notification(self, n: dict[str, Any]) -> bool:
        if self.notifications is None:
            self.notifications = SeqTracker(0)
        fresh = self.notifications.accept(n.get("seq"))
        nid = n.get("notification_id")
        fresh_id = self._seen.add(f"n:{nid}" if isinstance(nid, str) else None)
        return fresh and fresh_id

    # --- sending ----------------------------------------------------------------------------

    async def _raw_send(self, frame: dict[str, Any]) -> bool:
        ws = self._ws
        if ws is None or not self.connected:
            return False
        try:
            await ws.send(encode(frame, ws.subprotocol == "supporthub.msgpack.v1"))
        except websockets.ConnectionClosed:
            return False
        return True

    async def send(self, frame: dict[str, Any]) -> bool:
        """Fire and forget, now or never (typing, read): False when not connected."""
        return await self._raw_send(frame)

    async def request(
        self,
        frame: dict[str, Any],
        *,
        retry: bool = False,
        timeout: float | None = None,
        match_type: str | None = None,
    ) -> dict[str, Any]:
        """Send a frame and wait for its answer (the frame with the same id; an `error`
        raises HubError). `retry` sends it again after a reconnect; `match_type` also takes
        the first frame of that type as the answer (`chat.opened`)."""
        durable = retry and frame.get("type") == "chat.send"
        entry = self._durable_entry(frame.get("client_msg_id")) if durable else None
        if entry is None:
            rid = f"p{next(self._ids)}"
            entry = _Pending({**frame, "id": rid}, retry, durable, match_type)
            self._pending[rid] = entry
            if durable:
                self._store_outbox()
        if not entry.sent and self.connected:
            entry.sent = await self._raw_send(entry.frame)
        wait = self.request_timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(asyncio.shield(entry.future), wait)
        except TimeoutError:
            if not entry.durable:  # a message stays in the outbox; only we stop waiting
                self._pending.pop(entry.frame["id"], None)
            raise HubError("timeout", f"no answer to {frame.get('type')}") from None

    async def send_message(
        self,
        conversation_id: str,
        text: str = "",
        *,
        attachments: list[str] | None = None,
        client_msg_id: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send a chat message through the outbox; returns its `ack`."""
        frame: dict[str, Any] = {
            "type": "chat.send",
            "conversation_id": conversation_id,
            "client_msg_id": client_msg_id or _new_client_msg_id(),
            "text": text,
        }
        if attachments:
            frame["attachments"] = list(attachments)
        return await self.request(frame, retry=True, timeout=timeout)

    def queue_message(
        self, conversation_id: str, text: str = "", *, client_msg_id: str | None = None
    ) -> str:
        """Put a message in the outbox without waiting (it goes out when connected);
        returns its client_msg_id."""
        cmid = client_msg_id or _new_client_msg_id()
        frame = {"type": "chat.send", "conversation_id": conversation_id,
                 "client_msg_id": cmid, "text": text}  # fmt: skip
        task = asyncio.ensure_future(self.request(frame, retry=True, timeout=365 * 86400))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return cmid

    async def open_chat(
        self, topic: str, text: str | None = None, handoff: str = "bot", **extra: Any
    ) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "chat.open", "topic": topic, "handoff": handoff, **extra}
        if text:
            frame["text"] = text
        opened = await self.request(frame, match_type="chat.opened")
        if isinstance(opened.get("conversation_id"), str):
            self.track(opened["conversation_id"])
        return opened

    @property
    def unsent(self) -> list[dict[str, Any]]:
        """The messages waiting for an ack (`chat.send` frames without request ids)."""
        return [
            {k: v for k, v in e.frame.items() if k != "id"}
            for e in self._pending.values()
            if e.durable
        ]

    def _durable_entry(self, cmid: Any) -> _Pending | None:
        for entry in self._pending.values():
            if entry.durable and entry.frame.get("client_msg_id") == cmid:
                return entry
        return None

    def _store_outbox(self) -> None:
        try:
            self.outbox_store.save(self.unsent[-OUTBOX_LIMIT:])
        except OSError:
            pass  # the in-memory outbox still holds

    def _restore_outbox(self) -> None:
        for frame in self.outbox_store.load():
            if frame.get("type") != "chat.send" or not isinstance(frame.get("client_msg_id"), str):
                continue
            if self._durable_entry(frame["client_msg_id"]) is None:
                rid = f"p{next(self._ids)}"
                entry = _Pending({**frame, "id": rid}, True, True, None)
                entry.future.add_done_callback(lambda f: f.cancelled() or f.exception())
                self._pending[rid] = entry

    def _settle(self, rid: str, frame: dict[str, Any]) -> None:
        entry = self._pending.get(rid)
        if entry is None:
            return
        if frame.get("type") == "error" and entry.durable and frame.get("code") not in FINAL_ERRORS:
            # unavailable, rate limited: nothing was stored; send it again after a pause
            entry.sent = False
            entry.tries += 1
            asyncio.get_running_loop().call_later(
                self.backoff(entry.tries), lambda: asyncio.ensure_future(self._resend(rid))
            )
            return
        del self._pending[rid]
        if entry.durable:
            self._store_outbox()
        if entry.future.done():
            return
        if frame.get("type") == "error":
            entry.future.set_exception(
                HubError(str(frame.get("code")), str(frame.get("message", "")), frame)
            )
        else:
            entry.future.set_result(frame)

    async def _resend(self, rid: str) -> None:
        entry = self._pending.get(rid)
        if entry is not None and not entry.sent and self.connected:
            entry.sent = await self._raw_send(entry.frame)

    def _fail_pending(self, err: HubError, *, everything: bool) -> None:
        for rid, entry in list(self._pending.items()):
            if not everything and (entry.retry or not entry.sent):
                entry.sent = False  # goes out again after the reconnect
                continue
            if everything and entry.durable:
                entry.sent = False  # stays in the outbox store for the next client
            del self._pending[rid]
            if not entry.future.done():
                entry.future.set_exception(err)
                entry.future.exception()  # retrieved: nobody may be waiting

    async def _flush(self) -> None:
        for entry in list(self._pending.values()):
            if not entry.sent:
                entry.sent = await self._raw_send(entry.frame)

    # --- HTTP -------------------------------------------------------------------------------

    async def upload(
        self,
        conversation_id: str,
        data: bytes,
        filename: str,
        content_type: str = "application/octet-stream",
    ) -> dict[str, Any]:
        """Upload a file to a conversation (`POST /api/attachments`); returns the
        attachment, whose `attachment_id` goes into `send_message(attachments=...)`."""
        async with httpx.AsyncClient(base_url=self.http_url, timeout=60) as http:
            r = await http.post(
                "/api/attachments",
                headers={"Authorization": f"Bearer {await self._token()}"},
                data={"conversation_id": conversation_id},
                files={"file": (filename, data, content_type)},
            )
        body: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            body = r.json()
        if r.status_code >= 400:
            err = body.get("error") or {}
            raise HubError(err.get("code", "http"), err.get("message", r.text[:200]), body)
        return body


def _http_base_of(ws_url: str) -> str:
    """ws://host:port/ws -> http://host:port"""
    scheme, rest = ws_url.split("://", 1)
    host, _, path = rest.partition("/")
    path = "/" + path
    if path.endswith("/ws"):
        path = path[: -len("/ws")]
    return f"{'https' if scheme == 'wss' else 'http'}://{host}{path.rstrip('/')}"
