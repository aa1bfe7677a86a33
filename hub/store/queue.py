"""The routing shell: load the queue and agent load, let the pure routers decide, apply.

One decider at a time across all nodes: the whole load-plan-apply runs in a transaction
holding a PostgreSQL advisory lock, so two nodes never assign the same chat or fill an
agent above capacity. Frames go out after COMMIT.

Each pass first walks the urgent chats still waiting for a person with the urgent ladder
(hub.rules.urgent: deadlines, urgent slots, pages), then gives the other queued chats to
agents with room (hub.rules.routing) with the loads the ladder left. Times come from the
database's clock, so every node judges deadlines alike.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from hub import metrics
from hub.rules import queue as queue_rules
from hub.rules import routing, urgent
from hub.store import conversations as conv_store
from hub.store import service_levels
from supporthub_core.db import acquire, fetch_one

log = logging.getLogger(__name__)

ROUTING_LOCK = 0x5375_7071
PRESENCE_FRESH_S = 15  # a node refreshes presence every 5 s; older rows are a dead node's
# at a chat's first assignment: how long it took since the customer was told a wait
ETA_ACTUAL = (
    "eta_actual_s = case when eta_told_at is not null and eta_actual_s is null"
    " then extract(epoch from now() - eta_told_at) else eta_actual_s end"
)


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


async def load_agents(db: asyncpg.Connection) -> list[routing.AgentLoad]:
    rows = await db.fetch(
        "select a.id, a.skills, a.capacity, a.status, a.idle_since, a.supervisor,"
        " a.security_backup, a.disabled,"
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
            supervisor=r["supervisor"],
            security_backup=r["security_backup"],
        )
        for r in rows
    ]


async def load_agent(db: asyncpg.Connection, agent_id: str) -> routing.AgentLoad | None:
    """One agent as routing sees it (None: no such agent)."""
    return next((a for a in await load_agents(db) if a.agent_id == agent_id), None)


async def load_queue(db: asyncpg.Connection) -> list[routing.QueuedChat]:
    return (await load_queue_users(db))[0]


async def load_queue_users(
    db: asyncpg.Connection,
) -> tuple[list[routing.QueuedChat], dict[str, str]]:
    """The queue, and each queued chat's customer."""
    rows = await db.fetch(
        "select id, user_id, topic, priority, enqueued_at, previous_agent_id, excluded_agents"
        " from conversations where status = 'queued' order by enqueued_at limit 5000"
    )
    return [queued_chat(r) for r in rows], {r["id"]: r["user_id"] for r in rows}


async def load_urgent(db: asyncpg.Connection) -> list[asyncpg.Record]:
    """Urgent chats still waiting for a person: queued, or held without an answer."""
    return await db.fetch(
        "select c.*, extract(epoch from coalesce(c.urgent_since, c.enqueued_at,"
        "  c.created_at))::float8 as since_s,"
        " extract(epoch from c.urgent_due_at)::float8 as due_s,"
        " extract(epoch from c.urgent_paged_at)::float8 as paged_s"
        f" from conversations c where {conv_store.URGENT_WAITING}"
        " order by c.urgent_since nulls first, c.id limit 1000"
    )


def urgent_chat(row: asyncpg.Record) -> urgent.UrgentChat:
    """A stored urgent chat as the ladder sees it (a row of `load_urgent`)."""
    return urgent.UrgentChat(
        conversation_id=row["id"],
        topic=row["topic"],
        since=row["since_s"],
        agent_id=row["agent_id"] if row["status"] == "assigned" else None,
        answered=False,
        due_at=row["due_s"],
        paged_at=row["paged_s"],
        excluded_agents=frozenset(row["excluded_agents"]),
    )


