"""Payment notification latency while a campaign goes out: p50/p99 of `transaction.status`
notifications (event published -> frame received) with no campaign, then while a
campaign to every one of `--users` users is materialised and pushed at the configured
rate (`HUB_CAMPAIGN_RATE_PER_S`).

    .venv/bin/python bench/campaign_latency.py                   # 100,000 users
    .venv/bin/python bench/campaign_latency.py --users 20000 --seconds 15   # a short check

Runs in the project venv: embedded PostgreSQL and Redis in a temp dir, one `serve` as a
subprocess, `--connections` user devices (part of the audience: they get their cards
too) and payment events signed like the payments relay at `--event-rate`. Writes
bench/results/<date>-campaign.json and prints the phases (a warm-up that is not
counted, without, during, and after the campaign).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from bench.common import percentile
from bench.soak import SECRET, Stats, _ms, _wait_ready, free_port, listener, publish_events
from hub.embedded import EmbeddedPostgres, EmbeddedRedis
from supporthub_core.auth import issue_token
from supporthub_core.db import migrate

ROOT = Path(__file__).resolve().parent.parent
TEXTS = {
    "zh": {"title": "谨防钓鱼网站", "body": "客服绝不会向您索要验证码或密码。"},
    "en": {"title": "Beware of phishing", "body": "We never ask for your codes or password."},
}


async def phase(stats: Stats, seconds: float) -> dict:
    stats.take()
    await asyncio.sleep(seconds)
    notes, _ = stats.take()
    return {"notifications": len(notes), "p50_ms": _ms(percentile(notes, 50)),
            "p99_ms": _ms(percentile(notes, 99)), "max_ms": _ms(notes[-1] if notes else None)}  # fmt: skip


async def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="camp-", dir="/tmp"))
    pg, redis = EmbeddedPostgres(tmp / "pg"), EmbeddedRedis(tmp / "r")
    pg.start()
    redis.start()
    hub = None
    try:
        await migrate(pg.dsn)
        db = await asyncpg.connect(pg.dsn)
        await db.execute(
            "insert into users (id, lang) select 'bench-u' || i, case when i % 3 = 0 then 'en'"
            " else 'zh' end from generate_series(0, $1 - 1) i",
            args.users,
        )
        port = free_port()
        env = {**os.environ, "HUB_DATABASE_URL": pg.dsn, "HUB_REDIS_URL": redis.url,
               "HUB_SECRET": SECRET, "HUB_PORT": str(port), "HUB_LOG_FORMAT": "json",
               "HUB_CONNECTS_PER_S_PER_ADDRESS": "20000", "HUB_CAMPAIGN_POLL_S": "0.5",
               "HUB_CAMPAIGN_RATE_PER_S": str(args.rate)}  # fmt: skip
        with (tmp / "hub.log").open("w") as log:
            hub = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve"], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        await _wait_ready(port)
        url = f"ws://127.0.0.1:{port}/ws"
        stats, stop = Stats(), asyncio.Event()
        tasks = [asyncio.create_task(listener(url, issue_token(SECRET, f"bench-u{i}", "user",
                                                               ttl=86_400), stats, stop))
                 for i in range(args.connections)]  # fmt: skip
        await asyncio.sleep(2 + args.connections / 500)
        publisher = asyncio.create_task(
            publish_events(redis.url, args.connections, args.event_rate, stop)
        )
        warm = await phase(stats, args.warmup)  # caches, pools and the JIT of a new process
        print("warm-up (not counted):", json.dumps(warm), flush=True)
        baseline = await phase(stats, args.seconds)
        print("without a campaign:", json.dumps(baseline), flush=True)

        token = issue_token(SECRET, "bench", "service")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     headers={"Authorization": f"Bearer {token}"}) as http:  # fmt: skip
            created = (await http.post("/api/campaigns", json={
                "category": "security", "texts": TEXTS, "audience": {"kind": "all"}})).json()  # fmt: skip
            started = time.monotonic()
            stats.take()
            notes: list[float] = []
            while True:
                await asyncio.sleep(1)
                got, _ = stats.take()
                notes += got
                c = (await http.get(f"/api/campaigns/{created['id']}")).json()
                if c["status"] == "sent":
                    break
            took = time.monotonic() - started
        notes.sort()
        during = {"notifications": len(notes), "p50_ms": _ms(percentile(notes, 50)),
                  "p99_ms": _ms(percentile(notes, 99)), "max_ms": _ms(notes[-1] if notes else None),
                  "campaign_copies": c["counts"]["delivered"], "campaign_s": round(took, 1),
                  "copies_per_s": round(c["counts"]["delivered"] / took)}  # fmt: skip
        print("during the campaign:", json.dumps(during), flush=True)
        after = await phase(stats, args.seconds)
        print("after it:", json.dumps(after), flush=True)
        stop.set()
        await publisher
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await db.close()
        return {"users": args.users, "connections": args.connections,
                "event_rate": args.event_rate, "campaign_rate": args.rate,
                "without": baseline, "during": during, "after": after}  # fmt: skip
    finally:
        if hub is not None:
            hub.terminate()
            hub.wait(30)
        redis.stop()
        pg.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100_000, help="the campaign's audience")
    ap.add_argument("--connections", type=int, default=500, help="connected user devices")
    ap.add_argument("--event-rate", type=float, default=200, help="payment notifications/s")
    ap.add_argument("--rate", type=float, default=2000, help="HUB_CAMPAIGN_RATE_PER_S")
    ap.add_argument("--seconds", type=float, default=30, help="the phases before and after")
    ap.add_argument("--warmup", type=float, default=15, help="seconds of load not counted")
    args = ap.parse_args()
    result = asyncio.run(run(args))
    out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%dT%H%M}-campaign.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
