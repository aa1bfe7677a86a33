"""Helpers for the client libraries' tests: a hub that can be stopped and started again on
the same port (a server restart, as a client sees it), and an agent online in a chat."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from typing import Any

import uvicorn

from hub.app import create_app
from hub.store import agents
from tests.client import HubClient
from tests.conftest import SECRET, HubServer, make_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_hub_on(services: Any, port: int) -> HubServer:
    """A hub (dev mode) on `port`, which may have served another hub a moment ago."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    settings = make_settings(port=port, attachment_dir=services.root / "attachments")
    app = create_app(settings, dsn=services.dsn, redis_url=services.redis_url, secret=SECRET,
                     with_payments=True, dev=True)  # fmt: skip
    config = uvicorn.Config(app, ws="websockets-sansio", ws_max_size=settings.max_frame_bytes,
                            ws_ping_interval=None, lifespan="on", log_config=None,
                            access_log=False, proxy_headers=False)  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise RuntimeError("hub did not start")
        await asyncio.sleep(0.02)
    return HubServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", app, server, task)


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def online_agent(hub: HubServer, db: Any, username: str, skills: list[str]) -> HubClient:
    await agents.upsert(db, username=username, password="pw-" + username,
                        name=username.title(), skills=skills, capacity=5,
                        supervisor=False)  # fmt: skip
    client = await hub.client(username, "agent", name=username.title())
    state = await client.request({"type": "agent.status", "status": "online"})
    assert state["status"] == "online", state
    return client