@dataclass(frozen=True, slots=True)
class Page:
    """An on-call page decided by a routing pass (sent after COMMIT)."""

    conversation_id: str
    user_id: str
    reason: str  # nobody_online | unanswered
    agent_id: str | None  # who holds the chat now, if anyone
    missed_by: str | None  # the holder who let its deadline pass, or left it
    since: datetime  # when the chat became urgent
    waiting_s: float
    topic: str


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
    __slots__ = (
        "assigned", "positions", "queue", "agents", "moved", "pages", "notices", "urgent",
        "places", "statuses", "seq",
    )  # fmt: skip

    def __init__(self):
        # the pass's number (lock_routing): its places and assignments go out with it, so
        # that a device drops a place another node's older pass announces late
        self.seq = 0
        self.assigned: list[asyncpg.Record] = []
        # conv (with `was_staffed`), position, eta (None: nobody online can take it)
        self.positions: list[tuple[asyncpg.Record, int, int | None]] = []
        self.places: dict[str, queue_rules.Place] = {}
        self.queue: list[routing.QueuedChat] = []
        self.agents: list[routing.AgentLoad] = []
        # urgent ladder: (chat, the holder it left) for chats it moved or put back
        self.moved: list[tuple[asyncpg.Record, str]] = []
        self.pages: list[Page] = []
        self.notices: list[tuple[asyncpg.Record, urgent.Notice]] = []  # (chat, notice) newly true
        # queued urgent chat -> (notice, seconds to its next step) for `chat.queued`
        self.urgent: dict[str, tuple[urgent.Notice, int]] = {}
        # the status after the pass of each chat a caller asked about (`watch`)
        self.statuses: dict[str, str] = {}


async def lock_routing(db: asyncpg.Connection) -> int:
    """Hold the routing lock until the transaction ends: one decider at a time across all
    nodes (the router, a transfer). Returns the pass's number, drawn under the lock: the
    numbers grow in the order the deciders commit, whichever node each runs on."""
    pass_no: int = await db.fetchval(
        "select nextval('routing_passes') from (select pg_advisory_xact_lock($1)) held",
        ROUTING_LOCK,
    )
    return pass_no


