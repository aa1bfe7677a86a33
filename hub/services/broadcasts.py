"""System notices to every user, from any process that shares the store and Redis.

The notice is stored first (every known user gets a copy with their next seq; users
first seen later get it when they connect), then one signed frame on the nodes'
channel tells every hub node to push the copies of its connected users.
"""

from __future__ import annotations

import asyncpg
from redis.exceptions import RedisError

from hub.cluster.bus import NODES_CHANNEL, seal
from hub.store import notifications as notif_store
from hub.ws.protocol import encode_msgpack
from supporthub_core.db import acquire
from supporthub_core.redis_client import RedisClient, publish


async def announce(
    pool: asyncpg.Pool, redis: RedisClient, secret: str, title: str, body: str, data: dict
) -> int:
    async with acquire(pool) as db:
        bid = await notif_store.create_broadcast(db, title, body, data)
    frame = encode_msgpack({"type": "broadcast", "broadcast_id": bid})
    try:
        await publish(redis, NODES_CHANNEL, seal(secret.encode(), NODES_CHANNEL, frame))
    except (OSError, RedisError) as exc:  # stored: users get it when they reconnect
        import logging

        logging.getLogger(__name__).warning("broadcast %s stored, live push failed: %s", bid, exc)
    return bid


def announcer(secret: str):
    """`announce` with the secret bound, for a process that owns its own pool and Redis
    (the standalone payments app)."""

    async def announce_with(pool: asyncpg.Pool, redis: RedisClient, title: str, body: str,
                            data: dict) -> int:  # fmt: skip
        return await announce(pool, redis, secret, title, body, data)

    return announce_with
