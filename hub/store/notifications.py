"""Queries on users, notifications and broadcasts, and the notification writes of the
group writer: what a write asks for, what the store returns and the SQL of one batch."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hub.metrics import NOTIFICATIONS_NUMBERED_AGAIN as NUMBERED_AGAIN
from hub.rules.notif_heads import NotifHeads
from hub.store.ids import new_id
from supporthub_core.db import fetch_one
from supporthub_core.errors import Unavailable

BROADCAST_MAX_AGE = "7 days"  # a user first seen later still gets notices this recent


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
    # What the same statement read of the user's open chats: the agents serving them
    # (None: not read, ask `agents_serving`) and the chats in which the bot keeps a state,
    # as (conversation id, lang)
    agents: tuple[str, ...] | None = None
    bot_chats: tuple[tuple[str, str], ...] = ()

    def frame(self) -> dict:
        """The `notification` frame clients receive."""
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


def notification_frame(r: asyncpg.Record) -> dict:
    return {
        "type": "notification",
        "seq": r["seq"],
        "notification_id": r["id"],
        "kind": r["kind"],
        "title": r["title"],
        "body": r["body"],
        "data": r["data"],
        "ts": r["created_at"].isoformat(),
    }


async def ensure_user(
    db: asyncpg.Connection, user_id: str, name: str | None = None, lang: str | None = None
) -> None:
    await db.execute(
        "insert into users (id, name, lang) values ($1, $2, coalesce($3, 'zh'))"
        " on conflict (id) do update set last_seen_at = now(),"
        " name = coalesce(excluded.name, users.name), lang = coalesce($3, users.lang)",
        user_id,
        name,
        lang,
    )


async def after(db: asyncpg.Connection, user_id: str, seq: int, limit: int) -> list[dict]:
    rows = await db.fetch(
        "select * from notifications where user_id = $1 and seq > $2 order by seq limit $3",
        user_id,
        seq,
        limit,
    )
    return [notification_frame(r) for r in rows]


async def ack(db: asyncpg.Connection, user_id: str, up_to: int) -> int:
    """Record what the user has seen; never moves backwards or past what exists."""
    return await db.fetchval(
        "update users set notif_acked = greatest(notif_acked, least($2, notif_head($1)))"
        " where id = $1 returning notif_acked",
        user_id,
        up_to,
    )


_BROADCAST_LOCK = 0x5368_4263  # "ShBc": notices stored one at a time (also in notice_chunk)


@dataclass(slots=True)
class StoredBroadcast:
    """A committed chunk of a system notice: its users are those after `after_user` up to
    `up_to` (by id), and the copies are those of the users asked for (`here`; every copy
    of the chunk when not asked); `complete` once no user is left."""

    broadcast_id: int
    title: str
    body: str
    data: dict
    ts: datetime
    # the copies of the users asked for, as columns (one array each from the store, not
    # a row object per copy): the users, their seqs, the copies' notification ids
    user_ids: list[str]
    seqs: list[int]
    notification_ids: list[str]
    after_user: str = ""
    up_to: str = ""
    complete: bool = True

    def copies(self) -> Iterator[tuple[str, int, str]]:
        """(user_id, seq, notification_id) per copy."""
        return zip(self.user_ids, self.seqs, self.notification_ids, strict=True)

    def frame(self, seq: int, notification_id: str) -> dict:
        """One user's copy as the `notification` frame its devices receive."""
        return {
            "type": "notification",
            "seq": seq,
            "notification_id": notification_id,
            "kind": "system.notice",
            "title": self.title,
            "body": self.body,
            "data": self.data,
            "ts": self.ts.isoformat(),
        }


async def create_broadcast(db: asyncpg.Connection, title: str, body: str, data: dict) -> int:
    """Store a system notice, incomplete: `store_chunk` gives its users their copies.
    Users first seen later get it from `materialise_broadcasts` when they connect, and so
    does a user who connects while its chunks are being stored (the row is committed).

    The lock, held until COMMIT, hands broadcast ids out in commit order (as the payments
    outbox does): a user's cursor moved past id N never skips an id below N that
    commits later, which concurrent notices would otherwise do."""
    async with db.transaction():
        await db.execute("select pg_advisory_xact_lock($1)", _BROADCAST_LOCK)
        return await db.fetchval(
            "insert into broadcasts (title, body, data, completed_at) values ($1, $2, $3, null)"
            " returning id",
            title,
            body,
            data,
        )


