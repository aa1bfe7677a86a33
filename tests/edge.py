"""Helpers for the edge tests: a raw HTTP/1.1 client (to send what httpx will not: a lying
Content-Length, an endless chunked body) and a standalone payments server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import orjson
import uvicorn

from tests.conftest import SECRET, make_settings


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return orjson.loads(self.body)


async def read_response(reader: asyncio.StreamReader) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
    return RawResponse(status, headers, body)


async def open_raw(base_url: str):
    parts = urlsplit(base_url)
    return await asyncio.open_connection(parts.hostname, parts.port)


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class AppServer:
    url: str
    app: object
    server: uvicorn.Server
    task: asyncio.Task

    def http(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=20)

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 20)


async def serve_app(app) -> AppServer:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        await asyncio.sleep(0.02)
    return AppServer(f"http://127.0.0.1:{port}", app, server, task)


@contextlib.asynccontextmanager
async def payments_alone(dsn: str, redis_url: str):
    """`supporthub payments`: the payments API on its own port."""
    from hub.services.verification import passed_verification
    from payments.service import create_app

    async def announce(pool, redis, title, body, data) -> int:
        return 0

    app = create_app(make_settings(), dsn=dsn, redis_url=redis_url, secret=SECRET,
                     announce=announce, verified=passed_verification)  # fmt: skip
    server = await serve_app(app)
    try:
        yield server
    finally:
        await server.stop()
