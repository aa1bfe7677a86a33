"""What one notifier batch asks PostgreSQL, before and after the notifications' write
was made cheaper, against the stored-path limit's one insert: interleaved, on one
embedded PostgreSQL (fsync on), medians.

    .venv/bin/python bench/batch_statements.py                     # batches of 4 and 40 rows
    .venv/bin/python bench/batch_statements.py --rows 4,40 --rounds 400
    .venv/bin/python bench/batch_statements.py --rows 40 --prefill 0   # a new database

- `before`: the write as it was (`BEFORE_SQL`: the event-id check as NOT EXISTS and the
  open chats as a join, whose cached plan may read the tables whole), on a database of
  its own whose `notifications` keeps its primary key on the id (`BEFORE_SCHEMA`).
- `after`: `hub.store.notifications.write_notifications` (`handled_event_ids` and
  `open_chats_of`: index lookups whatever the tables' sizes), on the current schema (no
  index on the id; `(user_id, seq)` is the primary key).
- `stored limit`: `bench/servers/bare_ws.py --store`'s insert.

Each database holds 200,000 notifications first (analysed; `--prefill 0`: none, the tables
analysed empty, as a new database). The users are 10,000, of whom 5 % have a chat
assigned to one of 50 agents and 1 % a bot chat with a state; each batch names random
users. Each write is a statement prepared once on its connection (as the hub's writers
run it). Reported per batch: the write's time, in all the rounds and in their first and
last tenth (does it slow down as the table grows?), and the WAL it wrote."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.embedded import PG_DB, EmbeddedPostgres  # noqa: E402
from hub.store import notifications as notif_store  # noqa: E402
from hub.store.ids import new_id  # noqa: E402
from hub.store.notifications import NotificationWrite  # noqa: E402
from supporthub_core.db import init_connection, migrate  # noqa: E402

USERS, AGENTS = 10_000, 50
PREFILL = 200_000

# the notifications' write before its lookups went through functions (acb8f71): the
# event-id check as NOT EXISTS and the open chats as a join, whose cached plan may read
# the tables whole
_LOOKUPS_BEFORE = {
    "ops.event_id <> all (array(select handled_event_ids($7::text[])))":
        "not exists (select 1 from notifications n where n.event_id = ops.event_id)",
    "from open_chats_of(array(select user_id from counts)) c":
        "from conversations c join counts k on k.user_id = c.user_id"
        " where c.status = any('{bot,queued,assigned}'::text[])",
}  # fmt: skip


def _before_sql() -> str:
    sql = notif_store._WRITE_NOTIFICATIONS
    for now, then in _LOOKUPS_BEFORE.items():
        assert now in sql, f"the write no longer has {now!r}"
        sql = sql.replace(now, then)
    return sql


BEFORE_SQL = _before_sql()

# the schema "before" writes to: the primary key on the id again, as before migration 0019
BEFORE_SCHEMA = """
alter table notifications drop constraint notifications_pkey;
alter table notifications add constraint notifications_user_id_seq_key unique (user_id, seq);
alter table notifications add primary key (id);
"""

STORED_TABLE = """create table if not exists bench_stored (
    id bigserial primary key, user_id text not null, event_id text not null,
    frame bytea not null, created_at timestamptz not null default now())"""


async def seed(db: asyncpg.Connection, prefill: int) -> None:
    await db.execute(
        "insert into agents (id, username, password_hash, name)"
        " select 'a' || g, 'a' || g, 'x', 'A' || g from generate_series(1, $1) g",
        AGENTS,
    )
    await db.execute("insert into users (id) select 'u' || g from generate_series(1, $1) g", USERS)
    await db.execute(
        "insert into conversations (id, user_id, topic, status, agent_id)"
        " select 'c' || g, 'u' || g, 'payment', 'assigned', 'a' || (g % $2 + 1)"
        " from generate_series(1, $1, 20) g",
        USERS,
        AGENTS,
    )
    await db.execute(
        "insert into conversations (id, user_id, topic, status, bot_state)"
        " select 'b' || g, 'u' || g, 'payment', 'bot', '{\"watched\": [\"tx_1\"]}'::jsonb"
        " from generate_series(7, $1, 100) g",
        USERS,
    )
    await db.execute(STORED_TABLE)
    # a store in use: 200,000 notifications (and as many stored-limit rows), analysed, so
    # the plans are those of a table with rows; a plan cached while `notifications` was
    # empty scans the whole table for the event-id check until an analyse replaces it
    for _ in range(prefill // 2000):
        await notif_store.write_notifications(db, ops_of(2000))
        await stored([db, db, db], ops_of(2000))
    await db.execute("analyze")


def ops_of(n: int) -> list[NotificationWrite]:
    return [
        NotificationWrite(
            f"u{random.randint(1, USERS)}",
            "transaction.status",
            "Payment",
            "12.50 CNY received",
            {"transaction_id": "tx_" + uuid.uuid4().hex[:16], "status": "succeeded"},
            "ev-" + uuid.uuid4().hex,
        )  # fmt: skip
        for _ in range(n)
    ]


async def before(
    conns: list[asyncpg.Connection], ops: list[NotificationWrite]
) -> tuple[float, float]:
    t0 = time.perf_counter()
    await conns[0].fetch(
        BEFORE_SQL, [new_id() for _ in ops], [o.user_id for o in ops], [o.kind for o in ops],
        [o.title for o in ops], [o.body for o in ops], [o.data for o in ops],
        [o.event_id for o in ops], list(range(len(ops))), datetime.now(UTC),
    )  # fmt: skip
    t = time.perf_counter() - t0
    return t, t


async def after(
    conns: list[asyncpg.Connection], ops: list[NotificationWrite]
) -> tuple[float, float]:
    t0 = time.perf_counter()
    await notif_store.write_notifications(conns[1], ops)
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


async def create_database(dsn: str, name: str) -> str:
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"create database {name}")
    finally:
        await admin.close()
    other = dsn.replace(f"/{PG_DB}?", f"/{name}?")
    await migrate(other)
    return other


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn


async def run(dsn: str, before_dsn: str, rows: list[int], rounds: int, prefill: int) -> dict:
    """`before` writes to a database of its own (the schema as it was), `after` and the
    stored limit to the other; all three in one cluster, so one WAL."""
    conns = [await connect(before_dsn), await connect(dsn), await connect(dsn)]
    await conns[0].execute(BEFORE_SCHEMA)
    await seed(conns[0], prefill)
    await seed(conns[1], prefill)
    await conns[1].execute("checkpoint")
    kinds = {"before": before, "after": after, "stored limit": stored}
    out: dict = {}
    for n in rows:
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
        wal: dict[str, list[int]] = {k: [] for k in kinds}
        for _ in range(20):  # warm-up: plans cached, pages in memory
            for fn in kinds.values():
                await fn(conns, ops_of(n))
        for r in range(rounds):
            order = list(kinds)
            random.Random(r).shuffle(order)
            for k in order:
                lsn = await conns[2].fetchval("select pg_current_wal_insert_lsn()")
                times[k].append(await kinds[k](conns, ops_of(n)))
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
                "wal_kib_mean": round(statistics.mean(wal[k]) / 1024, 1)}
            for k, v in times.items()
        }  # fmt: skip
    for c in conns:
        await c.close()
    return out


WAL_SINCE = "select (pg_current_wal_insert_lsn() - $1::pg_lsn)::bigint"


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
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", durable=True)
        pg.start()
        try:
            asyncio.run(migrate(pg.dsn))
            before_dsn = asyncio.run(create_database(pg.dsn, "before"))
            started = time.strftime("%Y-%m-%dT%H:%M:%S")
            rows = [int(x) for x in a.rows.split(",")]
            res = asyncio.run(run(pg.dsn, before_dsn, rows, a.rounds, a.prefill))
        finally:
            pg.stop()
    import os

    doc = {"started": started, "rounds": a.rounds, "prefill": a.prefill,
           "loadavg": os.getloadavg(), "results": res}  # fmt: skip
    text = json.dumps(doc, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
