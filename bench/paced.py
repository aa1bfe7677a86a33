"""Paced fan-out, every system side by side in one run: the same load clients, the same
driver and the same offered rates for all, interleaved.

    .venv/bin/python bench/paced.py                          # M = 1,000, all five systems
    .venv/bin/python bench/paced.py --connections 10000      # M = 10,000
    .venv/bin/python bench/paced.py --only supporthub,stored --rates 1000,2000 --repeat 3

All systems are started at once (server alone on CPU 0, everything else on CPU 1) and hold
their M connections for the whole run. Then, for each offered rate in rising order, each
system still in the race gets a phase of `--seconds` at that rate, in turn; `--repeat`
rounds of that; medians per system and rate. A system leaves the race after `--strikes`
rates in a row whose median p99 passed `--p99-limit-ms` or where anything was lost (on a
shared machine one noisy rate should not end a system's race). After each phase the run
waits for that system's server to go quiet (`--settle-cpu`, `--settle-max-s`), so a
system still draining a backlog does not load the next one's phase. Then broadcast time-to-all
(one event to every connected user, `--broadcasts` times) and memory per idle connection
(RSS after the M connections opened, minus RSS before, over M).

Results: bench/results/<date>-paced-M<M>.json; then bench/paced_report.py (peers venv)
draws the chart and writes the tables into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import percentile  # noqa: E402
from run import (  # noqa: E402
    BENCH,
    EVENTS_KEY,
    KIND,
    LABEL,
    PEERS_PY,
    SECRET,
    Bench,
    Proc,
    cpu_seconds,
    log,
    machine_info,
    pin_prefix,
    proc_tree,
)

ORDER = ["bare", "stored", "sio", "channels", "supporthub-base", "supporthub"]


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Paced(Bench):
    async def open_all(self) -> None:
        a = self.a
        self.servers: dict[str, tuple[Proc, int]] = {}
        self.clients: dict[str, list[Proc]] = {}
        self.memory: dict[str, dict] = {}
        for name in a.only:
            server, port = await self.start_server(name)
            # warm-up (as run.py's memory phase): 20 connections opened and closed, so
            # that first-use allocations do not count as per-connection memory
            warm = await self.start_clients(name, port, 20, 1, start=100_000)
            await warm[0].send("QUIT")
            await warm[0].stop()
            await asyncio.sleep(1.5)
            base = await self.rss(server.pid)
            t0 = time.monotonic()
            clients = await self.start_clients(name, port, a.connections, a.client_procs)
            secs = time.monotonic() - t0
            await asyncio.sleep(3.0)
            rss = await self.rss(server.pid)
            self.memory[name] = {
                "baseline_mb": round(base / 2**20, 1),
                "rss_mb": round(rss / 2**20, 1),
                "bytes_per_conn": round((rss - base) / a.connections),
                "connect_s": round(secs, 2),
            }
            log(f"{name}: memory {self.memory[name]}")
            self.servers[name] = (server, port)
            self.clients[name] = clients

    async def close_all(self) -> None:
        for clients in getattr(self, "clients", {}).values():
            for c in clients:
                try:
                    await c.send("QUIT")
                except Exception:
                    pass
            for c in clients:
                await c.stop(timeout=30)
        for server, _ in getattr(self, "servers", {}).values():
            await server.stop()

    async def paced_phase(self, name: str, rate: float) -> dict:
        server, _ = self.servers[name]
        events = max(1, int(rate * self.a.seconds))
        load = loadavg()
        res = await self.phase(name, server, self.clients[name], f"r{int(rate)}", events, rate)
        res["loadavg"] = load
        res["lost"] = res["events"] - res["received"]
        return res

    async def settle(self, name: str) -> float:
        """Wait until `name`'s server has gone quiet after its phase, at most
        `--settle-max-s`: a system still sending a backlog (python-socketio and Channels
        behind the offered rate at M = 10,000) would otherwise load the next system's
        phase on the same cores. Returns the seconds waited."""
        server, _ = self.servers[name]
        procs = proc_tree(server.pid)
        started = time.monotonic()
        while time.monotonic() - started < self.a.settle_max_s:
            before = cpu_seconds(procs)
            await asyncio.sleep(SETTLE_WINDOW_S)
            if (cpu_seconds(procs) - before) / SETTLE_WINDOW_S < self.a.settle_cpu:
                break
        return round(time.monotonic() - started, 2)

    async def broadcast(self, name: str) -> dict:
        """One event to every connected user; time from send to the last receipt."""
        a = self.a
        server, port = self.servers[name]
        clients = self.clients[name]
        run_id = f"{name}-bcast-{int(time.time() * 1000)}"
        n = a.connections
        per = [len([u for u in range(n) if u % len(clients) == k]) for k in range(len(clients))]
        for k, c in enumerate(clients):
            await c.send(f"PHASE {per[k]} {self.tmp / f'lat-{run_id}-{k}.json'} bcast")
        cpu0 = cpu_seconds(proc_tree(server.pid))
        load = loadavg()
        if name.startswith("supporthub"):
            import httpx

            from supporthub_core.auth import issue_token

            token = issue_token(SECRET, "bench-driver", "service", ttl=3600)
            # the client (its TLS context: 35-65 ms on the loaded 2-core machine) is made before the clock
            # starts, as the peers' driver is started and prepared before theirs
            async with httpx.AsyncClient(timeout=60) as http:
                t_first = time.time()
                r = await http.post(
                    f"http://127.0.0.1:{port}/api/broadcasts",
                    headers={"Authorization": f"Bearer {token}"},
                    json={"title": "bench", "body": "bench",
                          "data": {"event_id": f"{run_id}-0", "sent_at": t_first}},
                )  # fmt: skip
                r.raise_for_status()
        else:
            drv = await Proc.start([*pin_prefix(a, "driver"), PEERS_PY, BENCH / "driver.py",
                                    "--kind", KIND[name], "--redis-url", self.redis_of(name).url,
                                    "--users", n, "--events", 1, "--broadcast",
                                    "--run-id", run_id],
                                   "driver", env={"BENCH_EVENTS_KEY": EVENTS_KEY})  # fmt: skip
            await drv.line("PREPARED", timeout=120)
            await drv.send("GO")
            d = json.loads("{" + await drv.line("{", timeout=120))
            await drv.p.wait()
            t_first = d["t_first"]
        for c in clients:
            await c.send("DRIVER_DONE")
        results = [json.loads(await c.line("RESULT", timeout=600)) for c in clients]
        cpu1 = cpu_seconds(proc_tree(server.pid))
        received = sum(r["received"] for r in results)
        last = max(r["last_recv"] for r in results)
        lat: list[float] = []
        for r in results:
            with open(r["lat_file"]) as f:
                lat.extend(json.load(f)["lat"])
        lat.sort()
        out = {
            "received": received,
            "expected": n,
            "open": sum(r["open"] for r in results),
            # to every socket still open (a socket the server cut cannot be reached)
            "time_to_all_ms": round((last - t_first) * 1000, 1)
            if received and received >= min(n, sum(r["open"] for r in results))
            else None,
            "p50_ms": round(percentile(lat, 50) * 1000, 1) if lat else None,
            "server_cpu_ms": round((cpu1 - cpu0) * 1000, 1),
            "loadavg": load,
        }
        log(f"{name} broadcast: {out}")
        await asyncio.sleep(1.0)
        return out

    async def run_paced(self) -> dict:
        a = self.a
        out: dict = {name: {"rates": {}} for name in a.only}
        await self.open_all()
        try:
            alive = list(a.only)
            strikes = dict.fromkeys(a.only, 0)
            for rate in a.rates:
                if not alive:
                    break
                for rnd in range(a.repeat):
                    # a different system goes first in each round
                    order = alive[rnd % len(alive) :] + alive[: rnd % len(alive)]
                    for name in order:
                        log(f"--- {name} at {rate:g}/s, round {rnd + 1}/{a.repeat}")
                        res = await self.paced_phase(name, rate)
                        res["settle_s"] = await self.settle(name)
                        out[name]["rates"].setdefault(str(int(rate)), []).append(res)
                        await asyncio.sleep(a.pause)
                for name in list(alive):
                    s = summarize(out[name]["rates"][str(int(rate))], a.p99_limit_ms, rate)
                    log(f"{name} at {rate:g}/s: {s}")
                    strikes[name] = 0 if s["ok"] else strikes[name] + 1
                    if strikes[name] >= a.strikes:
                        alive.remove(name)
            for name in a.only:
                out[name]["broadcast"] = []
                out[name]["memory"] = self.memory[name]
            # interleaved, a different system first each time: the machine's load moves
            # within a run, and each system's notices should meet it alike
            for i in range(a.broadcasts):
                for name in a.only[i % len(a.only) :] + a.only[: i % len(a.only)]:
                    out[name]["broadcast"].append(await self.broadcast(name))
        finally:
            await self.close_all()
        return out


SETTLE_WINDOW_S = 0.25

# a system holds a rate only if it delivers it: a publisher or server that falls behind
# the offered rate keeps its latency low by sending less (python-socketio's delivered
# ~11,000/s of 15,000-30,000/s offered on a quiet machine, with p99 under 100 ms)
KEPT_UP = 0.95


def summarize(runs: list[dict], p99_limit_ms: float, rate: float) -> dict:
    """Medians over the rounds at one rate."""

    def med(f):
        vals = [f(r) for r in runs if f(r) is not None]
        return round(statistics.median(vals), 2) if vals else None

    s = {
        "p50_ms": med(lambda r: r["lat_ms"]["p50"]),
        "p99_ms": med(lambda r: r["lat_ms"]["p99"]),
        "max_ms": med(lambda r: r["lat_ms"]["max"]),
        "delivered_per_s": med(lambda r: r["delivered_per_s"]),
        "published_per_s": med(lambda r: r["published_per_s"]),
        "server_cpu_us_per_msg": med(lambda r: r["server_cpu_us_per_msg"]),
        "lost": max(r["lost"] for r in runs),
        "dupes": max(r["dupes"] for r in runs),
        "runs": len(runs),
    }
    s["open"] = min(r.get("open", 0) for r in runs)
    s["kept_up"] = bool(s["delivered_per_s"] and s["delivered_per_s"] >= KEPT_UP * rate)
    s["ok"] = bool(
        s["p99_ms"] is not None and s["p99_ms"] < p99_limit_ms and s["lost"] == 0 and s["kept_up"]
    )
    return s


# the stored limit's table, as bench/servers/bare_ws.py makes it
STORED_TABLE = """create table if not exists bench_stored (
    id bigserial primary key, user_id text not null, event_id text not null,
    frame bytea not null, created_at timestamptz not null default now())"""


async def prefill(dsn: str, n: int) -> None:
    """`n` notifications of 10,000 other users, and `n` rows of the stored limit, analysed.
    On a new database the hub's write may keep a plan made while `notifications` was empty
    (bench/batch_statements.py --prefill 0): a store in use does not measure that."""
    import asyncpg

    db = await asyncpg.connect(dsn)
    try:
        per_user = max(1, n // 10_000)  # each user's head (`notif_head`): their last row
        await db.execute(
            "insert into users (id) select 'seed-u' || g"
            " from generate_series(0, 9999) g on conflict (id) do nothing"
        )
        await db.execute(
            "insert into notifications (id, user_id, seq, kind, title, body, data, event_id)"
            " select md5('seed' || g), 'seed-u' || (g % 10000), g / 10000 + 1,"
            " 'transaction.status', 'Payment', '12.50 CNY received', '{}'::jsonb, 'seed-' || g"
            " from generate_series(0, $1 - 1) g",
            per_user * 10_000,
        )
        await db.execute(STORED_TABLE)
        await db.execute(
            "insert into bench_stored (user_id, event_id, frame)"
            " select 'seed-u' || (g % 10000), 'seed-' || g, '\\x00'::bytea"
            " from generate_series(0, $1 - 1) g",
            n,
        )
        await db.execute("analyze")
    finally:
        await db.close()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", default=",".join(s for s in ORDER if s != "supporthub-base"))
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--rates", default="500,1000,2000,3000,5000,7500,10000,15000")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each paced phase")
    ap.add_argument("--repeat", type=int, default=2, help="rounds per rate (medians)")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds between phases")
    ap.add_argument("--settle-cpu", type=float, default=0.15,
                    help="after a phase, wait until the server uses less than this share of "
                         "a core (over 0.25 s)")  # fmt: skip
    ap.add_argument("--settle-max-s", type=float, default=30.0,
                    help="the longest wait for a server to settle")  # fmt: skip
    ap.add_argument("--p99-limit-ms", type=float, default=100.0)
    ap.add_argument("--strikes", type=int, default=2, help="failed rates in a row to leave")
    ap.add_argument("--broadcasts", type=int, default=3)
    ap.add_argument("--client-procs", type=int, default=0, help="per system (0: 1 per 5,000)")
    ap.add_argument("--pin", choices=["split", "none"], default="split")
    ap.add_argument("--pg-fast", action="store_true")
    ap.add_argument("--prefill", type=int, default=0,
                    help="notifications (and stored-limit rows) stored and analysed before the "
                         "servers start: a store in use, not a new one")  # fmt: skip
    ap.add_argument("--hub-env", default="")
    ap.add_argument("--hub-exp", default="")
    ap.add_argument(
        "--hub-base",
        default="",
        help="another checkout's root: its supporthub runs too, as 'supporthub-base' "
        "(before/after in one run)",
    )
    ap.add_argument(
        "--profile",
        default="",
        help="comma list of systems to py-spy in every phase (bench/profiles/<name>-r<rate>-*.txt)",
    )
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--no-report", action="store_true", help="skip chart and docs")
    a = ap.parse_args()
    a.only = [s for s in ORDER if s in a.only.split(",")]
    if a.hub_base and "supporthub-base" not in a.only:
        a.only.insert(a.only.index("supporthub") if "supporthub" in a.only else len(a.only),
                      "supporthub-base")  # fmt: skip
        label = subprocess.run(["git", "log", "-1", "--format=%h"], cwd=a.hub_base,
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        LABEL["supporthub-base"] = f"supporthub before{f' ({label})' if label else ''}"
    a.rates = [float(x) for x in a.rates.split(",")]
    a.client_procs = a.client_procs or max(1, a.connections // 5000)
    a.profile_names = [x for x in a.profile.split(",") if x]
    a.profile = bool(a.profile_names)
    # what run.Bench expects
    a.bare_sub, a.channels_server, a.channels_layer = "hiredis", "uvicorn", "core"
    a.hub_json, a.flush_redis = False, False
    if a.hub_exp:
        LABEL["supporthub"] = f"supporthub + {a.hub_exp}"

    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    bench = Paced(a)
    started = datetime.now()
    try:
        bench.start_infra(need_pg=True)
        if a.prefill:
            dsns = [bench.pg.dsn] + ([bench.dsn_of("supporthub-base")] if a.hub_base else [])
            for dsn in dsns:
                asyncio.run(prefill(dsn, a.prefill))
        bench._redis_cli("flushall")
        if any(s.startswith("supporthub") for s in a.only):
            bench.write_tokens(a.connections)
        results = asyncio.run(bench.run_paced())
    finally:
        bench.stop_infra()
    for name in results:
        results[name]["summary"] = {
            rate: summarize(runs, a.p99_limit_ms, float(rate))
            for rate, runs in results[name]["rates"].items()
        }
    options = dict(vars(a))
    command = " ".join(sys.argv)
    if a.hub_base:  # a directory of this machine: not for the record
        command = command.replace(a.hub_base, "BASE_CHECKOUT")
        options["hub_base"] = "BASE_CHECKOUT"
    doc = {
        "started": started.isoformat(timespec="seconds"),
        "command": command,
        "options": options,
        "machine": machine_info() | {"loadavg_end": loadavg()},
        "labels": {k: LABEL[k] for k in a.only},
        "results": results,
    }
    out = (Path(a.out) if a.out else
           BENCH / "results" / f"{started:%Y-%m-%dT%H%M}-paced-M{a.connections}.json")  # fmt: skip
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False))
    print(f"results: {out}")
    if not a.no_report:
        subprocess.run([str(PEERS_PY), str(BENCH / "paced_report.py"), str(out)], check=False)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
