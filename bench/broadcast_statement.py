"""What storing one system notice for every user costs PostgreSQL: `create_broadcast`'s
statement as it was at 3afc21c (`before`) against variants and the statement as it is
(`after`), interleaved on one embedded PostgreSQL (fsync on), medians.

    .venv/bin/python bench/broadcast_statement.py                 # 10,000 users, 20 rounds
    .venv/bin/python bench/broadcast_statement.py --users 1000 --rounds 40 --explain
    .venv/bin/python bench/broadcast_statement.py --local 10000 --only before,after

Each variant runs the whole transaction of `create_broadcast` (the advisory lock, the
notice's row, the copies' statement, COMMIT) on a connection of its own, and every
notice goes to all users, so each variant's notice gives every user their next seq as the
others' do (the old statements number from `users.notif_seq`, which `after` no longer
bumps: it is set to each user's head after each `after` notice, outside the measures). Rounds alternate which variant goes first. Reported per variant: the wall time of
the transaction, the CPU time of the PostgreSQL backend that ran it (from /proc, Linux:
what it costs PostgreSQL whatever else runs on the machine), the WAL it wrote, and this
process's CPU (the arrays decoded). `--explain`: EXPLAIN (ANALYZE, BUFFERS, WAL) of each
variant's copies statement once, in a transaction rolled back. `--parts`: then the backend
CPU of the copies' insert alone into tables shaped as `notifications` with fewer or other
indexes, and of the users' bump alone (commit included).

The database holds `--prefill` notifications per user first (analysed), so the
notifications' primary key is not a new, empty index; `--local` users are "connected to
this node" (their copies come back as arrays, as the hub asks)."""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import batch_statements as common_pg  # noqa: E402
from hub.services.broadcasts import CHUNK  # noqa: E402
from hub.store import notifications as notif_store  # noqa: E402
from supporthub_core.db import init_connection  # noqa: E402

LOCK = 0x5368_4263

