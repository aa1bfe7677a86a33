"""`python -m tests.faults.relay_dies DSN REDIS_URL EVENTS_KEY`: the payments outbox relay
(`payments.outbox.Relay`, unchanged) in a process of its own that is killed (SIGKILL)
right after its PUBLISH reached Redis and before it marks the rows published: the crash
the relay's at-least-once delivery is about."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import asyncpg

from payments.outbox import Relay
from supporthub_core import redis_client


class DiesAfterPublish:
    """The relay's Redis client, whose pipelines kill this process once they ran."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        pipe = self._redis.pipeline(*args, **kwargs)
        execute = pipe.execute

        async def execute_then_die(*a: Any, **k: Any) -> Any:
            result = await execute(*a, **k)
            os.kill(os.getpid(), signal.SIGKILL)
            return result

        pipe.execute = execute_then_die
        return pipe


async def main(dsn: str, redis_url: str, key: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    relay = Relay(pool, DiesAfterPublish(redis_client.client(redis_url)), events_key=key.encode())
    await relay.publish_once()
    sys.exit("the relay published nothing")  # only reached with an empty outbox


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
