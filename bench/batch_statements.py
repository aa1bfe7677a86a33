"""What one notifier batch asks PostgreSQL, before and after the notifications' write
was made cheaper, against the stored-path limit's one insert: interleaved, on one
embedded PostgreSQL (fsync on), medians.

    .venv/bin/python bench/batch_statements.py                     # batches of 4 and 40 rows
    .venv/bin/python bench/batch_statements.py --rows 10,100,500 --users 1000 --rounds 200
    .venv/bin/python bench/batch_statements.py --rows 40 --prefill 0   # a new database

- `before`: `write_notifications` (and the connection's codecs) as at the git ref
  `--before` (default efa2b29: each user's counter row bumped by the batch).
- `after`: `hub.store.notifications.write_notifications` as it is, with a node's heads.
  The two write to two sets of users alike, as releases that number otherwise.
- `stored limit`: `bench/servers/bare_ws.py --store`'s insert.

(Runs before 2026-11-30 17:00 compared the write at 2376f17 (one row back per written
notification) on the same users; runs before 2026-11-30 11:00 compared the write at 436e4b1 (its SQL in this file then),
and runs before 04:00 an older one, on a database of its own that kept the primary key on
the notification id; see docs/benchmarks.md.)

The database holds 200,000 notifications first (analysed; `--prefill 0`: none, the tables
analysed empty, as a new database). The users are 10,000 (`--users`), of whom 5 % have a chat
assigned to one of 50 agents and 1 % a bot chat with a state; each batch names random
users. Each write is a statement prepared once on its connection (as the hub's writers
run it). Reported per batch: the write's time, in all the rounds and in their first and
last tenth (does it slow down as the table grows?), the WAL it wrote, and per row the CPU
time of the PostgreSQL backend that ran it (from /proc, Linux: what the write costs
PostgreSQL, whatever else runs on the machine) and of this process (the hub's side:
arguments encoded, rows decoded)."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.embedded import EmbeddedPostgres  # noqa: E402
from hub.rules.notif_heads import NotifHeads  # noqa: E402
from hub.store import notifications as notif_store  # noqa: E402
from hub.store.notifications import NotificationWrite  # noqa: E402
from supporthub_core.db import init_connection, migrate  # noqa: E402

T = TypeVar("T")
AGENTS = 50
PREFILL = 200_000

BEFORE_REF = "efa2b29"  # the write before the hub numbered from the users' heads (issue #16)


def module_at(ref: str, path: str) -> types.ModuleType:
    """The module in `path` as it was at git `ref` (the `before` of a comparison)."""
    name = f"before_{path.removesuffix('.py').replace('/', '_')}"
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:{path}"], check=True, capture_output=True
    ).stdout
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, f"{ref}:{path}", "exec"), module.__dict__)
    return module


STORED_TABLE = """create table if not exists bench_stored (
    id bigserial primary key, user_id text not null, event_id text not null,
    frame bytea not null, created_at timestamptz not null default now())"""


async def seed(db: asyncpg.Connection, prefill: int, users: int) -> None:
    await db.execute(
        "insert into agents (id, username, password_hash, name)"
        " select 'a' || g, 'a' || g, 'x', 'A' || g from generate_series(1, $1) g",
        AGENTS,
    )
    # two sets of users alike, `u` for `before` and `v` for `after`: a release may number a
    # user's notifications otherwise than the one before (a counter row, their heads)
    for p in ("u", "v"):
        await db.execute(
            "insert into users (id) select $2 || g from generate_series(1, $1) g", users, p
        )
        await db.execute(
            "insert into conversations (id, user_id, topic, status, agent_id)"
            " select 'c' || $3 || g, $3 || g, 'payment', 'assigned', 'a' || (g % $2 + 1)"
            " from generate_series(1, $1, 20) g",
            users,
            AGENTS,
            p,
        )
        await db.execute(
            "insert into conversations (id, user_id, topic, status, bot_state)"
            " select 'b' || $2 || g, $2 || g, 'payment', 'bot',"
            ' \'{"watched": ["tx_1"]}\'::jsonb from generate_series(7, $1, 100) g',
            users,
            p,
        )
    await db.execute(STORED_TABLE)
    # a store in use: 200,000 notifications (and as many stored-limit rows), analysed, so
    # the plans are those of a table with rows; a plan cached while `notifications` was
    # empty scans the whole table for the event-id check until an analyse replaces it
    for _ in range(prefill // 2000):
        await BEFORE["store"].write_notifications(db, ops_of(2000, users))
        await notif_store.write_notifications(db, as_after(ops_of(2000, users)))
        await stored([db, db, db], ops_of(2000, users))
    await db.execute("analyze")


def ops_of(n: int, users: int) -> list[NotificationWrite]:
    return [
        NotificationWrite(
            f"u{random.randint(1, users)}",
            "transaction.status",
            "Payment",
            "12.50 CNY received",
            {"transaction_id": "tx_" + uuid.uuid4().hex[:16], "status": "succeeded"},
            "ev-" + uuid.uuid4().hex,
        )  # fmt: skip
        for _ in range(n)
    ]


BEFORE: dict[str, types.ModuleType] = {}  # set by `main`: the store's and db's modules


async def before(
    conns: list[asyncpg.Connection], ops: list[NotificationWrite]
) -> tuple[float, float]:
    t0 = time.perf_counter()
    await BEFORE["store"].write_notifications(conns[0], ops)
    t = time.perf_counter() - t0
    return t, t


def as_after(ops: list[NotificationWrite]) -> list[NotificationWrite]:
    """The same writes for `after`'s users."""
    return [
        NotificationWrite("v" + o.user_id[1:], o.kind, o.title, o.body, o.data, o.event_id + "v")
        for o in ops
    ]


