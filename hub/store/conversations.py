"""Queries on conversations and their messages: open, route, hand over, close, rate."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import asyncpg

from hub.rules import routing
from hub.store.attachments import REF_SQL
from supporthub_core.db import fetch_one

OPEN = ("bot", "queued", "assigned")


def message_frame(r: asyncpg.Record) -> dict:
    frame: dict[str, Any] = {
        "type": "message",
        "conversation_id": r["conversation_id"],
        "seq": r["seq"],
        "message_id": r["id"],
        "sender": {"role": r["sender_role"], "id": r["sender_id"], "name": r["sender_name"]},
        "text": r["text"],
        "ts": r["created_at"].isoformat(),
    }
    if r["client_msg_id"] is not None:
        frame["client_msg_id"] = r["client_msg_id"]
    if r.get("system") is not None:  # what a system message says, for each side to word
        frame["system"] = r["system"]
    refs = r.get("attachments")
    if refs:  # references: the caller signs their links (AttachmentLinks.frames)
        frame["attachments"] = refs
    if r.get("texts"):  # a system text in every language: each user device reads its own
        frame["texts"] = r["texts"]
    return frame


#: a message row with its attachment references, in order (null: none)
MESSAGE_COLUMNS = (
    f"m.*, (select jsonb_agg({REF_SQL} order by ma.position) from message_attachments ma"
    " join attachments a on a.id = ma.attachment_id where ma.message_id = m.id) as attachments"
)


def summary(r: asyncpg.Record) -> dict:
    return {
        "conversation_id": r["id"],
        "user_id": r["user_id"],
        "topic": r["topic"],
        "priority": r["priority"],
        "status": r["status"],
        "agent_id": r["agent_id"],
        "last_seq": r["last_seq"],
        "created_at": r["created_at"].isoformat(),
        "lang": r["lang"],
    }


async def get(
    db: asyncpg.Connection, conversation_id: str, *, lock: bool = False
) -> asyncpg.Record | None:
    sql = "select * from conversations where id = $1" + (" for update" if lock else "")
    return await db.fetchrow(sql, conversation_id)


async def messages_after(
    db: asyncpg.Connection, conversation_id: str, seq: int, limit: int = 5000
) -> list[dict]:
    """Message frames after `seq`; their attachments' links are not signed yet."""
    rows = await db.fetch(
        f"select {MESSAGE_COLUMNS} from messages m where m.conversation_id = $1 and m.seq > $2"
        " order by m.seq limit $3",
        conversation_id,
        seq,
        limit,
    )
    return [message_frame(r) for r in rows]


async def user_session(db: asyncpg.Connection, user_id: str) -> dict:
    user = await fetch_one(
        db, "select notif_head(id) as notif_seq, notif_acked from users where id = $1", user_id
    )
    rows = await db.fetch(
        "select c.*, a.name as agent_name from conversations c left join agents a on a.id = c.agent_id"
        " where c.user_id = $1 and c.status = any($2::text[]) order by c.created_at",
        user_id,
        list(OPEN),
    )
    convs = []
    for r in rows:
        item = summary(r)
        item["position"] = r["queue_position"]
        if r["queue_seq"] is not None:  # the routing pass that said it (hub.store.queue)
            item["queue_seq"] = r["queue_seq"]
        item["user_read_seq"] = r["user_read_seq"]
        item["agent_read_seq"] = r["agent_read_seq"]
        if r["status"] == "queued" and r["queue_staffed"] is False:
            item["unstaffed"] = True  # nobody online can take it: said instead of a wait
            item["message_left_at"] = r["message_left_at"]
        if r["priority"] == "urgent" and r["urgent_notice"]:
            item["urgent_notice"] = r["urgent_notice"]  # what its customer was told last
        if r["agent_id"]:
            item["agent"] = {"id": r["agent_id"], "name": r["agent_name"]}
        convs.append(item)
    return {
        "notifications_seq": user["notif_seq"],
        "notifications_acked": user["notif_acked"],
        "conversations": convs,
    }


async def agent_session(db: asyncpg.Connection, agent_id: str) -> dict:
    row = await db.fetchrow(
        "select a.*, (select count(*) from conversations c where c.agent_id = a.id"
        " and c.status = 'assigned') as active from agents a where a.id = $1",
        agent_id,
    )
    if row is None:  # a token for an agent that is not (or no longer) in the table
        return {"agent": None}
    return {"agent": agent_view(row)}


