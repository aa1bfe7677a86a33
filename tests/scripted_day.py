"""A scripted day for the supervisor's figures: chats with known waits, first responses,
handle times, resolutions and ratings written into a real PostgreSQL, and the figures
they must give (worked out by hand below, not by the code under test).

People (ended chats; times in seconds from the chat's start):

| chat | agent at the end | topic | queued at | first assigned | first answer | end | rating |
|---|---|---|---|---|---|---|---|
| c1 | alice | payment | 0 | 60 | 150 | 900 | 5 |
| c2 | alice | payment | 120 (after the bot) | 420 | 450 | 1200 | 3 |
| c3 | bob | account | 0 | 30 | 90 | 600 (closed by the customer) | 4 |
| c4 | bob (from alice) | account | 0 | 100 | 130 | 1000 | — |

Live: a1 (alice, payment) queued 40 s ago, assigned 30 s ago, unanswered; a2 (bob,
payment) queued 200 s ago, assigned 180 s ago, answered 170 s ago; q1 and q2 (account)
queued 12 and 3 minutes ago. The bot: b1 (it helped, said the customer), b2 (answered, the
customer closed 4 s in), b3 (answered three hours ago, no word for two), b4 (talking now),
and c2 (handed to a person).

Waits: 60, 300, 30, 100 (ended), 10 (a1), 20 (a2): avg 520/6, p90 200, max 300.
First answers after the first assignment: 90, 30, 60, 30, 10 (a2): avg 44.
Handle times (first assignment to end): 840, 780, 570, 900: avg 772.5.
Resolutions (start to end, people only; the bot's 4-second chats are not theirs): 900,
1200, 600, 1000: avg 925. SLA (first answer within 300 s of queueing): c1 150, c2 330
(missed), c3 90, c4 130, a2 10 met; a1 not counted yet: 4 of 5.

Alice holds 1 chat of 4 (not busy), Bob 1 of 1 (busy).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg

from hub.store import agents

SLA_REPLY_S = 300.0

EXPECTED = {
    "waiting_time_s": {"avg": round(520 / 6, 2), "p90": 200.0, "max": 300.0},
    "first_response_s": {"avg": 44.0},
    "handle_time_s": {"avg": 772.5},
    "resolution_s": {"avg": 925.0, "count": 4},
    "csat": {"avg": 4.0, "count": 3},
    "sla": {"reply_s": SLA_REPLY_S, "met": 4, "counted": 5, "share": 0.8},
    "conversations": 12,
    "bot": {
        "involved": 5,
        "confirmed": 1,
        "assumed": 2,
        "handed_off": 1,
        "unanswered": 0,
        "open": 1,
        "window_s": 1800.0,
    },
    "agents": {"online": 2, "away": 0, "busy": 1, "serving": 2},
}
PER_AGENT = {
    "alice": {
        "handled": 2,
        "first_response_s": 60.0,
        "handle_time_s": 810.0,
        "csat": {"avg": 4.0, "count": 2},
        "sla_met": {"met": 1, "counted": 2, "share": 0.5},
        "active": 1,
        "capacity": 4,
    },
    "bob": {
        "handled": 2,
        "first_response_s": 45.0,
        "handle_time_s": 735.0,
        "csat": {"avg": 4.0, "count": 1},
        "sla_met": {"met": 2, "counted": 2, "share": 1.0},
        "active": 1,
        "capacity": 1,
    },
}
TOPICS = {
    "payment": {"conversations": 4, "csat": {"avg": 4.0, "count": 2}, "wait": 97.5},
    "account": {"conversations": 4, "csat": {"avg": 4.0, "count": 1}, "wait": 65.0},
    "other": {"conversations": 4, "csat": {"avg": None, "count": 0}, "wait": None},
}


async def add_agents(db: asyncpg.Connection) -> None:
    await agents.upsert(db, username="alice", password="alice-pw", name="Alice",
                        skills=["payment"], capacity=4)  # fmt: skip
    await agents.upsert(db, username="bob", password="bob-pw", name="Bob",
                        skills=["payment"], capacity=1)  # fmt: skip
    await agents.upsert(db, username="sam", password="sam-pw", name="Sam",
                        skills=["payment"], capacity=2, supervisor=True)  # fmt: skip


async def script(db: asyncpg.Connection) -> dict[str, str]:
    """Write the day (`db` with the hub's jsonb codec); the ids of its chats by name."""
    now: datetime = await db.fetchval("select now()")
    ids: dict[str, str] = {}

    async def chat(
        name: str,
        *,
        ago_s: float,
        topic: str,
        status: str,
        holders: tuple[tuple[str, float], ...] = (),
        queued: float | None = None,
        answered: float | None = None,
        ended: float | None = None,
        closed_by: str | None = None,
        rating: int | None = None,
        bot_state: dict | None = None,
        bot_said: bool = False,
        quiet_s: float = 0.0,
        priority: str = "normal",
    ) -> None:
        cid = f"day-{name}-{uuid.uuid4().hex[:6]}"
        ids[name] = cid
        start = now - timedelta(seconds=ago_s)

        def at(offset: float | None) -> datetime | None:
            return None if offset is None else start + timedelta(seconds=offset)

        user_id = f"u-{name}"
        await db.execute(
            "insert into users (id, name) values ($1, $2) on conflict do nothing",
            user_id, f"Customer {name}",
        )  # fmt: skip
        agent = holders[-1][0] if holders else None
        await db.execute(
            "insert into conversations (id, user_id, topic, priority, status, agent_id, lang,"
            " created_at, enqueued_at, assigned_at, first_response_at, resolved_at, closed_at,"
            " closed_by, rating, bot_state, last_activity_at)"
            " values ($1, $2, $3, $4, $5, $6, 'en', $7, $8, $9, $10, $11, $12, $13, $14,"
            " $15::jsonb, $16)",
            cid, user_id, topic, priority, status, agent, start, at(queued),
            at(holders[-1][1]) if holders else None, at(answered),
            at(ended) if status == "resolved" else None,
            at(ended) if status == "closed" else None, closed_by, rating,
            bot_state,
            now - timedelta(seconds=quiet_s),
        )  # fmt: skip
        for agent_id, offset in holders:
            await db.execute(
                "insert into conversation_agents (conversation_id, agent_id, assigned_at)"
                " values ($1, $2, $3)",
                cid, agent_id, at(offset),
            )  # fmt: skip
        if bot_said:
            await db.execute(
                "insert into messages (id, conversation_id, seq, sender_role, sender_id,"
                " sender_name, text, created_at) values ($1, $2, 1, 'bot', 'helpbot', 'bot',"
                " 'Hello!', $3)",
                uuid.uuid4().hex, cid, start,
            )  # fmt: skip
            await db.execute("update conversations set last_seq = 1 where id = $1", cid)

    hour = 3600
    answered = {"answered": ["refund"], "resolved": False}
    await chat("c1", ago_s=10 * hour, topic="payment", status="resolved", queued=0,
               holders=(("alice", 60),), answered=150, ended=900, rating=5,
               quiet_s=9 * hour)  # fmt: skip
    await chat("c2", ago_s=8 * hour, topic="payment", status="resolved", queued=120,
               holders=(("alice", 420),), answered=450, ended=1200, rating=3,
               bot_state={"answered": ["payment-failed"], "resolved": False, "escalated": True},
               bot_said=True, quiet_s=7 * hour)  # fmt: skip
    await chat("c3", ago_s=7 * hour, topic="account", status="closed", queued=0,
               holders=(("bob", 30),), answered=90, ended=600, closed_by="user", rating=4,
               quiet_s=6 * hour)  # fmt: skip
    await chat("c4", ago_s=6 * hour, topic="account", status="resolved", queued=0,
               holders=(("alice", 100), ("bob", 400)), answered=130, ended=1000,
               quiet_s=5 * hour)  # fmt: skip
    await chat("b1", ago_s=5 * hour, topic="other", status="closed", ended=4,
               closed_by="user", bot_state={"answered": ["reset-password"], "resolved": True},
               bot_said=True, quiet_s=5 * hour)  # fmt: skip
    await chat("b2", ago_s=4 * hour, topic="other", status="closed", ended=4,
               closed_by="user", bot_state=answered, bot_said=True,
               quiet_s=4 * hour)  # fmt: skip
    await chat("b3", ago_s=3 * hour, topic="other", status="bot", bot_state=answered,
               bot_said=True, quiet_s=2 * hour)  # fmt: skip
    await chat("b4", ago_s=60, topic="other", status="bot",
               bot_state={"answered": [], "resolved": False}, bot_said=True)  # fmt: skip
    await chat("a1", ago_s=40, topic="payment", status="assigned", queued=0,
               holders=(("alice", 10),))  # fmt: skip
    await chat("a2", ago_s=200, topic="payment", status="assigned", queued=0,
               holders=(("bob", 20),), answered=30)  # fmt: skip
    await chat("q1", ago_s=12 * 60, topic="account", status="queued", queued=0)
    await chat("q2", ago_s=3 * 60, topic="account", status="queued", queued=0)
    return ids
