"""Queries on conversations, messages, notes and agent presence."""

from __future__ import annotations

from typing import Any

import asyncpg

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
    return frame


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
    rows = await db.fetch(
        "select * from messages where conversation_id = $1 and seq > $2 order by seq limit $3",
        conversation_id,
        seq,
        limit,
    )
    return [message_frame(r) for r in rows]


async def notes(db: asyncpg.Connection, conversation_id: str) -> list[dict]:
    rows = await db.fetch(
        "select * from notes where conversation_id = $1 order by created_at", conversation_id
    )
    return [
        {
            "note_id": r["id"],
            "conversation_id": conversation_id,
            "agent": {"id": r["agent_id"], "name": r["agent_name"]},
            "text": r["text"],
            "ts": r["created_at"].isoformat(),
        }
        for r in rows
    ]


async def user_session(db: asyncpg.Connection, user_id: str) -> dict:
    user = await db.fetchrow("select notif_seq, notif_acked from users where id = $1", user_id)
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
        item["user_read_seq"] = r["user_read_seq"]
        item["agent_read_seq"] = r["agent_read_seq"]
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
    user = await db.fetchrow("select id, name from users where id = $1", conv["user_id"])
    agent = None
    if conv["agent_id"]:
        agent = await db.fetchrow("select id, name from agents where id = $1", conv["agent_id"])
    body.update(
        {
            "user": {"id": user["id"], "name": user["name"] or user["id"]},
            "agent": {"id": agent["id"], "name": agent["name"]} if agent else None,
            "participants": {
                "user_id": conv["user_id"],
                "agents": [
                    r["agent_id"]
                    for r in await db.fetch(
                        "select agent_id from conversation_agents where conversation_id = $1"
                        " order by assigned_at",
                        conv["id"],
                    )
                ],
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
    clauses, args = [], []
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
