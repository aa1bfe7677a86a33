"""A running node gives back what its background work takes, by reference counting.

`supporthub serve` freezes its start-up heap and runs the cyclic garbage collector rarely
(hub.cli), so whatever a poll or a call leaves in reference cycles stays for a long time,
and native memory such cycles hold is invisible to tracemalloc. An HTTP client made per
outbox poll (every 5 s) held its own copy of the CA bundle in OpenSSL (~0.8 MiB) in such a
cycle: the soak's RSS grew ~5 MiB every 30 s (docs/benchmarks.md, "Soak"). These tests
run with the collector off and count what is left behind, on real servers.
"""

from __future__ import annotations

import gc
import ssl
from datetime import UTC, datetime

import httpcore
import pytest

from hub.services.pager import OnCallPage, WebhookPager
from tests.oncall import OnCallReceiver

pytestmark = pytest.mark.usefixtures("clean")


def live(kind: type) -> int:
    return sum(isinstance(o, kind) for o in gc.get_objects())


async def test_outbox_polls_leave_no_pools_or_tls_contexts_for_the_collector(hub):
    poller = hub.hub.outbox
    await poller.catch_up()  # reads the payments outbox over HTTP, as every poll does
    gc.collect()
    pools, contexts = live(httpcore.AsyncConnectionPool), live(ssl.SSLContext)
    gc.disable()
    try:
        for _ in range(20):
            await poller.catch_up()
        assert live(httpcore.AsyncConnectionPool) == pools
        assert live(ssl.SSLContext) == contexts
    finally:
        gc.enable()


async def test_webhook_calls_share_one_tls_context():
    receiver = await OnCallReceiver("k").start()
    pager = WebhookPager(receiver.url, "k")
    page = OnCallPage("c-1", "u-1", "nobody_online", None, None, datetime.now(UTC), 30.0)
    try:
        assert await pager.page(page)  # the first call may make the process's context
        gc.collect()
        contexts = live(ssl.SSLContext)
        gc.disable()
        try:
            for _ in range(10):
                assert await pager.page(page)
            assert live(ssl.SSLContext) == contexts
        finally:
            gc.enable()
        assert len(receiver.pages_for("c-1")) == 11
    finally:
        await receiver.stop()
