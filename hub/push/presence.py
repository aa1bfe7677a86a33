"""Is a user connected anywhere in the cluster?

A node subscribes to a user's bus channel (`sh:u:<id>`) while it holds at least one of
that user's sockets, from before `welcome` until the socket closes (hub.cluster.bus). So
the number of subscribers Redis reports for that channel (`PUBSUB NUMSUB`) is exactly
"would a live frame reach this user now": no extra keys to write on every connect, no
heartbeat to miss, nothing left behind when a node dies (Redis drops its subscriptions
with its connection). One round trip answers for a whole batch of users.

When Redis cannot answer, everyone counts as offline: a push the page also receives is
shown once (the payload's id), a push never sent is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from redis.exceptions import RedisError

from hub.cluster.bus import Bus, user_channel

log = logging.getLogger(__name__)

CHUNK = 500


class BusPresence:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def online(self, user_ids: Iterable[str]) -> set[str]:
        """The users among `user_ids` with at least one live socket on some node."""
        users = list(dict.fromkeys(user_ids))
        live: set[str] = set()
        for i in range(0, len(users), CHUNK):
            chunk = users[i : i + CHUNK]
            try:
                counts = await self.bus.numsub([user_channel(u) for u in chunk])
            except (RedisError, OSError) as exc:
                log.warning("presence: Redis did not answer (%s); pushing to all", exc)
                continue
            for user_id, count in zip(chunk, counts, strict=True):
                if count:
                    live.add(user_id)
        return live
