"""The audit log both services write: one append-only table (`audit_log`, migration
0004_security) of who did what to whom. The hub and payments share the database, so this
one statement is the only way in; reading it is the hub's (hub/store/audit.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

#: The actions written today; the column takes any name, these are the ones documented.
ACTIONS = (
    "account.freeze",
    "account.unfreeze",
    "verify.request",
    "verify.result",
    "chat.transfer",
    "chat.resolve",
    "chat.take",
    "chat.assign",
    "urgent.page",
    "agent.login",
    "agent.login_failed",
    "agent.status",
    "agent.disable",
    "agent.enable",
    "campaign.create",
    "campaign.edit",
    "campaign.cancel",
    "campaign.sent",
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor_role: str  # user, agent, supervisor, service or system
    actor_id: str
    action: str
    subject_user_id: str | None = None
    conversation_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    address: str | None = None


async def append(db: asyncpg.Connection, entry: AuditEntry) -> None:
    """Write one entry; inside the caller's transaction when there is one, so the entry
    commits (or not) with what it records."""
    await db.execute(
        "insert into audit_log (actor_role, actor_id, action, subject_user_id,"
        " conversation_id, details, address) values ($1, $2, $3, $4, $5, $6, $7)",
        entry.actor_role,
        entry.actor_id,
        entry.action,
        entry.subject_user_id,
        entry.conversation_id,
        entry.details,
        entry.address,
    )
