"""The chat path and the routing storm on two real `supporthub serve` nodes.

    .venv/bin/python bench/chat.py pairs            # user -> agent latency at rising rates
    .venv/bin/python bench/chat.py storm            # 10,000 chats at once, 200 agents
    .venv/bin/python bench/chat.py pairs --hub-base ../other-checkout   # before/after

`--hub-base` (pairs): a second cluster runs the hub of another checkout (the build
before), and the two builds' rounds are interleaved, rate by rate and round by round.

Both start an embedded PostgreSQL (fsync on) and Redis in a temporary directory, two hub
nodes pinned to CPU 0 (`--pin split`), and drive them from this process pinned to CPU 1
with PostgreSQL and Redis.

pairs: N user-agent pairs, every user on node 1 and its agent on node 2 (so each message
crosses the nodes through Redis). Each offered rate (total messages/s over all pairs)
runs `--seconds`; each user sends `chat.send` with its send time in the text; the agent's
receipt gives the latency user -> agent (stored, acked, published, pushed). Per rate:
p50/p99/max, the sender's ack p50/p99, delivered/s, lost, the nodes' CPU per message.

storm: A agents (capacity K each, half on each node) online first; then C users (half
on each node), already connected, all send `chat.open {handoff: agent}` at once. Time
until every free slot is filled (min(C, A*K) chats assigned, polled in the database), and
afterwards the invariants in the database: no agent over capacity, no conversation
assigned twice or to two agents, one open chat per user, and the queue's order kept
(every assigned chat was enqueued no later than every chat still queued).

Writes bench/results/<date>-chat-<mode>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import asyncpg
import orjson
import psutil
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402
from hub.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from hub.store import agents as agent_store  # noqa: E402
from supporthub_core.auth import issue_token  # noqa: E402
from supporthub_core.db import migrate  # noqa: E402

SECRET = "chat-bench-" + uuid.uuid4().hex
PROTO = ["supporthub.json.v1"]


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 2)


class Cluster:
    """Embedded PostgreSQL and Redis, and two hub nodes."""

    def __init__(self, a: argparse.Namespace, root: Path = ROOT):
        self.a = a
        self.root = root  # the checkout whose hub the nodes run
        self.tmp = Path(tempfile.mkdtemp(prefix="shchat-", dir="/tmp"))
        self.nodes: list[subprocess.Popen] = []
        self.ports: list[int] = []

    def start_infra(self) -> None:
        self.pg = EmbeddedPostgres(self.tmp / "pg")
        self.redis = EmbeddedRedis(self.tmp / "r")
        self.pg.start()
        self.redis.start()
        if self.a.pin == "split":
            pid = int((self.pg.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
            for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
                os.sched_setaffinity(p.pid, {1})
            os.sched_setaffinity(self.redis.proc.pid, {1})
            os.sched_setaffinity(0, {1})

    async def start_nodes(self, n: int = 2) -> None:
        env = {**os.environ, "HUB_DATABASE_URL": self.pg.dsn, "HUB_REDIS_URL": self.redis.url,
               "HUB_SECRET": SECRET, "HUB_LOG_FORMAT": "json",
               "HUB_CONNECTS_PER_S_PER_ADDRESS": "100000", "HUB_RATE_PER_S": "10000",
               "HUB_RATE_BURST": "10000", "HUB_MAX_CONNECTIONS_PER_ADDRESS": "100000",
               "HUB_DATA_DIR": str(self.tmp / "hubdata"), "HUB_AGENT_GRACE_S": "600",
               "HUB_ASSIGNMENT_TIMEOUT_S": "0"}  # fmt: skip
        env.update(kv.split("=", 1) for kv in self.a.hub_env.split(",") if kv)
        pin = ["taskset", "-c", "0"] if self.a.pin == "split" else []
        for i in range(n):
            port = free_port()
            out = open(self.tmp / f"node{i}.log", "wb")
            self.nodes.append(subprocess.Popen(
                [*pin, sys.executable, "-m", "hub.cli", "serve", "--port", str(port)],
                cwd=self.root, env=env, stdout=out, stderr=subprocess.STDOUT))  # fmt: skip
            self.ports.append(port)
        import httpx

        async with httpx.AsyncClient() as http:
            for port in self.ports:
                for _ in range(600):
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise RuntimeError("a hub node did not become ready")

    def url(self, i: int) -> str:
        return f"ws://127.0.0.1:{self.ports[i % len(self.ports)]}/ws"

    def node_cpu(self) -> float:
        total = 0.0
        for p in self.nodes:
            try:
                t = psutil.Process(p.pid).cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        for p in self.nodes:
            p.terminate()
        for p in self.nodes:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.redis.stop()
        self.pg.stop("immediate")
        if not self.a.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    async def writer_totals(self) -> dict[str, float]:
        """The group writers' counters of every node: commits, their seconds, writes."""
        import httpx

        names = {"supporthub_writer_commit_seconds_count": "commits",
                 "supporthub_writer_commit_seconds_sum": "commit_s",
                 "supporthub_writer_batch_size_sum": "writes"}  # fmt: skip
        out = dict.fromkeys(names.values(), 0.0)
        async with httpx.AsyncClient() as http:
            for port in self.ports:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                for line in text.splitlines():
                    name, _, value = line.partition(" ")
                    if name in names:
                        out[names[name]] += float(value)
        return out

    def log_levels(self) -> dict:
        """The nodes' log (JSON lines, `"level":"error"`): errors and warnings counted, and
        the most frequent warnings (a publish that failed, a refusal under load)."""
        counts = {"error": 0, "warning": 0}
        warnings: dict[str, int] = {}
        for f in self.tmp.glob("node*.log"):
            for line in f.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    counts["error"] += "Traceback" in line
                    continue
                level = entry.get("level") if isinstance(entry, dict) else None
                if level in ("error", "critical"):
                    counts["error"] += 1
                elif level == "warning":
                    counts["warning"] += 1
                    key = str(entry.get("msg", ""))[:80]
                    warnings[key] = warnings.get(key, 0) + 1
        top = sorted(warnings.items(), key=lambda kv: -kv[1])[:5]
        return {**counts, "top_warnings": dict(top)}


