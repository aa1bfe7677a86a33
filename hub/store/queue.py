"""The routing shell: load the queue and agent load, let the pure router decide, apply.

One decider at a time across all nodes: the whole load-plan-apply runs in a transaction
holding a PostgreSQL advisory lock, so two nodes never assign the same chat or fill an
agent above capacity. Frames go out after COMMIT.
"""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

from hub import metrics
from hub.rules import routing
from hub.store import conversations as conv_store

log = logging.getLogger(__name__)

ROUTING_LOCK = 0x5375_7071
PRESENCE_FRESH_S = 15  # a node refreshes presence every 5 s; older rows are a dead node's


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


async def load_agents(db: asyncpg.Connection) -> list[routing.AgentLoad]:
    rows = await db.fetch(
        "select a.id, a.skills, a.capacity, a.status, a.idle_since, a.disabled,"
        " (select count(*) from conversations c where c.agent_id = a.id and c.status = 'assigned') as active,"
        " exists (select 1 from agent_presence p where p.agent_id = a.id and p.connections > 0"
        "   and p.seen_at > now() - make_interval(secs => $1)) as present"
        " from agents a",
        PRESENCE_FRESH_S,
    )
    return [
        routing.AgentLoad(
            agent_id=r["id"],
            skills=frozenset(r["skills"]),
            capacity=r["capacity"],
            active=r["active"],
            online=r["status"] == "online" and r["present"] and not r["disabled"],
            idle_since=_ts(r["idle_since"]),
        )
        for r in rows
    ]


async def load_queue(db: asyncpg.Connection) -> list[routing.QueuedChat]:
    rows = await db.fetch(
        "select id, topic, priority, enqueued_at, previous_agent_id, excluded_agents"
        " from conversations where status = 'queued' order by enqueued_at limit 5000"
    )
    return [queued_chat(r) for r in rows]


def queued_chat(row: asyncpg.Record) -> routing.QueuedChat:
    """A stored conversation as routing sees it in the queue."""
    return routing.QueuedChat(
        conversation_id=row["id"],
        topic=row["topic"],
        priority=row["priority"],
        enqueued_at=_ts(row["enqueued_at"]),
        preferred_agent=row["previous_agent_id"],
        excluded_agents=frozenset(row["excluded_agents"]),
    )


class RouteResult:
    __slots__ = ("assigned", "positions", "queue", "agents")

    def __init__(self):
        self.assigned: list[asyncpg.Record] = []
        self.positions: list[tuple[asyncpg.Record, int, int]] = []  # conv, position, eta
        self.queue: list[routing.QueuedChat] = []
        self.agents: list[routing.AgentLoad] = []


async def lock_routing(db: asyncpg.Connection) -> None:
    """Hold the routing lock until the transaction ends: one decider at a time across all
    nodes (the router, a transfer)."""
    await db.execute("select pg_advisory_xact_lock($1)", ROUTING_LOCK)


async def route_once(pool: asyncpg.Pool, handle_time_s: float) -> RouteResult:
    result = RouteResult()
    async with pool.acquire() as db, db.transaction():
        await lock_routing(db)
        agents = await load_agents(db)
        queue = routing.relax_exclusions(await load_queue(db), agents)
        decisions = routing.plan(queue, agents) if queue else []
        chosen = {a.conversation_id for a in decisions}
        for a in decisions:
            row = await db.fetchrow(
                "update conversations set status = 'assigned', agent_id = $2, assigned_at = now(),"
                " last_activity_at = now(), queue_position = null where id = $1 and status = 'queued'"
                " returning *",
                a.conversation_id,
                a.agent_id,
            )
            if row is None:
                continue
            await conv_store.record_agent(db, a.conversation_id, a.agent_id)
            await db.execute("update agents set idle_since = now() where id = $1", a.agent_id)
            metrics.QUEUE_WAIT.observe(
                max(0.0, (row["assigned_at"] - row["enqueued_at"]).total_seconds())
            )
            result.assigned.append(row)
        waiting = [q for q in queue if q.conversation_id not in chosen]
        positions = routing.queue_positions(waiting, by_topic=True)
        loads = _after(agents, decisions)
        changed = await db.fetch(
            "update conversations c set queue_position = v.pos from unnest($1::text[], $2::int[])"
            " v(id, pos) where c.id = v.id and c.status = 'queued'"
            " and c.queue_position is distinct from v.pos returning c.*",
            list(positions),
            list(positions.values()),
        )
        by_id = {q.conversation_id: q for q in waiting}
        for row in changed:
            pos = positions[row["id"]]
            eta = routing.estimate_wait_s(pos, loads, by_id[row["id"]].topic, handle_time_s)
            result.positions.append((row, pos, eta))
        result.queue = waiting
        result.agents = loads
    counts = {"urgent": 0, "high": 0, "normal": 0}
    for q in result.queue:
        counts[q.priority] += 1
    for priority, n in counts.items():
        metrics.QUEUE_LENGTH.labels(priority).set(n)
    return result


def _after(
    agents: list[routing.AgentLoad], decisions: list[routing.Assignment]
) -> list[routing.AgentLoad]:
    extra: dict[str, int] = {}
    for a in decisions:
        extra[a.agent_id] = extra.get(a.agent_id, 0) + 1
    return [
        routing.AgentLoad(
            a.agent_id,
            a.skills,
            a.capacity,
            a.active + extra.get(a.agent_id, 0),
            a.online,
            a.idle_since,
        )
        for a in agents
    ]


async def queue_snapshot(db: asyncpg.Connection) -> list[dict]:
    rows = await db.fetch(
        "select c.*, u.name as user_name from conversations c join users u on u.id = c.user_id"
        " where c.status = 'queued' order by case c.priority when 'urgent' then 0 when 'high' then 1"
        " else 2 end, c.enqueued_at limit 200"
    )
    return [
        {
            **conv_store.summary(r),
            "user": {"id": r["user_id"], "name": r["user_name"] or r["user_id"]},
            "enqueued_at": r["enqueued_at"].isoformat() if r["enqueued_at"] else None,
            "position": r["queue_position"],
        }
        for r in rows
    ]