async def store_chunk(
    db: asyncpg.Connection, chunk: int, here: list[str] | None
) -> StoredBroadcast | None:
    """Give the next `chunk` users (by id) of the oldest incomplete notice their copies
    with their next seq, in one transaction (`notice_chunk`, migration 0028); the copies
    of `here` (the users connected to the calling node; None: every user's) come back with
    it. None: no notice is incomplete. Notices are stored one after the other, whoever
    stores their chunks, so a notice left incomplete (its sender died) is finished by the
    next chunk
    of anyone before a later one starts."""
    row = await db.fetchrow("select * from notice_chunk($1, $2)", chunk, here)
    if row is None:
        return None
    return StoredBroadcast(
        broadcast_id=row["notice"],
        title=row["notice_title"],
        body=row["notice_body"],
        data=row["notice_data"],
        ts=row["notice_ts"],
        user_ids=row["user_ids"],
        seqs=row["seqs"],
        notification_ids=row["ids"],
        after_user=row["after_user"],
        up_to=row["up_to"],
        complete=row["complete"],
    )


async def stalled_notice(db: asyncpg.Connection, older_than_s: float) -> int | None:
    """The oldest notice still incomplete that was created more than `older_than_s` ago."""
    return await db.fetchval(
        "select id from broadcasts where completed_at is null"
        " and created_at < now() - make_interval(secs => $1) order by id limit 1",
        older_than_s,
    )


async def materialise_broadcasts(db: asyncpg.Connection, user_id: str) -> None:
    """Give a user the notices stored after their cursor, in the notices' order, each
    numbered from the user's head (`notif_head`) and the cursor moved past them, under the
    user's row lock (which the notice's chunks and the campaigns' copies take too). A
    notification the hub stores meanwhile for the same seq (it does not take the lock) is
    waited for; if it commits, the copy skips its seq and is numbered again by the next
    statement, which sees it: the user's seqs stay gapless, each notice one copy."""
    async with db.transaction():
        user = await fetch_one(
            db, "select broadcast_cursor from users where id = $1 for update", user_id
        )
        pending = await db.fetch(
            "select * from broadcasts where id > $1"
            f" and created_at > now() - interval '{BROADCAST_MAX_AGE}' order by id",
            user["broadcast_cursor"],
        )
        if not pending:
            return
        for b in pending:
            args = (new_id(), user_id, b["title"], b["body"], b["data"], b["id"])
            while await db.fetchval(_COPY_NOTICE, *args) is None:
                continue  # its seq was taken by a write that committed: numbered again
        await db.execute(
            "update users set broadcast_cursor = $2 where id = $1", user_id, pending[-1]["id"]
        )


_COPY_NOTICE = (
    "insert into notifications (id, user_id, seq, kind, title, body, data, broadcast_id)"
    " values ($1, $2, notif_head($2) + 1, 'system.notice', $3, $4, $5, $6)"
    " on conflict (user_id, seq) do nothing returning seq"
)


async def broadcast_copies(
    db: asyncpg.Connection,
    after_id: int,
    up_to_id: int,
    user_ids: list[str],
    ranges: list[tuple[str, str | None]] | None = None,
) -> list[tuple[str, dict]]:
    """The users' copies of the notices after `after_id` up to `up_to_id`, in seq order;
    with `ranges`, only of the users in one of them: (after this id, up to that one or
    every id after). The ids are compared by PostgreSQL, in the order the chunks took.
    The users go as one JSON array: a node reads once per chunk, and encoding its 10,000
    ids as a text[] costs the hub 20 times the CPU."""
    ranges = ranges or [("", None)]
    rows = await db.fetch(
        "select n.* from notifications n join jsonb_array_elements_text($3::jsonb) as here(id)"
        " on here.id = n.user_id"
        " where n.broadcast_id > $1 and n.broadcast_id <= $2"
        " and exists (select 1 from unnest($4::text[], $5::text[]) r(lo, hi)"
        "   where n.user_id > r.lo and (r.hi is null or n.user_id <= r.hi))"
        " order by n.user_id, n.seq",
        after_id,
        up_to_id,
        user_ids,
        [lo for lo, _ in ranges],
        [hi for _, hi in ranges],
    )
    return [(r["user_id"], notification_frame(r)) for r in rows]