def agent_view(row: asyncpg.Record) -> dict:
    return {
        "id": row["id"],
        "name": row["name"],
        "status": row["status"],
        "capacity": row["capacity"],
        "active": row["active"],
        "skills": list(row["skills"]),
        "supervisor": row["supervisor"],
        "security_backup": row["security_backup"],
    }


async def resumable(
    db: asyncpg.Connection, user_id: str, known: dict[str, int]
) -> list[tuple[str, int]]:
    """(conversation, last seq the client has) for the user's conversations the client
    named, plus every open one it did not name (from the start)."""
    rows = await db.fetch(
        "select id, status from conversations where user_id = $1"
        " and (id = any($2::text[]) or status = any($3::text[]))",
        user_id,
        list(known),
        list(OPEN),
    )
    return [(r["id"], known.get(r["id"], 0)) for r in rows]


async def detail(db: asyncpg.Connection, conv: asyncpg.Record) -> dict:
    body = summary(conv)
    user = await fetch_one(db, "select id, name from users where id = $1", conv["user_id"])
    agent = None
    if conv["agent_id"]:
        agent = await db.fetchrow("select id, name from agents where id = $1", conv["agent_id"])
    body.update(
        {
            "user": {"id": user["id"], "name": user["name"] or user["id"]},
            "agent": {"id": agent["id"], "name": agent["name"]} if agent else None,
            "participants": {
                "user_id": conv["user_id"],
                "agents": await agent_ids(db, conv["id"]),
            },
            "rating": conv["rating"],
            "rating_comment": conv["rating_comment"],
            "alert": conv["alert"],
            "closed_by": conv["closed_by"],
            "resolved_at": _iso(conv["resolved_at"]),
            "closed_at": _iso(conv["closed_at"]),
            "user_read_seq": conv["user_read_seq"],
            "agent_read_seq": conv["agent_read_seq"],
        }
    )
    return body


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


async def listing(
    db: asyncpg.Connection,
    *,
    status: str | None,
    limit: int,
    user_id: str | None = None,
    agent_id: str | None = None,
) -> list[dict]:
    clauses: list[str] = []
    args: list[object] = []
    if status == "open":
        args.append(list(OPEN))
        clauses.append(f"c.status = any(${len(args)}::text[])")
    elif status:
        args.append(status)
        clauses.append(f"c.status = ${len(args)}")
    if user_id:
        args.append(user_id)
        clauses.append(f"c.user_id = ${len(args)}")
    if agent_id:
        args.append(agent_id)
        n = len(args)
        clauses.append(
            f"(c.agent_id = ${n} or exists (select 1 from conversation_agents ca"
            f" where ca.conversation_id = c.id and ca.agent_id = ${n}))"
        )
    args.append(limit)
    where = " and ".join(clauses) or "true"
    rows = await db.fetch(
        "select c.*, u.name as user_name, a.name as agent_name from conversations c"
        " join users u on u.id = c.user_id left join agents a on a.id = c.agent_id"
        f" where {where} order by c.created_at desc limit ${len(args)}",
        *args,
    )
    out = []
    for r in rows:
        item = summary(r)
        item["user"] = {"id": r["user_id"], "name": r["user_name"] or r["user_id"]}
        item["agent"] = {"id": r["agent_id"], "name": r["agent_name"]} if r["agent_id"] else None
        item["rating"] = r["rating"]
        out.append(item)
    return out


async def assigned_ids(db: asyncpg.Connection, agent_id: str) -> list[str]:
    """The conversations assigned to an agent now."""
    rows = await db.fetch(
        "select id from conversations where agent_id = $1 and status = 'assigned'", agent_id
    )
    return [r["id"] for r in rows]


# --- the life of a chat -------------------------------------------------------------------