async def route_once(
    pool: asyncpg.Pool,
    handle_time_s: float,
    policy: urgent.UrgentPolicy | None = None,
    handle: Mapping[str, float] | None = None,
    watch: Collection[str] = (),
) -> RouteResult:
    """One routing pass. `handle_time_s` is the default handle time; each agent's rolling
    one (hub.rules.queue) is read from its row unless `handle` is given: the waits
    customers are told come from them, alike on every node. `watch`: chats whose status
    as this pass leaves it the caller wants (`result.statuses`; a chat just opened says
    in `chat.opened` whether it is already assigned)."""
    policy = policy or urgent.UrgentPolicy()
    result = RouteResult()
    async with acquire(pool) as db, db.transaction():
        result.seq = await lock_routing(db)
        agents = await load_agents(db)
        if handle is None:
            handle = await service_levels.handle_times(db)
        agents = await _urgent_pass(db, agents, policy, result)
        # urgent chats are the ladder's alone; the router sees the loads it left
        queue, users = await load_queue_users(db)
        still_urgent = [q for q in queue if q.priority == "urgent"]
        normal = routing.relax_exclusions([q for q in queue if q.priority != "urgent"], agents)
        decisions = routing.plan(normal, agents) if normal else []
        chosen = {a.conversation_id for a in decisions}
        if decisions:
            # set-based: three statements for the whole pass, not three per assignment
            ids = [a.conversation_id for a in decisions]
            agent_of = [a.agent_id for a in decisions]
            rows = await db.fetch(
                "update conversations c set status = 'assigned', agent_id = v.agent_id,"
                " assigned_at = now(), last_activity_at = now(), queue_position = null,"
                f" queue_seq = $3, {ETA_ACTUAL}"
                " from unnest($1::text[], $2::text[]) v(id, agent_id)"
                " where c.id = v.id and c.status = 'queued' returning c.*",
                ids,
                agent_of,
                result.seq,
            )
            by_conv = {row["id"]: row for row in rows}
            done = [a for a in decisions if a.conversation_id in by_conv]
            await db.execute(
                "insert into conversation_agents (conversation_id, agent_id)"
                " select * from unnest($1::text[], $2::text[]) on conflict do nothing",
                [a.conversation_id for a in done],
                [a.agent_id for a in done],
            )
            await db.execute(
                "update agents set idle_since = now() where id = any($1::text[])",
                list({a.agent_id for a in done}),
            )
            for a in done:  # in the plan's order
                row = by_conv[a.conversation_id]
                metrics.QUEUE_WAIT.observe(
                    max(0.0, (row["assigned_at"] - row["enqueued_at"]).total_seconds())
                )
                result.assigned.append(row)
        waiting = [q for q in normal if q.conversation_id not in chosen] + still_urgent
        loads = _after(agents, decisions)
        line = [
            queue_rules.Waiting(q.conversation_id, users[q.conversation_id], q.topic,
                                q.priority, q.enqueued_at)
            for q in waiting
        ]  # fmt: skip
        places = queue_rules.places(line, loads)
        by_id = {q.conversation_id: q for q in waiting}
        etas = queue_rules.etas(
            {cid: (p.position, by_id[cid].topic) for cid, p in places.items()},
            loads,
            handle,
            handle_time_s,
        )
        ids = list(places)
        changed = await db.fetch(
            "update conversations c set queue_position = v.pos, queue_staffed = v.staffed,"
            " queue_eta_s = v.told, queue_seq = $5,"
            " eta_told_s = case when c.eta_told_at is null and v.told is not null then v.told"
            "  else c.eta_told_s end,"
            " eta_told_at = case when c.eta_told_at is null and v.told is not null then now()"
            "  else c.eta_told_at end"
            " from unnest($1::text[], $2::int[], $3::bool[], $4::int[]) v(id, pos, staffed, told),"
            " conversations old"
            " where c.id = v.id and old.id = v.id and c.status = 'queued'"
            " and (c.queue_position is distinct from v.pos or c.queue_staffed is distinct from v.staffed"
            # the wait moved (agents came or went, handle times changed): told again
            "  or (v.told is not null and c.queue_eta_s is not null"
            "   and abs(v.told - c.queue_eta_s) >= greatest(60, c.queue_eta_s / 4)))"
            " returning c.*, old.queue_staffed as was_staffed",
            ids,
            [places[i].position for i in ids],
            [etas[i] is not None for i in ids],
            [None if by_id[i].priority == "urgent" else etas[i] for i in ids],
            result.seq,
        )
        told = {row["id"] for row in changed}
        # an urgent chat whose notice changed is told again, its position unchanged or not
        changed = list(changed) + [
            row for row, _ in result.notices if row["id"] in places and row["id"] not in told
        ]
        for row in changed:
            place = places[row["id"]]
            if row["id"] in result.urgent:
                eta: int | None = result.urgent[row["id"]][1]
            else:
                eta = etas[row["id"]]
            result.positions.append((row, place.position, eta))
            result.places[row["id"]] = place
        result.queue = waiting
        result.agents = loads
        if watch:
            rows = await db.fetch(
                "select id, status from conversations where id = any($1::text[])", list(watch)
            )
            result.statuses = {r["id"]: r["status"] for r in rows}
    counts = {"urgent": 0, "high": 0, "normal": 0}
    for q in result.queue:
        counts[q.priority] += 1
    for priority, n in counts.items():
        metrics.QUEUE_LENGTH.labels(priority).set(n)
    return result