async def agents_serving(db: asyncpg.Connection, user_ids: list[str]) -> dict[str, list[str]]:
    """The agents of each user's assigned chats: they see the user's notifications too."""
    rows = await db.fetch(
        "select distinct user_id, agent_id from conversations where status = 'assigned'"
        " and user_id = any($1::text[])",
        user_ids,
    )
    agents_of: dict[str, list[str]] = {}
    for row in rows:
        agents_of.setdefault(row["user_id"], []).append(row["agent_id"])
    return agents_of


async def handled_events(db: asyncpg.Connection, event_ids: list[str]) -> set[str]:
    """Those of `event_ids` that already made their notification (one index lookup)."""
    rows = await db.fetch("select handled_event_ids($1::text[])", event_ids)
    return {r[0] for r in rows}


async def event_cursor(db: asyncpg.Connection, source: str) -> int:
    """The outbox id up to which `source`'s events are known to be stored (0: none)."""
    return await db.fetchval("select after_id from event_cursor where source = $1", source) or 0


async def advance_event_cursor(db: asyncpg.Connection, source: str, after_id: int) -> None:
    """Move `source`'s cursor to `after_id`; it never moves backwards."""
    await db.execute(
        "insert into event_cursor (source, after_id) values ($1, $2)"
        " on conflict (source) do update set after_id = greatest(event_cursor.after_id, $2)",
        source,
        after_id,
    )


# One statement, one round trip per batch: insert the rows, numbered by the hub from the
# users' heads (hub.rules.notif_heads; no counter row is locked or updated), and read what
# the notifier does next for those users (the agents serving them get a `customer.event`,
# the bot follows up in chats where it keeps a state), so a batch is one round trip in
# all, not two. It reads the chats as of the statement's start (READ COMMITTED): an
# assignment committed before the batch is written is seen, one committing while it is
# written is not (that agent's console loads the customer's payments after the
# assignment, where the event is already). The open chats are looked up through a
# function (`open_chats_of`) whose plan is an index lookup whatever the table's size: the
# statement's cached plan, made while the table was small, would otherwise read the whole
# table on every batch as it grows.
#
# The batch comes as one array of `notification_row` rows (the text columns and the seq)
# and one jsonb array of the rows' data, matched by position: asyncpg checks every element
# of an array parameter against the collections.abc classes and calls the jsonb codec once
# per element, so an array per column cost the hub a dozen checks and a codec call per
# notification, where a row costs four and the data one JSON encoding per batch. What
# comes back is a row per user of the batch with an open chat (usually none).
#
# An event stored before (here, or by another node meanwhile) fails the statement on the
# unique index on event_id, and a seq taken meanwhile (another node, a notice, a campaign)
# on the primary key, before anything is kept: the hub then drops the stored events or
# loads the heads again, and writes the batch again.
_WRITE = """
with ops as (
  select t.id, t.user_id, t.kind, t.title, t.body, $2::jsonb -> (t.ord::int - 1) as data,
         t.event_id, t.seq
  from unnest($1::notification_row[]) with ordinality
    as t(id, user_id, kind, title, body, event_id, seq, ord)
),
written as (
  insert into notifications (id, user_id, seq, kind, title, body, data, event_id, created_at)
  select o.id, o.user_id, o.seq, o.kind, o.title, o.body, o.data, o.event_id, $3 from ops o
)
select c.user_id,
       array_agg(distinct c.agent_id) filter (where c.status = 'assigned') as agents,
       array_agg(c.id order by c.id) filter (where c.bot_state is not null) as bot_ids,
       array_agg(c.lang order by c.id) filter (where c.bot_state is not null) as bot_langs
from open_chats_of($4) c
group by c.user_id
"""
_EVENT_STORED = "notifications_event"  # the unique index on event_id


def first_of_each_event(ops: list[NotificationWrite]) -> list[int]:
    """The positions of the writes to make: all without an event, and the first of each
    event's (a later one of the same event yields None, as an event stored before)."""
    seen: set[str] = set()
    keep: list[int] = []
    for i, o in enumerate(ops):
        if o.event_id is None:
            keep.append(i)
        elif o.event_id not in seen:
            seen.add(o.event_id)
            keep.append(i)
    return keep


WRITE_ATTEMPTS = 12  # a batch's users meet another writer's seq at most this often
_BACKOFF_S = (0.001, 0.1)  # the first and the longest wait before numbering again


