"""SQL of the honest queue and the service levels: agents' handle times, the chats whose
SLA state to judge, what supervisors are told, and the `queue`/`sla` figures of
`GET /api/stats` (`section`)."""

from __future__ import annotations

from typing import Any

import asyncpg

from hub.rules import queue as queue_rules
from hub.rules import sla

WINDOW = "24 hours"


async def handle_samples(
    db: asyncpg.Connection, per_agent: int, agent_id: str | None = None
) -> dict[str, list[float]]:
    """agent id -> the handle times (seconds, newest first) of its last `per_agent` ended
    chats of the last 30 days: from its assignment to the end (one agent, or all)."""
    rows = await db.fetch(
        "select agent_id, array_agg(s order by ended desc) as samples from ("
        " select agent_id, extract(epoch from coalesce(resolved_at, closed_at) - assigned_at)::float8 as s,"
        "  coalesce(resolved_at, closed_at) as ended, row_number() over (partition by agent_id"
        "  order by coalesce(resolved_at, closed_at) desc) as n from conversations"
        " where status in ('resolved', 'closed') and agent_id is not null and assigned_at is not null"
        "  and ($2::text is null or agent_id = $2)"
        "  and coalesce(resolved_at, closed_at) > now() - interval '30 days') x"
        " where n <= $1 group by agent_id",
        per_agent,
        agent_id,
    )
    return {r["agent_id"]: list(r["samples"]) for r in rows}


async def refresh_handle_times(
    db: asyncpg.Connection, per_agent: int, prior_s: float, agent_id: str | None = None
) -> dict[str, float]:
    """Store each agent's rolling handle time (hub.rules.queue.handle_time_estimate) on its
    row, for one agent (it just ended a chat) or all; returns what it stored."""
    samples = await handle_samples(db, per_agent, agent_id)
    times = {a: queue_rules.handle_time_estimate(s, prior_s) for a, s in samples.items()}
    if times:
        await db.execute(
            "update agents a set handle_time_s = v.h from unnest($1::text[], $2::float8[])"
            " v(id, h) where a.id = v.id and a.handle_time_s is distinct from v.h",
            list(times),
            list(times.values()),
        )
    return times


async def handle_times(db: asyncpg.Connection) -> dict[str, float]:
    """agent id -> its stored rolling handle time (agents with none use the default)."""
    rows = await db.fetch("select id, handle_time_s from agents where handle_time_s is not null")
    return {r["id"]: r["handle_time_s"] for r in rows}


async def supervisor_ids(db: asyncpg.Connection) -> list[str]:
    rows = await db.fetch("select id from agents where supervisor and not disabled")
    return [r["id"] for r in rows]


async def open_for_sla(db: asyncpg.Connection, limit: int = 2000) -> list[asyncpg.Record]:
    """Chats in human hands or waiting for them, with their times on the database's clock."""
    return await db.fetch(
        "select c.id, c.user_id, c.topic, c.priority, c.status, c.agent_id, c.sla_state,"
        " c.sla_kind, c.lang, c.queue_position,"
        " extract(epoch from c.enqueued_at)::float8 as started_s,"
        " extract(epoch from c.first_response_at)::float8 as first_response_s,"
        " extract(epoch from now())::float8 as now_s"
        " from conversations c where c.status in ('queued', 'assigned') and c.enqueued_at is not null"
        " order by c.enqueued_at limit $1",
        limit,
    )


def sla_chat(row: asyncpg.Record) -> sla.SlaChat:
    return sla.SlaChat(
        conversation_id=row["id"],
        priority=row["priority"],
        started_at=row["started_s"],
        first_response_at=row["first_response_s"],
    )


async def set_sla_state(
    db: asyncpg.Connection, cid: str, state: str, kind: str, action: str | None = None
) -> bool:
    """Store the chat's SLA state; True when it changed (one node tells supervisors)."""
    row = await db.fetchval(
        "update conversations set sla_state = $2, sla_kind = $3,"
        " sla_breached_at = case when $2 = 'breached' and sla_breached_at is null then now()"
        "  else sla_breached_at end, sla_action = coalesce($4, sla_action)"
        " where id = $1 and (sla_state is distinct from $2 or sla_kind is distinct from $3)"
        " returning id",
        cid, state, kind, action,
    )  # fmt: skip
    return row is not None


