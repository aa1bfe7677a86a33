"""Agent accounts: argon2-hashed passwords, skills, capacity, supervisor flag."""

from __future__ import annotations

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from supporthub_core.db import fetch_one

_hasher = PasswordHasher()
# verifying against this keeps the time of a login for an unknown user like a real one
_DUMMY_HASH = _hasher.hash("not a password")


async def upsert(
    db: asyncpg.Connection,
    *,
    username: str,
    password: str,
    name: str,
    skills: list[str],
    capacity: int,
    supervisor: bool = False,
    security_backup: bool = False,
) -> asyncpg.Record:
    """Create or update an agent. `security_backup`: the agent takes urgent security chats
    when no security agent and no supervisor can (hub.rules.urgent)."""
    return await fetch_one(
        db,
        "insert into agents (id, username, password_hash, name, skills, capacity, supervisor,"
        " security_backup) values ($1, $1, $2, $3, $4, $5, $6, $7) on conflict (username) do"
        " update set password_hash = excluded.password_hash, name = excluded.name,"
        " skills = excluded.skills, capacity = excluded.capacity,"
        " supervisor = excluded.supervisor, security_backup = excluded.security_backup"
        " returning *",
        username,
        _hasher.hash(password),
        name,
        skills,
        capacity,
        supervisor,
        security_backup,
    )


async def authenticate(
    db: asyncpg.Connection, username: str, password: str
) -> asyncpg.Record | None:
    row = await db.fetchrow("select * from agents where username = $1", username)
    try:
        _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return row


async def set_disabled(
    db: asyncpg.Connection, agent_id: str, disabled: bool
) -> asyncpg.Record | None:
    """Disable (then also `offline`) or enable the agent; None when there is no such agent."""
    return await db.fetchrow(
        "update agents set disabled = $2,"
        " disabled_at = case when $2 then coalesce(disabled_at, now()) end,"
        " status = case when $2 then 'offline' else status end,"
        " status_at = case when $2 then now() else status_at end"
        " where id = $1 returning *",
        agent_id,
        disabled,
    )


async def is_disabled(db: asyncpg.Connection, agent_id: str) -> bool:
    return bool(await db.fetchval("select disabled from agents where id = $1", agent_id))


async def disabled_ids(db: asyncpg.Connection) -> set[str]:
    """Every disabled agent (few: an agent is disabled until it is enabled or removed)."""
    return {r["id"] for r in await db.fetch("select id from agents where disabled")}


async def listing(db: asyncpg.Connection) -> list[dict]:
    rows = await db.fetch(
        "select a.id, a.name, a.skills, a.capacity, a.status, a.supervisor, a.security_backup,"
        " a.disabled,"
        " (select count(*) from conversations c where c.agent_id = a.id and c.status = 'assigned') as active"
        " from agents a order by a.name"
    )
    return [
        {
            "id": r["id"],
            "name": r["name"],
            "skills": list(r["skills"]),
            "capacity": r["capacity"],
            "status": r["status"],
            "active": r["active"],
            "supervisor": r["supervisor"],
            "security_backup": r["security_backup"],
            "disabled": r["disabled"],
        }  # fmt: skip
        for r in rows
    ]


async def exists(db: asyncpg.Connection, agent_id: str) -> bool:
    return bool(await db.fetchval("select 1 from agents where id = $1", agent_id))


async def id_of(db: asyncpg.Connection, username: str) -> str | None:
    return await db.fetchval("select id from agents where username = $1", username)


async def has_username(db: asyncpg.Connection, username: str) -> bool:
    return bool(await db.fetchval("select 1 from agents where username = $1", username))


async def brief(db: asyncpg.Connection, agent_id: str) -> asyncpg.Record | None:
    """(id, name) of the agent."""
    return await db.fetchrow("select id, name from agents where id = $1", agent_id)


async def set_status(db: asyncpg.Connection, agent_id: str, status: str) -> bool:
    """The status the agent chose; False when there is no such agent."""
    row = await db.fetchrow(
        "update agents set status = $2, status_at = now() where id = $1 returning id",
        agent_id,
        status,
    )
    return row is not None


async def mark_away(db: asyncpg.Connection, agent_id: str) -> None:
    """An online agent whose consoles are all gone is away."""
    await db.execute(
        "update agents set status = 'away', status_at = now() where id = $1 and status = 'online'",
        agent_id,
    )


async def vanished(db: asyncpg.Connection, fresh_s: float, grace_s: float) -> list[str]:
    """Agents online or holding chats with no console seen in the last `fresh_s` seconds,
    and no sign of life (status change, presence) for `grace_s`: they left without saying."""
    rows = await db.fetch(
        "select a.id from agents a where (a.status <> 'offline' or exists (select 1 from"
        "  conversations c where c.agent_id = a.id and c.status = 'assigned'))"
        " and not exists (select 1 from agent_presence p where p.agent_id = a.id"
        "  and p.connections > 0 and p.seen_at > now() - make_interval(secs => $1))"
        " and greatest(a.status_at, (select max(seen_at) from agent_presence p"
        "  where p.agent_id = a.id)) < now() - make_interval(secs => $2)",
        fresh_s,
        grace_s,
    )
    return [r["id"] for r in rows]


async def skills(db: asyncpg.Connection, agent_id: str) -> list[str]:
    """The agent's skills; none for an id that is not an agent."""
    found = await db.fetchval("select skills from agents where id = $1", agent_id)
    return list(found or ())


async def usernames_to_ids(db: asyncpg.Connection, usernames: list[str]) -> list[str]:
    """The ids of the agents with these usernames (case-insensitive); unknown ones left out."""
    if not usernames:
        return []
    rows = await db.fetch(
        "select id from agents where lower(username) = any($1::text[])",
        [u.lower() for u in usernames],
    )
    return [r["id"] for r in rows]
