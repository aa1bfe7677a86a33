"""Publishes M events, event j to user j % C (round robin), as fast as the system takes
them (--rate 0) or at a fixed rate; every event carries its send time (`sent_at`).

  bare      PUBLISH bench.fanout msgpack {"user", "frame", "event_id"}   (raw RESP, batches)
  stored    the same on bench.stored (the bare server with --store)
  hub       PUBLISH payments.events <CONTRACT section 4 event, signed with $BENCH_EVENTS_KEY>
            (raw RESP, batches)
  sio       socketio.AsyncRedisManager(url, write_only=True).emit("notification", frame,
            room=user), --concurrency emits in flight
  channels  channel_layer.group_send("u.<user>", {"type": "notify", "data": frame}) via
            channels_redis, --concurrency in flight

--broadcast: one event for every connected user instead (bare/stored: user "*"; sio: an
emit without a room; channels: group "all"; supporthub's is POST /api/broadcasts, sent by
bench/paced.py itself).

Prints one JSON line: {"t_first", "t_last", "published"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import sys
import time
from urllib.parse import urlparse

import msgpack
import uvloop

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    BARE_CHANNEL,
    HUB_EVENTS_CHANNEL,
    STORED_CHANNEL,
    hub_event,
    peer_frame,
    user_id,
)

from supporthub_core.event_signing import EventSigner  # noqa: E402  (pure: msgpack, stdlib)

SENTINEL = 1.2345678901234567e-300  # placeholder for `sent_at` in pre-packed messages


async def open_redis(url: str):
    u = urlparse(url)
    if u.scheme == "unix":
        return await asyncio.open_unix_connection(u.path)
    return await asyncio.open_connection(u.hostname or "127.0.0.1", u.port or 6379)


async def run(a) -> dict:
    users, events, run_id = a.users, a.events, a.run_id
    pack = msgpack.packb

    if a.broadcast:
        events = 1
        send_batch = await broadcaster(a)
        batch = 1
    elif a.kind in ("bare", "stored", "hub"):
        # Plain PUBLISH: messages are packed before the clock starts with a placeholder
        # `sent_at` (a msgpack float64) that is patched with the real time as each batch
        # is written, and sent as raw RESP over one connection, a batch at a time. This
        # keeps the driver far cheaper than any server, so it never sets the pace.
        # The hub's events are signed (CONTRACT section 4), so their envelope is made as
        # each is sent, over the event bytes with the real time patched in.
        reader, writer = await open_redis(a.redis_url)
        placeholder = struct.pack(">d", SENTINEL)
        channel = {"hub": HUB_EVENTS_CHANNEL, "bare": BARE_CHANNEL, "stored": STORED_CHANNEL}
        channel = channel[a.kind].encode()
        key = os.environ.get("BENCH_EVENTS_KEY", "").encode()
        if a.kind == "hub" and not key:
            raise SystemExit("driver: set BENCH_EVENTS_KEY to the hub's HUB_EVENTS_KEY")
        if a.kind == "hub":
            sign = EventSigner(key).sign
        head = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%%d\r\n" % (len(channel), channel)
        msgs: list[tuple[bytes, bytes, int]] = []
        for j in range(events):
            if a.kind == "hub":
                body = pack(hub_event(run_id, j, users, SENTINEL))
                off = body.index(placeholder)
                msgs.append((body[:off], body[off + 8 :], j))  # signed at send time
            else:
                frame = pack(peer_frame(run_id, j, users, SENTINEL))
                body = pack(
                    {"user": user_id(j % users), "frame": frame, "event_id": f"{run_id}-{j}"}
                )
                off = body.index(placeholder)
                msgs.append((head % len(body) + body[:off], body[off + 8 :] + b"\r\n", j))
        stamp = struct.Struct(">d").pack

        async def send_batch(lo: int, hi: int) -> None:
            out = []
            if a.kind == "hub":
                for pre, post, _ in msgs[lo:hi]:
                    message = sign(pre + stamp(time.time()) + post)
                    out.append(head % len(message))
                    out.append(message)
                    out.append(b"\r\n")
            else:
                for pre, post, _ in msgs[lo:hi]:
                    out.append(pre)
                    out.append(stamp(time.time()))
                    out.append(post)
            writer.write(b"".join(out))
            need = hi - lo  # one ":<subscribers>\r\n" reply per PUBLISH
            while need:
                chunk = await reader.read(65536)
                if not chunk:
                    raise ConnectionError("redis closed")
                need -= chunk.count(b"\r\n")

        batch = a.batch
    elif a.kind == "sio":
        import socketio

        mgr = socketio.AsyncRedisManager(a.redis_url, write_only=True)
        # connect once before the clock starts (concurrent first emits race to connect)
        await mgr.emit("warmup", {}, room="nobody", namespace="/")

        async def send_batch(lo: int, hi: int) -> None:
            await asyncio.gather(*(
                mgr.emit("notification", peer_frame(run_id, j, users, time.time()),
                         room=user_id(j % users), namespace="/")
                for j in range(lo, hi)
            ))  # fmt: skip

        batch = a.concurrency
    elif a.kind == "channels":
        from channels_redis.core import RedisChannelLayer
        from channels_redis.pubsub import RedisPubSubChannelLayer

        if os.environ.get("BENCH_CHANNELS_LAYER") == "pubsub":
            layer = RedisPubSubChannelLayer(hosts=[a.redis_url])
        else:
            layer = RedisChannelLayer(hosts=[a.redis_url], capacity=100_000, expiry=300)

        async def send_batch(lo: int, hi: int) -> None:
            await asyncio.gather(*(
                layer.group_send(f"u.{user_id(j % users)}",
                                 {"type": "notify", "data": peer_frame(run_id, j, users, time.time())})
                for j in range(lo, hi)
            ))  # fmt: skip

        batch = a.concurrency
    else:
        raise ValueError(a.kind)

    # everything is packed and connected: tell run.py, and wait for its go
    print("PREPARED", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    t_first = time.time()
    cpu_first = time.process_time()
    sent = 0
    if a.rate <= 0:
        while sent < events:
            hi = min(events, sent + batch)
            await send_batch(sent, hi)
            sent = hi
    else:
        start = time.monotonic()
        while sent < events:
            due = min(events, int((time.monotonic() - start) * a.rate) + 1)
            while sent < due:
                hi = min(due, sent + batch)
                await send_batch(sent, hi)
                sent = hi
            await asyncio.sleep(0.005)
    t_last = time.time()
    return {
        "t_first": t_first,
        "t_last": t_last,
        "published": sent,
        "cpu_s": time.process_time() - cpu_first,
    }


async def broadcaster(a):
    """send_batch for one event to everyone (its `seq` 0: the client counts it per socket)."""
    run_id = a.run_id
    if a.kind in ("bare", "stored"):
        reader, writer = await open_redis(a.redis_url)
        channel = (BARE_CHANNEL if a.kind == "bare" else STORED_CHANNEL).encode()

        async def send_batch(lo: int, hi: int) -> None:
            frame = msgpack.packb(peer_frame(run_id, 0, a.users, time.time()))
            body = msgpack.packb({"user": "*", "frame": frame, "event_id": f"{run_id}-0"})
            writer.write(b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                         % (len(channel), channel, len(body), body))  # fmt: skip
            await reader.readline()

    elif a.kind == "sio":
        import socketio

        mgr = socketio.AsyncRedisManager(a.redis_url, write_only=True)
        await mgr.emit("warmup", {}, room="nobody", namespace="/")

        async def send_batch(lo: int, hi: int) -> None:
            await mgr.emit("notification", peer_frame(run_id, 0, a.users, time.time()),
                           namespace="/")  # fmt: skip

    elif a.kind == "channels":
        from channels_redis.core import RedisChannelLayer

        layer = RedisChannelLayer(hosts=[a.redis_url], capacity=100_000, expiry=300)

        async def send_batch(lo: int, hi: int) -> None:
            frame = peer_frame(run_id, 0, a.users, time.time())
            await layer.group_send("all", {"type": "notify", "data": frame})

    else:
        raise ValueError(f"--broadcast: {a.kind} is not driven from here")
    return send_batch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["bare", "stored", "hub", "sio", "channels"], required=True)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--users", type=int, required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--rate", type=float, default=0, help="events/s; 0 = as fast as possible")
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--batch", type=int, default=500, help="publishes per pipeline")
    ap.add_argument("--concurrency", type=int, default=50, help="emits/group_sends in flight")
    ap.add_argument("--broadcast", action="store_true", help="one event to every user")
    res = uvloop.run(run(ap.parse_args()))
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
