"""A small HTTP server on a loopback port for tests that play the other end of a webhook
(the on-call pager, a browser's push service): the routes a test gives, served by uvicorn
on a port of its own, and a wait for what those routes record."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute


class LoopbackReceiver:
    def __init__(self) -> None:
        self.base_url = ""
        self._arrived = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task | None = None

    async def start(self, routes: list[BaseRoute]) -> str:
        """Serve `routes` on a free loopback port; the base URL (`http://127.0.0.1:PORT`)."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            Starlette(routes=routes), lifespan="off", log_config=None, access_log=False
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self.base_url

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)

    def arrived(self) -> None:
        """A route recorded something: wake whoever waits."""
        self._arrived.set()

    async def wait_until(
        self, done: Callable[[], bool], timeout: float, failure: Callable[[], str]
    ) -> None:
        """Until `done()` holds after an arrival (or already does); AssertionError with
        `failure()` when it still does not after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(failure())
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass
