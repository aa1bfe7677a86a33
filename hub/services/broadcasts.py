"""System notices to every user, from any process that shares the store and Redis.

A notice is stored in chunks of users in id order (`CHUNK`, `HUB_BROADCAST_CHUNK`), each
chunk its own transaction giving each of its users a copy with their next seq (users
first seen later, and users who connect while the notice is being stored, get it when
they connect: `materialise_broadcasts`). The chunks are pipelined: while PostgreSQL
stores chunk k+1, the node pushes chunk k's copies of its own connected users (they come
back with the chunk: no second read, no wait for Redis). After each chunk one signed
frame on the nodes' channel names the notice, the chunk's range of users and whether the
notice is complete; every other node reads its users' copies of that range and pushes
them (`Hub._push_broadcast`), and once it is complete one node sends the offline users'
Web Push. The frame names the node that sent the notice (`origin`) when it pushed all
its users' copies itself.

Notices are stored one after the other: a chunk always goes on with the oldest notice
not complete yet, so a notice left incomplete by a sender that died between chunks is
finished by the next notice's sender before its own users, or by the sweeper
(`finish_stalled`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from redis.exceptions import RedisError

from hub.cluster.bus import NODES_CHANNEL, seal
from hub.cluster.node import Node
from hub.store import notifications as notif_store
from hub.store.notifications import StoredBroadcast
from hub.ws.protocol import CopyFrames, encode_msgpack
from supporthub_core.db import acquire
from supporthub_core.redis_client import RedisClient, publish

log = logging.getLogger(__name__)

CHUNK = 1000  # users per chunk: the first are pushed while the next chunks are stored
STALL_S = 30.0  # a notice incomplete this long: its sender died, the sweeper finishes it


async def announce(
    pool: asyncpg.Pool,
    redis: RedisClient,
    secret: str,
    title: str,
    body: str,
    data: dict,
    *,
    here: Node | None = None,
    chunk: int = CHUNK,
) -> int:
    """Store a notice and tell every node, chunk by chunk; `here`: the node this runs
    on, whose users get it at once. Returns once the notice is complete."""
    return await NoticeSender(pool, redis, secret, here, chunk).announce(title, body, data)


@dataclass(slots=True)
class NoticeSender:
    """Stores notices chunk by chunk and tells the nodes; `here`: the node this runs on
    (its users' copies are pushed straight from the chunks), if any."""

    pool: asyncpg.Pool
    redis: RedisClient
    secret: str
    here: Node | None = None
    chunk: int = CHUNK
    # told after each chunk commits: its users' copies were numbered behind the node's
    # heads (hub.rules.notif_heads), which the node forgets
    numbered: Callable[[], None] | None = None

    async def announce(self, title: str, body: str, data: dict) -> int:
        """Store the notice and its chunks; returns once it is complete."""
        broadcast_id = await self.begin(title, body, data)
        await self.finish(broadcast_id)
        return broadcast_id

    async def begin(self, title: str, body: str, data: dict) -> int:
        """Store the notice's row (its id; no user has a copy yet): from then on users who
        connect get it, and anyone's `finish` (or the sweeper's) gives the others theirs."""
        async with acquire(self.pool) as db:
            return await notif_store.create_broadcast(db, title, body, data)

    async def finish(self, broadcast_id: int) -> None:
        """Store chunks until notice `broadcast_id` is complete, pushing and telling the
        nodes as they commit."""
        async with acquire(self.pool) as db:
            await self.store_chunks(db, broadcast_id)

    async def finish_stalled(self, older_than_s: float = STALL_S) -> int | None:
        """Finish the oldest notice left incomplete for more than `older_than_s` (its
        sender died between chunks); its id, or None."""
        async with acquire(self.pool) as db:
            stalled = await notif_store.stalled_notice(db, older_than_s)
            if stalled is not None:
                log.warning("broadcast %s was left incomplete: finishing it", stalled)
                await self.store_chunks(db, stalled)
        return stalled

    async def store_chunks(self, db: asyncpg.Connection, until: int) -> None:
        """Store chunks (of the oldest incomplete notice each) until notice `until` is
        complete: the next chunk's statement is sent before this node pushes the copies
        of the last one, so the two run side by side (PostgreSQL's core, the hub's)."""
        here, chunk = self.here, self.chunk
        users = here.registry.local_users() if here is not None else []
        # the node's users are sent with each chunk, or all its copies come back (and those
        # of users not here are skipped): whichever is less to encode or decode
        ask: list[str] | None = users if len(users) < chunk else None
        joined = here.registry.joined if here is not None else 0
        pending: asyncio.Task[StoredBroadcast | None] | None = asyncio.ensure_future(
            notif_store.store_chunk(db, chunk, ask)
        )
        try:
            while pending is not None:
                stored = await pending
                pending = None
                if stored is None:
                    return  # completed by another sender meanwhile
                if self.numbered is not None:
                    self.numbered()
                bid = stored.broadcast_id  # past `until`: it is complete (one at a time)
                if bid < until or (bid == until and not stored.complete):
                    pending = asyncio.ensure_future(notif_store.store_chunk(db, chunk, ask))
                    await asyncio.sleep(0)  # its statement goes out before the push below
                origin = None
                if here is not None:
                    push_here(here, stored)
                    # a user who connected since `users` was taken has no copy in `stored`:
                    # then this node reads its users' copies as every other node does
                    if here.registry.joined == joined:
                        origin = here.node_id
                await tell_nodes(self.redis, self.secret, stored, origin)
        finally:
            if pending is not None:
                pending.cancel()


async def tell_nodes(
    redis: RedisClient, secret: str, stored: StoredBroadcast, origin: str | None
) -> None:
    """The nodes' frame of one stored chunk."""
    frame: dict = {
        "type": "broadcast",
        "broadcast_id": stored.broadcast_id,
        "after": stored.after_user,
        "up_to": stored.up_to,
        "done": stored.complete,
    }
    if origin is not None:
        frame["origin"] = origin
    sealed = seal(secret.encode(), NODES_CHANNEL, encode_msgpack(frame))
    try:
        await publish(redis, NODES_CHANNEL, sealed)
    except (OSError, RedisError) as exc:  # stored: users get it when they reconnect
        log.warning("broadcast %s stored, live push failed: %s", stored.broadcast_id, exc)


@dataclass(frozen=True, slots=True)
class ChunkNews:
    """A nodes' frame of a stored chunk: the notice, its users after `after` up to
    `up_to` (None: every user after it), whether the notice is complete, and the node
    that pushed its own users' copies already."""

    broadcast_id: int
    after: str = ""
    up_to: str | None = None
    done: bool = True
    origin: str | None = None


def chunk_news(frame: dict) -> ChunkNews:
    """A `broadcast` frame as news of a chunk; a frame with no range (a node of an older
    release) stands for the whole notice, complete."""
    up_to = frame.get("up_to")
    return ChunkNews(
        int(frame["broadcast_id"]),
        str(frame.get("after") or ""),
        None if up_to is None else str(up_to),
        bool(frame.get("done", True)),
        frame.get("origin"),
    )


def one_read(news: list[ChunkNews], repush: int) -> tuple[int, int, list[tuple[str, str | None]]]:
    """What one read of a node's users' copies covers for the chunks heard since the last
    read: the notices after (the first one's id - `repush`) up to the last one's, and the
    users in any of the chunks' ranges (those that follow each other as one). Announcements
    may arrive out of order (two senders), so the notices just before each are read again; a
    copy pushed twice is dropped by the connection (seq)."""
    first = min(n.broadcast_id for n in news)
    last = max(n.broadcast_id for n in news)
    ranges: list[tuple[str, str | None]] = []
    for n in news:  # a sender's chunks are heard in order: each starts where the last ended
        if ranges and ranges[-1][1] == n.after:
            ranges[-1] = (ranges[-1][0], n.up_to)
        elif (n.after, n.up_to) not in ranges:
            ranges.append((n.after, n.up_to))
    return max(0, first - repush), last, ranges


def push_here(node: Node, stored: StoredBroadcast) -> None:
    """The copies of this node's users, to their sockets."""
    node.registry.push_copies(copy_frames(stored), stored.copies())


def copy_frames(stored: StoredBroadcast) -> CopyFrames:
    """The frames of the notice's copies, as `stored.frame` makes them, with the parts
    every copy shares (kind, title, body, data, ts) encoded once."""
    frame = stored.frame(0, "")
    assert list(frame)[:3] == ["type", "seq", "notification_id"]
    kind = frame.pop("type")
    del frame["seq"], frame["notification_id"]
    return CopyFrames(kind, frame)


def announcer(secret: str):
    """`announce` with the secret bound, for a process that owns its own pool and Redis
    (the standalone payments app)."""

    async def announce_with(pool: asyncpg.Pool, redis: RedisClient, title: str, body: str,
                            data: dict) -> int:  # fmt: skip
        return await announce(pool, redis, secret, title, body, data)

    return announce_with
