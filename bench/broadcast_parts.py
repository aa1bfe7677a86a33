"""A notice to every user: the copies written in one statement and then pushed, against
written in parts, each part pushed while the next is written.

The push is simulated (a busy loop of `--push-us` per copy on this process's core,
about what the hub spends per socket), so what is compared is the store's share and
whether the parts overlap with it. This process runs on CPU 0, PostgreSQL (its own,
embedded, fsync on) on CPU 1, as `paced.py --pin split` places the hub and the store.
Rounds alternate which way goes first; medians.

    .venv/bin/python bench/broadcast_parts.py --users 10000 --rounds 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
import psutil

from hub.embedded import EmbeddedPostgres
from hub.services import broadcasts
from hub.store import notifications as notif_store
from supporthub_core.db import create_pool, migrate

# the single statement every notice was before its parts (one transaction)
WHOLE = (
    "with locked as (select id from users where broadcast_cursor < $1 order by id for update),"
    " bumped as (update users u set notif_seq = notif_seq + 1, broadcast_cursor = $1"
    "   from locked where u.id = locked.id returning u.id, u.notif_seq),"
    " copies as (insert into notifications"
    "   (id, user_id, seq, kind, title, body, data, broadcast_id)"
    "   select md5(random()::text || clock_timestamp()::text || bumped.id), bumped.id,"
    "     bumped.notif_seq, 'system.notice', $2, $3, $4, $1 from bumped"
    "   returning user_id, seq, id)"
    " select coalesce(array_agg(copies.user_id), '{}'), coalesce(array_agg(copies.seq), '{}'),"
    "   coalesce(array_agg(copies.id), '{}')"
    " from copies join unnest($5::text[]) as here(id) on here.id = copies.user_id"
)


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def whole(pool: asyncpg.Pool, users: list[str], push_us: float) -> tuple[float, float]:
    """(time to the last copy pushed, time to the first)."""
    t0 = time.perf_counter()
    async with pool.acquire() as db, db.transaction():
        await db.execute("select pg_advisory_xact_lock(1)")
        bid = await db.fetchval("insert into broadcasts (title, body, data) values"
                                " ('t', 'b', '{}') returning id")  # fmt: skip
        user_ids, _, _ = await db.fetchrow(WHOLE, bid, "t", "b", {}, users)
    first = time.perf_counter() - t0
    busy(len(user_ids) * push_us / 1e6)
    return time.perf_counter() - t0, first


async def parts(
    pool: asyncpg.Pool, users: list[str], push_us: float, size: int
) -> tuple[float, float]:
    t0 = time.perf_counter()
    firsts: list[float] = []

    def push(part) -> None:
        if not firsts:
            firsts.append(time.perf_counter() - t0)
        busy(len(part.seqs) * push_us / 1e6)

    # as `broadcasts.announce` does: the lock on a connection of its own
    async with broadcasts._notices_lock(pool, wait=True), pool.acquire() as db:
        await broadcasts.fill_interrupted(db, size)
        first = await notif_store.start_broadcast(db, "t", "b", {}, users[:size], size)
        await broadcasts.fill(db, first, users, size, push)
    return time.perf_counter() - t0, firsts[0]


def pin(pids: list[int], cpu: int) -> None:
    for pid in pids:
        os.sched_setaffinity(pid, {cpu})


async def main(a) -> None:
    root = Path(tempfile.mkdtemp(prefix="bp-"))
    pg = EmbeddedPostgres(root / "pg")
    pg.start()
    try:
        pg_pids = [p.pid for p in psutil.process_iter(["cmdline"])
                   if str(pg.pgdata) in " ".join(p.info["cmdline"] or [])]  # fmt: skip
        pin(
            [p for pid in pg_pids for p in [pid, *(c.pid for c in psutil.Process(pid).children())]],
            1,
        )
        pin([os.getpid()], 0)
        await migrate(pg.dsn)
        pool = await create_pool(pg.dsn, min_size=3, max_size=3)
        users = sorted(f"u-{i:06d}" for i in range(a.users))
        async with pool.acquire() as db:
            await db.execute("insert into users (id) select unnest($1::text[])", users)
            await db.execute("analyze")
        ways = {"whole": lambda: whole(pool, users, a.push_us)}
        for size in a.sizes:
            ways[f"parts of {size}"] = lambda size=size: parts(pool, users, a.push_us, size)
        got: dict[str, list[tuple[float, float]]] = {w: [] for w in ways}
        names = list(ways)
        for r in range(a.warmup + a.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                res = await ways[name]()
                if r >= a.warmup:
                    got[name].append(res)
        await pool.close()
        base = statistics.median(t for t, _ in got["whole"])
        print(f"{a.users} users, push {a.push_us} us a copy, {a.rounds} rounds, "
              f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
        for name, runs in got.items():
            last = statistics.median(t for t, _ in runs) * 1000
            first = statistics.median(f for _, f in runs) * 1000
            print(f"{name:>14}: to the last {last:7.1f} ms ({last / base / 1000:.2f}x),"
                  f" to the first {first:6.1f} ms")  # fmt: skip
    finally:
        pg.stop("fast")
        pg.destroy()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--push-us", type=float, default=13.0)
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[2000])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    asyncio.run(main(ap.parse_args()))
