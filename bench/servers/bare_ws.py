"""The ceiling: a bare `websockets` server (asyncio implementation, uvloop), no storage.

One Redis pub/sub channel; each message is msgpack {"user": id, "frame": bytes}; the
server forwards `frame` to that user's connections with `websockets.broadcast` (a
synchronous write, no await per message). Redis is read with a raw hiredis parser
(default, --sub hiredis) or with redis-py's pub/sub (--sub redispy). Clients connect to `/?user=<id>` and get a
text frame "ok" once they are registered.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from urllib.parse import parse_qs, urlparse

import hiredis
import msgpack
import redis.asyncio as aioredis
import uvloop
import websockets
from websockets.asyncio.server import serve

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import BARE_CHANNEL  # noqa: E402

conns: dict[str, set] = {}


async def handler(ws) -> None:
    user = parse_qs(urlparse(ws.request.path).query).get("user", [""])[0]
    if not user:
        await ws.close(4001, "no user")
        return
    conns.setdefault(user, set()).add(ws)
    try:
        await ws.send("ok")
        await ws.wait_closed()
    finally:
        s = conns.get(user)
        if s is not None:
            s.discard(ws)
            if not s:
                del conns[user]


async def subscriber_hiredis(url: str) -> None:
    """A raw RESP connection parsed with hiredis a chunk at a time (what supporthub's bus
    does since its 'lean hiredis subscriber' change)."""
    u = urlparse(url)
    if u.scheme == "unix":
        reader, writer = await asyncio.open_unix_connection(u.path)
    else:
        reader, writer = await asyncio.open_connection(u.hostname, u.port or 6379)
    ch = BARE_CHANNEL.encode()
    writer.write(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(ch), ch))
    parser = hiredis.Reader()
    unpack = msgpack.unpackb
    broadcast = websockets.broadcast
    while True:
        data = await reader.read(262144)
        if not data:
            raise ConnectionError("redis closed")
        parser.feed(data)
        while True:
            reply = parser.gets()
            if reply is False:
                break
            if reply[0] != b"message":
                continue
            m = unpack(reply[2])
            targets = conns.get(m["user"])
            if targets:
                broadcast(targets, m["frame"])


async def subscriber_redispy(url: str) -> None:
    """redis-py's asyncio pub/sub, one get_message() per message."""
    r = aioredis.from_url(url)
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(BARE_CHANNEL)
    unpack = msgpack.unpackb
    broadcast = websockets.broadcast
    while True:
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if msg is None:
            continue
        m = unpack(msg["data"])
        targets = conns.get(m["user"])
        if targets:
            broadcast(targets, m["frame"])


async def main(port: int, url: str, sub: str) -> None:
    fn = subscriber_hiredis if sub == "hiredis" else subscriber_redispy
    task = asyncio.create_task(fn(url))
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=64 * 1024,
                     ping_interval=20, ping_timeout=20, backlog=4096):  # fmt: skip
        print("listening", flush=True)
        await task


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--sub", choices=["hiredis", "redispy"], default="hiredis")
    a = ap.parse_args()
    uvloop.run(main(a.port, a.redis_url, a.sub))
