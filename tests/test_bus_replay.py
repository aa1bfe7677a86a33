"""Signed bus frames are accepted once: a captured frame published again is dropped."""

from __future__ import annotations

import uuid

import msgpack
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st

from hub.cluster.replay import MAX_AGE_MS, WINDOW, ReplayWindow, Stamper

NOW = 1_800_000_000_000


@given(st.lists(st.integers(0, 3 * WINDOW), max_size=300))
def test_a_stamp_is_accepted_once_unless_it_fell_behind_the_window(order):
    stamper = Stamper(b"s" * 8)
    stamps = [stamper.stamp(NOW) for _ in range(3 * WINDOW + 1)]  # counters 1..3W+1
    window = ReplayWindow()
    seen: set[int] = set()
    highest = -1
    for i in order:
        expected = i not in seen and (highest < 0 or i > highest - WINDOW)
        assert window.accept(stamps[i], NOW) is expected
        if expected:
            seen.add(i)
            highest = max(highest, i)


@given(st.permutations(list(range(64))))
def test_frames_reordered_within_the_window_all_pass_once(order):
    stamper = Stamper()
    stamps = [stamper.stamp(NOW) for _ in range(64)]
    window = ReplayWindow()
    assert all(window.accept(stamps[i], NOW) for i in order)
    assert not any(window.accept(stamps[i], NOW) for i in order)


def test_old_future_and_malformed_stamps_are_refused():
    stamper, window = Stamper(), ReplayWindow()
    assert not window.accept(stamper.stamp(NOW - MAX_AGE_MS - 1), NOW)
    assert not window.accept(stamper.stamp(NOW + MAX_AGE_MS + 1), NOW)
    assert not window.accept(b"short", NOW)
    assert window.accept(stamper.stamp(NOW), NOW)


def test_a_forgotten_sender_cannot_be_replayed_after_its_stamps_age_out():
    stamper, window = Stamper(), ReplayWindow()
    stamp = stamper.stamp(NOW)
    assert window.accept(stamp, NOW)
    later = NOW + 3 * MAX_AGE_MS
    window.accept(Stamper().stamp(later), later)  # prunes the first sender
    assert not window.accept(stamp, later)


async def test_a_captured_frame_published_again_is_delivered_once(hub, services):
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    client = await hub.client(user_id)
    channel = f"sh:u:{user_id}"
    sealed = hub.node.bus.seal(channel, msgpack.packb({"type": "typing", "state": True}))
    r = aioredis.from_url(services.redis_url)
    try:
        for _ in range(3):
            await r.publish(channel, sealed)
    finally:
        await r.aclose()
    await client.expect("typing")
    await client.quiet("typing", 0.8)
    await client.close()
