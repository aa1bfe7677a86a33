"""Periodic housekeeping, run by one node at a time (advisory lock): agents who left
without saying so, opens stored whose follow-up was left undone, idle chats, unanswered
new chats, queue samples for the chart, and a routing pass that catches anything an
event-driven pass missed and checks the deadlines of urgent chats (hub.rules.urgent:
pages, re-offers) every pass, then the service levels of every chat in human hands
(Chat.sla_pass: flags, re-routes, escalations), and a system notice whose sender died before
it was complete (`finish_notices`).

An urgent chat still waiting for a person (queued, or assigned and not answered) is never
closed for inactivity, and never taken back by the assignment timeout: the urgent ladder
keeps it, with its own deadlines."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from hub.background import Background
from hub.services.chat import Chat
from hub.store import Store, locks, service_levels, stats
from hub.store import agents as agent_store
from hub.store import conversations as conv_store
from hub.store.queue import PRESENCE_FRESH_S
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

SWEEP_LOCK = 0x5375_7072
SAMPLE_EVERY_S = 60.0


class Sweeper:
    def __init__(
        self,
        store: Store,
        chat: Chat,
        settings: Settings,
        finish_notices: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.chat = chat
        self.settings = settings
        self.finish_notices = finish_notices
        self._last_sample = 0.0
        self._last_handle = 0.0

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
        async with self.store.acquire() as db, locks.try_hold(db, SWEEP_LOCK) as mine:
            if not mine:
                return  # another node sweeps
            gone = await agent_store.vanished(db, PRESENCE_FRESH_S, s.agent_grace_s)
            idle = await conv_store.idle(db, s.chat_idle_close_s)
            stalled = await conv_store.take_open_follow_ups(db, s.open_follow_up_s)
            unanswered = []
            if s.assignment_timeout_s > 0:
                unanswered = await conv_store.unanswered(db, s.assignment_timeout_s)
            if time.monotonic() - self._last_handle > s.handle_time_refresh_s:
                self._last_handle = time.monotonic()  # the 30-day window slides
                await service_levels.refresh_handle_times(
                    db, s.handle_time_window, s.default_handle_time_s
                )
            if time.monotonic() - self._last_sample > SAMPLE_EVERY_S:
                self._last_sample = time.monotonic()
                await stats.sample_queue(db)
        for agent_id in gone:
            async with self.store.acquire() as db:
                await agent_store.mark_away(db, agent_id)
            await chat.requeue_agent_chats(agent_id)
            await chat.push_agent_state(agent_id)
        for conv in stalled:  # opens stored whose node never did what follows
            await chat.finish_open(conv["id"], conv)
        for conv in idle:
            await chat.close_idle(conv)
        for row in unanswered:
            await chat.take_back(row["id"], row["agent_id"])
        await chat.route()  # urgent deadlines: escalate, page, re-offer
        await chat.sla_pass()  # service levels: flag, re-route, escalate
        if self.finish_notices is not None:
            await self.finish_notices()  # a notice left incomplete (hub.services.broadcasts)
