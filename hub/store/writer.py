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
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hub import metrics
from supporthub_core.errors import Conflict, Forbidden, HubError, NotFound, Unavailable

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
    conversation_status: str = ""

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
    ts_text: str = ""  # ts.isoformat(), made once per batch (every row shares the COMMIT time)

    def frame(self) -> dict:
        return {
            "type": "notification",
            "seq": self.seq,
            "notification_id": self.notification_id,
            "kind": self.kind,
            "title": self.title,
            "body": self.body,
            "data": self.data,
            "ts": self.ts_text or self.ts.isoformat(),
        }


def new_id() -> str:
    """128 random bits as 32 hex characters (the shape of uuid4().hex, cheaper to make)."""
    return os.urandom(16).hex()


class _Pending:
    """Writes queued together with one future: a single write's result, or the list of
    results of a batch (an exception in place of a refused write)."""

    __slots__ = ("ops", "future", "many")

    def __init__(self, ops: list, future: asyncio.Future, many: bool):
        self.ops = ops
        self.future = future
        self.many = many


Op = MessageWrite | NotificationWrite


class GroupWriter:
    """One writer task: each COMMIT holds whatever queued while the previous one ran."""

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 2000):
        self._pool = pool
        self._max_batch = max_batch
        self._pending: deque[_Pending] = deque()
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

    def _queue(self, ops: list, many: bool) -> asyncio.Future:
        if self._closing:
            raise Unavailable("node is shutting down")
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(ops, future, many))
        self._wake.set()
        return future

    def enqueue(self, op: Op) -> asyncio.Future:
        """Queue a write; the future resolves after the COMMIT that holds it."""
        return self._queue([op], False)

    def enqueue_batch(self, ops: list[Op]) -> asyncio.Future:
        """Queue writes that resolve together, as a list of results in order."""
        return self._queue(ops, True)

    async def submit(self, op: Op) -> Any:
        return await self.enqueue(op)

    async def _run(self) -> None:
        pending = self._pending
        while True:
            await self._wake.wait()
            self._wake.clear()
            while pending:
                batch = [pending.popleft()]
                size = len(batch[0].ops)
                while pending and size + len(pending[0].ops) <= self._max_batch:
                    size += len(pending[0].ops)
                    batch.append(pending.popleft())
                await self._commit_with_retry(batch)
            if self._closing:
                return

    async def _commit_with_retry(self, batch: list[_Pending]) -> None:
        ops = [op for item in batch for op in item.ops]
        for attempt in range(3):
            try:
                results = await self._commit(ops)
            except (
                asyncpg.DeadlockDetectedError,
                asyncpg.SerializationError,
                asyncpg.UniqueViolationError,  # another node stored the same event meanwhile
            ):
                await asyncio.sleep(0.01 * (attempt + 1))
                continue
            except Exception as exc:  # connection lost, server down: fail the batch, keep running
                log.warning("group commit failed: %s", exc)
                if attempt < 2 and isinstance(exc, OSError | asyncpg.InterfaceError):
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                self._fail(batch, Unavailable("the store is unavailable, try again"))
                return
            metrics.WRITER_BATCH.observe(len(ops))
            at = 0
            for item in batch:
                mine = results[at : at + len(item.ops)]
                at += len(item.ops)
                if item.future.done():
                    continue
                if item.many:
                    item.future.set_result(mine)
                elif isinstance(mine[0], BaseException):
                    item.future.set_exception(mine[0])
                else:
                    item.future.set_result(mine[0])
            return
        self._fail(batch, Unavailable("the store is busy, try again"))

    @staticmethod
    def _fail(batch: list[_Pending], exc: HubError) -> None:
        for item in batch:
            if not item.future.done():
                item.future.set_exception(exc)

    async def _commit(self, ops: list[Op]) -> list[Any]:
        messages = [(i, op) for i, op in enumerate(ops) if isinstance(op, MessageWrite)]
        notes = [(i, op) for i, op in enumerate(ops) if isinstance(op, NotificationWrite)]
        results: list[Any] = [None] * len(ops)
        async with self._pool.acquire() as conn, conn.transaction():
            if messages:
                stored = await write_messages(conn, [m for _, m in messages])
                for (i, _), r in zip(messages, stored, strict=True):
                    results[i] = r
            if notes:
                stored = await write_notifications(conn, [n for _, n in notes])
                for (i, _), r in zip(notes, stored, strict=True):
                    results[i] = r
        return results


