"""Periodic housekeeping, run by one node at a time (advisory lock): agents who left
without saying so, idle chats, queue samples for the chart, and a routing pass that
catches anything an event-driven pass missed."""

from __future__ import annotations

import asyncio
import logging
import time

from hub.background import Background
from hub.services.chat import Chat
from hub.store import Store, stats
from hub.store.queue import PRESENCE_FRESH_S
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

SWEEP_LOCK = 0x5375_7072
SAMPLE_EVERY_S = 60.0


class Sweeper:
    def __init__(self, store: Store, chat: Chat, settings: Settings) -> None:
        self.store = store
        self.chat = chat
        self.settings = settings
        self._last_sample = 0.0

    def start(self, tasks: Background) -> None:
        tasks.spawn(self._forever(), "sweeper")

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.routing_sweep_s)
            try:
                await self.sweep_once()
            except Exception as exc:
                log.warning("sweep failed: %s", exc)

    async def sweep_once(self) -> None:
        s, chat = self.settings, self.chat
        async with self.store.acquire() as db:
            got = await db.fetchval("select pg_try_advisory_lock($1)", SWEEP_LOCK)
            if not got:
                return
            try:
                gone = await db.fetch(
                    "select a.id from agents a where (a.status <> 'offline' or exists (select 1 from"
                    "  conversations c where c.agent_id = a.id and c.status = 'assigned'))"
                    " and not exists (select 1 from agent_presence p where p.agent_id = a.id"
                    "  and p.connections > 0 and p.seen_at > now() - make_interval(secs => $1))"
                    " and greatest(a.status_at, (select max(seen_at) from agent_presence p"
                    "  where p.agent_id = a.id)) < now() - make_interval(secs => $2)",
                    PRESENCE_FRESH_S,
                    s.agent_grace_s,
                )
                idle = await db.fetch(
                    "select * from conversations where status = any('{bot,queued,assigned}'::text[])"
                    " and last_activity_at < now() - make_interval(secs => $1) limit 100",
                    s.chat_idle_close_s,
                )
                unanswered = []
                if s.assignment_timeout_s > 0:
                    unanswered = await db.fetch(
                        "select c.id, c.agent_id from conversations c where c.status = 'assigned'"
                        " and c.assigned_at < now() - make_interval(secs => $1)"
                        " and not exists (select 1 from messages m where m.conversation_id = c.id"
                        "  and m.sender_id = c.agent_id and m.created_at >= c.assigned_at) limit 100",
                        s.assignment_timeout_s,
                    )
                if time.monotonic() - self._last_sample > SAMPLE_EVERY_S:
                    self._last_sample = time.monotonic()
                    await stats.sample_queue(db)
            finally:
                await db.execute("select pg_advisory_unlock($1)", SWEEP_LOCK)
        for row in gone:
            async with self.store.acquire() as db:
                await db.execute(
                    "update agents set status = 'away', status_at = now() where id = $1 and status = 'online'",
                    row["id"],
                )
            await chat.requeue_agent_chats(row["id"])
            await chat.push_agent_state(row["id"])
        for conv in idle:
            await chat.close_idle(conv)
        for row in unanswered:
            await chat.take_back(row["id"], row["agent_id"])
        await chat.route()
