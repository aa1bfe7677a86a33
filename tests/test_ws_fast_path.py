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