HEADS = NotifHeads()  # `after`'s node's heads, as the hub's writers keep them


async def after(
    conns: list[asyncpg.Connection], ops: list[NotificationWrite]
) -> tuple[float, float]:
    ops = as_after(ops)
    t0 = time.perf_counter()
    await notif_store.write_notifications(conns[1], ops, HEADS)
    t = time.perf_counter() - t0
    return t, t


async def stored(
    conns: list[asyncpg.Connection], ops: list[NotificationWrite]
) -> tuple[float, float]:
    t0 = time.perf_counter()
    await conns[2].execute(
        "insert into bench_stored (user_id, event_id, frame)"
        " select * from unnest($1::text[], $2::text[], $3::bytea[])",
        [o.user_id for o in ops], [o.event_id or "" for o in ops],
        [json.dumps(o.data).encode() for o in ops],
    )  # fmt: skip
    t = time.perf_counter() - t0
    return t, t


async def connect(
    dsn: str, init: Callable[[asyncpg.Connection], Awaitable[None]]
) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await init(conn)
    return conn


async def run(dsn: str, rows: list[int], rounds: int, prefill: int, users: int) -> dict:
    """All three on one database, so one WAL; each on a connection of its own."""
    inits = [BEFORE["db"].init_connection, init_connection, init_connection]
    conns = [await connect(dsn, init) for init in inits]
    pids = [await c.fetchval("select pg_backend_pid()") for c in conns]
    await seed(conns[0], prefill, users)
    await conns[0].execute("checkpoint")
    kinds = {"before": before, "after": after, "stored limit": stored}
    out: dict = {}
    for n in rows:
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
        wal: dict[str, list[int]] = {k: [] for k in kinds}
        cpu_ns = dict.fromkeys(kinds, 0)
        client_s = dict.fromkeys(kinds, 0.0)
        for _ in range(20):  # warm-up: plans cached, pages in memory
            for fn in kinds.values():
                await fn(conns, ops_of(n, users))
        for r in range(rounds):
            order = list(kinds)
            random.Random(r).shuffle(order)
            for k in order:
                lsn = await conns[2].fetchval("select pg_current_wal_insert_lsn()")
                pid = pids[list(kinds).index(k)]
                ops = ops_of(n, users)
                cpu0, client0 = backend_cpu_ns(pid), time.process_time()
                times[k].append(await kinds[k](conns, ops))
                cpu_ns[k] += backend_cpu_ns(pid) - cpu0
                client_s[k] += time.process_time() - client0
                wal[k].append(await conns[2].fetchval(WAL_SINCE, lsn))
        out[str(n)] = {
            k: {"write_ms_p50": round(statistics.median(w for w, _ in v) * 1000, 3),
                "write_ms_p90": round(sorted(w for w, _ in v)[int(len(v) * 0.9)] * 1000, 3),
                # the first and the last tenth of the rounds: does the write slow down
                # as the table grows (a plan cached on an empty table)?
                "write_ms_p50_first_tenth": round(statistics.median(
                    w for w, _ in v[: max(1, len(v) // 10)]) * 1000, 3),
                "write_ms_p50_last_tenth": round(statistics.median(
                    w for w, _ in v[-max(1, len(v) // 10):]) * 1000, 3),
                # WAL written while it ran (the cluster's: nothing else writes then)
                "wal_kib_p50": round(statistics.median(wal[k]) / 1024, 1),
                "wal_kib_mean": round(statistics.mean(wal[k]) / 1024, 1),
                "wal_bytes_per_row": round(statistics.mean(wal[k]) / n),
                # the backend's CPU time while it ran the write (COMMIT included)
                "backend_cpu_us_per_row": round(cpu_ns[k] / rounds / n / 1000, 2),
                # this process's: the arguments encoded, the rows decoded (the hub's side;
                # `after` also makes its StoredNotification objects, `before` does not)
                "client_cpu_us_per_row": round(client_s[k] / rounds / n * 1e6, 2)}
            for k, v in times.items()
        }  # fmt: skip
    for c in conns:
        await c.close()
    return out


WAL_SINCE = "select (pg_current_wal_insert_lsn() - $1::pg_lsn)::bigint"


def backend_cpu_ns(pid: int) -> int:
    """CPU time a process has used so far, in ns (Linux)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def on_embedded_postgres(run_on: Callable[[str], Awaitable[T]]) -> tuple[str, T]:
    """`run_on(dsn)` on a new embedded PostgreSQL (fsync on, migrated), stopped after:
    when it started, and what it returned."""
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", durable=True)
        pg.start()
        try:
            asyncio.run(migrate(pg.dsn))
            started = time.strftime("%Y-%m-%dT%H:%M:%S")
            return started, asyncio.run(run_on(pg.dsn))
        finally:
            pg.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="4,40", help="rows per batch (comma list)")
    ap.add_argument("--rounds", type=int, default=400)
    ap.add_argument(
        "--prefill",
        type=int,
        default=PREFILL,
        help="notifications stored (and analysed) before; 0: a new database",
    )
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--out", default="")
    ap.add_argument("--before", default=BEFORE_REF, help="the git ref `before` runs")
    a = ap.parse_args()
    BEFORE["store"] = module_at(a.before, "hub/store/notifications.py")
    BEFORE["db"] = module_at(a.before, "supporthub_core/db.py")
    rows = [int(x) for x in a.rows.split(",")]
    started, res = on_embedded_postgres(lambda dsn: run(dsn, rows, a.rounds, a.prefill, a.users))
    import os

    doc = {"started": started, "rounds": a.rounds, "prefill": a.prefill, "users": a.users,
           "loadavg": os.getloadavg(), "results": res}  # fmt: skip
    print_and_save(doc, a.out)


def print_and_save(doc: dict, out: str) -> None:
    """The results as JSON, on stdout and in `out` (if given)."""
    text = json.dumps(doc, indent=1)
    print(text)
    if out:
        Path(out).write_text(text + "\n")


if __name__ == "__main__":
    main()
