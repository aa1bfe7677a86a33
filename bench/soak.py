"""Soak: a real `supporthub serve` under steady chat and notification traffic for minutes,
with thousands of idle connections; memory, file descriptors, p99 latency and log errors
sampled every interval. Flat lines are the pass mark, not absolute numbers.

    .venv/bin/python bench/soak.py                       # 10 minutes, 2,000 connections
    .venv/bin/python bench/soak.py --seconds 120 --connections 500   # a short check

Runs in the project venv: embedded PostgreSQL and Redis in a temp dir, the hub as a
subprocess, load from this process (events signed like the payments relay, chat between
user and agent pairs). Writes bench/results/<date>-soak.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgpack
import orjson
import redis.asyncio as aioredis
import websockets

from bench.common import hub_event, percentile
from hub.embedded import EmbeddedPostgres, EmbeddedRedis
from hub.store import agents
from supporthub_client import Client, Notification, StateChange
from supporthub_core.auth import issue_token
from supporthub_core.db import migrate
from supporthub_core.event_signing import EventSigner

ROOT = Path(__file__).resolve().parent.parent
SECRET = "soak-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.received = 0
        self.chat_latencies: list[float] = []
        self.disconnects = 0

    def take(self) -> tuple[list[float], list[float]]:
        notes, chats = sorted(self.latencies), sorted(self.chat_latencies)
        self.latencies, self.chat_latencies = [], []
        return notes, chats


async def listener(url: str, token: str, stats: Stats, stop: asyncio.Event) -> None:
    """One user device on the Python client library: counts notifications and their latency;
    if cut, it reconnects and resumes by itself (each notification counted once)."""

    def on_notification(n: Notification) -> None:
        stats.received += 1
        sent = n.data.get("sent_at")
        if sent:
            stats.latencies.append(time.time() - sent)

    def on_state(change: StateChange) -> None:
        if change.state == "reconnecting":
            stats.disconnects += 1

    client = Client(url, token, backoff_base=0.5, queue_events=0)
    client.on("notification", on_notification)
    client.on("state", on_state)
    await client.start(wait=False)
    await stop.wait()
    await client.stop()


async def publish_events(redis_url: str, users: int, rate: float, stop: asyncio.Event) -> int:
    r = aioredis.from_url(redis_url)
    run, j = uuid.uuid4().hex[:6], 0
    sign = EventSigner(SECRET.encode()).sign
    try:
        while not stop.is_set():
            started = time.monotonic()
            batch = max(1, int(rate / 10))
            async with r.pipeline(transaction=False) as pipe:
                for _ in range(batch):
                    event = msgpack.packb(hub_event(run, j, users, time.time()))
                    pipe.publish("payments.events", sign(event))
                    j += 1
                await pipe.execute()
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
    finally:
        await r.aclose()
    return j


async def chat_pair(url: str, n: int, rate: float, stats: Stats, stop: asyncio.Event) -> None:
    """A user who opens a chat with agent `soak-agent-n` and writes to it steadily."""
    user = issue_token(SECRET, f"soak-chat-{n}", "user", ttl=86_400)
    agent = issue_token(SECRET, f"soak-agent-{n}", "agent", ttl=86_400)
    proto = ["supporthub.json.v1"]
    async with (
        websockets.connect(url, subprotocols=proto) as a,
        websockets.connect(url, subprotocols=proto) as u,
    ):
        for ws, token in ((a, agent), (u, user)):
            await ws.send(orjson.dumps({"type": "hello", "token": token}).decode())
        await a.send(orjson.dumps({"type": "agent.status", "status": "online"}).decode())
        await u.send(
            orjson.dumps({"type": "chat.open", "topic": "other", "handoff": "agent"}).decode()
        )
        cid = None
        while cid is None:
            frame = orjson.loads(await u.recv())
            if frame.get("type") == "chat.opened":
                cid = frame["conversation_id"]
        reader = asyncio.create_task(_read_agent(a, stats, stop))
        drain = asyncio.create_task(_drain(u))  # a client that reads what it is sent
        k = 0
        while not stop.is_set():
            k += 1
            frame = {"type": "chat.send", "conversation_id": cid, "client_msg_id": f"m{k}",
                     "text": f"t={time.time()}"}  # fmt: skip
            await u.send(orjson.dumps(frame).decode())
            await asyncio.sleep(1 / rate)
        reader.cancel()
        drain.cancel()


async def _read_agent(ws, stats: Stats, stop: asyncio.Event) -> None:
    answered: set[str] = set()
    try:
        async for raw in ws:
            frame = orjson.loads(raw)
            if frame.get("type") == "message" and frame.get("text", "").startswith("t="):
                stats.chat_latencies.append(time.time() - float(frame["text"][2:]))
                cid = frame["conversation_id"]
                if cid not in answered:  # an agent who never answers has the chat taken back
                    answered.add(cid)
                    reply = {"type": "chat.send", "conversation_id": cid,
                             "client_msg_id": "a1", "text": "hello"}  # fmt: skip
                    await ws.send(orjson.dumps(reply).decode())
    except websockets.WebSocketException:
        stats.disconnects += 1


async def _drain(ws) -> None:
    try:
        async for _ in ws:
            pass
    except websockets.WebSocketException:
        pass


async def _quietly(coro) -> None:
    """A chat pair ends when the soak stops and the hub goes away: that is no error."""
    try:
        await coro
    except (OSError, websockets.WebSocketException):
        pass


def process_sample(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return {"rss_mib": round(rss_kb / 1024, 1), "fds": len(os.listdir(f"/proc/{pid}/fd"))}


async def soak(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="soak-", dir="/tmp"))
    pg, redis = EmbeddedPostgres(tmp / "pg"), EmbeddedRedis(tmp / "r")
    pg.start()
    redis.start()
    log_path = tmp / "hub.log"
    hub = None
    try:
        await migrate(pg.dsn)
        db = await asyncpg.connect(pg.dsn)
        for n in range(args.chat_pairs):
            await agents.upsert(db, username=f"soak-agent-{n}", password="pw", name=f"A{n}",
                                skills=["other"], capacity=2)  # fmt: skip
        await db.close()
        port = free_port()
        env = {**os.environ, "HUB_DATABASE_URL": pg.dsn, "HUB_REDIS_URL": redis.url,
               "HUB_SECRET": SECRET, "HUB_PORT": str(port), "HUB_LOG_FORMAT": "json",
               "HUB_CONNECTS_PER_S_PER_ADDRESS": "20000", "HUB_RATE_PER_S": "1000"}  # fmt: skip
        with log_path.open("w") as log:
            cmd = [sys.executable, *shlex.split(args.hub_python_args), "-m", "hub.cli", "serve"]
            hub = subprocess.Popen(cmd, cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        url = f"ws://127.0.0.1:{port}/ws"
        await _wait_ready(port)
        stats, stop = Stats(), asyncio.Event()
        tasks = [
            asyncio.create_task(listener(url, issue_token(SECRET, f"bench-u{i}", "user",
                                                          ttl=86_400), stats, stop))
            for i in range(args.connections)
        ]  # fmt: skip
        await asyncio.sleep(min(30, 2 + args.connections / 500))
        tasks += [asyncio.create_task(_quietly(chat_pair(url, n, args.chat_rate, stats, stop)))
                  for n in range(args.chat_pairs)]  # fmt: skip
        publisher = asyncio.create_task(
            publish_events(redis.url, args.connections, args.event_rate, stop)
        )
        samples, started = [], time.monotonic()
        while time.monotonic() - started < args.seconds:
            await asyncio.sleep(args.interval)
            notes, chats = stats.take()
            sample = {"t_s": round(time.monotonic() - started), **process_sample(hub.pid),
                      "notifications": len(notes), "notif_p50_ms": _ms(percentile(notes, 50)),
                      "notif_p99_ms": _ms(percentile(notes, 99)), "chat_messages": len(chats),
                      "chat_p99_ms": _ms(percentile(chats, 99)),
                      "client_reconnects": stats.disconnects}  # fmt: skip
            samples.append(sample)
            print(json.dumps(sample), flush=True)
        stop.set()
        published = await publisher
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        errors = [line for line in log_path.read_text().splitlines()
                  if '"level": "ERROR"' in line or "Traceback" in line]  # fmt: skip
        return {"published": published, "received": stats.received, "samples": samples,
                "log_errors": len(errors), "first_errors": errors[:5]}  # fmt: skip
    finally:
        if hub is not None:
            hub.terminate()
            hub.wait(120)  # a profiler in front of the hub writes its file at exit
        redis.stop()
        pg.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


async def _wait_ready(port: int) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        deadline = time.monotonic() + 120  # a profiler in front of the hub slows its start
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the hub did not become ready")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600, help="how long the soak runs")
    ap.add_argument("--connections", type=int, default=2000, help="idle user connections")
    ap.add_argument("--event-rate", type=float, default=200, help="notifications per second")
    ap.add_argument("--chat-pairs", type=int, default=20, help="user-agent pairs chatting")
    ap.add_argument("--chat-rate", type=float, default=2, help="messages/s per pair")
    ap.add_argument("--interval", type=float, default=15, help="seconds between samples")
    ap.add_argument("--hub-python-args", default="",
                    help="put before `-m hub.cli serve`, e.g. a profiler: "
                         "'-m memray run --native --aggregate -o hub.bin'")  # fmt: skip
    args = ap.parse_args()
    random.seed(0)
    result = asyncio.run(soak(args))
    result["args"] = vars(args)
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%dT%H%M}-soak.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"published {result['published']}, received {result['received']}, "
          f"log errors {result['log_errors']}; written to {out.relative_to(ROOT)}")  # fmt: skip


if __name__ == "__main__":
    main()