async def hello(url: str, token: str, attempts: int = 8):
    """A signed-in socket; a refusal under load (`unavailable`) is retried, as a client does."""
    for attempt in range(attempts):
        try:
            return await _hello(url, token)
        except (RuntimeError, OSError, websockets.WebSocketException):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))


async def _hello(url: str, token: str):
    ws = await websockets.connect(url, subprotocols=PROTO, max_size=None, compression=None,
                                  ping_interval=None, open_timeout=60)  # fmt: skip
    await ws.send(orjson.dumps({"type": "hello", "token": token}).decode())
    while True:
        f = orjson.loads(await ws.recv())
        if f["type"] == "welcome":
            return ws
        if f["type"] == "error":
            await ws.close()
            raise RuntimeError(f)


async def add_agents(dsn: str, n: int, capacity: int, prefix: str) -> list[str]:
    """n agents with the skill `other`; the password is hashed once (argon2 is slow on
    purpose) and the others copy that hash."""
    db = await asyncpg.connect(dsn)
    try:
        first = await agent_store.upsert(db, username=f"{prefix}0", password="pw",
                                         name="Agent 0", skills=["other"], capacity=capacity)  # fmt: skip
        ids = [f"{prefix}{i}" for i in range(n)]
        await db.execute(
            "insert into agents (id, username, password_hash, name, skills, capacity)"
            " select u, u, $2, 'Agent ' || u, $3, $4 from unnest($1::text[]) u"
            " on conflict (username) do nothing",
            ids[1:], first["password_hash"], ["other"], capacity,
        )  # fmt: skip
        return ids
    finally:
        await db.close()


async def agent_online(ws) -> None:
    await ws.send(orjson.dumps({"type": "agent.status", "status": "online"}).decode())


# --- pairs ----------------------------------------------------------------------------------


