"""Agent accounts: argon2-hashed passwords, skills, capacity, supervisor flag."""

from __future__ import annotations

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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
) -> asyncpg.Record:
    return await db.fetchrow(
        "insert into agents (id, username, password_hash, name, skills, capacity, supervisor)"
        " values ($1, $1, $2, $3, $4, $5, $6) on conflict (username) do update set"
        " password_hash = excluded.password_hash, name = excluded.name, skills = excluded.skills,"
        " capacity = excluded.capacity, supervisor = excluded.supervisor returning *",
        username,
        _hasher.hash(password),
        name,
        skills,
        capacity,
        supervisor,
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


async def listing(db: asyncpg.Connection) -> list[dict]:
    rows = await db.fetch(
        "select a.id, a.name, a.skills, a.capacity, a.status, a.supervisor,"
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
        }  # fmt: skip
        for r in rows
    ]


async def skills(db: asyncpg.Connection, agent_id: str) -> list[str]:
    """The agent's skills; none for an id that is not an agent."""
    found = await db.fetchval("select skills from agents where id = $1", agent_id)
    return list(found or ())
