"""A small real WebSocket client for tests: JSON or msgpack, with a frame buffer so a
test can wait for one frame type while others arrive."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import msgpack
import orjson
import websockets

MSGPACK = "supporthub.msgpack.v1"
JSON = "supporthub.json.v1"
_ids = itertools.count(1)


class HubClient:
    def __init__(self, ws, binary: bool):
        self.ws = ws
        self.binary = binary
        self.frames: list[dict] = []  # everything received, in order
        self._unread: list[dict] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())
        self.welcome: dict | None = None

    @classmethod
    async def connect(
        cls,
        url: str,
        token: str | None = None,
        *,
        proto: str | None = JSON,
        resume: dict | None = None,
        hello: bool = True,
        hello_fields: dict | None = None,
        **kwargs: Any,
    ) -> HubClient:
        ws = await websockets.connect(
            url, subprotocols=[proto] if proto else None, max_size=None, **kwargs
        )
        client = cls(ws, binary=ws.subprotocol == MSGPACK)
        if hello:
            frame: dict = {"type": "hello", "token": token}
            if resume is not None:
                frame["resume"] = resume
            frame.update(hello_fields or {})
            await client.send(frame)
            client.welcome = await client.expect("welcome")
        return client

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = msgpack.unpackb(raw) if isinstance(raw, bytes) else orjson.loads(raw)
                self.frames.append(frame)
                self._unread.append(frame)
                self._arrived.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self._arrived.set()

    async def send(self, frame: dict) -> None:
        await self.ws.send(msgpack.packb(frame) if self.binary else orjson.dumps(frame).decode())

    async def send_raw(self, data: bytes | str) -> None:
        await self.ws.send(data)

    async def request(self, frame: dict, timeout: float = 10) -> dict:
        """Send with a fresh id and wait for the ack/error/answer carrying that id."""
        fid = f"r{next(_ids)}"
        await self.send({**frame, "id": fid})
        return await self.expect(lambda f: f.get("id") == fid, timeout=timeout)

    async def expect(self, match, timeout: float = 10, **fields: Any) -> dict:
        """Wait for (and consume) the first unread frame matching a type or predicate."""
        if isinstance(match, str):
            kind = match

            def match(f, kind=kind):
                return f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())

        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i, frame in enumerate(self._unread):
                if match(frame):
                    del self._unread[i]
                    return frame
            if self._reader.done():
                raise AssertionError(
                    f"connection closed ({self.close_code}) while waiting; got {self._unread}"
                )
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"timed out waiting; unread frames: {self._unread[-10:]}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass

    async def quiet(self, match, seconds: float = 0.5) -> None:
        """Assert that no frame matching arrives within `seconds`."""
        await asyncio.sleep(seconds)
        if isinstance(match, str):
            kind = match

            def match(f, kind=kind):
                return f.get("type") == kind

        bad = [f for f in self._unread if match(f)]
        assert not bad, f"unexpected frames: {bad}"

    def unread(self, kind: str | None = None) -> list[dict]:
        return [f for f in self._unread if kind is None or f.get("type") == kind]

    async def wait_closed(self, timeout: float = 10) -> int | None:
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
