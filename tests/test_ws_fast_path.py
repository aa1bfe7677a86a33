"""The direct write path (hub.ws.uvicorn_fast) is on under the uvicorn pyproject.toml pins.
If an upgrade moves what it relies on, connections fall back to ASGI without a word:
correct, but slower. These tests are that word."""

from __future__ import annotations

import uuid

import pytest

from hub import metrics
from tests.client import JSON, MSGPACK
from tests.conftest import start_hub


@pytest.mark.parametrize("proto", [JSON, MSGPACK])
async def test_a_real_server_connection_writes_straight_to_the_socket(hub, proto):
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    client = await hub.client(user_id, proto=proto)
    try:
        [conn] = hub.node.registry.of_user(user_id)
        assert conn.direct, "uvicorn's sans-I/O protocol is no longer reachable"
        before = metrics.FRAMES_DIRECT.value
        assert (await client.request({"type": "ping"}))["type"] == "pong"
        assert metrics.FRAMES_DIRECT.value > before
    finally:
        await client.close()


async def test_the_direct_path_also_frames_compressed_messages(services):
    server = await start_hub(services, ws_compression=True)
    try:
        user_id = f"u-{uuid.uuid4().hex[:8]}"
        client = await server.client(user_id, compression="deflate")
        [conn] = server.node.registry.of_user(user_id)
        assert conn.direct and conn._proto.conn.extensions  # negotiated permessage-deflate
        before = metrics.FRAMES_DIRECT.value
        assert (await client.request({"type": "ping"}))["type"] == "pong"
        assert metrics.FRAMES_DIRECT.value > before
        await client.close()
    finally:
        await server.stop()


async def test_an_open_socket_holds_a_lean_receive_queue_and_writable_event_and_no_headers(hub):
    from hub.ws.uvicorn_fast import LeanEvent, LeanQueue

    user_id = f"u-{uuid.uuid4().hex[:8]}"
    client = await hub.client(user_id, proto=MSGPACK)
    try:
        [conn] = hub.node.registry.of_user(user_id)
        assert isinstance(conn._proto.queue, LeanQueue)
        assert isinstance(conn._proto.writable, LeanEvent) and conn._proto.writable.is_set()
        # the handshake's headers are gone, also from websockets' suspended parser
        assert conn._proto.request is None and conn._proto.response is None
        kept = conn._proto.conn.parser.gi_frame.f_locals.get("request")
        assert kept is not None and not list(kept.headers.raw_items())
        # frames sent back to back are all read, in order, through the lean queue
        ids = [f"p{i}" for i in range(50)]
        for i in ids:
            await client.send({"type": "ping", "id": i})
        assert [(await client.expect("pong"))["id"] for _ in ids] == ids
    finally:
        await client.close()


async def test_the_lean_queue_hands_items_over_in_order_and_survives_a_timed_out_read():
    import asyncio

    from hub.ws.uvicorn_fast import LeanEvent, LeanQueue

    q = LeanQueue(["a"])
    assert await q.get() == "a" and q.empty()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(q.get(), 0.01)  # a hello timeout: the reader is cancelled
    reader = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    q.put_nowait("b")
    q.put_nowait("c")
    assert await reader == "b" and await q.get() == "c" and q.qsize() == 0

    event = LeanEvent()
    waiter = asyncio.ensure_future(event.wait())
    await asyncio.sleep(0)
    event.set()
    assert await waiter is True and not event._waiters
