"""Recording what staff did, for the audit log (supporthub_core.audit).

Actions that change state together with their entry (verification, unfreezing, disabling
or enabling an agent: hub.services.agent_access) write it in their own transaction. The ones recorded here happen first (a transfer, a resolve, a
status change, a login); their entry follows once they succeeded, and a failure to write
it is logged loudly rather than reported as a failure of the action that did happen.
"""

from __future__ import annotations

import logging
from typing import Any

from hub.store import Store
from hub.store import audit as audit_store
from supporthub_core.audit import AuditEntry
from supporthub_core.auth import Claims

log = logging.getLogger(__name__)


def entry_by(claims: Claims, action: str, **fields: Any) -> AuditEntry:
    """An entry whose actor is the caller of these claims."""
    return AuditEntry(claims.role, claims.sub, action, **fields)


class Audit:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(self, entry: AuditEntry) -> None:
        """Append `entry` after the fact; never raises."""
        try:
            async with self.store.acquire() as db:
                await audit_store.append(db, entry)
        except Exception:
            log.exception("audit entry lost: %s by %s", entry.action, entry.actor_id)

    async def recent(self, **filters: Any) -> list[dict]:
        async with self.store.acquire() as db:
            return await audit_store.recent(db, **filters)
