"""Payment events as the payments module publishes them on `payments.events`: msgpack,
wrapped in the signed envelope of CONTRACT section 4."""

from __future__ import annotations

import uuid

import msgpack

from supporthub_core import redis_client
from supporthub_core.event_signing import sign_event
from tests.conftest import SECRET

CHANNEL = "payments.events"
EVENTS_KEY = SECRET  # the test settings set no HUB_EVENTS_KEY: the secret is the key


def tx_event(user_id: str, status: str = "succeeded", **fields: object) -> dict:
    """A `transaction.status` event of 12.50 CNY with fresh ids; `fields` override."""
    event: dict = {
        "event_id": f"ev-{uuid.uuid4().hex}",
        "type": "transaction.status",
        "user_id": user_id,
        "occurred_at": "2026-11-25T08:00:00+00:00",
        "transaction_id": f"tx_{uuid.uuid4().hex[:16]}",
        "status": status,
        "amount": "12.50",
        "currency": "CNY",
        "speed": "instant",
    }
    if status == "failed":
        event["reason"] = "insufficient_balance"
    event.update(fields)
    return event


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