async def create(
    db: asyncpg.Connection,
    conversation_id: str,
    user_id: str,
    *,
    topic: str,
    priority: str,
    status: str,
    lang: str,
    channel: str | None = None,
    returning_window_s: float = 7 * 86_400,
) -> asyncpg.Record:
    """A new chat, `bot` or `queued` (enqueued now). The agent who last served this user
    within `returning_window_s` seconds is its preferred agent (routing gives it the chat
    when that agent is online with room and the skill). `channel`: `web` or `app`, where
    the user wrote from."""
    return await fetch_one(
        db,
        "insert into conversations (id, user_id, topic, priority, status, lang, enqueued_at,"
        " previous_agent_id, channel)"
        " values ($1, $2, $3, $4, $5, $6, case when $5 = 'queued' then now() end,"
        " (select ca.agent_id from conversation_agents ca join conversations c on c.id ="
        "  ca.conversation_id where c.user_id = $2"
        "  and ca.assigned_at > now() - make_interval(secs => $8)"
        "  order by ca.assigned_at desc limit 1), $7)"
        " returning *",
        conversation_id, user_id, topic, priority, status, lang, channel, returning_window_s,
    )  # fmt: skip


async def status(db: asyncpg.Connection, conversation_id: str) -> str | None:
    return await db.fetchval("select status from conversations where id = $1", conversation_id)


async def hand_to_queue(
    db: asyncpg.Connection, conversation_id: str, topic: str, priority: str
) -> asyncpg.Record:
    """From the bot to the human queue on `topic`, enqueued now; an urgent chat stays
    urgent."""
    return await fetch_one(
        db,
        "update conversations set status = 'queued', enqueued_at = now(), topic = $2,"
        " priority = case when priority = 'urgent' then priority else $3 end,"
        " last_activity_at = now() where id = $1 returning *",
        conversation_id, topic, priority,
    )  # fmt: skip


ENDED = ("resolved", "closed")


async def end(
    db: asyncpg.Connection,
    conversation_id: str,
    status: Literal["resolved", "closed"],
    by: Literal["agent", "user"],
    *,
    from_statuses: tuple[str, ...] = OPEN,
    agent_id: str | None = None,
    outcome: str | None = None,
    tags: list[str] | None = None,
) -> asyncpg.Record | None:
    """End an open chat in one conditional statement: `resolved` (by its agent) or
    `closed` (by its user), only while its status is one of `from_statuses` (and, with
    `agent_id`, while that agent holds it). None when it did not apply: the chat ended
    already (see `ended_state`), or it is not in a state this end applies to. Two ends
    racing each other cannot both apply: the row lock makes the second one re-check the
    status the first one wrote. A resolve's `outcome` and `tags` are stored by the same
    statement, so they are there exactly when the end applied."""
    return await db.fetchrow(
        "update conversations set status = $2, closed_by = $3, queue_position = null,"
        " resolved_at = case when $2 = 'resolved' then now() else resolved_at end,"
        " closed_at = case when $2 = 'closed' then now() else closed_at end,"
        " outcome = coalesce($6::text, outcome), tags = coalesce($7::text[], tags)"
        " where id = $1 and status = any($4::text[]) and ($5::text is null or agent_id = $5)"
        " returning *",
        conversation_id, status, by, list(from_statuses), agent_id, outcome,
        None if tags is None else list(tags),
    )  # fmt: skip


def ended_state(conv: asyncpg.Record) -> dict | None:
    """`{status, by}` of a chat that has ended; None while it is open."""
    if conv["status"] not in ENDED:
        return None
    by = conv["closed_by"] or ("agent" if conv["status"] == "resolved" else "system")
    return {"status": conv["status"], "by": by}


# An urgent chat still waiting for a person: queued, or assigned and its holder has not
# written since it got it (SQL over `conversations c`).
URGENT_WAITING = (
    "(c.priority = 'urgent' and (c.status = 'queued' or (c.status = 'assigned' and not exists"
    " (select 1 from messages m where m.conversation_id = c.id and m.sender_role = 'agent'"
    "  and m.sender_id = c.agent_id and m.created_at >= c.assigned_at))))"
)
# A queued chat whose customer left a message while nobody could help: it stays open.
MESSAGE_LEFT = "(c.status = 'queued' and c.message_left_at is not null)"
# Whether the holder of an assigned chat wrote in it since it got it.
ANSWERED = (
    "(c.status = 'assigned' and exists (select 1 from messages m where m.conversation_id = c.id"
    " and m.sender_role = 'agent' and m.sender_id = c.agent_id and m.created_at >= c.assigned_at))"
)


