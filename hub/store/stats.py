"""Supervisor figures, computed from stored conversations.

Every figure is over the chats created in the last `WINDOW` (the day), and every time is
in seconds:

- wait: from entering the queue to the first assignment (a transfer moves `assigned_at`,
  not what the customer went through);
- first response: from the first assignment to the first answer of a person;
- handle time: from the first assignment to the end;
- resolution: from the chat's start to its end, for chats a person handled (a chat the
  customer closed while still with the bot is the bot's, counted in `bot`);
- SLA met: the first answer came within `sla_reply_s` of entering the queue.

Per-agent figures count the chats each agent ended (the holder at the end).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from hub.rules import alarms as alarm_rules
from hub.rules import sla

WINDOW = "24 hours"
OUTCOMES = ("solved", "follow_up", "duplicate", "spam")
TOP_TAGS = 10
LIVE_LIMIT = 200

# one row per chat of the window, with its times (seconds); $1: sla_reply_s
FACTS = f"""
with c as (
    select c.*, coalesce(c.resolved_at, c.closed_at) as ended_at,
        (select min(ca.assigned_at) from conversation_agents ca
          where ca.conversation_id = c.id) as first_assigned_at,
        exists (select 1 from messages m where m.conversation_id = c.id
                 and m.sender_role = 'bot') as bot_involved
    from conversations c where c.created_at > now() - interval '{WINDOW}'
)
select c.*,
    extract(epoch from first_assigned_at - enqueued_at)::float8 as wait_s,
    extract(epoch from first_response_at - first_assigned_at)::float8 as response_s,
    case when first_assigned_at is not null and ended_at is not null
         then extract(epoch from ended_at - first_assigned_at)::float8 end as handle_s,
    case when first_assigned_at is not null and ended_at is not null
         then extract(epoch from ended_at - created_at)::float8 end as resolution_s,
    case when first_assigned_at is null then null
         when first_response_at is not null
              and first_response_at - enqueued_at <= make_interval(secs => $1) then true
         when first_response_at is null and ended_at is null
              and now() - enqueued_at <= make_interval(secs => $1) then null
         else false end as sla_met
from c
"""

# a bot chat's outcome: the customer said it helped (confirmed), handed to a person, quiet
# for a while or ended after an answer and no hand-off (assumed), or still going (open);
# $2: bot_assumed_resolved_s
BOT_OUTCOME = """
case when not f.bot_involved then null
     when f.enqueued_at is not null then 'handed_off'
     when coalesce(f.bot_state->>'resolved', 'false') = 'true' then 'confirmed'
     when (coalesce(jsonb_array_length(f.bot_state->'answered'), 0) > 0
           or coalesce(jsonb_array_length(f.bot_state->'watched'), 0) > 0)
          and (f.ended_at is not null
               or f.last_activity_at < now() - make_interval(secs => $2)) then 'assumed'
     when f.ended_at is not null or f.last_activity_at < now() - make_interval(secs => $2)
          then 'unanswered'
     else 'open' end
