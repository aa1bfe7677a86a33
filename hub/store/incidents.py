"""A security incident: the freeze alert and the urgent security chat it opens, stored in
one transaction so that neither exists without the other."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from hub.store.ids import new_id
from hub.store.messages import MessageWrite, StoredMessage, write_messages
from hub.store.notifications import NotificationWrite, StoredNotification, write_notifications
from supporthub_core.db import fetch_one


@dataclass(slots=True)
class Freeze:
    notification: StoredNotification
    conversation: asyncpg.Record
    opening: StoredMessage


async def record_freeze(
    db: asyncpg.Connection,
    alert: NotificationWrite,
    lang: str,
    opening: str,
    openings: dict[str, str] | None = None,
) -> Freeze | None:
    """Store the freeze `alert` and put the user's security chat at urgent priority (a new
    queued one if none is open) with `opening` as its next system message (`openings`: the
    same in every language, for each device to show its own). None when the
    alert's event was handled before, here or on another node."""
    async with db.transaction():
        [stored] = await write_notifications(db, [alert])
        if stored is None:
            return None
        conv = await _urgent_security_chat(db, alert.user_id, lang, alert.data)
        system = {"kind": "account_frozen", "params": {}}
        op = MessageWrite(
            conv["id"], "system", "system", "supporthub", opening, texts=openings, system=system
        )
        [msg] = await write_messages(db, [op])
    return Freeze(stored, conv, msg)


async def _urgent_security_chat(
    db: asyncpg.Connection, user_id: str, lang: str, alert: dict
) -> asyncpg.Record:
    conv = await db.fetchrow(
        "select * from conversations where user_id = $1 and topic = 'security'"
        " and status = any('{queued,assigned}'::text[]) order by created_at desc limit 1 for update",
        user_id,
    )
    if conv is None:
        return await fetch_one(
            db,
            "insert into conversations (id, user_id, topic, priority, status, lang, enqueued_at,"
            " alert, urgent_since) values ($1, $2, 'security', 'urgent', 'queued', $3, now(), $4,"
            " now()) returning *",
            new_id(), user_id, lang, alert,
        )  # fmt: skip
    # an open security chat becomes urgent now (its deadline starts now); one that was
    # urgent already keeps its deadline
    return await fetch_one(
        db,
        "update conversations set priority = 'urgent', alert = $2,"
        " urgent_since = case when priority = 'urgent' and urgent_since is not null"
        "  then urgent_since else now() end,"
        " urgent_due_at = case when priority = 'urgent' then urgent_due_at end"
        " where id = $1 returning *",
        conv["id"], alert,
    )  # fmt: skip


async def mark_unfrozen(db: asyncpg.Connection, user_ids: list[str]) -> None:
    """The users' accounts were unfrozen: the alerts of their open chats say so, so that a
    console that reconnects shows the account as it is now, not as it was at the freeze."""
    await db.execute(
        "update conversations set alert = alert || '{\"unfrozen\": true}'::jsonb"
        " where user_id = any($1::text[]) and alert is not null"
        " and status = any('{bot,queued,assigned}'::text[])",
        user_ids,
    )
