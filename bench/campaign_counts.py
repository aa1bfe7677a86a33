"""What a campaign's counts (`GET /api/campaigns/{id}`, the supervisor's list) cost, before
and after issue #19's change, and what the change costs an acknowledgement: interleaved,
on one embedded PostgreSQL (fsync on), medians.

    .venv/bin/python bench/campaign_counts.py                  # 100,000 copies
    .venv/bin/python bench/campaign_counts.py --users 20000 --rounds 10

The store holds `--users` users with six notifications each, the fourth of them a
campaign's copy; half the users have acknowledged all six, a fiftieth opened the card's
link and a hundredth dismissed it (through `hub.store.campaigns.mark`); analysed, vacuumed.

- counts `before`: `BEFORE_SQL`, the query as it was (every copy joined with its user's
  acknowledgement on each request); `after`: `hub.store.campaigns.counts`.
- acks: `hub.store.notifications.ack` of users who had acknowledged nothing, up to the seq
  before the copy (`short_of_copy`: the trigger counts nothing) or past it (`past_copy`:
  it counts one read), with the read counter's trigger disabled (`before`) and enabled
  (`after`), `--acks` acknowledgements per sample, one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.embedded import EmbeddedPostgres  # noqa: E402
from hub.store import campaigns  # noqa: E402
from hub.store import notifications as notif_store  # noqa: E402
from supporthub_core.db import init_connection, migrate  # noqa: E402

BEFORE_SQL = (
    "select (select count(*) from notifications where campaign_id = $1) as delivered,"
    " (select count(*) from notifications n join users u on u.id = n.user_id"
    "   where n.campaign_id = $1 and n.seq <= u.notif_acked) as read,"
    " (select count(*) from campaign_marks where campaign_id = $1"
    "   and clicked_at is not null) as clicked,"
    " (select count(*) from campaign_marks where campaign_id = $1"
    "   and dismissed_at is not null) as dismissed"
)
READ_TRIGGER = "campaign_read_counted"
COPY_SEQ, LAST_SEQ = 4, 6


async def seed(db: asyncpg.Connection, users: int) -> int:
    cid = await db.fetchval(
        "insert into campaigns (texts, audience, send_at, status, created_by)"
        ' values (\'{"zh": {"title": "t", "body": "b"}}\', \'{"kind": "all"}\', now(),'
        " 'sent', 'bench') returning id"
    )
    await db.execute(
        "insert into users (id) select 'u' || lpad(i::text, 7, '0') from generate_series(1, $1) i",
        users,
    )
    await db.execute(
        "insert into notifications (id, user_id, seq, kind, title, body, campaign_id)"
        " select md5(u.id || s), u.id, s, 'system.notice', 't', 'b',"
        " case when s = $2 then $1::bigint end"
        " from users u, generate_series(1, $3) s",
        cid,
        COPY_SEQ,
        LAST_SEQ,
    )
    await db.execute(
        "update users set notif_acked = $1 where right(id, 1) in ('0', '2', '4', '6', '8')",
        LAST_SEQ,
    )
    await db.execute("update campaigns set delivered = $2 where id = $1", cid, users)
    for what, suffixes in (("clicked", ("3", "7")), ("dismissed", ("5",))):
        for r in await db.fetch(
            "select id from users where right(id, 2) = any($1::text[])", ["0" + s for s in suffixes]
        ):
            await campaigns.mark(db, cid, r["id"], what)
    await db.execute("vacuum analyze")
    return int(cid)


async def timed(work, repeat: int) -> float:
    """Milliseconds per call, over `repeat` calls."""
    started = time.perf_counter()
    for _ in range(repeat):
        await work()
    return (time.perf_counter() - started) * 1000 / repeat


async def has_trigger(db: asyncpg.Connection) -> bool:
    found = await db.fetchval("select 1 from pg_trigger where tgname = $1", READ_TRIGGER)
    return bool(found)


async def bench_counts(db: asyncpg.Connection, cid: int, rounds: int, repeat: int) -> dict:
    before_row = dict(await db.fetchrow(BEFORE_SQL, cid))
    after_row = await campaigns.counts(db, cid)
    assert before_row == after_row, (before_row, after_row)
    samples: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(rounds):
        samples["before"].append(await timed(lambda: db.fetchrow(BEFORE_SQL, cid), repeat))
        samples["after"].append(await timed(lambda: campaigns.counts(db, cid), repeat))
    return {"counts": after_row, **_medians(samples)}


async def bench_acks(db: asyncpg.Connection, rounds: int, acks: int) -> dict | None:
    """Per kind of acknowledgement (up to the seq before the copy: the trigger finds
    nothing; past the copy: it counts one read), trigger off (`before`) and on (`after`)."""
    if not await has_trigger(db):
        return None
    fresh = [r["id"] for r in await db.fetch(
        "select id from users where notif_acked = 0 order by id limit $1", 4 * rounds * acks)]  # fmt: skip
    kinds = {"short_of_copy": COPY_SEQ - 1, "past_copy": LAST_SEQ}
    samples: dict[str, dict[str, list[float]]] = {k: {"before": [], "after": []} for k in kinds}
    for _ in range(rounds):
        for kind, up_to in kinds.items():
            for label, state in (("before", "disable"), ("after", "enable")):
                await db.execute(f"alter table users {state} trigger {READ_TRIGGER}")
                batch, fresh = fresh[:acks], fresh[acks:]
                samples[kind][label].append(await timed_acks(db, batch, up_to))
    await db.execute(f"alter table users enable trigger {READ_TRIGGER}")
    return {kind: _medians(got) for kind, got in samples.items()}


async def timed_acks(db: asyncpg.Connection, user_ids: list[str], up_to: int) -> float:
    """Milliseconds per acknowledgement, one user after another."""
    started = time.perf_counter()
    for user_id in user_ids:
        await notif_store.ack(db, user_id, up_to)
    return (time.perf_counter() - started) * 1000 / len(user_ids)


def _medians(samples: dict[str, list[float]]) -> dict:
    before, after = (statistics.median(samples[k]) for k in ("before", "after"))
    return {"before_ms": round(before, 3), "after_ms": round(after, 3),
            "after_over_before": round(after / before, 4)}  # fmt: skip


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="counts-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        pg.start()
        try:
            await migrate(pg.dsn)
            db = await asyncpg.connect(pg.dsn)
            await init_connection(db)
            cid = await seed(db, args.users)
            counts = await bench_counts(db, cid, args.rounds, args.repeat)
            print("counts:", json.dumps(counts), flush=True)
            acks = await bench_acks(db, args.rounds, args.acks)
            print("acks:", json.dumps(acks), flush=True)
            await db.close()
        finally:
            pg.stop("immediate")
    return {"users": args.users, "rounds": args.rounds, "counts": counts, "acks": acks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100_000, help="copies of the campaign")
    ap.add_argument("--rounds", type=int, default=20, help="interleaved samples of each")
    ap.add_argument("--repeat", type=int, default=5, help="count queries per sample")
    ap.add_argument("--acks", type=int, default=300, help="acknowledgements per sample")
    args = ap.parse_args()
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[:3]
    result = asyncio.run(run(args))
    with open("/proc/loadavg") as f:
        result["loadavg"] = {"before": load_before, "after": f.read().split()[:3]}
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M")
    out = ROOT / "bench" / "results" / f"{stamp}-campaign-counts.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
