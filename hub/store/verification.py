"""Step-up verification challenges (`verify_challenges`): codes are stored as HMACs only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from hub.rules.stepup import Challenge


@dataclass(frozen=True, slots=True)
class Requested:
    """Who asked for a challenge, about whom, where."""

    user_id: str
    conversation_id: str | None
    agent_id: str
    agent_role: str


async def insert(db: asyncpg.Connection, challenge: Challenge, by: Requested) -> None:
    """Store a new pending challenge; the user's older pending ones are superseded (only
    the newest code can pass)."""
    await db.execute(
        "update verify_challenges set status = 'superseded'"
        " where user_id = $1 and status = 'pending'",
        challenge.user_id,
    )
    await db.execute(
        "insert into verify_challenges (id, user_id, conversation_id, requested_by,"
        " requested_role, code_hash, attempts, status, expires_at)"
        " values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        challenge.challenge_id,
        challenge.user_id,
        by.conversation_id,
        by.agent_id,
        by.agent_role,
        challenge.code_hash,
        challenge.attempts,
        challenge.status,
        challenge.expires_at,
    )


async def lock(db: asyncpg.Connection, challenge_id: str) -> asyncpg.Record | None:
    """The challenge row, locked until the transaction ends (one verdict at a time)."""
    return await db.fetchrow(
        "select * from verify_challenges where id = $1 for update", challenge_id
    )


def challenge_of(row: asyncpg.Record) -> Challenge:
    return Challenge(
        challenge_id=row["id"],
        user_id=row["user_id"],
        code_hash=row["code_hash"],
        expires_at=row["expires_at"],
        attempts=row["attempts"],
        status=row["status"],
        verified_at=row["verified_at"],
    )


async def save(db: asyncpg.Connection, challenge: Challenge) -> None:
    """Keep the state a verdict left the challenge in."""
    await db.execute(
        "update verify_challenges set attempts = $2, status = $3, verified_at = $4 where id = $1",
        challenge.challenge_id,
        challenge.attempts,
        challenge.status,
        challenge.verified_at,
    )


async def now(db: asyncpg.Connection) -> datetime:
    """The database's clock: every process judges expiry by the same time."""
    return await db.fetchval("select clock_timestamp()")


async def latest_passed(db: asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    """The user's most recent passed verification."""
    return await db.fetchrow(
        "select * from verify_challenges where user_id = $1 and status = 'passed'"
        " order by verified_at desc limit 1",
        user_id,
    )