async def close_if_idle(
    db: asyncpg.Connection, conversation_id: str, last_activity_at: datetime
) -> asyncpg.Record | None:
    """Close an open chat for inactivity; None when it moved on since `last_activity_at`
    (a message, a close) and stays as it is, or when it is an urgent chat still waiting
    for a person (never closed for inactivity)."""
    return await db.fetchrow(
        "update conversations c set status = 'closed', closed_at = now(), closed_by = 'system',"
        " queue_position = null where c.id = $1"
        " and c.status = any('{bot,queued,assigned}'::text[])"
        f" and c.last_activity_at = $2 and not {URGENT_WAITING} and not {MESSAGE_LEFT} returning *",
        conversation_id,
        last_activity_at,
    )


async def idle(db: asyncpg.Connection, idle_s: float, limit: int = 100) -> list[asyncpg.Record]:
    """Open chats with no activity for `idle_s` seconds, except urgent chats still waiting
    for a person: the urgent ladder keeps those until someone answers."""
    return await db.fetch(
        "select * from conversations c where c.status = any('{bot,queued,assigned}'::text[])"
        f" and c.last_activity_at < now() - make_interval(secs => $1) and not {URGENT_WAITING}"
        f" and not {MESSAGE_LEFT}"
        " limit $2",
        idle_s,
        limit,
    )


async def set_handover(
    db: asyncpg.Connection, conversation_id: str, handover: dict | None
) -> asyncpg.Record:
    """The note of the last transfer (None: that transfer left none)."""
    return await fetch_one(
        db,
        "update conversations set handover = $2 where id = $1 returning *",
        conversation_id, handover,
    )  # fmt: skip


async def rate_once(
    db: asyncpg.Connection, conversation_id: str, score: int, comment: str | None
) -> bool:
    """Store the rating; False when the chat has one already."""
    rated = await db.fetchval(
        "update conversations set rating = $2, rating_comment = $3"
        " where id = $1 and rating is null returning true",
        conversation_id, score, comment,
    )  # fmt: skip
    return bool(rated)


async def mark_read(
    db: asyncpg.Connection, conversation_id: str, side: Literal["user", "agent"], seq: int
) -> None:
    """The user's or the agents' read mark moves up to `seq`, never back."""
    column = "user_read_seq" if side == "user" else "agent_read_seq"
    await db.execute(
        f"update conversations set {column} = greatest({column}, $2) where id = $1",
        conversation_id,
        seq,
    )


# --- who holds a chat ---------------------------------------------------------------------
# A chat that changes hands outside the urgent ladder (a transfer, a take, an assignment,
# back to the queue) starts a new wait: an urgent one gets a fresh deadline from now.
_NEW_HANDS = (
    "urgent_since = case when priority = 'urgent' then now() else urgent_since end,"
    " urgent_due_at = null"
)


async def record_agent(db: asyncpg.Connection, conversation_id: str, agent_id: str) -> None:
    """Remember that `agent_id` held the chat (it may read it ever after)."""
    await db.execute(
        "insert into conversation_agents (conversation_id, agent_id) values ($1, $2)"
        " on conflict do nothing",
        conversation_id,
        agent_id,
    )


async def agent_ids(db: asyncpg.Connection, conversation_id: str) -> list[str]:
    """Every agent that held the chat, first first."""
    rows = await db.fetch(
        "select agent_id from conversation_agents where conversation_id = $1 order by assigned_at",
        conversation_id,
    )
    return [r["agent_id"] for r in rows]


async def is_serving(db: asyncpg.Connection, agent_id: str, user_id: str) -> bool:
    """Whether the agent holds an assigned chat of this user now."""
    return bool(
        await db.fetchval(
            "select 1 from conversations where user_id = $1 and agent_id = $2"
            " and status = 'assigned'",
            user_id,
            agent_id,
        )
    )


async def assigned_to(db: asyncpg.Connection, agent_id: str) -> list[asyncpg.Record]:
    """The agent's assigned chats, oldest assignment first."""
    return await db.fetch(
        "select * from conversations where agent_id = $1 and status = 'assigned'"
        " order by assigned_at",
        agent_id,
    )