async def set_sla_action(db: asyncpg.Connection, cid: str, action: str) -> None:
    await db.execute("update conversations set sla_action = $2 where id = $1", cid, action)


async def leave_message(db: asyncpg.Connection, cid: str) -> asyncpg.Record | None:
    """The customer leaves a message: the queued chat stays open until someone answers."""
    return await db.fetchrow(
        "update conversations set message_left_at = coalesce(message_left_at, now()),"
        " last_activity_at = now() where id = $1 and status = 'queued' returning *",
        cid,
    )


async def at_risk_now(db: asyncpg.Connection) -> list[dict[str, Any]]:
    """Open chats supervisors were told are at risk or breached, worst first."""
    rows = await db.fetch(
        "select id, topic, priority, status, agent_id, sla_state, sla_kind, sla_action,"
        " enqueued_at from conversations where status in ('queued', 'assigned')"
        " and sla_state in ('at_risk', 'breached')"
        " order by sla_state = 'breached' desc, enqueued_at limit 100"
    )
    return [
        {
            "conversation_id": r["id"],
            "topic": r["topic"],
            "priority": r["priority"],
            "status": r["status"],
            "agent_id": r["agent_id"],
            "state": r["sla_state"],
            "kind": r["sla_kind"],
            "action": r["sla_action"],
            "enqueued_at": r["enqueued_at"].isoformat(),
        }
        for r in rows
    ]


async def section(db: asyncpg.Connection, targets: sla.Targets) -> dict[str, Any]:
    """The `queue_eta` and `sla` sections of `GET /api/stats`."""
    pairs = await db.fetch(
        "select eta_told_s, eta_actual_s from conversations where eta_actual_s is not null"
        f" and eta_told_at > now() - interval '{WINDOW}'"
    )
    err = queue_rules.eta_error((r["eta_told_s"], r["eta_actual_s"]) for r in pairs)
    counts = await db.fetchrow(
        "select count(*) filter (where status in ('queued', 'assigned') and sla_state = 'at_risk') as at_risk,"
        " count(*) filter (where status in ('queued', 'assigned') and sla_state = 'breached') as breached_open,"
        " count(*) filter (where sla_breached_at > now() - interval '24 hours') as breached,"
        " count(*) filter (where sla_breached_at > now() - interval '24 hours'"
        "  and sla_kind = 'first_response') as breached_first_response,"
        " count(*) filter (where sla_breached_at > now() - interval '24 hours'"
        "  and sla_kind = 'resolution') as breached_resolution,"
        " count(*) filter (where sla_breached_at > now() - interval '24 hours'"
        "  and sla_action = 'rerouted') as rerouted,"
        " count(*) filter (where sla_breached_at > now() - interval '24 hours'"
        "  and sla_action = 'escalated') as escalated,"
        " count(*) filter (where status = 'queued' and message_left_at is not null) as messages_left"
        " from conversations"
    )
    assert counts is not None  # an aggregate always has a row
    return {
        "queue_eta": {
            "window": WINDOW,
            "count": err.count,
            "mean_abs_error_s": _num(err.mean_abs_s),
            "bias_s": _num(err.bias_s),
            "messages_left": counts["messages_left"],
        },
        "sla": {
            "window": WINDOW,
            "targets": {
                "first_response_s": dict(targets.first_response_s),
                "resolution_s": dict(targets.resolution_s),
                "at_risk": targets.at_risk,
            },
            "at_risk": counts["at_risk"],
            "breached_open": counts["breached_open"],
            "breached": counts["breached"],
            "breached_by_kind": {
                "first_response": counts["breached_first_response"],
                "resolution": counts["breached_resolution"],
            },
            "rerouted": counts["rerouted"],
            "escalated": counts["escalated"],
            "chats": await at_risk_now(db),
        },
    }


def _num(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
