"""One WebSocket to the hub, no reconnecting: send frames, and wait for the ones you want
while others arrive. The building block of `Client`, and what tests use to speak the
protocol frame by frame (`tests/client.py`)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from supporthub_client.codec import JSON, MSGPACK, decode, encode

Match = str | Callable[[dict[str, Any]], bool]
_ids = itertools.count(1)


class Connection:
    """A socket with a buffer of frames: `expect` consumes the first unread frame that
    matches, whatever arrived before it."""

    def __init__(self, ws: ClientConnection, binary: bool) -> None:
        self.ws = ws
        self.binary = binary
        self.frames: list[dict[str, Any]] = []  # everything received, in order
        self._unread: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())
        self.welcome: dict[str, Any] | None = None

    @classmethod
    async def connect(
        cls,
        url: str,
        token: str | None = None,
        *,
        proto: str | None = JSON,
        resume: dict[str, Any] | None = None,
        hello: bool | dict[str, Any] = True,
        **kwargs: Any,
    ) -> Any:
        """Open a socket offering `proto` (None: offer nothing) and, unless `hello` is
        False, say hello (with `resume`, and the fields of `hello` when it is a dict) and
        wait for `welcome`."""
        offered = [Subprotocol(proto)] if proto else None
        ws = await websockets.connect(url, subprotocols=offered, max_size=None, **kwargs)
        conn = cls(ws, binary=ws.subprotocol == MSGPACK)
        if hello is not False:
            frame: dict[str, Any] = dict(hello) if isinstance(hello, dict) else {}
            frame.update(type="hello", token=token)
            if resume is not None:
                frame["resume"] = resume
            await conn.send(frame)
            conn.welcome = await conn.expect("welcome")
        return conn

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = decode(raw)
                self.frames.append(frame)
                self._unread.append(frame)
                self._arrived.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self._arrived.set()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(encode(frame, self.binary))

    async def send_raw(self, data: bytes | str) -> None:
        await self.ws.send(data)

    async def request(self, frame: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send with a fresh id and wait for the ack/error/answer carrying that id."""
        fid = f"r{next(_ids)}"
        await self.send({**frame, "id": fid})
        return await self.expect(lambda f: f.get("id") == fid, timeout=timeout)

    @staticmethod
    def _matcher(match: Match, fields: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
        if not isinstance(match, str):
            return match
        kind = match

        def matches(f: dict[str, Any]) -> bool:
            return f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())

        return matches

    async def expect(self, match: Match, timeout: float = 10, **fields: Any) -> dict[str, Any]:
        """Wait for (and consume) the first unread frame matching a type or predicate."""
        matches = self._matcher(match, fields)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, frame in enumerate(self._unread):
                if matches(frame):
                    del self._unread[i]
                    return frame
            if self._reader.done():
                raise AssertionError(
                    f"connection closed ({self.close_code}) while waiting; got {self._unread}"
                )
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"timed out waiting; unread frames: {self._unread[-10:]}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass

    async def quiet(self, match: Match, seconds: float = 0.5) -> None:
        """Assert that no frame matching arrives within `seconds`."""
        await asyncio.sleep(seconds)
        matches = self._matcher(match, {})
        bad = [f for f in self._unread if matches(f)]
        assert not bad, f"unexpected frames: {bad}"

    def unread(self, kind: str | None = None) -> list[dict[str, Any]]:
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
