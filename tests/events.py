"""Payment events as the payments module publishes them on `payments.events`: msgpack,
wrapped in the signed envelope of CONTRACT section 4."""

from __future__ import annotations

import msgpack

from supporthub_core import redis_client
from supporthub_core.event_signing import sign_event
from tests.conftest import SECRET

CHANNEL = "payments.events"
EVENTS_KEY = SECRET  # the test settings set no HUB_EVENTS_KEY: the secret is the key


def signed(event: dict, key: str = EVENTS_KEY) -> bytes:
    return sign_event(msgpack.packb(event, use_bin_type=True), key.encode())


async def publish_raw(redis_url: str, messages: list[bytes]) -> None:
    """PUBLISH (SPUBLISH on a cluster URL) each message, as is, on `payments.events`."""
    r = redis_client.client(redis_url)
    try:
        async with r.pipeline(transaction=False) as pipe:
            for m in messages:
                redis_client.publish(pipe, CHANNEL, m)
            await pipe.execute()
    finally:
        await r.aclose()


async def publish_signed(redis_url: str, events: list[dict], key: str = EVENTS_KEY) -> None:
    await publish_raw(redis_url, [signed(e, key) for e in events])
