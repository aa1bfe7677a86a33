"""What one notifier batch asks PostgreSQL, before and after issue #16's last change,
against the stored-path limit's one insert: interleaved, on one embedded PostgreSQL
(fsync on), medians.

    .venv/bin/python bench/batch_statements.py                     # batches of 4 and 40 rows
    .venv/bin/python bench/batch_statements.py --rows 4,40 --rounds 400
    .venv/bin/python bench/batch_statements.py --rows 40 --prefill 0   # a new database

- `before`: the notifications' write (`BEFORE_SQL`, the statement as it was), then what the
  follow-up stage asked after it: the agents serving the batch's users
  (`agents_serving`) and the bot's open chats (`open_with_bot_state`), each on a
  connection of its own as the pool gave them.
- `after`: `hub.store.notifications.write_notifications`, which returns both with the rows.
- `stored limit`: `bench/servers/bare_ws.py --store`'s insert.

The store holds 200,000 notifications first (analysed). The users are 10,000, of whom 5 % have a chat assigned to one of 50 agents and 1 % a
bot chat with a state; each batch names random users. Reported per batch: the write's
time (what the users' push waits for), and the time of every statement the batch costs
(the write plus the follow-up queries: what PostgreSQL's core is busy with)."""

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

from hub.embedded import EmbeddedPostgres  # noqa: E402
from hub.store import conversations as conv_store  # noqa: E402
from hub.store import notifications as notif_store  # noqa: E402
from hub.store.ids import new_id  # noqa: E402
from hub.store.notifications import NotificationWrite  # noqa: E402
from supporthub_core.db import init_connection, migrate  # noqa: E402

USERS, AGENTS = 10_000, 50
PREFILL = 200_000

# the notifications' write before this change (9d23e5d): rows and seqs only
BEFORE_SQL = """
with ops as (
  select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                       $6::jsonb[], $7::text[], $8::int[])
    as t(id, user_id, kind, title, body, data, event_id, ord)
),
fresh as (
  (select * from ops where event_id is null)
  union all
  (select distinct on (ops.event_id) ops.* from ops
   where ops.event_id is not null
     and not exists (select 1 from notifications n where n.event_id = ops.event_id)
   order by ops.event_id, ops.ord)
),
counts as (select user_id, count(*)::bigint as n from fresh group by user_id),
bumped as (
  insert into users (id, notif_seq) select user_id, n from counts order by user_id
  on conflict (id) do update set notif_seq = users.notif_seq + excluded.notif_seq
  returning id, notif_seq
),
numbered as (
  select f.*, b.notif_seq - c.n + row_number() over (partition by f.user_id order by f.ord) as seq
  from fresh f join bumped b on b.id = f.user_id join counts c on c.user_id = f.user_id
)
insert into notifications (id, user_id, seq, kind, title, body, data, event_id, created_at)
select id, user_id, seq, kind, title, body, data, event_id, $9 from numbered
returning id, seq
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
        await stored([db], ops_of(2000))
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
    t1 = time.perf_counter()
    users = list({o.user_id for o in ops})
    await notif_store.agents_serving(conns[1], users)
    await conv_store.open_with_bot_state(conns[2], users)
    return t1 - t0, time.perf_counter() - t0


async def after(
    conns: list[asyncpg.Connection], ops: list[NotificationWrite]
) -> tuple[float, float]:
    t0 = time.perf_counter()
    await notif_store.write_notifications(conns[0], ops)
    t = time.perf_counter() - t0
    return t, t


async def stored(
    conns: list[asyncpg.Connection], ops: list[NotificationWrite]
) -> tuple[float, float]:
    t0 = time.perf_counter()
    await conns[0].execute(
        "insert into bench_stored (user_id, event_id, frame)"
        " select * from unnest($1::text[], $2::text[], $3::bytea[])",
        [o.user_id for o in ops], [o.event_id or "" for o in ops],
        [json.dumps(o.data).encode() for o in ops],
    )  # fmt: skip
    t = time.perf_counter() - t0
    return t, t


async def run(dsn: str, rows: list[int], rounds: int, prefill: int) -> dict:
    conns = []
    for _ in range(3):
        c = await asyncpg.connect(dsn)
        await init_connection(c)
        conns.append(c)
    await seed(conns[0], prefill)
    kinds = {"before": before, "after": after, "stored limit": stored}
    out: dict = {}
    for n in rows:
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
        for _ in range(20):  # warm-up: plans cached, pages in memory
            for fn in kinds.values():
                await fn(conns, ops_of(n))
        for r in range(rounds):
            order = list(kinds)
            random.Random(r).shuffle(order)
            for k in order:
                times[k].append(await kinds[k](conns, ops_of(n)))
        out[str(n)] = {
            k: {"write_ms_p50": round(statistics.median(w for w, _ in v) * 1000, 3),
                "write_ms_p90": round(sorted(w for w, _ in v)[int(len(v) * 0.9)] * 1000, 3),
                # the first and the last tenth of the rounds: does the write slow down
                # as the table grows (a plan cached on an empty table)?
                "write_ms_p50_first_tenth": round(statistics.median(
                    w for w, _ in v[: max(1, len(v) // 10)]) * 1000, 3),
                "write_ms_p50_last_tenth": round(statistics.median(
                    w for w, _ in v[-max(1, len(v) // 10):]) * 1000, 3),
                "all_ms_p50": round(statistics.median(a for _, a in v) * 1000, 3),
                "all_ms_p90": round(sorted(a for _, a in v)[int(len(v) * 0.9)] * 1000, 3)}
            for k, v in times.items()
        }  # fmt: skip
    for c in conns:
        await c.close()
    return out


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
            started = time.strftime("%Y-%m-%dT%H:%M:%S")
            rows = [int(x) for x in a.rows.split(",")]
            res = asyncio.run(run(pg.dsn, rows, a.rounds, a.prefill))
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