class Writers:
    """Several group writers committing side by side. Each write goes to the writer its
    conversation (messages) or user (notifications) hashes to, so two writers never lock
    the same row, and one stream's writes keep their order."""

    def __init__(self, pool: asyncpg.Pool, *, count: int = 2, max_batch: int = 2000):
        self._writers = [GroupWriter(pool, max_batch=max_batch) for _ in range(max(1, count))]

    def start(self) -> None:
        for w in self._writers:
            w.start()

    async def close(self) -> None:
        for w in self._writers:
            await w.close()

    def _index(self, op: Op) -> int:
        key = op.conversation_id if isinstance(op, MessageWrite) else op.user_id
        return zlib.crc32(key.encode()) % len(self._writers)

    def enqueue(self, op: Op) -> asyncio.Future:
        return self._writers[self._index(op)].enqueue(op)

    def enqueue_many(self, ops: Sequence[Op]) -> BatchWrite:
        """Queue many writes now (one future per writer, not per write); await
        `.results()` later for their results in order."""
        groups: dict[int, list[int]] = {}
        for i, op in enumerate(ops):
            groups.setdefault(self._index(op), []).append(i)
        parts = [
            (positions, self._writers[w].enqueue_batch([ops[i] for i in positions]))
            for w, positions in groups.items()
        ]
        return BatchWrite(len(ops), parts)

    async def submit(self, op: Op) -> Any:
        return await self.enqueue(op)

    async def submit_many(self, ops: Sequence[Op]) -> list[Any]:
        """Several writes; results (or exceptions) in order."""
        return await self.enqueue_many(ops).results()


class BatchWrite:
    __slots__ = ("size", "parts")

    def __init__(self, size: int, parts: list[tuple[list[int], asyncio.Future]]):
        self.size = size
        self.parts = parts

    async def results(self) -> list[Any]:
        out: list[Any] = [None] * self.size
        for positions, future in self.parts:
            try:
                results = await future
            except Exception as exc:
                results = [exc] * len(positions)
            for i, r in zip(positions, results, strict=True):
                out[i] = r
        return out


def _may_write(op: MessageWrite, conv: asyncpg.Record) -> HubError | None:
    if conv is None:
        return NotFound("no such conversation")
    if op.sender_role == "user":
        if conv["user_id"] != op.sender_id:
            return NotFound("no such conversation")
        if conv["status"] not in OPEN_STATUSES:
            return Conflict("the conversation is closed")
    elif op.sender_role == "agent":
        if conv["agent_id"] != op.sender_id or conv["status"] != "assigned":
            return Forbidden("the conversation is not assigned to you")
    elif op.sender_role == "bot" and conv["status"] not in OPEN_STATUSES:
        return Conflict("the conversation is closed")  # the user closed it mid-answer
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
            conv["user_id"], conv["agent_id"], False, conv["status"],
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


# One statement, one round trip per batch: skip events already stored (the unique index
# on event_id makes a concurrent copy on another node fail this batch, which is retried
# and then skips it), bump each user's counter (the upsert locks user rows in id order,
# so batches never deadlock) and number the new rows from it in batch order.
_WRITE_NOTIFICATIONS = """
with ops as (
  select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                       $6::jsonb[], $7::text[], $8::int[])
    as t(id, user_id, kind, title, body, data, event_id, ord)
),
fresh as (
  (select * from ops where event_id is null)
  union all
  (select distinct on (ops.event_id) ops.* from ops
   where ops.event_id is not null
     and not exists (select 1 from notifications n where n.event_id = ops.event_id)
   order by ops.event_id, ops.ord)
),
counts as (select user_id, count(*)::bigint as n from fresh group by user_id),
bumped as (
  insert into users (id, notif_seq) select user_id, n from counts order by user_id
  on conflict (id) do update set notif_seq = users.notif_seq + excluded.notif_seq
  returning id, notif_seq
),
numbered as (
  select f.*, b.notif_seq - c.n + row_number() over (partition by f.user_id order by f.ord) as seq
  from fresh f join bumped b on b.id = f.user_id join counts c on c.user_id = f.user_id
)
insert into notifications (id, user_id, seq, kind, title, body, data, event_id, created_at)
select id, user_id, seq, kind, title, body, data, event_id, $9 from numbered
returning id, seq
"""


async def write_notifications(conn: asyncpg.Connection, ops: list[NotificationWrite]) -> list[Any]:
    """Insert notifications with each user's next seq. An op whose `event_id` was already
    handled (here or on another node) yields None and writes nothing."""
    if not ops:
        return []
    ids = [new_id() for _ in ops]
    now = datetime.now(UTC)
    rows = await conn.fetch(
        _WRITE_NOTIFICATIONS,
        ids,
        [o.user_id for o in ops],
        [o.kind for o in ops],
        [o.title for o in ops],
        [o.body for o in ops],
        [o.data for o in ops],
        [o.event_id for o in ops],
        list(range(len(ops))),
        now,
    )
    seq_of = {r["id"]: r["seq"] for r in rows}
    ts_text = now.isoformat()
    out: list[Any] = []
    for nid, o in zip(ids, ops, strict=True):
        seq = seq_of.get(nid)
        out.append(
            None
            if seq is None
            else StoredNotification(
                nid, o.user_id, seq, o.kind, o.title, o.body, o.data, now, ts_text
            )
        )
    return out