class Pair:
    def __init__(self, user, agent):
        self.user, self.agent = user, agent
        self.cid: str | None = None
        self.k = 0


class PairsRun:
    """The pairs of one cluster, connected and chatting, and the rounds measured on it."""

    def __init__(self, c: Cluster, a: argparse.Namespace, name: str):
        self.c, self.a, self.name = c, a, name
        self.ps: list[Pair] = []
        self.state: dict = {"lat": [], "ack": [], "errors": {}, "phase": None}
        self.readers: list[asyncio.Task] = []
        self.out: dict = {"pairs": a.pairs, "hub_commit": commit_of(c.root), "rates": {}}
        self.strikes = 0

    async def setup(self) -> None:
        c, a, state = self.c, self.a, self.state
        ids = await add_agents(c.pg.dsn, a.pairs, 1, "pair-agent-")
        agents_ws = await asyncio.gather(
            *(hello(c.url(1), issue_token(SECRET, i, "agent", ttl=86_400)) for i in ids)
        )
        await asyncio.gather(*(agent_online(ws) for ws in agents_ws))
        await asyncio.sleep(0.5)
        for n, aws in enumerate(agents_ws):
            uws = await hello(c.url(0), issue_token(SECRET, f"pair-user-{n}", "user", ttl=86_400))
            p = Pair(uws, aws)
            await uws.send(orjson.dumps({"type": "chat.open", "topic": "other",
                                         "handoff": "agent"}).decode())  # fmt: skip
            while p.cid is None:
                f = orjson.loads(await uws.recv())
                if f["type"] == "chat.opened":
                    p.cid = f["conversation_id"]
            self.ps.append(p)
        await asyncio.sleep(1.0)  # the assignments reach the agents
        log(f"{self.name}: {len(self.ps)} pairs open, users on node 1, agents on node 2")

        async def read_agent(p: Pair) -> None:
            async for raw in p.agent:
                f = orjson.loads(raw)
                if f.get("type") == "message" and f.get("text", "").startswith("t="):
                    tag, sent = f["text"][2:].split(" ", 1)
                    if tag == state["phase"]:
                        state["lat"].append(time.time() - float(sent))

        async def read_user(p: Pair) -> None:
            async for raw in p.user:
                f = orjson.loads(raw)
                if not f.get("id", "").startswith(state["phase"] or "-"):
                    continue
                if f.get("type") == "ack":
                    state["ack"].append(time.time() - float(f["id"].split(" ", 1)[1]))
                elif f.get("type") == "error":  # refused: not stored, never delivered
                    state["errors"][f.get("code")] = state["errors"].get(f.get("code"), 0) + 1

        self.readers = [asyncio.create_task(read_agent(p)) for p in self.ps]
        self.readers += [asyncio.create_task(read_user(p)) for p in self.ps]

    async def round(self, rate: float, rnd: int | str, seconds: float | None = None) -> dict:
        c, a, state, ps = self.c, self.a, self.state, self.ps
        tag = f"r{int(rate)}x{rnd}"
        state.update(lat=[], ack=[], errors={}, phase=tag)
        events = int(rate * (seconds or a.seconds))
        load = loadavg()
        w0 = await c.writer_totals()
        cpu0, t0 = c.node_cpu(), time.monotonic()
        sent, start = 0, time.monotonic()
        while sent < events:
            due = min(events, int((time.monotonic() - start) * rate) + 1)
            while sent < due:
                p = ps[sent % len(ps)]
                p.k += 1
                now = time.time()
                frame = {"type": "chat.send", "id": f"{tag} {now}", "conversation_id": p.cid,
                         "client_msg_id": f"{tag}-{p.k}", "text": f"t={tag} {now}"}  # fmt: skip
                await p.user.send(orjson.dumps(frame).decode())
                sent += 1
            await asyncio.sleep(0.002)
        t_sent = time.monotonic()
        deadline = t_sent + a.stall
        while len(state["lat"]) < events and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        span = time.monotonic() - t0
        cpu = c.node_cpu() - cpu0
        lat, ack = sorted(state["lat"]), sorted(state["ack"])
        w = {k: v - w0[k] for k, v in (await c.writer_totals()).items()}
        res = {
            "offered": events, "received": len(lat), "lost": events - len(lat),
            "sent_per_s": round(events / max(1e-9, t_sent - start)),
            "p50_ms": ms(percentile(lat, 50)), "p99_ms": ms(percentile(lat, 99)),
            "max_ms": ms(lat[-1]) if lat else None,
            "ack_p50_ms": ms(percentile(ack, 50)), "ack_p99_ms": ms(percentile(ack, 99)),
            "acked": len(ack), "errors": dict(state["errors"]),
            "nodes_cpu_pct": round(100 * cpu / span),
            "nodes_cpu_us_per_msg": round(1e6 * cpu / max(1, len(lat)), 1),
            "loadavg": load,
            # the group commits of the round: how many, their mean time, writes in each
            "commits": int(w["commits"]),
            "commit_mean_ms": ms(w["commit_s"] / w["commits"]) if w["commits"] else None,
            "writes_per_commit": round(w["writes"] / w["commits"], 1) if w["commits"] else None,
        }  # fmt: skip
        log(f"{self.name}: pairs at {rate:g}/s: {res}")
        return res

    def finish_rate(self, rate: float, runs: list[dict]) -> None:
        med = {k: statistics.median([r[k] for r in runs if r[k] is not None] or [0])
               for k in ("p50_ms", "p99_ms", "max_ms", "ack_p50_ms", "ack_p99_ms",
                         "nodes_cpu_us_per_msg", "sent_per_s")}  # fmt: skip
        med["lost"] = max(r["lost"] for r in runs)
        med["ok"] = med["p99_ms"] < self.a.p99_limit_ms and med["lost"] == 0
        self.out["rates"][str(int(rate))] = {"runs": runs, "median": med}
        log(f"{self.name}: pairs at {rate:g}/s, median: {med}")
        given_up = med["p99_ms"] > self.a.give_up_ms or med["lost"] > 0
        self.strikes = self.strikes + 1 if given_up else 0

    @property
    def broken(self) -> bool:
        return self.strikes >= 2

    async def close(self) -> None:
        for t in self.readers:
            t.cancel()
        for p in self.ps:
            await p.user.close()
            await p.agent.close()


