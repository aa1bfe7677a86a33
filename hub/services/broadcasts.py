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

from hub.cluster.bus import NODES_CHANNEL, seal, user_channel
from hub.cluster.node import Node
from hub.store import notifications as notif_store
from hub.store.notifications import StoredBroadcast
from hub.ws.protocol import encode_msgpack
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
    """The copies of this node's users, to their sockets (each encoded once)."""
    deliver = node.registry.deliver_sequenced
    for user_id, seq, packed in packed_copies(stored):
        deliver(user_channel(user_id), packed, "notification", seq)


def packed_copies(stored: StoredBroadcast):
    """(user id, seq, msgpack bytes of the copy's frame) for every copy in `stored`: the
    bytes `encode_msgpack(stored.frame(seq, notification_id))` gives, but the parts every
    copy shares (kind, title, body, data, ts) are packed once."""
    if not stored.copies:
        return
    user_id, seq, notification_id = stored.copies[0]
    frame = stored.frame(seq, notification_id)
    assert list(frame)[:3] == ["type", "seq", "notification_id"] and len(frame) < 16
    head = bytes((0x80 | len(frame),)) + encode_msgpack("type") + encode_msgpack("notification")
    head += encode_msgpack("seq")
    mid = encode_msgpack("notification_id")
    tail = b"".join(encode_msgpack(k) + encode_msgpack(v) for k, v in list(frame.items())[3:])
    for user_id, seq, notification_id in stored.copies:
        yield (
            user_id,
            seq,
            head + encode_msgpack(seq) + mid + encode_msgpack(notification_id) + tail,
        )


def announcer(secret: str):
    """`announce` with the secret bound, for a process that owns its own pool and Redis
    (the standalone payments app)."""

    async def announce_with(pool: asyncpg.Pool, redis: RedisClient, title: str, body: str,
                            data: dict) -> int:  # fmt: skip
        return await announce(pool, redis, secret, title, body, data)

    return announce_with
