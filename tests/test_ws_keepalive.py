"""WebSocket pings from the node's one keepalive timer (hub.ws.keepalive), on a real
server: a peer that answers stays, one that stops answering is cut with 1011 after one
interval, as uvicorn's own per-socket keepalive did."""

from __future__ import annotations

import asyncio
import uuid

from websockets.frames import Opcode

from hub.ws.keepalive import Keepalive
from tests.conftest import start_hub

PING_S = 0.4
GIVE_UP_S = 30.0  # a bound against hanging on a loaded machine, not a speed check


async def _until(condition) -> None:
    async with asyncio.timeout(GIVE_UP_S):
        while not condition():
            await asyncio.sleep(0.05)


def _pings_seen(client) -> list[bytes]:
    """Record the pings the client's protocol receives (it still answers them)."""
    seen: list[bytes] = []
    protocol = client.ws.protocol
    recv_frame = protocol.recv_frame

    def recording(frame):
        if frame.opcode is Opcode.PING:
            seen.append(bytes(frame.data))
        recv_frame(frame)

    protocol.recv_frame = recording
    return seen


def _stop_answering_pings(client) -> None:
    protocol = client.ws.protocol
    send_frame = protocol.send_frame

    def no_pongs(frame):
        if frame.opcode is not Opcode.PONG:
            send_frame(frame)

    protocol.send_frame = no_pongs


async def test_a_peer_that_answers_is_pinged_every_interval_and_stays(services):
    server = await start_hub(services, ws_ping_s=PING_S)
    try:
        user_id = f"u-{uuid.uuid4().hex[:8]}"
        client = await server.client(user_id, ping_interval=None)
        seen = _pings_seen(client)
        # how often is the wheel's own test (below); here: pings keep coming, answered
        await _until(lambda: len(seen) >= 3)
        assert (await client.request({"type": "ping"}))["type"] == "pong"
        [conn] = server.node.registry.of_user(user_id)
        assert conn._proto.pending_ping_payload in (None, seen[-1])  # the pong went home
        assert len(server.hub.keepalive) == 1
        await client.close()
        await _until(lambda: len(server.hub.keepalive) == 0)  # a closed socket leaves the wheel
    finally:
        await server.stop()


async def test_a_peer_that_stops_answering_pings_is_cut_with_1011(services):
    server = await start_hub(services, ws_ping_s=PING_S)
    try:
        quiet = await server.client(ping_interval=None)
        talking = await server.client(ping_interval=None)
        _stop_answering_pings(quiet)
        await asyncio.wait_for(quiet.ws.wait_closed(), GIVE_UP_S)
        assert quiet.ws.close_code == 1011
        assert (await talking.request({"type": "ping"}))["type"] == "pong"
        await talking.close()
    finally:
        await server.stop()


async def test_no_pings_when_the_interval_is_zero(services):
    server = await start_hub(services, ws_ping_s=0)
    try:
        client = await server.client(ping_interval=None)
        seen = _pings_seen(client)
        await asyncio.sleep(0.3)
        assert seen == [] and len(server.hub.keepalive) == 0
        await client.close()
    finally:
        await server.stop()


async def test_a_socket_joins_the_slot_visited_last():
    wheel = Keepalive(20.0, slots=4)
    assert wheel.step_s == 5.0
    wheel._cursor = 2
    beats: list[int] = []

    class Socket:
        direct = True

        def ping(self, frame, payload, now):
            beats.append(wheel._cursor)
            return True

    wheel.add(Socket())  # type: ignore[arg-type]
    for _ in range(8):
        wheel.beat()
    assert beats == [2, 2]  # once per turn of the wheel, a whole interval after it joined
