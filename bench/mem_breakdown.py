"""Where supporthub's memory per connection goes: runs the hub in this process (the same
uvicorn configuration as `supporthub serve`) under tracemalloc, opens N idle
connections from bench/loadclient.py, and prints the allocation growth per connection
by source line.

    .venv/bin/python bench/mem_breakdown.py --connections 2000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import socket
import sys
import tempfile
import tracemalloc
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

PEERS_PY = BENCH / ".venv-peers" / "bin" / "python"
SECRET = "bench-mem-secret"


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def main(a) -> None:
    import uvicorn

    from hub.app import create_app
    from hub.embedded import EmbeddedPostgres, EmbeddedRedis
    from supporthub_core.auth import issue_token
    from supporthub_core.db import migrate
    from supporthub_core.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="shm-", dir="/tmp"))
    pg, redis = EmbeddedPostgres(tmp / "pg", durable=False), EmbeddedRedis(tmp / "r")
    pg.start()
    redis.start()
    try:
        await migrate(pg.dsn)
        n = a.connections
        tokens = {f"bench-u{i}": issue_token(SECRET, f"bench-u{i}", "user", ttl=3600)
                  for i in [*range(n), *range(100_000, 100_020)]}  # fmt: skip
        (tmp / "tokens.json").write_text(json.dumps(tokens))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        settings = Settings(secret=SECRET, host="127.0.0.1", port=port,
                            connects_per_s_per_address=20000)  # fmt: skip
        if a.experiment:
            apply_experiment()
        if a.trace:
            tracemalloc.start(a.frames)
        app = create_app(settings, dsn=pg.dsn, redis_url=redis.url, secret=SECRET,
                         with_payments=False, dev=False)  # fmt: skip
        config = uvicorn.Config(app, host="127.0.0.1", port=port, ws="websockets-sansio",
                                ws_max_size=settings.max_frame_bytes, ws_ping_interval=None,
                                ws_ping_timeout=None, http="httptools", lifespan="on",
                                log_config=None, access_log=False, backlog=4096)  # fmt: skip
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)

        async def clients(count: int, start: int):
            p = await asyncio.create_subprocess_exec(
                str(PEERS_PY), str(BENCH / "loadclient.py"), "--kind", "hub", "--port", str(port),
                "--users", str(count), "--start", str(start), "--tokens", str(tmp / "tokens.json"),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)  # fmt: skip
            while not (line := (await p.stdout.readline()).decode()).startswith("READY"):
                if not line:
                    raise RuntimeError("client died")
            return p

        warm = await clients(20, 100_000)
        warm.stdin.write(b"QUIT\n")
        await warm.wait()
        await asyncio.sleep(1)
        gc.collect()
        snap0 = tracemalloc.take_snapshot() if a.trace else None
        rss0 = rss()
        p = await clients(n, 0)
        await asyncio.sleep(2)
        gc.collect()
        rss1 = rss()
        print(f"RSS: {(rss1 - rss0) / n:,.0f} B/connection ({n} connections"
              f"{', tracemalloc on' if a.trace else ''})")  # fmt: skip
        if a.trace:
            snap1 = tracemalloc.take_snapshot()
            flt = [tracemalloc.Filter(False, tracemalloc.__file__)]
            diff = snap1.filter_traces(flt).compare_to(snap0.filter_traces(flt), a.group)
            total = sum(d.size_diff for d in diff)
            print(f"traced Python allocations: {total / n:,.0f} B/connection\n")
            print(f"{'B/conn':>8} {'objs/conn':>9}  where")
            for d in diff[: a.top]:
                if d.size_diff <= 0:
                    continue
                where = (
                    d.traceback.format()[-1].strip() if a.group == "lineno" else str(d.traceback)
                )
                if a.group == "traceback":
                    where = " <- ".join(str(f).replace(str(ROOT) + "/", "").split("site-packages/")[-1]
                                        for f in d.traceback)  # fmt: skip
                else:
                    where = (
                        str(d.traceback[0]).split("site-packages/")[-1].replace(str(ROOT) + "/", "")
                    )
                print(f"{d.size_diff / n:8,.0f} {d.count_diff / n:9.2f}  {where}")
        p.stdin.write(b"QUIT\n")
        await p.wait()
        server.should_exit = True
        await task
    finally:
        redis.stop()
        pg.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)


def apply_experiment() -> None:
    """Monkeypatches that modelled the memory changes recommended in docs/benchmarks.md
    (for measuring them here only; the hub itself is not touched). They landed in hub/ as
    M1 (e9c436a): applying them again changes nothing.
    - after the handshake, uvicorn's protocol drops the HTTP request/response it keeps
      and the scope's header list is emptied (the hub reads Origin before accepting);
    - Connection.bad_frames is created on the first bad frame, not per connection."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    from hub.ws.connection import Connection

    send = WebSocketsSansIOProtocol.send

    async def lean_send(self, message):
        await send(self, message)
        if message["type"] == "websocket.accept":
            self.request = None
            self.response = None
            self.scope["headers"] = []

    WebSocketsSansIOProtocol.send = lean_send
    init = Connection.__init__

    def lean_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.bad_frames = None

    Connection.__init__ = lean_init


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--frames", type=int, default=1)
    ap.add_argument("--group", choices=["lineno", "filename", "traceback"], default="lineno")
    ap.add_argument("--no-trace", dest="trace", action="store_false")
    ap.add_argument("--experiment", action="store_true", help="see apply_experiment()")
    import uvloop

    uvloop.run(main(ap.parse_args()))
