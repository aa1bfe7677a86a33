"""What the agents of newly assigned chats are sent, read for many chats at once.

A routing pass can assign hundreds of chats (10,000 opened at once: a thousand free
slots). Each chat's agent gets the chat with its customer, history, notes and feedback
tags, and its own `agent.state`; read one chat at a time that is six statements per
chat, each waiting for a pooled connection behind whatever else is queued on the pool.
Here it is six statements for the whole pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import asyncpg

from hub.store.conversations import MESSAGE_COLUMNS, agent_view, message_frame
from hub.store.feedback import tagged_in_each
from hub.store.notes import note_view


@dataclass(slots=True)
class Briefs:
    """By id: the agents (with their active count), the customers, each chat's history
    (message frames, oldest first, attachment links not signed yet), notes and what staff
    tagged in it as feedback (hub.store.feedback.tagged_in)."""

    agents: dict[str, dict] = field(default_factory=dict)
    users: dict[str, asyncpg.Record] = field(default_factory=dict)
    history: dict[str, list[dict]] = field(default_factory=dict)
    notes: dict[str, list[dict]] = field(default_factory=dict)
    feedback: dict[str, list[dict]] = field(default_factory=dict)


async def briefs(db: asyncpg.Connection, convs: Sequence, history_limit: int) -> Briefs:
    """Everything the `chat.assigned` frames of `convs` (stored conversation rows) and
    their agents' `agent.state` need: the first `history_limit` messages of each chat."""
    out = Briefs()
    if not convs:
        return out
    ids = list(dict.fromkeys(c["id"] for c in convs))
    agent_ids = _present(c["agent_id"] for c in convs) + _present(
        c["previous_agent_id"] for c in convs
    )
    rows = await db.fetch(
        "select a.*, (select count(*) from conversations c where c.agent_id = a.id"
        " and c.status = 'assigned') as active from agents a where a.id = any($1::text[])",
        list(dict.fromkeys(agent_ids)),
    )
    out.agents = {r["id"]: agent_view(r) for r in rows}
    rows = await db.fetch(
        "select id, name, lang, last_seen_at from users where id = any($1::text[])",
        list(dict.fromkeys(c["user_id"] for c in convs)),
    )
    out.users = {r["id"]: r for r in rows}
    out.history = {cid: [] for cid in ids}
    rows = await db.fetch(
        f"select h.* from unnest($1::text[]) w(id) cross join lateral (select {MESSAGE_COLUMNS}"
        " from messages m where m.conversation_id = w.id and m.seq > 0"
        " order by m.seq limit $2) h order by h.conversation_id, h.seq",
        ids,
        history_limit,
    )
    for r in rows:
        out.history[r["conversation_id"]].append(message_frame(r))
    out.notes = {cid: [] for cid in ids}
    rows = await db.fetch(
        "select * from notes where conversation_id = any($1::text[])"
        " order by conversation_id, created_at",
        ids,
    )
    for r in rows:
        out.notes[r["conversation_id"]].append(note_view(r))
    out.feedback = await tagged_in_each(db, ids)
    return out


def _present(values: Iterable[str | None]) -> list[str]:
    return [v for v in values if v]
