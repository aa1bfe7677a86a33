"""A reconnect storm: many sockets say hello at once to a hub whose pool is much smaller.
Every one is welcomed and stays open; none is welcomed and then cut because its
registration or replay lost the race for a pooled connection."""

from __future__ import annotations

import asyncio
import json
import uuid

import websockets

from tests.conftest import start_hub

SOCKETS = 400


async def _hello(url: str, token: str) -> tuple[websockets.ClientConnection, list[dict]]:
    """Open a socket and say hello with a resume (so its session replays from the store);
    the frames up to `welcome`, or up to the close when there is none."""
    ws = await websockets.connect(url, subprotocols=["supporthub.json.v1"], max_size=None)
    hello = {"type": "hello", "token": token, "resume": {"notifications_after": 0}}
    await ws.send(json.dumps(hello))
    frames: list[dict] = []
    try:
        while not frames or frames[-1]["type"] != "welcome":
            frames.append(json.loads(await ws.recv()))
    except websockets.ConnectionClosed:
        pass
    return ws, frames


async def _answers_ping(ws: websockets.ClientConnection) -> str:
    """'pong', or how the socket was closed."""
    try:
        await ws.send(json.dumps({"type": "ping", "id": "p"}))
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "pong":
                return "pong"
    except websockets.ConnectionClosed as exc:
        return f"closed {exc.rcvd.code if exc.rcvd else None}"


async def test_hundreds_of_sessions_at_once_on_a_small_pool_are_all_welcomed_and_kept(
    isolated,
):
    server = await start_hub(isolated, db_pool_min=1, db_pool_max=3, db_acquire_timeout_s=0.35)
    sockets: list = []
    try:
        tokens = [server.token(f"storm-{uuid.uuid4().hex[:8]}") for _ in range(SOCKETS)]
        opened = await asyncio.gather(*(_hello(server.ws_url, t) for t in tokens))
        sockets = [ws for ws, _ in opened]
        refused = [frames for _, frames in opened if not frames or frames[-1]["type"] != "welcome"]
        assert refused == [], f"{len(refused)} of {SOCKETS} refused, e.g. {refused[0]}"
        answers = await asyncio.gather(*(_answers_ping(ws) for ws in sockets))
        cut = [a for a in answers if a != "pong"]
        assert cut == [], f"{len(cut)} of {SOCKETS} welcomed and then cut: {cut[:3]}"
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        await server.stop()