async def write_notifications(
    conn: asyncpg.Connection, ops: list[NotificationWrite], heads: NotifHeads | None = None
) -> list[Any]:
    """Insert notifications with each user's next seq. An op whose `event_id` was already
    handled (here, on another node, or earlier in the batch) yields None and writes nothing.

    `heads`: the node's heads, for a writer whose users' writes are never in flight
    elsewhere on the node (hub.store.writer.Writers); without them, or inside a
    transaction (whose COMMIT comes later, so the heads could not be advanced here), the
    users' heads are read from the store first. Inside a transaction each attempt is a
    savepoint, so a seq or an event taken meanwhile does not end the caller's transaction."""
    keep = first_of_each_event(ops)
    if heads is not None and conn.is_in_transaction():
        heads.forget({o.user_id for o in ops})  # written here, advanced by nobody
        heads = None
    known = heads if heads is not None else NotifHeads()
    for attempt in range(WRITE_ATTEMPTS):
        if not keep:
            return [None] * len(ops)
        batch = [ops[i] for i in keep]
        users = sorted({o.user_id for o in batch})
        missing = known.unknown(users)
        if missing:
            known.learn(tuple(r) for r in await conn.fetch(_HEADS, missing))
        batch_users = [o.user_id for o in batch]
        seqs, after = known.number(batch_users)
        ids, now = [new_id() for _ in batch], datetime.now(UTC)
        try:
            rows = await _insert(conn, batch, batch_users, ids, seqs, now, users)
        except asyncpg.DeadlockDetectedError:
            known.forget(users)  # chosen to give way to another writer: numbered again
            continue
        except asyncpg.UniqueViolationError as e:
            known.forget(users)
            NUMBERED_AGAIN.labels(
                "event_stored" if e.constraint_name == _EVENT_STORED else "seq_taken"
            ).inc()
            if e.constraint_name == _EVENT_STORED:
                handled = await handled_events(conn, [o.event_id for o in batch if o.event_id])
                keep = [i for i in keep if ops[i].event_id not in handled]
            elif e.constraint_name == _SEQ_TAKEN:
                # another writer of these users is busy (rare: a user's live writes go to
                # one node); a random wait, so that the two do not meet again at once
                first, longest = _BACKOFF_S
                await asyncio.sleep(random.uniform(0, min(longest, first * 2**attempt)))
            else:
                raise
            continue
        except BaseException:
            known.forget(users)
            raise
        known.advance(after)
        return _stored(ops, keep, ids, seqs, now, rows)
    raise Unavailable("the notifications' seqs kept being taken by other writers")


_HEADS = "select * from notif_heads($1::text[])"
_SEQ_TAKEN = "notifications_pkey"  # the primary key (user_id, seq)


async def _insert(
    conn: asyncpg.Connection,
    batch: list[NotificationWrite],
    batch_users: list[str],
    ids: list[str],
    seqs: list[int],
    now: datetime,
    users: list[str],
) -> list[asyncpg.Record]:
    # in user id order (each user's in seq order), as every writer of notifications
    # inserts: two that wait on each other's seqs never wait in a circle
    order = sorted(range(len(batch)), key=batch_users.__getitem__)
    rows = []
    for k in order:
        o = batch[k]
        rows.append((ids[k], o.user_id, o.kind, o.title, o.body, o.event_id, seqs[k]))
    args = (
        rows,
        [batch[k].data for k in order],  # one JSON array
        now,
        users,
    )
    if not conn.is_in_transaction():  # one statement is atomic on its own
        return await conn.fetch(_WRITE, *args)
    async with conn.transaction():  # a savepoint
        return await conn.fetch(_WRITE, *args)


_NOT_SERVED: tuple[tuple[str, ...], tuple[tuple[str, str], ...]] = ((), ())


def _stored(
    ops: list[NotificationWrite],
    keep: list[int],
    ids: list[str],
    seqs: list[int],
    now: datetime,
    rows: list[asyncpg.Record],
) -> list[Any]:
    """Each op's StoredNotification (None for those not written), with what the statement
    read of its user's open chats: the agents serving them, the ids and langs of the chats
    in which the bot keeps a state (one pair of tuples per user, shared by that user's
    rows)."""
    serving: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
        user_id: (tuple(agents or ()), tuple(zip(bot_ids or (), bot_langs or (), strict=True)))
        for user_id, agents, bot_ids, bot_langs in rows
    }
    ts_text = now.isoformat()
    out: list[Any] = [None] * len(ops)
    for nid, i, seq in zip(ids, keep, seqs, strict=True):
        o = ops[i]
        known = serving.get(o.user_id, _NOT_SERVED)
        out[i] = StoredNotification(
            nid, o.user_id, seq, o.kind, o.title, o.body, o.data, now, ts_text, known[0], known[1]
        )
    return out
