"""A node pushes the notifications it stored to its own sockets at once, without waiting
for its fan-out publish to come back from Redis, and does not deliver them again when it
does come back; the other nodes still get them through Redis."""

from __future__ import annotations

import asyncio
import time
import uuid

from hub.cluster.bus import FANOUT_CHANNEL, user_channel
from hub.ws.protocol import encode_msgpack
from tests.conftest import start_hub
from tests.events import publish_signed, tx_event


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def _wait_for(predicate, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def _both_in_ring(a, b) -> None:
    async def seen() -> bool:
        return len(a.node.ring.nodes) == 2 and len(b.node.ring.nodes) == 2

    await _wait_for(seen, "the nodes never saw each other")


def _publishes_failed(caplog) -> int:
    """The bus's warnings of a publish that gave up (a Redis client timeout)."""
    return sum("failed" in r.getMessage() for r in caplog.records)


async def test_own_sockets_get_a_notification_without_the_bus_round_trip(isolated):
    server = await start_hub(isolated)
    try:
        user_id = uid()
        client = await server.client(user_id)
        bus = server.node.bus
        await bus.unsubscribe(FANOUT_CHANNEL)  # this node no longer hears the fan-out
        try:

            async def deaf() -> bool:
                return (await bus.numsub([FANOUT_CHANNEL]))[0] == 0

            await _wait_for(deaf, "the node stayed subscribed to the fan-out")
            await publish_signed(isolated.redis_url, [tx_event(user_id), tx_event(user_id)])
            assert (await client.expect("notification"))["seq"] == 1
            assert (await client.expect("notification"))["seq"] == 2
        finally:
            await bus.subscribe(FANOUT_CHANNEL)
        await client.close()
    finally:
        await server.stop()


async def test_a_node_skips_its_own_fan_out_and_the_others_deliver_it(isolated):
    a = await start_hub(isolated)
    b = await start_hub(isolated)
    try:
        await _both_in_ring(a, b)
        user_id = next(
            u for u in (uid() for _ in range(1000)) if a.node.ring.owner(u) == a.node.node_id
        )
        sentinel_user = uid()
        on_a, on_b = await a.client(user_id), await b.client(user_id)
        sentinel = await a.client(sentinel_user)

        delivered: list[str] = []  # channels node a delivered fan-out items on
        registry = a.node.registry
        deliver = registry.deliver_sequenced

        def counting(channel, packed, kind, seq):
            delivered.append(channel)
            deliver(channel, packed, kind, seq)

        registry.deliver_sequenced = counting
        opened: list[str] = []  # fan-out chunks node a verified
        bus_open = a.node.bus.open

        def counting_open(channel, data):
            if channel == FANOUT_CHANNEL:
                opened.append(channel)
            return bus_open(channel, data)

        a.node.bus.open = counting_open
        await publish_signed(isolated.redis_url, [tx_event(user_id)])
        for c in (on_a, on_b):
            assert (await c.expect("notification"))["seq"] == 1
        await a.hub.notifier.flushed()  # node a's fan-out publish is answered by Redis

        # published by node b after a's: when it reaches a's sockets, a has read its own
        # chunk back from Redis too (one subscriber connection, in order)
        frame = {"type": "notification", "seq": 1, "notification_id": "n-sentinel",
                 "kind": "system.notice", "title": "t", "body": "b", "data": {}, "ts": "x"}  # fmt: skip
        await b.node.delivery.fan_out(
            [(user_channel(sentinel_user), encode_msgpack(frame), "notification", 1)]
        )
        assert (await sentinel.expect("notification"))["notification_id"] == "n-sentinel"
        assert delivered.count(user_channel(user_id)) == 1
        assert len(opened) == 1  # b's chunk; its own was dropped before its signature
        await on_a.quiet("notification", 0.3)
        for c in (on_a, on_b, sentinel):
            await c.close()
    finally:
        await a.stop()
        await b.stop()


async def test_a_notice_sent_from_a_node_reaches_its_users_without_the_bus(isolated):
    from hub.cluster.bus import NODES_CHANNEL

    a = await start_hub(isolated)
    b = await start_hub(isolated)
    try:
        user_id = uid()
        on_a, on_b = await a.client(user_id), await b.client(user_id)
        bus = a.node.bus
        await bus.unsubscribe(NODES_CHANNEL)  # node a no longer hears the nodes' channel
        try:

            async def deaf() -> bool:
                return (await bus.numsub([NODES_CHANNEL]))[0] == 1  # node b only

            await _wait_for(deaf, "node a stayed subscribed to the nodes' channel")
            async with a.http(a.token("ops", "service")) as http:
                r = await http.post("/api/broadcasts", json={"title": "T", "body": "B"})
                assert r.status_code == 202
            for c in (on_a, on_b):  # a from the transaction, b through Redis and its read
                n = await c.expect("notification", kind="system.notice")
                assert (n["seq"], n["title"], n["body"], n["data"]) == (1, "T", "B", {})
            resumed = await a.client(user_id, resume={"notifications_after": 0})
            stored = await resumed.expect("notification", kind="system.notice")
            assert stored["notification_id"] == n["notification_id"] and stored["ts"] == n["ts"]
            await resumed.close()
        finally:
            await bus.subscribe(NODES_CHANNEL)
        await on_a.quiet("notification", 0.3)
        for c in (on_a, on_b):
            await c.close()
    finally:
        await a.stop()
        await b.stop()


def test_a_notices_copies_are_encoded_as_their_frames_would_be():
    from datetime import UTC, datetime

    from hub.services.broadcasts import copy_frames
    from hub.store.notifications import StoredBroadcast
    from hub.ws.protocol import encode_json_bytes

    stored = StoredBroadcast(7, "维护通知 \"今晚\"", "2:00\n", {"k": [1, 2], "n": None, "x": 1.5},
                             datetime.now(UTC), ["u1", "u2", "u3"], [1, 70_000, 2**40],
                             ["a" * 32, "b" * 32, "c" * 32])  # fmt: skip
    frames = copy_frames(stored)
    for _, seq, nid in stored.copies():
        assert frames.frame(seq, nid) == stored.frame(seq, nid)
        assert frames.msgpack(seq, nid) == encode_msgpack(stored.frame(seq, nid))
        assert frames.json(seq, nid) == encode_json_bytes(stored.frame(seq, nid))


async def test_a_slow_fan_out_publish_does_not_hold_up_the_next_notifications_here(
    isolated, caplog
):
    """While Redis does not answer a node's fan-out publish, the node's own sockets still
    get the notifications stored after it, in order; the other nodes get all of them, in
    order, once Redis answers again. (Before, the next batch waited for that answer, or
    for the publish to fail after the Redis client's timeout, its frames lost for the
    other nodes.)"""
    import logging

    import redis.asyncio as aioredis

    caplog.set_level(logging.WARNING, logger="hub.cluster.bus")

    a = await start_hub(isolated, bus_probe_timeout_s=60.0)
    b = await start_hub(isolated, bus_probe_timeout_s=60.0)
    admin = aioredis.from_url(isolated.redis_url)
    try:
        await _both_in_ring(a, b)
        user_id = uid()
        on_a, on_b = await a.client(user_id), await b.client(user_id)
        a.hub.notifier.offer([tx_event(user_id)])
        assert (await on_a.expect("notification"))["seq"] == 1
        assert (await on_b.expect("notification"))["seq"] == 1
        await a.hub.notifier.flushed()

        # PUBLISH waits (CLIENT PAUSE WRITE) until the pause is lifted
        await admin.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
        try:
            a.hub.notifier.offer([tx_event(user_id)])
            assert (await on_a.expect("notification"))["seq"] == 2
            a.hub.notifier.offer([tx_event(user_id)])  # a batch of its own, after seq 2's
            assert (await on_a.expect("notification"))["seq"] == 3
            assert not _publishes_failed(caplog)
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
        assert [(await on_b.expect("notification"))["seq"] for _ in range(2)] == [2, 3]
        await a.hub.notifier.flushed()
        await on_a.quiet("notification", 0.3)
        assert not _publishes_failed(caplog)
        for c in (on_a, on_b):
            await c.close()
    finally:
        await admin.aclose()
        await a.stop()
        await b.stop()


async def test_a_node_pushes_only_so_far_ahead_of_a_publish_redis_does_not_answer(isolated, caplog):
    """Batches go to the node's own sockets while their publish for the other nodes waits
    for Redis, but only so many (what waits for Redis stays bounded); the rest follow,
    in order, once Redis answers. A publish that gives up (the Redis client's timeout, on a
    slow machine) lets one more batch through."""
    import logging

    import redis.asyncio as aioredis

    from hub.services.notify import PUBLISH_LIMIT

    caplog.set_level(logging.WARNING, logger="hub.cluster.bus")

    a = await start_hub(isolated, bus_probe_timeout_s=60.0)
    admin = aioredis.from_url(isolated.redis_url)
    try:
        user_id = uid()
        client = await a.client(user_id)
        await admin.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
        try:
            offered = pushed = 0
            while offered < 3 * PUBLISH_LIMIT:  # one batch at a time, until one is held
                a.hub.notifier.offer([tx_event(user_id)])
                offered += 1
                try:
                    n = await client.expect("notification", timeout=3)
                except AssertionError:
                    break
                pushed += 1
                assert n["seq"] == pushed
            gave_up = _publishes_failed(caplog)
            assert PUBLISH_LIMIT <= pushed <= PUBLISH_LIMIT + 2 + gave_up
            assert offered == pushed + 1
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
        n = await client.expect("notification")
        assert n["seq"] == pushed + 1
        await a.hub.notifier.flushed()
        await client.quiet("notification", 0.3)
        await client.close()
    finally:
        await admin.aclose()
        await a.stop()
