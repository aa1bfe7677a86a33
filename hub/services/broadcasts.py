"""System notices to every user, from any process that shares the store and Redis.

The notice is stored first, then every known user gets a copy with their next seq (users
first seen later get it when they connect), in parts of `PART_USERS` users by id, each
committed on its own; then one signed frame on the nodes' channel tells every hub node
to push the copies of its connected users. Sent from a hub node, the notice reaches that
node's own users part by part, each part pushed as soon as it has committed while
PostgreSQL writes the next: no second read, no wait for Redis; the frame then names the
node, which does not push them again.

The notices' lock (held by a transaction on a connection of its own while the parts are
written) keeps one notice filling at a time; a notice left half-filled by a sender that
stopped is filled by the next notice before its own, or by the sweeper
(`finish_interrupted`), and announced then.
"""

from __future__ import annotations

import asyncio
import logging
import random
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
from redis.exceptions import RedisError

from hub.cluster.bus import NODES_CHANNEL, seal
from hub.cluster.node import Node
from hub.store import notifications as notif_store
from hub.store.notifications import BroadcastPart, StoredBroadcast
from hub.ws.protocol import CopyFrames, encode_msgpack
from supporthub_core.db import acquire
from supporthub_core.redis_client import RedisClient, publish

log = logging.getLogger(__name__)

# Users per part: small enough that the first sockets get theirs soon, large enough
# that a part's statement costs little beside its rows.
PART_USERS = 2000

LOCK_RETRY_S = (0.005, 0.02)  # between tries for the notices' lock (jittered)

PushPart = Callable[[StoredBroadcast], None]


async def announce(
    pool: asyncpg.Pool,
    redis: RedisClient,
    secret: str,
    title: str,
    body: str,
    data: dict,
    *,
    here: Node | None = None,
    part_users: int = PART_USERS,
) -> int:
    """Store a notice and tell every node; `here`: the node this runs on, whose users
    get it as each part commits."""
    async with _notices_lock(pool, wait=True), acquire(pool) as db:
        users = sorted(here.registry.local_users()) if here is not None else []
        interrupted = await fill_interrupted(db, part_users)
        first = await notif_store.start_broadcast(
            db, title, body, data, users[:part_users], part_users
        )
        notice = first.copies
        push = _pusher(here, notice) if here is not None else None
        filled = await _fill_or_leave_to_sweeper(db, first, users, part_users, push)
    for broadcast_id in interrupted:
        await _tell_nodes(redis, secret, {"type": "broadcast", "broadcast_id": broadcast_id})
    if not filled:
        return notice.broadcast_id
    frame: dict = {"type": "broadcast", "broadcast_id": notice.broadcast_id}
    # a user who connected while it was stored has no copy pushed: then this node reads
    # its users' copies as every other node does
    if here is not None and not set(here.registry.local_users()) - set(users):
        frame["origin"] = here.node_id
    await _tell_nodes(redis, secret, frame)
    return notice.broadcast_id


async def fill(
    db: asyncpg.Connection,
    part: BroadcastPart,
    local_users: list[str],
    part_users: int,
    push: PushPart | None,
) -> None:
    """After `part`, give every known user lacking it their copy of its notice, a part
    at a time; each part's copies of `local_users` (sorted) go to `push` once
    committed, while the next part's statement runs."""
    notice = part.copies
    while part.more:
        after = part.last_user
        start = bisect_right(local_users, after)
        local = local_users[start : start + part_users]
        following = asyncio.ensure_future(
            notif_store.fill_broadcast_part(db, notice, after, local, part_users)
        )
        await asyncio.sleep(0)  # its statement goes out before this part's push
        try:
            if push is not None:
                push(part.copies)
        finally:
            part = await following
    if push is not None:
        push(part.copies)


async def _fill_or_leave_to_sweeper(
    db: asyncpg.Connection,
    first: BroadcastPart,
    local_users: list[str],
    part_users: int,
    push: PushPart | None,
) -> bool:
    """`fill`; False if a part failed. The notice is stored and marked `filling` once
    its first part commits, so it is accepted: the sweeper (`finish_interrupted`) fills
    the rest and announces it. Failing the sender then would only make it send twice."""
    try:
        await fill(db, first, local_users, part_users, push)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        log.warning(
            "broadcast %s stored in part (%s); the sweeper fills the rest",
            first.copies.broadcast_id,
            exc,
        )
        return False
    return True


async def fill_interrupted(db: asyncpg.Connection, part_users: int = PART_USERS) -> list[int]:
    """Fill the notices a sender left half-done (call it holding the notices' lock);
    their ids, to announce."""
    notices = await notif_store.filling_broadcasts(db)
    for notice in notices:
        log.warning("broadcast %s was left half-filled: filling it", notice.broadcast_id)
        await fill(db, BroadcastPart(notice, "", True), [], part_users, None)
    return [n.broadcast_id for n in notices]


async def finish_interrupted(pool: asyncpg.Pool, redis: RedisClient, secret: str) -> list[int]:
    """The sweeper's check: fill and announce any notice left half-done, unless a
    sender holds the lock (it is still filling its notice)."""
    async with _notices_lock(pool, wait=False) as mine:
        if not mine:
            return []
        async with acquire(pool) as db:
            done = await fill_interrupted(db)
    for broadcast_id in done:
        await _tell_nodes(redis, secret, {"type": "broadcast", "broadcast_id": broadcast_id})
    return done


@asynccontextmanager
async def _notices_lock(pool: asyncpg.Pool, *, wait: bool) -> AsyncIterator[bool]:
    """Hold the notices' lock for the block, in a transaction on a connection of its
    own (the block writes on another). A sender waiting for it holds no connection
    between tries: waiters holding the pool's connections would leave the holder none."""
    while True:
        async with acquire(pool) as lock_db, lock_db.transaction():
            if await notif_store.try_broadcast_lock(lock_db):
                yield True
                return
        if not wait:
            yield False
            return
        await asyncio.sleep(random.uniform(*LOCK_RETRY_S))


async def _tell_nodes(redis: RedisClient, secret: str, frame: dict) -> None:
    sealed = seal(secret.encode(), NODES_CHANNEL, encode_msgpack(frame))
    try:
        await publish(redis, NODES_CHANNEL, sealed)
    except (OSError, RedisError) as exc:  # stored: users get it when they reconnect
        log.warning("broadcast %s stored, live push failed: %s", frame["broadcast_id"], exc)


def _pusher(node: Node, notice: StoredBroadcast) -> PushPart:
    frames = copy_frames(notice)
    return lambda part: push_here(node, frames, part)


def push_here(node: Node, frames: CopyFrames, part: StoredBroadcast) -> None:
    """A part's copies of this node's users, to their sockets."""
    node.registry.push_copies(frames, part.copies())


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
