"""Group commit: one task writes whatever queued up while the previous COMMIT ran.

Callers submit a write and await its future; the future resolves only after the batch
that holds it has committed, so nothing is acked or pushed before it is durable. One
transaction per batch, set-based statements (unnest arrays) inside, turns thousands of
small writes a second into a few round trips each.

Sequence numbers are assigned inside the batch's transaction while it holds the row lock
of the conversation (or user) counter, so two nodes can never hand out the same number.
Rows are locked in id order, conversations before users, so batches never deadlock.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hub import metrics
from hub.errors import Forbidden, HubError, NotFound, Unavailable

log = logging.getLogger(__name__)

OPEN_STATUSES = ("bot", "queued", "assigned")


@dataclass(slots=True)
class MessageWrite:
    conversation_id: str
    sender_role: str  # user, agent, bot, system
    sender_id: str
    sender_name: str
    text: str
    client_msg_id: str | None = None


@dataclass(slots=True)
class StoredMessage:
    message_id: str
    conversation_id: str
    seq: int
    sender_role: str
    sender_id: str
    sender_name: str
    text: str
    client_msg_id: str | None
    ts: datetime
    user_id: str
    agent_id: str | None
    duplicate: bool = False

    def frame(self) -> dict:
        frame: dict[str, Any] = {
            "type": "message",
            "conversation_id": self.conversation_id,
            "seq": self.seq,
            "message_id": self.message_id,
            "sender": {"role": self.sender_role, "id": self.sender_id, "name": self.sender_name},
            "text": self.text,
            "ts": self.ts.isoformat(),
        }
        if self.client_msg_id is not None:
            frame["client_msg_id"] = self.client_msg_id
        return frame


@dataclass(slots=True)
class NotificationWrite:
    user_id: str
    kind: str
    title: str
    body: str
    data: dict = field(default_factory=dict)
    event_id: str | None = None


@dataclass(slots=True)
class StoredNotification:
    notification_id: str
    user_id: str
    seq: int
    kind: str
    title: str
    body: str
    data: dict
    ts: datetime

    def frame(self) -> dict:
        return {
            "type": "notification",
            "seq": self.seq,
            "notification_id": self.notification_id,
            "kind": self.kind,
            "title": self.title,
            "body": self.body,
            "data": self.data,
            "ts": self.ts.isoformat(),
        }


def new_id() -> str:
    """128 random bits as 32 hex characters (the shape of uuid4().hex, cheaper to make)."""
    return os.urandom(16).hex()


class _Pending:
    __slots__ = ("op", "future")

    def __init__(self, op: MessageWrite | NotificationWrite, future: asyncio.Future):
        self.op = op
        self.future = future


class GroupWriter:
    """The single writer task of a node. `submit()` returns after COMMIT."""

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 2000):
        self._pool = pool
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-writer")

    async def close(self) -> None:
        """Finish every write in flight, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def submit(self, op: MessageWrite | NotificationWrite) -> Any:
        if self._closing:
            raise Unavailable("node is shutting down")
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(op, future))
        self._wake.set()
        return await future

    async def submit_many(self, ops: Sequence[MessageWrite | NotificationWrite]) -> list[Any]:
        """Submit several writes; results (or exceptions) in order."""
        if self._closing:
            raise Unavailable("node is shutting down")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in ops]
        self._pending.extend(_Pending(op, f) for op, f in zip(ops, futures, strict=True))
        self._wake.set()
        return await asyncio.gather(*futures, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._commit_with_retry(batch)
            if self._closing:
                return

    async def _commit_with_retry(self, batch: list[_Pending]) -> None:
        for attempt in range(3):
            try:
                results = await self._commit(batch)
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                await asyncio.sleep(0.01 * (attempt + 1))
                continue
            except Exception as exc:  # connection lost, server down: fail the batch, keep running
                log.warning("group commit failed: %s", exc)
                if attempt < 2 and isinstance(exc, OSError | asyncpg.InterfaceError):
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                self._fail(batch, Unavailable("the store is unavailable, try again"))
                return
            metrics.WRITER_BATCH.observe(len(batch))
            for item, result in zip(batch, results, strict=True):
                if item.future.done():
                    continue
                if isinstance(result, BaseException):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)
            return
        self._fail(batch, Unavailable("the store is busy, try again"))

    @staticmethod
    def _fail(batch: list[_Pending], exc: HubError) -> None:
        for item in batch:
            if not item.future.done():
                item.future.set_exception(exc)

    async def _commit(self, batch: list[_Pending]) -> list[Any]:
        messages = [(i, p.op) for i, p in enumerate(batch) if isinstance(p.op, MessageWrite)]
        notes = [(i, p.op) for i, p in enumerate(batch) if isinstance(p.op, NotificationWrite)]
        results: list[Any] = [None] * len(batch)
        async with self._pool.acquire() as conn, conn.transaction():
            if messages:
                for (i, _), r in zip(
                    messages, await write_messages(conn, [m for _, m in messages]), strict=True
                ):
                    results[i] = r
            if notes:
                for (i, _), r in zip(
                    notes, await write_notifications(conn, [n for _, n in notes]), strict=True
                ):
                    results[i] = r
        return results


