"""Forged payment events over real servers: only events signed with HUB_EVENTS_KEY are
stored, shown or acted on; everything else on `payments.events` is dropped and counted.

Each test publishes the forgery first and a correctly signed event for the same user
after it, on the same Redis connection: the hub handles them in that order, so when the
signed one arrives as the user's notification number 1, the forgery was not shown (it
would have been number 1), without waiting for something not to happen.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid

import msgpack
import pytest

from hub.services.event_gate import EventGate
from payments.seed import add_account
from supporthub_core.event_signing import SignedEventError, open_signed, sign_event
from supporthub_core.settings import Settings
from tests import events
from tests.conftest import SECRET, start_hub
from tests.events import EVENTS_KEY, publish_raw, signed
from tests.test_outbox import Listener, post_payment


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def tx_event(user_id: str, amount: str = "12.50") -> dict:
    return events.tx_event(user_id, amount=amount)


def freeze_event(user_id: str) -> dict:
    return {
        "event_id": f"ev-{uuid.uuid4().hex}",
        "type": "security.alert",
        "user_id": user_id,
        "occurred_at": "2026-11-25T08:00:00+00:00",
        "alert": "account_frozen",
        "severity": "critical",
        "details": {"rule": "velocity", "count": 11, "window_s": 60},
    }


def bare(event: dict) -> bytes:
    """What anyone with access to Redis could publish before: the event, unsigned."""
    return msgpack.packb(event, use_bin_type=True)


def look_alike(event: dict, key: str) -> bytes:
    """An envelope whose outer map is also a complete event: a hub that read anything but
    the signed bytes would take it."""
    envelope = msgpack.unpackb(signed(event, key), raw=False)
    return msgpack.packb({**event, **envelope}, use_bin_type=True)


async def rejected(hub, reason: str) -> float:
    """`supporthub_payment_events_rejected_total{reason}` as /metrics shows it."""
    async with hub.http() as http:
        text = (await http.get("/metrics")).text
    line = "supporthub_payment_events_rejected_total{reason=" + f'"{reason}"' + "} "
    m = re.search("^" + re.escape(line) + r"(\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def gate(hub) -> EventGate:
    return hub.hub.notifier.gate


async def notifications_of(db, user_id: str) -> list:
    return await db.fetch(
        "select event_id, title, body from notifications where user_id = $1 order by seq", user_id
    )


async def test_a_forged_unsigned_transfer_is_never_stored_or_shown(hub, services, db):
    user_id = uid()
    client = await hub.client(user_id)
    before = await rejected(hub, "bad_envelope")
    forged, real = tx_event(user_id, "88888.00"), tx_event(user_id, "1.00")
    await publish_raw(services.redis_url, [bare(forged), signed(real)])

    first = await client.expect("notification")
    assert first["data"]["event_id"] == real["event_id"], "the forged transfer was shown"
    assert first["seq"] == 1 and first["data"]["amount"] == "1.00"
    assert [r["event_id"] for r in await notifications_of(db, user_id)] == [real["event_id"]]
    assert not any("88888" in (f.get("body") or "") for f in client.unread())
    assert await rejected(hub, "bad_envelope") >= before + 1
    assert gate(hub).rejected["bad_envelope"] >= 1
    await client.close()


async def test_an_event_signed_with_another_key_is_dropped(hub, services, db):
    user_id = uid()
    client = await hub.client(user_id)
    before = await rejected(hub, "bad_signature")
    forged = [tx_event(user_id, "88888.00"), tx_event(user_id, "77777.00")]
    real = tx_event(user_id, "2.00")
    await publish_raw(
        services.redis_url,
        [
            signed(forged[0], "not-the-events-key"),
            look_alike(forged[1], "not-the-events-key"),
            signed(real),
        ],
    )

    first = await client.expect("notification")
    assert first["data"]["event_id"] == real["event_id"], "an event with a wrong key was shown"
    assert first["seq"] == 1
    assert [r["event_id"] for r in await notifications_of(db, user_id)] == [real["event_id"]]
    assert await rejected(hub, "bad_signature") >= before + 2
    assert gate(hub).rejected["bad_signature"] >= 2
    await client.close()


async def test_a_forged_account_frozen_opens_no_conversation(hub, services, db):
    user_id = uid()
    client = await hub.client(user_id)
    before = [await rejected(hub, r) for r in ("bad_envelope", "bad_signature")]
    real = tx_event(user_id, "3.00")
    await publish_raw(
        services.redis_url,
        [
            bare(freeze_event(user_id)),
            signed(freeze_event(user_id), SECRET + "-guess"),
            look_alike(freeze_event(user_id), "guess"),
            signed(real),
        ],
    )

    first = await client.expect("notification")
    assert first["data"]["event_id"] == real["event_id"], "a forged freeze alert was shown"
    assert first["seq"] == 1
    await client.quiet("chat.opened", 0.3)
    assert await db.fetchval("select count(*) from conversations where user_id = $1", user_id) == 0
    assert [r["event_id"] for r in await notifications_of(db, user_id)] == [real["event_id"]]
    after = [await rejected(hub, r) for r in ("bad_envelope", "bad_signature")]
    assert after[0] >= before[0] + 1 and after[1] >= before[1] + 2
    await client.close()


async def test_a_signed_freeze_still_opens_the_urgent_chat(hub, services, db):
    user_id = uid()
    client = await hub.client(user_id)
    event = freeze_event(user_id)
    await publish_raw(services.redis_url, [signed(event)])
    n = await client.expect("notification", kind="security.alert")
    assert n["data"]["event_id"] == event["event_id"] and n["data"]["alert"] == "account_frozen"
    opened = await client.expect("chat.opened")
    assert opened["priority"] == "urgent" and opened["topic"] == "security"
    await client.close()


async def test_a_signed_event_is_delivered_and_only_its_signed_bytes_count(hub, services, db):
    user_id = uid()
    client = await hub.client(user_id)
    real, outer = tx_event(user_id, "4.00"), tx_event(user_id, "99999.00")
    # a valid signature over `real`, with another event's fields beside it in the envelope
    envelope = msgpack.unpackb(signed(real), raw=False)
    await publish_raw(services.redis_url, [msgpack.packb({**outer, **envelope})])
    first = await client.expect("notification")
    assert first["data"]["event_id"] == real["event_id"] and first["data"]["amount"] == "4.00"
    await client.quiet("notification", 0.3)
    assert [r["event_id"] for r in await notifications_of(db, user_id)] == [real["event_id"]]
    await client.close()


async def test_payments_and_hub_share_a_separate_events_key(isolated):
    """With HUB_EVENTS_KEY set apart from HUB_SECRET, the relay signs with it and the hub
    accepts it; the secret alone no longer makes an event."""
    key = "events-key-" + uuid.uuid4().hex
    server = await start_hub(isolated, events_key=key)
    try:
        await add_account(isolated.dsn, "alice", "Alice", "100.00")
        await add_account(isolated.dsn, "bob", "Bob", "0.00")
        client = await server.client("alice")
        async with Listener(isolated.redis_url, key=None) as listener:
            forged = tx_event("alice", "88888.00")
            await publish_raw(isolated.redis_url, [signed(forged, SECRET)])
            paid = await post_payment(server, "5.00")
            n = await client.expect("notification", kind="transaction.status")
            assert n["data"]["transaction_id"] == paid["transaction_id"]
            assert n["seq"] == 1
            for _ in range(100):
                if len(listener.messages) >= 2:
                    break
                await asyncio.sleep(0.02)
        relayed = listener.messages[1]
        assert open_signed(relayed, key.encode())["transaction_id"] == paid["transaction_id"]
        with pytest.raises(SignedEventError):
            open_signed(relayed, SECRET.encode())
        assert gate(server).rejected == {"bad_signature": 1}
        await client.close()
    finally:
        await server.stop()


# --- the gate alone: counting and quiet logging ----------------------------------------


def test_events_key_defaults_to_the_secret(monkeypatch):
    monkeypatch.delenv("HUB_EVENTS_KEY", raising=False)
    assert Settings(secret="s").resolved_events_key("s") == "s"
    monkeypatch.setenv("HUB_EVENTS_KEY", "k")
    assert Settings(secret="s").resolved_events_key("s") == "k"
    monkeypatch.setenv("HUB_EVENTS_KEY", "")
    assert Settings(secret="s").resolved_events_key("s") == "s"


def test_a_flood_of_forgeries_is_counted_but_logged_once_per_period(caplog):
    now = [0.0]
    g = EventGate(EVENTS_KEY.encode(), warn_every_s=5.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="hub.services.event_gate"):
        for i in range(5000):
            assert g.open(bare(tx_event("u", str(i)))) is None
        assert g.open(b"\xc1") is None
        assert len(caplog.records) == 1
        now[0] = 5.1
        assert g.open(sign_event(b"\x80", b"other")) is None
        assert len(caplog.records) == 2
    assert g.rejected == {"bad_envelope": 5000, "not_msgpack": 1, "bad_signature": 1}
    # the second report sums up what came since the first
    assert "dropped 1 message" in caplog.records[0].getMessage()
    assert "dropped 5001 message" in caplog.records[1].getMessage()
    assert "bad_envelope: 4999" in caplog.records[1].getMessage()
    assert "not_msgpack: 1" in caplog.records[1].getMessage()
    good = tx_event("u")
    assert g.open(signed(good)) == good


async def test_what_was_dropped_in_a_quiet_period_is_reported_when_it_ends(caplog):
    g = EventGate(EVENTS_KEY.encode(), warn_every_s=0.1)
    with caplog.at_level(logging.WARNING, logger="hub.services.event_gate"):
        for _ in range(3):
            g.open(b"junk")
        assert len(caplog.records) == 1
        await asyncio.sleep(0.25)
        assert len(caplog.records) == 2
        assert "dropped 2 message" in caplog.records[1].getMessage()
        assert b"junk".decode() not in caplog.text  # never the content