async def transfer_to_agent(
    db: asyncpg.Connection, conversation_id: str, agent_id: str, from_agent: str
) -> asyncpg.Record:
    """Hand an assigned chat to `agent_id` by name. Run it in the caller's transaction."""
    conv = await fetch_one(
        db,
        "update conversations set agent_id = $2, assigned_at = now(),"
        f" previous_agent_id = $3, {_NEW_HANDS} where id = $1 returning *",
        conversation_id, agent_id, from_agent,
    )  # fmt: skip
    await record_agent(db, conversation_id, agent_id)
    return conv


async def give(
    db: asyncpg.Connection, conversation_id: str, agent_id: str, queue_seq: int | None = None
) -> asyncpg.Record:
    """Give a queued chat, or an urgent one its holder has not answered, to `agent_id`
    (`chat.take`, `chat.assign`). A holder it leaves becomes its previous agent and is
    excluded from it. Run it in the caller's transaction, under the routing lock, whose
    number is `queue_seq` (hub.store.queue.lock_routing)."""
    conv = await fetch_one(
        db,
        "update conversations set status = 'assigned', agent_id = $2, assigned_at = now(),"
        " last_activity_at = now(), queue_position = null,"
        " eta_actual_s = case when eta_told_at is not null and eta_actual_s is null"
        "  then extract(epoch from now() - eta_told_at) else eta_actual_s end,"
        " previous_agent_id = coalesce(agent_id, previous_agent_id),"
        " excluded_agents = case when agent_id is null or agent_id = any(excluded_agents)"
        "  then excluded_agents else array_append(excluded_agents, agent_id) end,"
        " urgent_notice = case when priority = 'urgent' then 'staffed' else urgent_notice end,"
        f" queue_seq = coalesce($3, queue_seq), {_NEW_HANDS} where id = $1 returning *",
        conversation_id, agent_id, queue_seq,
    )  # fmt: skip
    await record_agent(db, conversation_id, agent_id)
    await db.execute("update agents set idle_since = now() where id = $1", agent_id)
    return conv


async def claim_view(db: asyncpg.Connection, conversation_id: str) -> asyncpg.Record | None:
    """The chat as `chat.take` and `chat.assign` judge it (locked): its row, whether its
    holder answered, and its times on the database's clock."""
    return await db.fetchrow(
        f"select c.*, {ANSWERED} as answered,"
        " extract(epoch from coalesce(c.urgent_since, c.enqueued_at, c.created_at))::float8 as since_s,"
        " extract(epoch from c.urgent_due_at)::float8 as due_s,"
        " extract(epoch from now())::float8 as now_s"
        " from conversations c where c.id = $1 for update",
        conversation_id,
    )


async def requeue(db: asyncpg.Connection, entry: routing.QueuedChat) -> asyncpg.Record:
    """Put a chat back in the queue as `entry` says (topic, priority, preferred and
    excluded agents); it keeps its original enqueue time."""
    return await fetch_one(
        db,
        "update conversations set status = 'queued', agent_id = null, queue_position = null,"
        " topic = $2, priority = $3, previous_agent_id = $4, excluded_agents = $5,"
        " urgent_since = case when $3 = 'urgent' then now() else urgent_since end,"
        " urgent_due_at = null where id = $1 returning *",
        entry.conversation_id, entry.topic, entry.priority, entry.preferred_agent,
        sorted(entry.excluded_agents),
    )  # fmt: skip


async def requeue_agent_chats(db: asyncpg.Connection, agent_id: str) -> list[asyncpg.Record]:
    """Put the assigned chats of an agent who left back in the queue, kept for that agent
    (preferred, not excluded) should it come back before someone else takes them."""
    return await db.fetch(
        "update conversations set status = 'queued', agent_id = null, previous_agent_id = $1,"
        f" queue_position = null, {_NEW_HANDS} where agent_id = $1 and status = 'assigned'"
        " returning *",
        agent_id,
    )


async def release_agent_chats(db: asyncpg.Connection, agent_id: str) -> list[asyncpg.Record]:
    """Put the assigned chats of a disabled agent back in the queue at their original
    place, kept for no one: that agent will not come back for them."""
    return await db.fetch(
        "update conversations set status = 'queued', agent_id = null, previous_agent_id = null,"
        " queue_position = null where agent_id = $1 and status = 'assigned' returning *",
        agent_id,
    )