def _may_write(op: MessageWrite, conv: asyncpg.Record) -> HubError | None:
    if conv is None:
        return NotFound("no such conversation")
    if op.sender_role == "user":
        if conv["user_id"] != op.sender_id:
            return NotFound("no such conversation")
        if conv["status"] not in OPEN_STATUSES:
            return Forbidden("the conversation is closed")
    elif op.sender_role == "agent":
        if conv["agent_id"] != op.sender_id or conv["status"] != "assigned":
            return Forbidden("the conversation is not assigned to you")
    return None


async def write_messages(conn: asyncpg.Connection, ops: list[MessageWrite]) -> list[Any]:
    """Insert chat messages with the next seq of their conversation; idempotent on
    (conversation, sender, client_msg_id). Must run inside a transaction."""
    conv_ids = sorted({op.conversation_id for op in ops})
    convs = {
        r["id"]: r
        for r in await conn.fetch(
            "select id, user_id, agent_id, status, last_seq from conversations"
            " where id = any($1::text[]) order by id for update",
            conv_ids,
        )
    }
    keyed = [op for op in ops if op.client_msg_id is not None]
    existing: dict[tuple, asyncpg.Record] = {}
    if keyed:
        rows = await conn.fetch(
            "select m.* from messages m join unnest($1::text[], $2::text[], $3::text[])"
            " k(c, s, k) on m.conversation_id = k.c and m.sender_id = k.s and m.client_msg_id = k.k",
            [o.conversation_id for o in keyed],
            [o.sender_id for o in keyed],
            [o.client_msg_id for o in keyed],
        )
        existing = {(r["conversation_id"], r["sender_id"], r["client_msg_id"]): r for r in rows}

    now = datetime.now(UTC)
    last_seq = {cid: r["last_seq"] for cid, r in convs.items()}
    first_agent_reply: set[str] = set()
    results: list[Any] = []
    fresh: list[StoredMessage] = []
    in_batch: dict[tuple, StoredMessage] = {}
    for op in ops:
        conv = convs.get(op.conversation_id)
        key = (op.conversation_id, op.sender_id, op.client_msg_id)
        if op.client_msg_id is not None and key in existing:
            r = existing[key]
            results.append(
                StoredMessage(
                    r["id"], r["conversation_id"], r["seq"], r["sender_role"], r["sender_id"],
                    r["sender_name"], r["text"], r["client_msg_id"], r["created_at"],
                    conv["user_id"] if conv else "", conv["agent_id"] if conv else None, True,
                )
            )  # fmt: skip
            continue
        if op.client_msg_id is not None and key in in_batch:
            dup = in_batch[key]
            results.append(StoredMessage(**{**_as_dict(dup), "duplicate": True}))
            continue
        refusal = _may_write(op, conv)
        if refusal is not None:
            results.append(refusal)
            continue
        last_seq[op.conversation_id] += 1
        msg = StoredMessage(
            new_id(), op.conversation_id, last_seq[op.conversation_id], op.sender_role,
            op.sender_id, op.sender_name, op.text, op.client_msg_id, now,
            conv["user_id"], conv["agent_id"],
        )  # fmt: skip
        if op.sender_role == "agent":
            first_agent_reply.add(op.conversation_id)
        if op.client_msg_id is not None:
            in_batch[key] = msg
        fresh.append(msg)
        results.append(msg)

    if fresh:
        await conn.execute(
            "insert into messages (id, conversation_id, seq, sender_role, sender_id, sender_name,"
            " text, client_msg_id, created_at)"
            " select * from unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],"
            " $6::text[], $7::text[], $8::text[], $9::timestamptz[])",
            [m.message_id for m in fresh],
            [m.conversation_id for m in fresh],
            [m.seq for m in fresh],
            [m.sender_role for m in fresh],
            [m.sender_id for m in fresh],
            [m.sender_name for m in fresh],
            [m.text for m in fresh],
            [m.client_msg_id for m in fresh],
            [m.ts for m in fresh],
        )
        touched = sorted({m.conversation_id for m in fresh})
        await conn.execute(
            "update conversations c set last_seq = v.seq, last_activity_at = now(),"
            " first_response_at = case when v.agent and c.first_response_at is null"
            " then now() else c.first_response_at end"
            " from unnest($1::text[], $2::bigint[], $3::bool[]) v(id, seq, agent) where c.id = v.id",
            touched,
            [last_seq[c] for c in touched],
            [c in first_agent_reply for c in touched],
        )
    return results