async def pairs(runs: list[PairsRun], a: argparse.Namespace) -> dict:
    """Every build's rounds interleaved: rate by rate, round by round, one build after the
    other, so that the machine's load falls on all of them alike. A build stops after two
    rates in a row that broke down (p99 over `--give-up-ms` or messages lost)."""
    for run in runs:
        await run.setup()
    for run in runs:  # the first seconds of a cluster (caches, JIT of plans) are not measured
        await run.round(a.rates[0], "warmup", a.warmup)
        await asyncio.sleep(a.pause)
    for rate in a.rates:
        live = [r for r in runs if not r.broken]
        if not live:
            break
        per: dict[str, list[dict]] = {r.name: [] for r in live}
        for rnd in range(a.repeat):
            for run in live:
                per[run.name].append(await run.round(rate, rnd))
                await asyncio.sleep(a.pause)
        for run in live:
            run.finish_rate(rate, per[run.name])
    for run in runs:
        await run.close()
    if len(runs) == 1:
        return runs[0].out
    return {"interleaved": True, "builds": {r.name: r.out for r in runs}}


# --- storm ----------------------------------------------------------------------------------


async def storm(c: Cluster, a: argparse.Namespace) -> dict:
    ids = await add_agents(c.pg.dsn, a.agents, a.capacity, "storm-agent-")
    agents_ws = await asyncio.gather(
        *(hello(c.url(n), issue_token(SECRET, i, "agent", ttl=86_400)) for n, i in enumerate(ids))
    )
    await asyncio.gather(*(agent_online(ws) for ws in agents_ws))
    drains = [asyncio.create_task(drain(ws)) for ws in agents_ws]
    log(f"{a.agents} agents online (capacity {a.capacity})")
    sem = asyncio.Semaphore(100)

    async def user(n: int):
        async with sem:
            return await hello(c.url(n), issue_token(SECRET, f"storm-user-{n}", "user",
                                                     ttl=86_400))  # fmt: skip

    t = time.monotonic()
    users = await asyncio.gather(*(user(n) for n in range(a.chats)))
    log(f"{a.chats} users connected in {time.monotonic() - t:.1f}s")
    errors: dict[str, int] = {}
    frame = orjson.dumps({"type": "chat.open", "topic": "other", "handoff": "agent"}).decode()
    drains += [asyncio.create_task(user_reader(ws, frame, errors)) for ws in users]
    await asyncio.sleep(2.0)
    slots = min(a.chats, a.agents * a.capacity)
    db = await asyncpg.connect(c.pg.dsn)
    load = loadavg()
    cpu0 = c.node_cpu()
    t0 = time.monotonic()
    sent = await asyncio.gather(*(ws.send(frame) for ws in users), return_exceptions=True)
    t_sent = time.monotonic() - t0
    failed = sum(isinstance(x, BaseException) for x in sent)  # sockets the hub cut meanwhile
    chats = a.chats - failed
    slots = min(chats, a.agents * a.capacity)
    filled_at = None
    samples = []
    while time.monotonic() - t0 < a.timeout:
        await asyncio.sleep(0.05)
        row = await db.fetchrow(
            "select count(*) filter (where status = 'assigned') as assigned,"
            " count(*) filter (where status = 'queued') as queued,"
            " count(*) as opened from conversations")  # fmt: skip
        samples.append((round(time.monotonic() - t0, 3), dict(row)))
        if row["assigned"] >= slots and filled_at is None:
            filled_at = time.monotonic() - t0
        if filled_at is not None and row["opened"] >= chats:
            break
    all_opened = time.monotonic() - t0
    cpu = c.node_cpu() - cpu0
    await asyncio.sleep(1.0)
    inv = await invariants(db, chats, slots)
    await db.close()
    for t in drains:
        t.cancel()
    await asyncio.gather(*(ws.close() for ws in [*users, *agents_ws]), return_exceptions=True)
    res = {
        "chats": chats, "users_cut_before_open": failed, "agents": a.agents,
        "capacity": a.capacity, "slots": slots,
        "sent_all_s": round(t_sent, 3),
        "slots_filled_s": None if filled_at is None else round(filled_at, 3),
        "all_opened_s": round(all_opened, 3), "nodes_cpu_s": round(cpu, 2),
        "invariants": inv, "loadavg": load, "errors_seen": errors, "samples": samples[:: max(1, len(samples) // 40)],
    }  # fmt: skip
    log(f"storm: { {k: v for k, v in res.items() if k != 'samples'} }")
    return res


async def user_reader(ws, frame: str, errors: dict[str, int]) -> None:
    """Reads what a user is sent; a `chat.open` refused as `unavailable` (the hub is busy:
    nothing was done) is sent again a second later, as the app does."""
    try:
        async for raw in ws:
            f = orjson.loads(raw)
            if f.get("type") == "error":
                code = f.get("code", "?")
                errors[code] = errors.get(code, 0) + 1
                if code == "unavailable":
                    await asyncio.sleep(1.0)
                    await ws.send(frame)
    except websockets.WebSocketException:
        pass


async def drain(ws) -> None:
    try:
        async for _ in ws:
            pass
    except websockets.WebSocketException:
        pass


async def invariants(db, chats: int, slots: int) -> dict:
    over = await db.fetch(
        "select a.id, a.capacity, count(c.id) as active from agents a join conversations c"
        " on c.agent_id = a.id and c.status = 'assigned' group by a.id, a.capacity"
        " having count(c.id) > a.capacity")  # fmt: skip
    twice = await db.fetchval(
        "select count(*) from (select user_id from conversations where status in"
        " ('queued', 'assigned') group by user_id having count(*) > 1) x")  # fmt: skip
    ids_unique = await db.fetchval(
        "select count(*) = count(distinct id) from conversations")  # fmt: skip
    order = await db.fetchrow(
        "select (select max(enqueued_at) from conversations where status = 'assigned'"
        " and priority = 'normal') as last_assigned,"
        " (select min(enqueued_at) from conversations where status = 'queued'"
        " and priority = 'normal') as first_queued")  # fmt: skip
    counts = dict(await db.fetchrow(
        "select count(*) filter (where status = 'assigned') as assigned,"
        " count(*) filter (where status = 'queued') as queued, count(*) as total"
        " from conversations"))  # fmt: skip
    kept = (order["last_assigned"] is None or order["first_queued"] is None
            or order["last_assigned"] <= order["first_queued"])  # fmt: skip
    return {
        "counts": counts,
        "agents_over_capacity": len(over),
        "users_with_two_open_chats": twice,
        "conversation_ids_unique": ids_unique,
        "priority_order_kept": kept,
        "all_slots_filled": counts["assigned"] == slots,
        "every_chat_stored": counts["total"] == chats,
        "ok": not over
        and twice == 0
        and ids_unique
        and kept
        and counts["assigned"] == slots
        and counts["total"] == chats,
    }


def commit_of(root: Path) -> str | None:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                                       text=True).strip()  # fmt: skip
    except Exception:
        return None


def machine() -> dict:
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                  if ln.startswith("model name")), "")  # fmt: skip
    commit = commit_of(ROOT)
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "ram_gb": round(psutil.virtual_memory().total / 2**30, 1), "hub_commit": commit}  # fmt: skip


