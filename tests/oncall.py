"""An on-call webhook for tests, on a loopback port: what a paging service's adapter does
with the hub's pages, checked the way one would (the HMAC signature over the exact body)."""

from __future__ import annotations

import hashlib
import hmac

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.receiver import LoopbackReceiver


class OnCallReceiver:
    def __init__(self, key: str) -> None:
        self.key = key.encode()
        self.pages: list[dict] = []
        self.refused: list[str] = []
        self.url = ""
        self._http = LoopbackReceiver()

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
        self._http.arrived()
        return Response(status_code=202)

    def pages_for(self, conversation_id: str) -> list[dict]:
        return [p for p in self.pages if p["conversation_id"] == conversation_id]

    async def wait_for(
        self, conversation_id: str, count: int = 1, timeout: float = 15
    ) -> list[dict]:
        """Wait until `count` pages for that chat arrived; return them."""
        await self._http.wait_until(
            lambda: len(self.pages_for(conversation_id)) >= count,
            timeout,
            lambda: (
                f"{len(self.pages_for(conversation_id))} of {count} pages for"
                f" {conversation_id} within {timeout}s; refused: {self.refused}"
            ),
        )
        return self.pages_for(conversation_id)

    async def start(self) -> OnCallReceiver:
        base = await self._http.start([Route("/page", self._receive, methods=["POST"])])
        self.url = f"{base}/page"
        return self

    async def stop(self) -> None:
        await self._http.stop()
