"""What M idle connections cost a server: its CPU while it holds them and nothing is sent.

    .venv/bin/python bench/idle.py --connections 10000 --seconds 40
    .venv/bin/python bench/idle.py --connections 10000 --hub-base BASE_CHECKOUT --rounds 2
    .venv/bin/python bench/idle.py --connections 10000 --profile    # py-spy each window

The servers are started as bench/paced.py starts them (server alone on CPU 0, the rest on
CPU 1) and each opens its M connections; then, `--rounds` times, each server's CPU (user +
system, from /proc) is read over a window of `--seconds` in turn. With `--profile`, py-spy
records each window (bench/profiles/idle-<name>-*.txt, bench/profile_summary.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paced import Paced  # noqa: E402
from run import BENCH, LABEL, Proc, cpu_seconds, pin_prefix, proc_tree  # noqa: E402


class Idle(Paced):
    async def measure(self) -> dict:
        a = self.a
        await self.open_all()  # as bench/paced.py: each server and its M connections
        out: dict = {name: {"label": LABEL[name], "windows": []} for name in a.only}
        try:
            await asyncio.sleep(a.settle)
            for _ in range(a.rounds):
                for name in a.only:
                    server, _ = self.servers[name]
                    out[name]["windows"].append(await self.window(name, server))
        finally:
            await self.close_all()
        for res in out.values():
            pcts = sorted(w["cpu_pct"] for w in res["windows"])
            res["cpu_pct_median"] = pcts[len(pcts) // 2]
        return out

    async def window(self, name: str, server: Proc) -> dict:
        a = self.a
        spy = None
        if a.profile:
            prof = BENCH / "profiles"
            prof.mkdir(exist_ok=True)
            path = prof / f"idle-{name}-{time.strftime('%Y%m%d-%H%M%S')}.txt"
            spy = await Proc.start([*pin_prefix(a, "client"), BENCH / ".venv-peers/bin/py-spy",
                                    "record", "--pid", server.pid, "--rate", "200",
                                    "--nonblocking", "--format", "raw", "-o", path],
                                   "py-spy", stdin=False)  # fmt: skip
            await asyncio.sleep(1.0)
        procs = proc_tree(server.pid)
        cpu0, t0 = cpu_seconds(procs), time.monotonic()
        await asyncio.sleep(a.seconds)
        cpu1, t1 = cpu_seconds(procs), time.monotonic()
        if spy is not None:
            await spy.stop(signal.SIGINT, timeout=30)
        res = {
            "cpu_pct": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
            "cpu_ms_per_s": round(1000 * (cpu1 - cpu0) / (t1 - t0), 1),
            "loadavg": os.getloadavg()[0],
        }
        print(f"{name}: {res}", flush=True)
        return res


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", default="supporthub")
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=40.0, help="length of each window")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--settle", type=float, default=5.0, help="seconds before the first window")
    ap.add_argument("--hub-base", default="")
    ap.add_argument("--hub-env", default="")
    ap.add_argument("--hub-exp", default="")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--pin", choices=["split", "none"], default="split")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    ap.add_argument("--out")
    a = ap.parse_args()
    a.only = [s for s in a.only.split(",") if s]
    if a.hub_base and "supporthub-base" not in a.only:
        a.only.insert(0, "supporthub-base")
    a.client_procs = max(1, a.connections // 5000)
    # what run.Bench expects
    a.bare_sub, a.channels_server, a.channels_layer = "hiredis", "uvicorn", "core"
    a.hub_json, a.flush_redis, a.pg_fast = False, False, False

    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    bench = Idle(a)
    try:
        bench.start_infra(need_pg=True)
        bench._redis_cli("flushall")
        bench.write_tokens(a.connections)
        results = asyncio.run(bench.measure())
    finally:
        bench.stop_infra()
    text = json.dumps({"connections": a.connections, "seconds": a.seconds,
                       "results": results}, indent=1)  # fmt: skip
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
