"""The ceiling: a bare `websockets` server (asyncio implementation, uvloop), no storage.

With `--store DSN` it is the *stored-path limit*: the same server, but every message is
first stored in PostgreSQL with group commit, as supporthub's writer does (one writer task
per shard takes whatever queued while its previous COMMIT ran, inserts it with one
`unnest` statement, COMMITs with fsync on) and only then sent. Nothing else: no per-user
seq, no rendering, no second Redis hop. It is what storing before pushing costs at least.

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

import asyncpg
import hiredis
import msgpack
import redis.asyncio as aioredis
import uvloop
import websockets
from websockets.asyncio.server import serve

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import BARE_CHANNEL  # noqa: E402

conns: dict[str, set] = {}
BROADCAST = "*"  # the user of a message for every connection

STORE_TABLE = """create table if not exists bench_stored (
    id bigserial primary key,
    user_id text not null,
    event_id text not null,
    frame bytea not null,
    created_at timestamptz not null default now())"""


def send(user: str, frame: bytes) -> None:
    if user == BROADCAST:
        websockets.broadcast([ws for s in conns.values() for ws in s], frame)
        return
    targets = conns.get(user)
    if targets:
        websockets.broadcast(targets, frame)


class Store:
    """Group commit before send: `writers` tasks, messages sharded by user so one user's
    messages keep their order; a broadcast is stored as one row per connected user."""

    def __init__(self, dsn: str, writers: int, max_batch: int = 2000):
        self.dsn = dsn
        self.max_batch = max_batch
        self.queues: list[list[tuple[str, bytes, str]]] = [[] for _ in range(writers)]
        self.wakes = [asyncio.Event() for _ in range(writers)]

    async def start(self) -> None:
        self.pool = await asyncpg.create_pool(self.dsn, min_size=len(self.queues),
                                              max_size=len(self.queues))  # fmt: skip
        async with self.pool.acquire() as db:
            await db.execute(STORE_TABLE)
        for i in range(len(self.queues)):
            asyncio.create_task(self.writer(i))

    def offer(self, user: str, frame: bytes, event_id: str) -> None:
        i = hash(user) % len(self.queues)
        self.queues[i].append((user, frame, event_id))
        self.wakes[i].set()

    async def writer(self, i: int) -> None:
        wake = self.wakes[i]
        async with self.pool.acquire() as db:
            while True:
                await wake.wait()
                wake.clear()
                while self.queues[i]:
                    q = self.queues[i]
                    batch, self.queues[i] = q[: self.max_batch], q[self.max_batch :]
                    users, events, frames = [], [], []
                    for user, frame, event_id in batch:
                        for u in list(conns) if user == BROADCAST else [user]:
                            users.append(u)
                            events.append(event_id)
                            frames.append(frame)
                    await db.execute(
                        "insert into bench_stored (user_id, event_id, frame) "
                        "select * from unnest($1::text[], $2::text[], $3::bytea[])",
                        users,
                        events,
                        frames,
                    )  # one statement: its own transaction, COMMIT with fsync
                    for user, frame, _ in batch:
                        send(user, frame)


store: Store | None = None


def deliver(m: dict) -> None:
    if store is not None:
        store.offer(m["user"], m["frame"], m.get("event_id", ""))
    else:
        send(m["user"], m["frame"])


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


async def subscriber_hiredis(url: str, channel: str) -> None:
    """A raw RESP connection parsed with hiredis a chunk at a time (what supporthub's bus
    does since its 'lean hiredis subscriber' change)."""
    u = urlparse(url)
    if u.scheme == "unix":
        reader, writer = await asyncio.open_unix_connection(u.path)
    else:
        reader, writer = await asyncio.open_connection(u.hostname, u.port or 6379)
    ch = channel.encode()
    writer.write(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(ch), ch))
    parser = hiredis.Reader()
    unpack = msgpack.unpackb
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
            deliver(unpack(reply[2]))


async def subscriber_redispy(url: str, channel: str) -> None:
    """redis-py's asyncio pub/sub, one get_message() per message."""
    r = aioredis.from_url(url)
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    unpack = msgpack.unpackb
    while True:
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if msg is None:
            continue
        deliver(unpack(msg["data"]))


async def main(port: int, url: str, sub: str, channel: str, dsn: str, writers: int) -> None:
    global store
    if dsn:
        store = Store(dsn, writers)
        await store.start()
    fn = subscriber_hiredis if sub == "hiredis" else subscriber_redispy
    task = asyncio.create_task(fn(url, channel))
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=64 * 1024,
                     ping_interval=20, ping_timeout=20, backlog=4096):  # fmt: skip
        print("listening", flush=True)
        await task


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--sub", choices=["hiredis", "redispy"], default="hiredis")
    ap.add_argument("--channel", default=BARE_CHANNEL)
    ap.add_argument("--store", default="", help="PostgreSQL DSN: store every message first")
    ap.add_argument("--writers", type=int, default=2, help="group-commit writers (--store)")
    a = ap.parse_args()
    uvloop.run(main(a.port, a.redis_url, a.sub, a.channel, a.store, a.writers))
