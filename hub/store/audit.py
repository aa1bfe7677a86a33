"""The audit log: entries are appended through supporthub_core.audit (payments writes there
too); this is the hub's read side."""

from __future__ import annotations

import asyncpg

from supporthub_core.audit import AuditEntry, append

__all__ = ["AuditEntry", "append", "recent", "entry_view"]


async def recent(
    db: asyncpg.Connection,
    *,
    subject_user_id: str | None = None,
    actor_id: str | None = None,
    action: str | None = None,
    limit: int = 100,
) -> list[dict]:
    """Newest first, filtered by whichever of subject, actor and action are given."""
    rows = await db.fetch(
        "select * from audit_log"
        " where ($1::text is null or subject_user_id = $1)"
        " and ($2::text is null or actor_id = $2)"
        " and ($3::text is null or action = $3)"
        " order by id desc limit $4",
        subject_user_id,
        actor_id,
        action,
        limit,
    )
    return [entry_view(r) for r in rows]


def entry_view(r: asyncpg.Record) -> dict:
    """`{ts, actor: {role, id}, action, subject_user_id?, conversation_id?, details}`; the
    optional keys only when set, plus `id` and `address` (extensions)."""
    view: dict = {
        "id": r["id"],
        "ts": r["ts"].isoformat(),
        "actor": {"role": r["actor_role"], "id": r["actor_id"]},
        "action": r["action"],
        "details": r["details"],
    }
    for key in ("subject_user_id", "conversation_id", "address"):
        if r[key] is not None:
            view[key] = r[key]
    return view