"""


async def compute(
    db: asyncpg.Connection,
    thresholds: alarm_rules.Thresholds | None = None,
    *,
    sla_reply_s: float = 300.0,
    bot_window_s: float = 1800.0,
    targets: sla.Targets | None = None,
) -> dict[str, Any]:
    """The figures; `targets`: the service levels that say which waiting chats are about
    to breach (hub.rules.sla; the default targets when None)."""
    thresholds = thresholds or alarm_rules.Thresholds()
    targets = targets or sla.Targets(sla.DEFAULT_FIRST_RESPONSE_S, sla.DEFAULT_RESOLUTION_S)
    queue = await db.fetch(
        "select priority, count(*) as n,"
        " coalesce(max(extract(epoch from now() - enqueued_at)), 0)::float8 as oldest"
        " from conversations where status = 'queued' group by priority"
    )
    by_priority = {"urgent": 0, "high": 0, "normal": 0}
    oldest = 0.0
    for r in queue:
        by_priority[r["priority"]] = r["n"]
        oldest = max(oldest, float(r["oldest"]))
    agents = await _agents(db, sla_reply_s)
    online = [a for a in agents if a["status"] == "online"]
    facts = f"with f as ({FACTS})"
    times = await db.fetchrow(
        f"{facts} select avg(wait_s) filter (where wait_s >= 0) as wait_avg,"
        " percentile_cont(0.9) within group (order by wait_s)"
        "   filter (where wait_s >= 0) as wait_p90,"
        " max(wait_s) filter (where wait_s >= 0) as wait_max,"
        " avg(response_s) filter (where response_s >= 0) as first_response_avg,"
        " avg(handle_s) filter (where handle_s >= 0) as handle_avg,"
        " avg(resolution_s) filter (where resolution_s >= 0) as resolution_avg,"
        " count(resolution_s) as resolved_by_people,"
        " avg(rating) as csat_avg, count(rating) as csat_count,"
        " count(*) filter (where sla_met) as sla_met, count(sla_met) as sla_counted,"
        " count(*) as conversations from f",
        sla_reply_s,
    )
    assert times is not None  # an aggregate always has its row
    topics = await db.fetch(
        f"{facts} select topic, count(*) as n, avg(rating) as csat_avg, count(rating) as csat_n,"
        " avg(wait_s) filter (where wait_s >= 0) as wait_avg"
        " from f group by topic order by n desc, topic",
        sla_reply_s,
    )
    bot = await db.fetch(
        f"{facts} select {BOT_OUTCOME} as outcome, count(*) as n from f"
        " where f.bot_involved group by 1",
        sla_reply_s,
        bot_window_s,
    )
    bot_counts = {"confirmed": 0, "assumed": 0, "handed_off": 0, "unanswered": 0, "open": 0}
    for r in bot:
        bot_counts[r["outcome"]] = r["n"]
    involved = sum(bot_counts.values())
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
        "select ts, queued, avg_wait_s from queue_samples"
        " where ts > now() - interval '1 hour' order by ts"
    )
    hours = await db.fetch(
        "with h as (select generate_series(date_trunc('hour', now()) - interval '23 hours',"
        "   date_trunc('hour', now()), interval '1 hour') as hour),"
        " q as (select date_trunc('hour', c.enqueued_at) as hour,"
        "   extract(epoch from coalesce((select min(ca.assigned_at) from conversation_agents ca"
        "     where ca.conversation_id = c.id), now()) - c.enqueued_at)::float8 as wait_s"
        "   from conversations c where c.enqueued_at > now() - interval '24 hours'),"
        " s as (select date_trunc('hour', ts) as hour, max(queued) as queue_max"
        "   from queue_samples where ts > now() - interval '24 hours' group by 1)"
        " select h.hour, count(q.wait_s) as queued, avg(q.wait_s) as wait_avg,"
        "   max(q.wait_s) as wait_max, coalesce(max(s.queue_max), 0) as queue_max"
        " from h left join q on q.hour = h.hour left join s on s.hour = h.hour"
        " group by h.hour order by h.hour"
    )
    judged = await waiting_chats(db, targets)
    flagged = [alarm_rules.flags(chat, thresholds, service) for chat, service in judged]
    raised = alarm_rules.alarms(flagged, len(online))
    return {
        "window": WINDOW,
        "queue": {
            "total": sum(by_priority.values()),
            "by_priority": by_priority,
            "oldest_wait_s": round(oldest, 1),
        },
        "agents": {
            "online": len(online),
            "away": sum(1 for a in agents if a["status"] == "away"),
            # at full load: no room for another chat (one chat of four is not busy)
            "busy": sum(1 for a in online if a["active"] >= a["capacity"]),
            "serving": sum(1 for a in online if a["active"] > 0),
        },
        "waiting_time_s": {
            "avg": _num(times["wait_avg"]),
            "p90": _num(times["wait_p90"]),
            "max": _num(times["wait_max"]),
        },
        "first_response_s": {"avg": _num(times["first_response_avg"])},
        "handle_time_s": {"avg": _num(times["handle_avg"])},
        "resolution_s": {
            "avg": _num(times["resolution_avg"]),
            "count": times["resolved_by_people"],
        },
        "csat": {"avg": _num(times["csat_avg"]), "count": times["csat_count"]},
        "sla": {
            "reply_s": sla_reply_s,
            "met": times["sla_met"],
            "counted": times["sla_counted"],
            "share": _share(times["sla_met"], times["sla_counted"]),
        },
        "conversations": times["conversations"],
        "outcomes": {o: 0 for o in OUTCOMES} | {r["outcome"]: r["n"] for r in outcomes},
        "top_tags": [{"tag": r["tag"], "count": r["n"]} for r in tags],
        "topics": [
            {
                "topic": r["topic"],
                "conversations": r["n"],
                "csat": {"avg": _num(r["csat_avg"]), "count": r["csat_n"]},
                "waiting_time_s": {"avg": _num(r["wait_avg"])},
            }
            for r in topics
        ],
        "bot": {
            "involved": involved,
            **bot_counts,
            "window_s": bot_window_s,
        },
        "per_agent": agents,
        "thresholds": {
            "wait_warn_s": thresholds.wait_warn_s,
            "wait_alarm_s": thresholds.wait_alarm_s,
            "reply_warn_s": thresholds.reply_warn_s,
            "reply_alarm_s": thresholds.reply_alarm_s,
        },
        "waiting": [
            {
                "conversation_id": chat.conversation_id,
                "priority": chat.priority,
                "status": chat.status,
                "waiting_s": round(chat.waiting_s, 1),
                "unanswered_s": None if chat.unanswered_s is None else round(chat.unanswered_s, 1),
                "wait_level": f.wait,
                "reply_level": f.reply,
                "breach_soon": f.breach_soon,
                "sla_state": service.state,
                "sla_kind": service.kind,
            }
            for (chat, service), f in zip(judged, flagged, strict=True)
        ],
        "alarms": [a.to_dict() for a in raised],
        "history": [
            {
                "ts": r["ts"].isoformat(),
                "queued": r["queued"],
                "avg_wait_s": round(r["avg_wait_s"], 1),
            }
            for r in samples
        ],
        "by_hour": [
            {
                "hour": _iso(r["hour"]),
                "queued": r["queued"],
                "wait_avg_s": _num(r["wait_avg"]),
                "wait_max_s": _num(r["wait_max"]),
                "queue_max": r["queue_max"],
            }
            for r in hours
        ],
    }


async def _agents(db: asyncpg.Connection, sla_reply_s: float) -> list[dict[str, Any]]:
    """Every enabled agent: status, load, and what they ended in the window."""
    rows = await db.fetch(
        f"with f as ({FACTS}),"
        " mine as (select agent_id, count(*) as handled,"
        "   avg(response_s) filter (where response_s >= 0) as first_response_avg,"
        "   avg(handle_s) filter (where handle_s >= 0) as handle_avg,"
        "   avg(rating) as csat_avg, count(rating) as csat_n,"
        "   count(*) filter (where sla_met) as sla_met, count(sla_met) as sla_counted"
        "   from f where agent_id is not null and ended_at is not null"
        "   and first_assigned_at is not null group by agent_id),"
        " load as (select agent_id, count(*) as active from conversations"
        "   where status = 'assigned' group by agent_id)"
        " select a.id, a.name, a.status, a.capacity, a.supervisor,"
        "   coalesce(load.active, 0) as active, coalesce(mine.handled, 0) as handled,"
        "   mine.first_response_avg, mine.handle_avg, mine.csat_avg,"
        "   coalesce(mine.csat_n, 0) as csat_n, coalesce(mine.sla_met, 0) as sla_met,"
        "   coalesce(mine.sla_counted, 0) as sla_counted"
        " from agents a left join mine on mine.agent_id = a.id"
        " left join load on load.agent_id = a.id"
        " where not a.disabled order by a.name, a.id",
        sla_reply_s,
    )
    return [
        {
            "id": r["id"],
            "name": r["name"],
            "status": r["status"],
            "supervisor": r["supervisor"],
            "active": r["active"],
            "capacity": r["capacity"],
            "handled": r["handled"],
            "first_response_s": _num(r["first_response_avg"]),
            "handle_time_s": _num(r["handle_avg"]),
            "csat": {"avg": _num(r["csat_avg"]), "count": r["csat_n"]},
            "sla_met": {
                "met": r["sla_met"],
                "counted": r["sla_counted"],
                "share": _share(r["sla_met"], r["sla_counted"]),
            },
        }
        for r in rows
    ]


async def waiting_chats(
    db: asyncpg.Connection, targets: sla.Targets
) -> list[tuple[alarm_rules.WaitingChat, sla.SlaState]]:
    """Chats waiting for a person now (queued, or assigned with no answer yet), each with
    its service levels on the database's clock (hub.rules.sla.state; the clocks run from
    the chat's first enqueue, as the sweeper's)."""
    rows = await db.fetch(
        "select c.id, c.priority, c.status,"
        " extract(epoch from coalesce(c.enqueued_at, c.assigned_at, c.created_at))::float8"
        "   as started_s, extract(epoch from now())::float8 as now_s,"
        " extract(epoch from case when c.status = 'queued' then now() - c.enqueued_at"
        "   else coalesce((select min(ca.assigned_at) from conversation_agents ca"
        "     where ca.conversation_id = c.id), c.assigned_at) - c.enqueued_at end)::float8"
        "   as waiting_s,"
        " case when c.status = 'assigned'"
        "   then extract(epoch from now() - c.assigned_at)::float8 end as unanswered_s"
        " from conversations c"
        " where c.status = 'queued' or (c.status = 'assigned' and c.first_response_at is null)"
        " order by case c.priority when 'urgent' then 0 when 'high' then 1 else 2 end,"
        " c.enqueued_at nulls last limit $1",
        LIVE_LIMIT,
    )
    return [
        (
            alarm_rules.WaitingChat(
                r["id"],
                r["priority"],
                r["status"],
                max(0.0, r["waiting_s"] or 0.0),
                None if r["unanswered_s"] is None else max(0.0, r["unanswered_s"]),
            ),
            sla.state(sla.SlaChat(r["id"], r["priority"], r["started_s"]), r["now_s"], targets),
        )
        for r in rows
    ]


EXPORT_COLUMNS = (
    "conversation_id", "created_at", "topic", "priority", "status", "agent_id", "lang",
    "wait_s", "first_response_s", "handle_s", "resolution_s", "sla_met", "rating",
    "outcome", "tags", "bot_outcome",
)  # fmt: skip


async def export_rows(
    db: asyncpg.Connection, *, sla_reply_s: float, bot_window_s: float
) -> list[dict[str, Any]]:
    """One row per chat of the window, oldest first: what the figures are made of."""
    rows = await db.fetch(
        f"with f as ({FACTS}) select f.*, {BOT_OUTCOME} as bot_outcome from f"
        " order by f.created_at, f.id",
        sla_reply_s,
        bot_window_s,
    )
    return [
        {
            "conversation_id": r["id"],
            "created_at": _iso(r["created_at"]),
            "topic": r["topic"],
            "priority": r["priority"],
            "status": r["status"],
            "agent_id": r["agent_id"],
            "lang": r["lang"],
            "wait_s": _num(r["wait_s"]),
            "first_response_s": _num(r["response_s"]),
            "handle_s": _num(r["handle_s"]),
            "resolution_s": _num(r["resolution_s"]),
            "sla_met": r["sla_met"],
            "rating": r["rating"],
            "outcome": r["outcome"],
            "tags": " ".join(r["tags"] or ()),
            "bot_outcome": r["bot_outcome"],
        }
        for r in rows
    ]


def _num(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _share(part: int, whole: int) -> float | None:
    return None if not whole else round(part / whole, 4)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def sample_queue(db: asyncpg.Connection) -> None:
    await db.execute(
        "insert into queue_samples (ts, queued, avg_wait_s)"
        " select date_trunc('minute', now()), count(*),"
        " coalesce(avg(extract(epoch from now() - enqueued_at)), 0)"
        " from conversations where status = 'queued' on conflict (ts) do nothing"
    )
