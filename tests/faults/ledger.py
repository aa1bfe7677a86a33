"""The one check of the fault suite: nothing lost, nothing doubled.

Each `Device` is a raw WebSocket client that stays connected through faults: when its
socket ends (a node killed, a slow consumer cut off, a drain) it reconnects, to the next
node of its list after a random pause (jitter), and resumes from what it has seen. Every
`notification` and `message` frame it receives is written down in its `Record`.

`Ledger.check` then reads PostgreSQL and compares: for every device, the notification ids
and message ids it was sent equal the committed rows addressed to its user (every
conversation of that user) or agent (every conversation the agent holds), each once, in
seq order. An agent's `chat.assigned` carries the chat's history: those messages count as
delivered, and the live frames after it must continue the history without a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgpack
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

MSGPACK = "supporthub.msgpack.v1"
_ids = itertools.count(1)


@dataclass
class Record:
    """What one device was sent, in arrival order, over all its connections."""

    sub: str
    role: str = "user"
    notifications: list[tuple[int, str]] = field(default_factory=list)  # (seq, id)
    messages: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # live frames
    history: dict[str, dict[int, str]] = field(default_factory=dict)  # from chat.assigned
    latencies: list[float] = field(default_factory=list)  # notifications carrying `sent_at`
    connects: int = 0
    closes: list[int | None] = field(default_factory=list)  # close codes seen

    @property
    def is_staff(self) -> bool:
        return self.role != "user"

    def observe(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "notification":
            self.notifications.append((int(frame["seq"]), str(frame["notification_id"])))
            sent_at = (frame.get("data") or {}).get("sent_at")
            if isinstance(sent_at, float):
                self.latencies.append(time.time() - sent_at)
        elif kind == "message":
            cid = str(frame["conversation_id"])
            self.messages.setdefault(cid, []).append((int(frame["seq"]), str(frame["message_id"])))
        elif kind == "chat.assigned" and self.is_staff:
            cid = str(frame["conversation_id"])
            seen = self.history.setdefault(cid, {})
            for m in frame.get("history") or ():
                seen[int(m["seq"])] = str(m["message_id"])
            self.messages.setdefault(cid, [])

    def last_notification(self) -> int:
        return max((s for s, _ in self.notifications), default=0)

    def last_seq(self, cid: str) -> int:
        live = max((s for s, _ in self.messages.get(cid, ())), default=0)
        return max(live, max(self.history.get(cid, {}), default=0))

    def resume(self) -> dict[str, Any]:
        """What to ask for on (re)connecting: everything after what arrived so far (from
        the very first notification on the first connect)."""
        convs = {cid: self.last_seq(cid) for cid in set(self.messages) | set(self.history)}
        if self.is_staff:
            return {"conversations": convs}
        return {"notifications_after": self.last_notification(), "conversations": convs}


class Device:
    """A device of one user or agent that keeps itself connected to one of `urls`."""

    def __init__(
        self,
        urls: Sequence[str],
        token: str,
        record: Record,
        *,
        rng: random.Random | None = None,
        jitter_s: tuple[float, float] = (0.05, 0.5),
        start_at: int = 0,
        on_welcome: Callable[[Device], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self.urls = list(urls)
        self.token = token
        self.record = record
        self.rng = rng or random.Random()
        self.jitter_s = jitter_s
        self._next_url = start_at
        self.on_welcome = on_welcome
        self.ws: ClientConnection | None = None
        self.connected = asyncio.Event()
        self.reading = True  # False: a slow consumer that stops reading its socket
        self._answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.url = ""

    def start(self) -> Device:
        self._task = asyncio.create_task(self._run(), name=f"device-{self.record.sub}")
        return self

    def drop(self) -> None:
        """Lose the connection abruptly (a phone between two cells); it reconnects."""
        if self.ws is not None:
            self.ws.transport.abort()

    def abandon(self) -> None:
        """Never reconnect once the current socket ends (a device switched off with its
        node, say), and leave that socket alone."""
        self._stopping = True

    @property
    def abandoned(self) -> bool:
        return self._stopping

    async def stop(self) -> None:
        self._stopping = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 2)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def wait_connected(self, timeout: float = 20) -> None:
        await asyncio.wait_for(self.connected.wait(), timeout)

    async def _run(self) -> None:
        while not self._stopping:
            url = self.urls[self._next_url % len(self.urls)]
            try:
                await self._session(url)
            except (OSError, websockets.WebSocketException, TimeoutError, EOFError):
                pass
            self.connected.clear()
            self.ws = None
            for fut in self._answers.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("socket closed"))
            self._answers.clear()
            if self._stopping:
                return
            # another node next time (the balancer's choice), after a random pause
            self._next_url += 1
            await asyncio.sleep(self.rng.uniform(*self.jitter_s))

    async def _session(self, url: str) -> None:
        async with websockets.connect(
            url,
            subprotocols=[Subprotocol(MSGPACK)],
            max_size=None,
            open_timeout=5,
            close_timeout=1,
        ) as ws:
            self.ws = ws
            self.url = url
            hello = {"type": "hello", "token": self.token, "resume": self.record.resume()}
            await ws.send(msgpack.packb(hello))
            welcomed = False
            try:
                while True:
                    if not self.reading:
                        await asyncio.sleep(0.05)
                        continue
                    raw = await ws.recv()
                    frame = msgpack.unpackb(raw) if isinstance(raw, bytes) else None
                    if not isinstance(frame, dict):
                        continue
                    if not welcomed:
                        if frame.get("type") != "welcome":
                            continue
                        welcomed = True
                        self.record.connects += 1
                        self.connected.set()
                        if self.on_welcome is not None:
                            asyncio.create_task(self.on_welcome(self))
                        continue
                    self.record.observe(frame)
                    fid = frame.get("id")
                    if fid is not None and fid in self._answers:
                        fut = self._answers.pop(fid)
                        if not fut.done():
                            fut.set_result(frame)
            finally:
                self.record.closes.append(ws.close_code)

    async def request(self, frame: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send and wait for the frame answering it; ConnectionError when the socket is
        not open or closes meanwhile."""
        ws = self.ws
        if ws is None or not self.connected.is_set():
            raise ConnectionError("not connected")
        fid = f"q{next(_ids)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[fid] = fut
        try:
            await ws.send(msgpack.packb({**frame, "id": fid}))
            return await asyncio.wait_for(fut, timeout)
        except (websockets.WebSocketException, OSError) as exc:
            raise ConnectionError(str(exc)) from exc
        finally:
            self._answers.pop(fid, None)

    async def send_until_acked(self, cid: str, client_msg_id: str, text: str,
                               deadline_s: float = 60) -> dict[str, Any]:  # fmt: skip
        """`chat.send`, again with the same `client_msg_id` until acked (through outages
        and reconnects): the message is stored once whatever happens. A refusal (not an
        outage) is returned as it is."""
        deadline = time.monotonic() + deadline_s
        frame = {"type": "chat.send", "conversation_id": cid, "client_msg_id": client_msg_id,
                 "text": text}  # fmt: skip
        while True:
            try:
                await self.wait_connected(max(0.1, deadline - time.monotonic()))
                answer = await self.request(frame, timeout=5)
                if answer.get("type") == "ack":
                    return answer
                if answer.get("code") not in ("unavailable", "rate_limited"):
                    return answer  # refused (the chat is not theirs any more): not retried
            except (ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{client_msg_id} was never acked")
            await asyncio.sleep(0.2)


@dataclass
class Expected:
    notifications: list[tuple[int, str]]
    messages: dict[str, list[tuple[int, str]]]


async def expected_for(db: asyncpg.Connection, record: Record) -> Expected:
    """The committed rows addressed to the record's user or agent."""
    if record.is_staff:
        notes: list[tuple[int, str]] = []
        rows = await db.fetch(
            "select m.conversation_id, m.seq, m.id from messages m"
            " join conversations c on c.id = m.conversation_id"
            " where c.agent_id = $1 order by m.conversation_id, m.seq",
            record.sub,
        )
    else:
        notes = [
            (int(r["seq"]), r["id"])
            for r in await db.fetch(
                "select seq, id from notifications where user_id = $1 order by seq", record.sub
            )
        ]
        rows = await db.fetch(
            "select m.conversation_id, m.seq, m.id from messages m"
            " join conversations c on c.id = m.conversation_id"
            " where c.user_id = $1 order by m.conversation_id, m.seq",
            record.sub,
        )
    messages: dict[str, list[tuple[int, str]]] = {}
    for r in rows:
        messages.setdefault(r["conversation_id"], []).append((int(r["seq"]), r["id"]))
    return Expected(notes, messages)


async def expected_all(
    db: asyncpg.Connection, records: list[Record]
) -> dict[tuple[bool, str], Expected]:
    """`expected_for` of many records in three queries: (is staff, sub) -> Expected."""
    users = sorted({r.sub for r in records if not r.is_staff})
    staff = sorted({r.sub for r in records if r.is_staff})
    out: dict[tuple[bool, str], Expected] = {}
    for r in records:
        out.setdefault((r.is_staff, r.sub), Expected([], {}))
    for row in await db.fetch(
        "select user_id, seq, id from notifications where user_id = any($1::text[])"
        " order by user_id, seq",
        users,
    ):
        out[(False, row["user_id"])].notifications.append((int(row["seq"]), row["id"]))
    for row in await db.fetch(
        "select c.user_id, c.agent_id, m.conversation_id, m.seq, m.id from messages m"
        " join conversations c on c.id = m.conversation_id"
        " where c.user_id = any($1::text[]) or c.agent_id = any($2::text[])"
        " order by m.conversation_id, m.seq",
        users,
        staff,
    ):
        item = (int(row["seq"]), row["id"])
        for key in ((False, row["user_id"]), (True, row["agent_id"])):
            if key in out:
                out[key].messages.setdefault(row["conversation_id"], []).append(item)
    return out


def problems(record: Record, want: Expected) -> list[str]:
    """What is wrong with what `record` got, compared with `want`; [] when all is well."""
    out: list[str] = []
    who = f"{record.role} {record.sub}"
    got_n = record.notifications
    if got_n != want.notifications:
        ids = [i for _, i in got_n]
        doubled = sorted({i for i in ids if ids.count(i) > 1})
        missing = sorted(set(want.notifications) - set(got_n))
        extra = sorted(set(got_n) - set(want.notifications))
        seqs = [s for s, _ in got_n]
        order = next((seqs[max(0, k - 3) : k + 4] for k in range(1, len(seqs))
                      if seqs[k] < seqs[k - 1]), None)  # fmt: skip
        out.append(
            f"{who}: notifications: {len(got_n)} got, {len(want.notifications)} stored;"
            f" missing {missing[:5]} ({len(missing)}), doubled {doubled[:5]}, extra {extra[:5]},"
            f" out of order at: {order}"
        )
    convs = set(want.messages)
    if not record.is_staff:
        convs |= set(record.messages)  # a user sees every conversation of theirs
    for cid in sorted(convs):
        live = record.messages.get(cid, [])
        history = record.history.get(cid, {})
        stored = want.messages.get(cid, [])
        seqs = [s for s, _ in live]
        if len(set(seqs)) != len(seqs) or seqs != sorted(seqs):
            out.append(f"{who}: conversation {cid}: live seqs doubled or out of order: {seqs}")
        if history and seqs and min(seqs) <= max(history) and not record.is_staff:
            out.append(f"{who}: conversation {cid}: live frames repeat the history")
        got = dict(history)
        for s, i in live:
            got[s] = i
        if sorted(got.items()) != stored:
            missing = sorted(set(stored) - set(got.items()))
            extra = sorted(set(got.items()) - set(stored))
            out.append(
                f"{who}: conversation {cid}: {len(got)} messages got, {len(stored)} stored;"
                f" missing seqs {[s for s, _ in missing][:10]}, extra {extra[:5]}"
            )
    return out


class Ledger:
    """Every device of a test, and the one comparison with the store."""

    def __init__(self) -> None:
        self.devices: list[Device] = []

    def add(self, device: Device) -> Device:
        self.devices.append(device)
        return device

    async def stop(self) -> None:
        await asyncio.gather(*(d.stop() for d in self.devices))

    async def check(self, dsn: str, *, settle_s: float = 30, quiet_s: float = 1.0) -> None:
        """Wait (up to `settle_s`) until every device has what the store holds for it,
        then that nothing more arrives for `quiet_s`; fail with every difference found."""
        conn = await asyncpg.connect(dsn)
        try:
            deadline = time.monotonic() + settle_s
            while True:
                found = await self._problems(conn)
                if not found:
                    counts = self._counts()
                    await asyncio.sleep(quiet_s)  # a late double would show up now
                    found = await self._problems(conn)
                    if not found and counts == self._counts():
                        return
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.25)
            raise AssertionError("nothing lost, nothing doubled: failed\n" + "\n".join(found[:40]))
        finally:
            await conn.close()

    def _counts(self) -> list[int]:
        return [
            len(d.record.notifications) + sum(map(len, d.record.messages.values()))
            for d in self.devices
        ]

    async def _problems(self, conn: asyncpg.Connection) -> list[str]:
        found: list[str] = []
        wanted = await expected_all(conn, [d.record for d in self.devices])
        for device in self.devices:
            found += problems(
                device.record, wanted[(device.record.role != "user", device.record.sub)]
            )
        return found

    async def totals(self, dsn: str) -> tuple[int, int]:
        """(notifications, messages) the store holds for the ledger's devices' users."""
        users = sorted({d.record.sub for d in self.devices if not d.record.is_staff})
        conn = await asyncpg.connect(dsn)
        try:
            n = await conn.fetchval(
                "select count(*) from notifications where user_id = any($1)", users
            )
            m = await conn.fetchval(
                "select count(*) from messages m join conversations c"
                " on c.id = m.conversation_id where c.user_id = any($1)",
                users,
            )
        finally:
            await conn.close()
        return int(n), int(m)
