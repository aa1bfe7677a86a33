"""The fault suite: real processes (PostgreSQL, Redis, `supporthub serve` nodes,
`supporthub payments`) faulted under traffic, and then the one check
(`tests.faults.ledger`): every device got exactly the committed rows addressed to it,
each once, in seq order.

Scenarios covered elsewhere, not repeated here: a deaf listener (`test_delivery.py::
test_deaf_listener_is_noticed_by_the_probe_and_healed`), a frame lost between Redis and a
node (`test_position_check.py`), a hung commit and an exhausted pool (`test_faults.py`),
Redis restarted under one node's traffic (`test_bus_outage.py`), a node killed with events
in its buffer (`test_delivery.py::test_events_of_a_node_killed_mid_stream_are_taken_over`),
slow consumers (`test_delivery.py::test_slow_consumer_*`)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.stack import Stack, stack
from tests.faults.traffic import Traffic, populate

pytestmark = pytest.mark.timeout(240)


async def _until(predicate, seconds: float, what: str) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not await predicate():
        assert time.monotonic() - started < seconds, f"timed out: {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _ready(node_url: str) -> bool:
    import httpx

    try:
        async with httpx.AsyncClient() as http:
            return (await http.get(node_url + "/readyz", timeout=2)).status_code == 200
    except httpx.HTTPError:
        return False


async def _two_nodes(s: Stack) -> tuple[list[str], str]:
    payments = await s.payments().start()
    nodes = [await s.node().start(), await s.node().start()]
    return [n.ws_url for n in nodes], payments.url


async def test_redis_restarted_flushed_and_its_subscribers_killed_under_traffic() -> None:
    async with stack() as s:
        urls, payments_url = await _two_nodes(s)
        world = await populate(s, urls, users=12, devices=2, agents=2, chats=4)
        traffic = Traffic(world, payments_url, payers=2).start()
        try:
            await asyncio.sleep(1.0)
            s.redis.stop()  # stopped...
            await asyncio.sleep(2.0)
            s.redis.start()  # ...and started again
            await asyncio.sleep(2.0)
            await s.redis_command("FLUSHALL")  # the node set, limits, everything gone
            await asyncio.sleep(1.5)
            killed = await s.redis_command("CLIENT", "KILL", "TYPE", "pubsub")
            assert int(killed) >= 2  # every node's subscriber, the payments relay's none
            await asyncio.sleep(2.0)
        finally:
            await traffic.stop()
        assert not world.errors, world.errors
        assert world.counts["payments"] > 10 and world.counts["messages"] > 10, world.counts
        for url in urls:
            await _until(lambda u=url: _ready(u.replace("ws://", "http://")[: -len("/ws")]),
                         20, "readyz green again")  # fmt: skip
        await world.ledger.check(s.dsn, settle_s=30)
        await world.ledger.stop()