async def unanswered(
    db: asyncpg.Connection, timeout_s: float, limit: int = 100
) -> list[asyncpg.Record]:
    """(id, agent_id) of chats assigned over `timeout_s` seconds ago that the agent has
    not written in since. Urgent chats are left to the urgent ladder."""
    return await db.fetch(
        "select c.id, c.agent_id from conversations c where c.status = 'assigned'"
        " and c.priority <> 'urgent'"
        " and c.assigned_at < now() - make_interval(secs => $1)"
        " and not exists (select 1 from messages m where m.conversation_id = c.id"
        "  and m.sender_id = c.agent_id and m.created_at >= c.assigned_at) limit $2",
        timeout_s, limit,
    )  # fmt: skip


# --- the help bot's memory ----------------------------------------------------------------


async def bot_state(db: asyncpg.Connection, conversation_id: str) -> dict | None:
    return await db.fetchval("select bot_state from conversations where id = $1", conversation_id)


async def save_bot_state(db: asyncpg.Connection, conversation_id: str, state: dict) -> None:
    await db.execute(
        "update conversations set bot_state = $2 where id = $1", conversation_id, state
    )


async def open_with_bot_state(db: asyncpg.Connection, user_ids: list[str]) -> list[asyncpg.Record]:
    """The open chats of these users in which the bot keeps a state."""
    return await db.fetch(
        "select * from conversations where user_id = any($1::text[]) and bot_state is not null"
        " and status = any('{bot,queued,assigned}'::text[])",
        user_ids,
    )


async def positions(
    db: asyncpg.Connection, user_ids: list[str], agent_ids: list[str]
) -> tuple[dict[str, int], dict[str, tuple[str, str | None, int]]]:
    """Where the store stands for these users and agents: each user's last notification
    seq, and each of their open chats (and the agents' assigned ones) as
    conversation id -> (user, agent, last seq)."""
    users = await db.fetch(
        "select id, notif_head(id) as notif_seq from users where id = any($1::text[])", user_ids
    )
    convs = await db.fetch(
        "select id, user_id, agent_id, last_seq from conversations"
        " where status = any($3::text[]) and (user_id = any($1::text[])"
        " or (agent_id = any($2::text[]) and status = 'assigned'))",
        user_ids, agent_ids, list(OPEN),
    )  # fmt: skip
    return (
        {r["id"]: r["notif_seq"] for r in users},
        {r["id"]: (r["user_id"], r["agent_id"], r["last_seq"]) for r in convs},
    )


# An open's follow-up (hub.store.opening): taken on by one node at a time. Whoever takes
# it marks the chat with the time; another may take it only once that is `lease_s` old
# (the node that had it gave up or stopped), and nobody once it is done (null).
_TAKE_OPEN_FOLLOW_UP = """
update conversations set open_follow_up_at = now()
where id = $1 and open_follow_up_at < now() - make_interval(secs => $2)
returning *
"""

_TAKE_OPEN_FOLLOW_UPS = """
update conversations set open_follow_up_at = now()
where id in (select id from conversations
             where open_follow_up_at < now() - make_interval(secs => $1)
             order by open_follow_up_at limit $2 for update skip locked)
returning *
"""


async def take_open_follow_up(
    db: asyncpg.Connection, conversation_id: str, lease_s: float
) -> asyncpg.Record | None:
    """The chat, if its open's follow-up is left undone by whoever took it on `lease_s`
    seconds ago or more: now this caller's to do (None: done, or another has it)."""
    return await db.fetchrow(_TAKE_OPEN_FOLLOW_UP, conversation_id, float(lease_s))


async def take_open_follow_ups(
    db: asyncpg.Connection, lease_s: float, limit: int = 200
) -> list[asyncpg.Record]:
    """Every chat (up to `limit`) whose open's follow-up was left undone for `lease_s`
    seconds: now this caller's to do."""
    return await db.fetch(_TAKE_OPEN_FOLLOW_UPS, float(lease_s), limit)


async def open_follow_up_done(db: asyncpg.Connection, conversation_id: str) -> None:
    await db.execute(
        "update conversations set open_follow_up_at = null where id = $1", conversation_id
    )