def _as_dict(msg: StoredMessage) -> dict:
    return {name: getattr(msg, name) for name in StoredMessage.__slots__}


async def ensure_users(conn: asyncpg.Connection, user_ids: Sequence[str]) -> None:
    """A valid token is all a user needs: unseen user ids get a row on first use."""
    await conn.execute(
        "insert into users (id) select unnest($1::text[]) on conflict (id) do nothing",
        sorted(set(user_ids)),
    )


async def write_notifications(conn: asyncpg.Connection, ops: list[NotificationWrite]) -> list[Any]:
    """Insert notifications with each user's next seq. An op whose `event_id` was already
    handled (here or on another node) yields None and writes nothing."""
    event_ids = [op.event_id for op in ops if op.event_id is not None]
    winners: set[str] = set()
    if event_ids:
        rows = await conn.fetch(
            "insert into processed_events (event_id) select unnest($1::text[])"
            " on conflict (event_id) do nothing returning event_id",
            event_ids,
        )
        winners = {r["event_id"] for r in rows}
    todo = [op for op in ops if op.event_id is None or op.event_id in winners]
    if not todo:
        return [None] * len(ops)
    user_ids = sorted({op.user_id for op in todo})
    await ensure_users(conn, user_ids)
    seqs = {
        r["id"]: r["notif_seq"]
        for r in await conn.fetch(
            "select id, notif_seq from users where id = any($1::text[]) order by id for update",
            user_ids,
        )
    }
    now = datetime.now(UTC)
    results: list[Any] = []
    fresh: list[tuple[StoredNotification, str | None]] = []
    seen_events: set[str] = set()
    for op in ops:
        if op.event_id is not None and (op.event_id not in winners or op.event_id in seen_events):
            results.append(None)
            continue
        if op.event_id is not None:
            seen_events.add(op.event_id)
        seqs[op.user_id] += 1
        n = StoredNotification(
            new_id(), op.user_id, seqs[op.user_id], op.kind, op.title, op.body, op.data, now
        )
        fresh.append((n, op.event_id))
        results.append(n)
    await conn.execute(
        "insert into notifications (id, user_id, seq, kind, title, body, data, event_id, created_at)"
        " select * from unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],"
        " $6::text[], $7::jsonb[], $8::text[], $9::timestamptz[])",
        [n.notification_id for n, _ in fresh],
        [n.user_id for n, _ in fresh],
        [n.seq for n, _ in fresh],
        [n.kind for n, _ in fresh],
        [n.title for n, _ in fresh],
        [n.body for n, _ in fresh],
        [n.data for n, _ in fresh],
        [e for _, e in fresh],
        [n.ts for n, _ in fresh],
    )
    touched = sorted({n.user_id for n, _ in fresh})
    await conn.execute(
        "update users u set notif_seq = v.seq from unnest($1::text[], $2::bigint[]) v(id, seq)"
        " where u.id = v.id",
        touched,
        [seqs[u] for u in touched],
    )
    return results
