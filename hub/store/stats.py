"""Supervisor figures, computed from stored conversations."""

from __future__ import annotations

import asyncpg

from supporthub_core.db import fetch_one

WINDOW = "24 hours"
OUTCOMES = ("solved", "follow_up", "duplicate", "spam")
TOP_TAGS = 10


async def compute(db: asyncpg.Connection) -> dict:
    queue = await db.fetch(
        "select priority, count(*) as n, coalesce(max(extract(epoch from now() - enqueued_at)), 0) as oldest"
        " from conversations where status = 'queued' group by priority"
    )
    by_priority = {"urgent": 0, "high": 0, "normal": 0}
    oldest = 0.0
    for r in queue:
        by_priority[r["priority"]] = r["n"]
        oldest = max(oldest, float(r["oldest"]))
    agents = await fetch_one(
        db,
        "select count(*) filter (where status = 'online') as online,"
        " count(*) filter (where status = 'away') as away,"
        " count(*) filter (where status = 'online' and exists (select 1 from conversations c"
        "   where c.agent_id = agents.id and c.status = 'assigned')) as busy"
        " from agents",
    )
    # waits and first responses count from the first assignment: a transfer moves
    # assigned_at, not what the customer went through
    times = await fetch_one(
        db,
        "with c as (select *, (select min(ca.assigned_at) from conversation_agents ca"
        "   where ca.conversation_id = conversations.id) as first_assigned_at"
        f" from conversations where created_at > now() - interval '{WINDOW}'),"
        " w as (select *, extract(epoch from first_assigned_at - enqueued_at) as wait_s,"
        "   extract(epoch from first_response_at - first_assigned_at) as response_s from c)"
        " select avg(wait_s) filter (where wait_s >= 0) as wait_avg,"
        " percentile_cont(0.9) within group (order by wait_s) filter (where wait_s >= 0) as wait_p90,"
        " avg(response_s) filter (where response_s >= 0) as first_response_avg,"
        " avg(extract(epoch from coalesce(resolved_at, closed_at) - created_at))"
        "   filter (where status in ('resolved', 'closed')) as resolution_avg,"
        " avg(rating) as csat_avg, count(rating) as csat_count,"
        " count(*) as conversations from w",
    )
    outcomes = await db.fetch(
        "select outcome, count(*) as n from conversations where outcome is not null"
        f" and resolved_at > now() - interval '{WINDOW}' group by outcome"
    )
    tags = await db.fetch(
        "select tag, count(*) as n from conversations, unnest(tags) as tag"
        f" where resolved_at > now() - interval '{WINDOW}'"
        " group by tag order by n desc, tag limit $1",
        TOP_TAGS,
    )
    samples = await db.fetch(
        "select ts, queued, avg_wait_s from queue_samples where ts > now() - interval '1 hour' order by ts"
    )
    return {
        "window": WINDOW,
        "queue": {
            "total": sum(by_priority.values()),
            "by_priority": by_priority,
            "oldest_wait_s": round(oldest, 1),
        },
        "agents": {"online": agents["online"], "away": agents["away"], "busy": agents["busy"]},
        "waiting_time_s": {"avg": _num(times["wait_avg"]), "p90": _num(times["wait_p90"])},
        "first_response_s": {"avg": _num(times["first_response_avg"])},
        "resolution_s": {"avg": _num(times["resolution_avg"])},
        "csat": {"avg": _num(times["csat_avg"]), "count": times["csat_count"]},
        "conversations": times["conversations"],
        "outcomes": {o: 0 for o in OUTCOMES} | {r["outcome"]: r["n"] for r in outcomes},
        "top_tags": [{"tag": r["tag"], "count": r["n"]} for r in tags],
        "history": [
            {
                "ts": r["ts"].isoformat(),
                "queued": r["queued"],
                "avg_wait_s": round(r["avg_wait_s"], 1),
            }
            for r in samples
        ],
    }


def _num(value) -> float | None:
    return None if value is None else round(float(value), 2)


async def sample_queue(db: asyncpg.Connection) -> None:
    await db.execute(
        "insert into queue_samples (ts, queued, avg_wait_s)"
        " select date_trunc('minute', now()), count(*),"
        " coalesce(avg(extract(epoch from now() - enqueued_at)), 0)"
        " from conversations where status = 'queued' on conflict (ts) do nothing"
    )
