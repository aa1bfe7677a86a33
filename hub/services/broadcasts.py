"""System notices to every user, from any process that shares the store and Redis.

The notice is stored first (every known user gets a copy with their next seq; users
first seen later get it when they connect), then one signed frame on the nodes'
channel tells every hub node to push the copies of its connected users. Sent from a hub
node, the notice reaches that node's own users straight from the transaction that
stored it (their copies come back with it): no second read, no wait for Redis; the frame
then names the node, which does not push them again.
"""

from __future__ import annotations

import logging

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


async def announce(
    pool: asyncpg.Pool,
    redis: RedisClient,
    secret: str,
    title: str,
    body: str,
    data: dict,
    *,
    here: Node | None = None,
) -> int:
    """Store a notice and tell every node; `here`: the node this runs on, whose users
    get it at once."""
    users = here.registry.local_users() if here is not None else []
    async with acquire(pool) as db:
        stored = await notif_store.create_broadcast(db, title, body, data, users)
    frame: dict = {"type": "broadcast", "broadcast_id": stored.broadcast_id}
    if here is not None:
        push_here(here, stored)
        # a user who connected while it was stored has no copy in `stored`: then this
        # node reads its users' copies as every other node does
        if not set(here.registry.local_users()) - set(users):
            frame["origin"] = here.node_id
    sealed = seal(secret.encode(), NODES_CHANNEL, encode_msgpack(frame))
    try:
        await publish(redis, NODES_CHANNEL, sealed)
    except (OSError, RedisError) as exc:  # stored: users get it when they reconnect
        log.warning("broadcast %s stored, live push failed: %s", stored.broadcast_id, exc)
    return stored.broadcast_id


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