async def amain(a: argparse.Namespace) -> dict:
    if a.mode == "pairs" and a.hub_base:
        builds = [("before", Path(a.hub_base).resolve()), ("after", ROOT)]
    else:
        builds = [("hub", ROOT)]
    clusters = [Cluster(a, root) for _, root in builds]
    try:
        for c in clusters:
            c.start_infra()
            await migrate(c.pg.dsn)
            await c.start_nodes(2)
        if a.mode == "pairs":
            runs = [PairsRun(c, a, name) for c, (name, _) in zip(clusters, builds, strict=True)]
            res = await pairs(runs, a)
        else:
            res = await storm(clusters[0], a)
        levels = [c.log_levels() for c in clusters]
        res["node_log_errors"] = sum(lv["error"] for lv in levels)
        res["node_logs"] = levels
        return res
    finally:
        for c in clusters:
            c.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("mode", choices=["pairs", "storm"])
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--rates", default="250,500,1000,1500,2000,3000,4000")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--pause", type=float, default=0.5)
    ap.add_argument("--stall", type=float, default=5.0)
    ap.add_argument("--p99-limit-ms", type=float, default=20.0)
    ap.add_argument(
        "--give-up-ms",
        type=float,
        default=1000.0,
        help="pairs: a build stops after two rates in a row with a p99 over this",
    )
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--chats", type=int, default=10_000)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--capacity", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--pin", choices=["split", "none"], default="split")
    ap.add_argument("--hub-env", default="")
    ap.add_argument(
        "--hub-base",
        default="",
        help="pairs: another checkout (the build before) run interleaved with this one",
    )
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args()
    a.rates = [float(x) for x in a.rates.split(",")]
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = datetime.now()
    res = asyncio.run(amain(a))
    command = " ".join(sys.argv)
    if a.hub_base:  # the other checkout by its commit, not by where it lies on this machine
        base = f"<checkout of {commit_of(Path(a.hub_base))}>"
        command = command.replace(a.hub_base, base)
        a.hub_base = base
    doc = {"started": started.isoformat(timespec="seconds"), "command": command,
           "options": vars(a), "machine": machine(), "results": res}  # fmt: skip
    out = Path(a.out) if a.out else (ROOT / "bench" / "results"
                                     / f"{started:%Y-%m-%dT%H%M}-chat-{a.mode}.json")  # fmt: skip
    out.write_text(json.dumps(doc, indent=1, default=str))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