# the copies' statement at 3afc21c: rows locked in id order first, then updated
BEFORE_SQL = (
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

# the same with each copy's id made from the notice's id and the user's
BEFORE_CHEAP_ID_SQL = BEFORE_SQL.replace(
    "md5(random()::text || clock_timestamp()::text || bumped.id)", "'n' || $1 || '.' || bumped.id"
)

# no lock step: the update itself locks the rows, in id order as a merge join on the id
# gives them, with hash and nested-loop joins off for the whole transaction (so the
# final join with the node's users is a merge join too, two sorts); ids as `cheap id`
MERGE_SQL = BEFORE_CHEAP_ID_SQL.replace(
    "with locked as (select id from users where broadcast_cursor < $1 order by id for update),",
    "with locked as (select id from users where broadcast_cursor < $1 order by id),",
)
# the same with each copy's id the md5 of the notice's and the user's id (32 hex
# characters, as the other ids): what an md5 per copy costs
MERGE_MD5_SQL = MERGE_SQL.replace("'n' || $1 || '.' || bumped.id", "md5($1 || '.' || bumped.id)")
_ORDERED = "set local enable_hashjoin = off; set local enable_nestloop = off"
SETTINGS: dict[str, str] = {"merge, statement": _ORDERED, "merge, md5 id": _ORDERED}

VARIANTS: dict[str, str | None] = {
    "before": BEFORE_SQL,
    "cheap id": BEFORE_CHEAP_ID_SQL,
    "merge, statement": MERGE_SQL,
    "merge, md5 id": MERGE_MD5_SQL,
    # chunks of CHUNK users in id order, each its own transaction, numbered from the
    # users' counters (`notice_chunk` of migrations 0028 and 0030, as `*_0030`)
    "counter chunks (0030)": None,
    # the notice as it is stored now: its row, then chunks of CHUNK users in id order,
    # each its own transaction (hub.store.notifications.store_chunk, migration 0028),
    # numbered from the users' heads (migration 0032)
    "after": None,
}
COUNTER_CHUNKS = "counter chunks (0030)"
MIGRATIONS = ROOT / "hub" / "store" / "migrations"


def chunks_0030_sql() -> str:
    """`notice_chunk` and `bump_for_notice` as migrations 0028 and 0030 made them, renamed
    `*_0030`, for the comparison."""
    notice = (MIGRATIONS / "0028_notice_in_chunks.sql").read_text()
    bump = (MIGRATIONS / "0030_notice_chunk_reads_its_range.sql").read_text()
    notice = notice[notice.index("create function notice_chunk") :]
    bump = bump[bump.index("create or replace function bump_for_notice") :]
    return (
        (bump + "\n" + notice)
        .replace("bump_for_notice(", "bump_for_notice_0030(")
        .replace("notice_chunk(", "notice_chunk_0030(")
    )


async def run_sql(db: asyncpg.Connection, sql: str, local: list[str], settings: str = "") -> None:
    async with db.transaction():
        if settings:
            await db.execute(settings)
        await db.execute("select pg_advisory_xact_lock($1)", LOCK)
        row = await db.fetchrow(
            "insert into broadcasts (title, body, data) values ($1, $2, $3)"
            " returning id, created_at",
            "Maintenance",
            "Tonight 02:00-03:00",
            {"window": "w1"},
        )
        await db.fetchrow(sql, row["id"], "Maintenance", "Tonight 02:00-03:00", {"w": 1}, local)


async def one(db: asyncpg.Connection, variant: str, local: list[str]) -> None:
    sql = VARIANTS[variant]
    if variant == COUNTER_CHUNKS:
        bid = await notif_store.create_broadcast(db, "Maintenance", "Tonight 02:00-03:00", {})
        while row := await db.fetchrow("select * from notice_chunk_0030($1, $2)", CHUNK, local):
            if row["complete"] and row["notice"] >= bid:
                break
    elif sql is None:
        bid = await notif_store.create_broadcast(db, "Maintenance", "Tonight 02:00-03:00", {})
        while (stored := await notif_store.store_chunk(db, CHUNK, local)) is not None:
            if stored.complete and stored.broadcast_id >= bid:
                break
    else:
        await run_sql(db, sql, local, SETTINGS.get(variant, ""))


# the old statements' counter, after notices numbered from the users' heads (0031)
RESYNC = "update users set notif_seq = notif_head(id) where notif_seq <> notif_head(id)"


async def seed(db: asyncpg.Connection, users: int, prefill: int) -> None:
    await db.execute("insert into users (id) select 'u' || g from generate_series(1, $1) g", users)
    await db.execute(chunks_0030_sql())
    for _ in range(prefill):
        await run_sql(db, BEFORE_SQL, [])
    await db.execute("vacuum analyze")


async def explain(db: asyncpg.Connection, variant: str, local: list[str]) -> str:
    sql = VARIANTS[variant]
    if sql is None:
        return "(stored in chunks: no single statement to explain)"
    tr = db.transaction()
    await tr.start()
    try:
        await db.execute("select pg_advisory_xact_lock($1)", LOCK)
        if variant in SETTINGS:
            await db.execute(SETTINGS[variant])
        bid = await db.fetchval(
            "insert into broadcasts (title, body, data) values ('t', 'b', '{}') returning id"
        )
        rows = await db.fetch(
            "explain (analyze, buffers, wal) " + sql, bid, "t", "b", {"w": 1}, local
        )
        return "\n".join(r[0] for r in rows)
    finally:
        await tr.rollback()


# `--parts`: the copies' insert alone, into tables shaped as `notifications` (its rows
# copied in) with fewer or other indexes, and the users' bump alone
PART_TABLES = {
    "insert, no index": "",
    "insert, primary key": "alter table {t} add primary key (user_id, seq)",
    "insert, primary key + broadcast index (as notifications)":
        "alter table {t} add primary key (user_id, seq);"
        " create index on {t} (broadcast_id) where broadcast_id is not null",
    "insert, primary key + BRIN on broadcast_id":
        "alter table {t} add primary key (user_id, seq);"
        " create index on {t} using brin (broadcast_id) where broadcast_id is not null",
}  # fmt: skip
PART_INSERT = (
    "insert into {t} (id, user_id, seq, kind, title, body, data, broadcast_id)"
    " select 'n' || $1::bigint || '.' || id, id, $1::bigint, 'system.notice', 'Maintenance',"
    " 'Tonight 02:00-03:00', '{{\"w\": 1}}', $1::bigint from users"
)
PART_BUMP = (
    "update users u set notif_seq = u.notif_seq + 1 from (select id from users order by id) due"
    " where u.id = due.id"
)


async def parts(db: asyncpg.Connection, rounds: int) -> dict:
    pid = await db.fetchval("select pg_backend_pid()")
    tables = {}
    for i, (name, ddl) in enumerate(PART_TABLES.items()):
        t = f"bench_part_{i}"
        await db.execute(f"create table {t} (like notifications including defaults)")
        if ddl:
            await db.execute(ddl.format(t=t))
        await db.execute(f"insert into {t} select * from notifications")
        tables[name] = t
    await db.execute("vacuum analyze")
    cpu: dict[str, list[float]] = {k: [] for k in [*tables, "users' bump"]}
    for r in range(rounds):
        order = list(cpu)
        random.Random(r).shuffle(order)
        for k in order:
            cpu0 = common_pg.backend_cpu_ns(pid)
            async with db.transaction():
                if k in tables:
                    await db.execute(PART_INSERT.format(t=tables[k]), 10**6 + r)
                else:
                    await db.execute(PART_BUMP)
            cpu[k].append((common_pg.backend_cpu_ns(pid) - cpu0) / 1e6)
    return {k: round(statistics.median(v), 1) for k, v in cpu.items()}


async def run(dsn: str, a: argparse.Namespace) -> dict:
    kinds = [k for k in VARIANTS if not a.only or k in a.only.split(",")]
    conns = {}
    for k in [*kinds, "probe"]:
        conns[k] = await asyncpg.connect(dsn)
        await init_connection(conns[k])
    pids = {k: await c.fetchval("select pg_backend_pid()") for k, c in conns.items()}
    probe = conns["probe"]
    await seed(probe, a.users, a.prefill)
    local = [f"u{g}" for g in random.Random(1).sample(range(1, a.users + 1), a.local)]
    explained = {}
    if a.explain:
        for k in kinds:
            explained[k] = await explain(conns[k], k, local)
            print(f"--- {k}\n{explained[k]}\n", file=sys.stderr)
    for _ in range(a.warmup):
        for k in kinds:
            await one(conns[k], k, local)
            if k == "after":
                await probe.execute(RESYNC)
    await probe.execute("checkpoint")
    wall: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    wal: dict[str, list[int]] = {k: [] for k in kinds}
    client: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(a.rounds):
        order = list(kinds)
        random.Random(r).shuffle(order)
        for k in order:
            lsn = await probe.fetchval("select pg_current_wal_insert_lsn()")
            cpu0, c0, t0 = (
                common_pg.backend_cpu_ns(pids[k]),
                time.process_time(),
                time.perf_counter(),
            )
            await one(conns[k], k, local)
            wall[k].append(time.perf_counter() - t0)
            client[k].append(time.process_time() - c0)
            cpu[k].append((common_pg.backend_cpu_ns(pids[k]) - cpu0) / 1e9)
            wal[k].append(await probe.fetchval(common_pg.WAL_SINCE, lsn))
            if k == "after":
                await probe.execute(RESYNC)
    seqs = await probe.fetchrow(
        "select min(notif_head(id)), max(notif_head(id)), count(*) from users"
    )  # every user got every notice
    part_cpu = await parts(probe, a.rounds) if a.parts else {}
    for c in conns.values():
        await c.close()
    ms = lambda xs: round(statistics.median(xs) * 1000, 1)  # noqa: E731
    return {
        "users": a.users,
        "local": a.local,
        "seqs": dict(seqs),
        "results": {
            k: {
                "wall_ms_p50": ms(wall[k]),
                "backend_cpu_ms_p50": ms(cpu[k]),
                "wal_kib_p50": round(statistics.median(wal[k]) / 1024, 1),
                "client_cpu_ms_p50": ms(client[k]),
            }
            for k in kinds
        },
        "parts_backend_cpu_ms_p50": part_cpu,
        "explain": explained,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--local", type=int, default=5_000, help="users connected to this node")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--prefill", type=int, default=10, help="notices stored before, per user")
    ap.add_argument("--only", default="", help="variants (comma list)")
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--parts", action="store_true", help="the insert's indexes and the bump alone")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    load0 = os.getloadavg()
    started, res = common_pg.on_embedded_postgres(lambda dsn: run(dsn, a))
    doc = {"started": started, "rounds": a.rounds, "loadavg": [load0, os.getloadavg()], **res}
    doc.pop("explain")  # printed to stderr
    common_pg.print_and_save(doc, a.out)


if __name__ == "__main__":
    main()