async def _urgent_pass(
    db: asyncpg.Connection,
    agents: list[routing.AgentLoad],
    policy: urgent.UrgentPolicy,
    result: RouteResult,
) -> list[routing.AgentLoad]:
    """Walk the urgent ladder over the urgent chats still waiting; apply its steps, and
    return the agents with the loads it left."""
    rows = {r["id"]: r for r in await load_urgent(db)}
    if not rows:
        return agents
    now = await db.fetchval("select extract(epoch from now())::float8")
    steps = urgent.plan([urgent_chat(r) for r in rows.values()], agents, now, policy)
    delta: dict[str, int] = {}
    for step in steps:
        before = rows[step.conversation_id]
        row = await _apply_step(db, before, step)
        if step.moved_from is not None:
            delta[step.moved_from] = delta.get(step.moved_from, 0) - 1
            result.moved.append((row, step.moved_from))
        if step.given:
            assert step.agent_id is not None  # a step that gives a chat names who gets it
            delta[step.agent_id] = delta.get(step.agent_id, 0) + 1
            result.assigned.append(row)
            if before["status"] == "queued":
                metrics.QUEUE_WAIT.observe(max(0.0, now - before["enqueued_at"].timestamp()))
        if step.page:
            held = before["agent_id"] if before["status"] == "assigned" else None
            result.pages.append(
                Page(
                    conversation_id=row["id"],
                    user_id=row["user_id"],
                    reason=step.reason or "unanswered",
                    agent_id=row["agent_id"],
                    missed_by=held,
                    since=row["urgent_since"] or row["enqueued_at"],
                    waiting_s=max(0.0, now - before["since_s"]),
                    topic=row["topic"],
                )
            )
        if before["urgent_notice"] != step.notice:
            result.notices.append((row, step.notice))
        if row["status"] == "queued":
            result.urgent[row["id"]] = (step.notice, max(0, round(step.due_at - now)))
    return [replace(a, active=a.active + delta.get(a.agent_id, 0)) for a in agents]


async def _apply_step(
    db: asyncpg.Connection, conv: asyncpg.Record, step: urgent.Step
) -> asyncpg.Record:
    """Store what the ladder decided for one chat; the updated row."""
    if (
        not step.given
        and step.moved_from is None
        and not step.page
        and conv["urgent_notice"] == step.notice
        and conv["due_s"] is not None
        and abs(conv["due_s"] - step.due_at) < 1e-3
    ):
        return conv  # a chat that waits as it did: nothing to write
    if step.given:
        assert step.agent_id is not None  # a step that gives a chat names who gets it
        row = await fetch_one(
            db,
            "update conversations set status = 'assigned', agent_id = $2, assigned_at = now(),"
            " last_activity_at = now(), queue_position = null,"
            " previous_agent_id = coalesce($3, previous_agent_id),"
            " excluded_agents = case when $3::text is null or $3 = any(excluded_agents)"
            "  then excluded_agents else array_append(excluded_agents, $3) end,"
            " urgent_due_at = to_timestamp($4), urgent_notice = $5,"
            " urgent_paged_at = case when $6 then now() else urgent_paged_at end"
            " where id = $1 returning *",
            conv["id"], step.agent_id, step.moved_from, step.due_at, step.notice, step.page,
        )  # fmt: skip
        await conv_store.record_agent(db, conv["id"], step.agent_id)
        await db.execute("update agents set idle_since = now() where id = $1", step.agent_id)
        return row
    if step.moved_from is not None:  # its holder left and nobody can take it: the queue
        return await fetch_one(
            db,
            "update conversations set status = 'queued', agent_id = null, queue_position = null,"
            " previous_agent_id = $2,"
            " excluded_agents = case when $2 = any(excluded_agents) then excluded_agents"
            "  else array_append(excluded_agents, $2) end,"
            " urgent_due_at = to_timestamp($3), urgent_notice = $4,"
            " urgent_paged_at = case when $5 then now() else urgent_paged_at end"
            " where id = $1 returning *",
            conv["id"], step.moved_from, step.due_at, step.notice, step.page,
        )  # fmt: skip
    return await fetch_one(
        db,
        "update conversations set urgent_due_at = to_timestamp($2), urgent_notice = $3,"
        " urgent_paged_at = case when $4 then now() else urgent_paged_at end"
        " where id = $1 returning *",
        conv["id"], step.due_at, step.notice, step.page,
    )  # fmt: skip


def _after(
    agents: list[routing.AgentLoad], decisions: list[routing.Assignment]
) -> list[routing.AgentLoad]:
    extra: dict[str, int] = {}
    for a in decisions:
        extra[a.agent_id] = extra.get(a.agent_id, 0) + 1
    return [replace(a, active=a.active + extra.get(a.agent_id, 0)) for a in agents]


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
            # what the customer was told (false: nobody online can take it) and the chat's
            # service-level state as supervisors were last told it (hub.rules.sla)
            "staffed": r["queue_staffed"],
            "sla": r["sla_state"],
            "message_left": r["message_left_at"] is not None,
        }
        for r in rows
    ]
