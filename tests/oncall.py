"""An on-call webhook for tests, on a loopback port: what a paging service's adapter does
with the hub's pages, checked the way one would (the HMAC signature over the exact body)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import time

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class OnCallReceiver:
    def __init__(self, key: str) -> None:
        self.key = key.encode()
        self.pages: list[dict] = []
        self.refused: list[str] = []
        self.url = ""
        self._arrived = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task | None = None

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        expected = "sha256=" + hmac.new(self.key, body, hashlib.sha256).hexdigest()
        got = request.headers.get("x-supporthub-signature", "")
        if not hmac.compare_digest(expected, got):
            self.refused.append(f"bad signature {got!r}")
            return Response(status_code=401)
        if request.headers.get("content-type") != "application/json":
            self.refused.append(f"content-type {request.headers.get('content-type')!r}")
            return Response(status_code=415)
        self.pages.append(orjson.loads(body))
        self._arrived.set()
        return Response(status_code=202)

    def pages_for(self, conversation_id: str) -> list[dict]:
        return [p for p in self.pages if p["conversation_id"] == conversation_id]

    async def wait_for(
        self, conversation_id: str, count: int = 1, timeout: float = 15
    ) -> list[dict]:
        """Wait until `count` pages for that chat arrived; return them."""
        deadline = time.monotonic() + timeout
        while len(self.pages_for(conversation_id)) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{len(self.pages_for(conversation_id))} of {count} pages for"
                    f" {conversation_id} within {timeout}s; refused: {self.refused}"
                )
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass
        return self.pages_for(conversation_id)

    async def start(self) -> OnCallReceiver:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/page"
        app = Starlette(routes=[Route("/page", self._receive, methods=["POST"])])
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)
