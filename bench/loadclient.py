"""Load client: holds many WebSocket connections in one process (uvloop), one per user id,
and counts what arrives. Engine `sansio` (default): the `websockets` library's sans-I/O
ClientProtocol (its handshake and frame parser) on plain asyncio transports; engine
`asyncio`: the `websockets` asyncio client, one reader task per connection.

Speaks each server's protocol:
  bare      ws://HOST:PORT/?user=ID, waits for "ok"; frames are msgpack bytes (`stored`: same)
  hub       ws://HOST:PORT/ws, subprotocol supporthub.msgpack.v1 (or --hub-json),
            `hello {token}` then waits for `welcome`; counts `notification` frames
  sio       raw Engine.IO v4 / Socket.IO v5 over websockets (no python-socketio client):
            /socket.io/?EIO=4&transport=websocket, CONNECT with auth {"user": ID},
            answers pings, counts `42["notification", {...}]`
  channels  ws://HOST:PORT/ws/?user=ID, waits for "ok"; JSON text frames

Talks to bench/run.py over stdin/stdout, one line each:
  out READY {json}             all connections are open and registered
  in  PHASE <expected> <file> [bcast]  start counting a new phase (bcast: one event for
                               every socket, so the same event_id is no duplicate)
  in  DRIVER_DONE              the driver has published everything
  out RESULT {json}            count reached, or no frame for --stall s after DRIVER_DONE
  in  QUIT                     close everything and exit
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time

import msgpack
import orjson
import uvloop
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HUB_JSON, HUB_MSGPACK, user_id  # noqa: E402


class Phase:
    __slots__ = ("expected", "received", "first", "last", "lat", "ids", "dupes", "done", "file",
                 "driver_done", "driver_done_at", "others", "bcast")  # fmt: skip

    def __init__(self, expected: int, file: str, bcast: bool = False):
        self.expected = expected
        self.bcast = bcast
        self.file = file
        self.received = 0
        self.first = 0.0
        self.last = 0.0
        self.lat: list[float] = []
        self.ids: set[str] = set()
        self.dupes = 0
        self.others = 0
        self.done = asyncio.Event()
        self.driver_done = False
        self.driver_done_at = 0.0
        if expected == 0:
            self.done.set()

    def count(self, data: dict) -> None:
        t = time.time()
        if not self.received:
            self.first = t
        self.last = t
        eid = data["event_id"]
        if self.bcast:
            self.received += 1
            self.lat.append(t - data["sent_at"])
            if self.received >= self.expected:
                self.done.set()
            return
        if eid in self.ids:
            self.dupes += 1
            return
        self.ids.add(eid)
        self.received += 1
        self.lat.append(t - data["sent_at"])
        if self.received >= self.expected:
            self.done.set()


class SansIOConn(asyncio.Protocol):
    """One connection driven by the `websockets` sans-I/O ClientProtocol on a plain asyncio
    (uvloop) transport: same handshake and frame parser as the library's asyncio client,
    without a Future and a queue per received message (the client must stay cheaper than
    the servers it measures on a 2-core machine)."""

    def __init__(self, uri: str, subprotocols):
        loop = asyncio.get_running_loop()
        self.p = ClientProtocol(parse_uri(uri), subprotocols=subprotocols, max_size=None)
        self.q: asyncio.Queue = asyncio.Queue()
        self.opened = loop.create_future()
        self.lost = loop.create_future()
        self.on_msg = None
        self.t = None

    @classmethod
    async def open(cls, host, port, uri, subprotocols):
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: cls(uri, subprotocols), host, port)
        await asyncio.wait_for(conn.opened, 60)
        return conn

    @property
    def subprotocol(self):
        return self.p.subprotocol

    def connection_made(self, transport) -> None:
        self.t = transport
        self.p.send_request(self.p.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        p = self.p
        p.receive_data(data)
        for ev in p.events_received():
            if type(ev) is Frame:
                op = ev.opcode
                if op is Opcode.BINARY:
                    m = ev.data
                elif op is Opcode.TEXT:
                    m = bytes(ev.data).decode()
                else:
                    continue
                if self.on_msg is not None:
                    self.on_msg(self, m)
                else:
                    self.q.put_nowait(m)
            elif isinstance(ev, Response) and not self.opened.done():
                if p.handshake_exc is not None:
                    self.opened.set_exception(p.handshake_exc)
                else:
                    self.opened.set_result(None)
        self._flush()

    def _flush(self) -> None:
        for chunk in self.p.data_to_send():
            if chunk:
                self.t.write(chunk)
            else:
                self.t.close()

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during handshake"))
        if not self.lost.done():
            self.lost.set_result(None)
        self.q.put_nowait(None)

    async def recv(self):
        m = await self.q.get()
        if m is None:
            raise ConnectionError("connection closed")
        return m

    def send_now(self, m) -> None:
        if isinstance(m, str):
            self.p.send_text(m.encode())
        else:
            self.p.send_binary(m)
        self._flush()

    async def send(self, m) -> None:
        self.send_now(m)

    async def close(self) -> None:
        if self.t is not None and not self.t.is_closing():
            try:
                self.p.send_close(1000)
                self._flush()
            except Exception:
                pass
            try:
                await asyncio.wait_for(asyncio.shield(self.lost), 2)
            except TimeoutError:
                self.t.abort()


class Client:
    def __init__(self, args):
        self.a = args
        self.phase: Phase | None = None
        self.conns = []
        self.tasks: list[asyncio.Task] = []
        self.closed_early = 0
        tokens = {}
        if args.tokens:
            with open(args.tokens) as f:
                tokens = json.load(f)
        self.tokens = tokens

    # --- connecting ----------------------------------------------------------------------

    async def connect(self, path: str, subprotocols=None):
        a = self.a
        uri = f"ws://{a.host}:{a.port}{path}"
        if a.engine == "sansio":
            return await SansIOConn.open(a.host, a.port, uri, subprotocols)
        return await connect(uri, subprotocols=subprotocols, max_size=None, compression=None,
                             ping_interval=None, open_timeout=60, close_timeout=2)  # fmt: skip

    async def open_one(self, uid: str):
        a = self.a
        if a.kind in ("bare", "stored"):
            ws = await self.connect(f"/?user={uid}")
            assert await ws.recv() == "ok"
        elif a.kind == "channels":
            ws = await self.connect(f"/ws/?user={uid}")
            assert await ws.recv() == "ok"
        elif a.kind == "sio":
            ws = await self.connect("/socket.io/?EIO=4&transport=websocket")
            opened = await ws.recv()
            assert opened.startswith("0"), opened
            await ws.send("40" + json.dumps({"user": uid}))
            while True:
                m = await ws.recv()
                if m.startswith("40"):
                    break
                if m == "2":
                    await ws.send("3")
        elif a.kind == "hub":
            proto = HUB_JSON if a.hub_json else HUB_MSGPACK
            ws = await self.connect("/ws", [proto])
            hello = {"type": "hello", "token": self.tokens[uid]}
            if a.hub_json:
                await ws.send(orjson.dumps(hello).decode())
            else:
                await ws.send(msgpack.packb(hello))
            while True:
                raw = await ws.recv()
                f = orjson.loads(raw) if isinstance(raw, str) else msgpack.unpackb(raw)
                if f.get("type") == "welcome":
                    break
                if f.get("type") == "error":
                    raise RuntimeError(f"hub refused {uid}: {f}")
        else:
            raise ValueError(a.kind)
        return ws

    async def open_all(self, uids: list[str]) -> tuple[int, int]:
        sem = asyncio.Semaphore(self.a.concurrency)
        failed = 0

        async def one(uid):
            nonlocal failed
            async with sem:
                for attempt in range(10):  # a busy server may refuse a session: retry
                    try:
                        ws = await self.open_one(uid)
                    except Exception as exc:
                        if attempt == 9:
                            failed += 1
                            print(f"connect {uid} failed: {exc!r}", file=sys.stderr, flush=True)
                            return
                        await asyncio.sleep(0.2 * (attempt + 1))
                        continue
                    self.conns.append(ws)
                    if isinstance(ws, SansIOConn):
                        ws.on_msg = self.handle
                        ws.lost.add_done_callback(self._lost)
                        while not ws.q.empty():  # arrived during the handshake
                            m = ws.q.get_nowait()
                            if m is not None:
                                self.handle(ws, m)
                    else:
                        self.tasks.append(asyncio.create_task(self.reader(ws)))
                    return

        await asyncio.gather(*(one(u) for u in uids))
        return len(self.conns), failed

    # --- receiving -----------------------------------------------------------------------

    def _lost(self, _fut) -> None:
        self.closed_early += 1

    def handle(self, ws, raw) -> None:
        """Every received message, either engine."""
        kind = self.a.kind
        if kind == "sio":
            if raw == "2":
                if isinstance(ws, SansIOConn):
                    ws.send_now("3")
                else:
                    asyncio.ensure_future(ws.send("3"))
                return
            if not raw.startswith("42"):
                return
            ev = orjson.loads(raw[2:])
            if ev[0] != "notification":
                return
            frame = ev[1]
        elif type(raw) is str:
            frame = orjson.loads(raw)
        else:
            frame = msgpack.unpackb(raw)
        ph = self.phase
        if ph is None:
            return
        if frame.get("type") != "notification":
            ph.others += 1
            return
        ph.count(frame["data"])

    async def reader(self, ws) -> None:
        try:
            async for raw in ws:
                self.handle(ws, raw)
        except ConnectionClosed:
            pass
        finally:
            self.closed_early += 1

    # --- the conversation with run.py --------------------------------------------------

    async def finish_phase(self, ph: Phase) -> None:
        stall = self.a.stall
        while not ph.done.is_set():
            await asyncio.sleep(0.1)
            # give up once the driver is done and nothing arrived for `stall` seconds
            if ph.driver_done and time.time() - max(ph.last, ph.driver_done_at) > stall:
                break
        lat = ph.lat
        with open(ph.file, "w") as f:
            json.dump({"lat": [round(x, 6) for x in lat]}, f)
        res = {
            "expected": ph.expected,
            "received": ph.received,
            "dupes": ph.dupes,
            "others": ph.others,
            "first_recv": ph.first,
            "last_recv": ph.last,
            "open": len(self.conns) - self.closed_early,
            "lat_file": ph.file,
        }
        print("RESULT " + json.dumps(res), flush=True)
        if self.phase is ph:
            self.phase = None
        del lat, ph
        gc.collect()

    async def main(self) -> None:
        a = self.a
        uids = [user_id(i) for i in range(a.start, a.start + a.users) if i % a.procs == a.proc]
        t0 = time.time()
        n, failed = await self.open_all(uids)
        print("READY " + json.dumps({"connected": n, "failed": failed,
                                     "secs": round(time.time() - t0, 3)}), flush=True)  # fmt: skip
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        finisher: asyncio.Task | None = None
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "QUIT":
                break
            cmd, *rest = line.split()
            if cmd == "PHASE":
                self.phase = Phase(int(rest[0]), rest[1], bcast=rest[2:3] == ["bcast"])
                finisher = asyncio.create_task(self.finish_phase(self.phase))
            elif cmd == "DRIVER_DONE" and self.phase is not None:
                self.phase.driver_done_at = time.time()
                self.phase.driver_done = True
            elif cmd == "STATS":
                print("STATS " + json.dumps({"open": len(self.conns) - self.closed_early}),
                      flush=True)  # fmt: skip
        if finisher is not None and not finisher.done():
            finisher.cancel()
        for i in range(0, len(self.conns), 100):  # not all at once: servers log pool limits
            await asyncio.gather(*(ws.close() for ws in self.conns[i : i + 100]),
                                 return_exceptions=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["bare", "stored", "hub", "sio", "channels"], required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--users", type=int, required=True, help="user ids start..start+users-1")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--proc", type=int, default=0)
    ap.add_argument("--tokens", help="JSON {user_id: token} (hub)")
    ap.add_argument("--hub-json", action="store_true", help="supporthub.json.v1 instead of msgpack")
    ap.add_argument("--concurrency", type=int, default=100, help="handshakes in flight")
    ap.add_argument("--stall", type=float, default=8.0)
    ap.add_argument(
        "--engine",
        choices=["sansio", "asyncio"],
        default="sansio",
        help="websockets sans-I/O protocol on asyncio transports (cheaper), or "
        "the websockets asyncio client (a task per connection)",
    )
    uvloop.run(Client(ap.parse_args()).main())


if __name__ == "__main__":
    main()
