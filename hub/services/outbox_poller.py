"""The safety net under the live event channel: read the payments outbox over HTTP
(`GET /api/events`) past a stored cursor and hand the events no notification was made
for to the notification pipeline. Runs shortly after start, every few seconds, and after
a bus reconnect (hub.services.sessions)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx

from hub.background import Background
from hub.rules.notices import valid_event
from hub.services.notify import not_yet_handled
from hub.store import Store
from hub.store import notifications as notif_store
from supporthub_core.auth import issue_token
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

SOURCE = "payments"
POLL_INTERVAL_S = 5.0
PAGE_SIZE = 1000


class OutboxPoller:
    def __init__(
        self,
        store: Store,
        handle: Callable[[list[dict]], Awaitable[None]],
        settings: Settings,
        secret: str,
    ) -> None:
        self.store = store
        self.handle = handle
        self.settings = settings
        self.secret = secret

    def start(self, tasks: Background) -> None:
        """Poll in the background for as long as the hub runs."""
        tasks.spawn(self._poll_forever(), "events-poller")

    async def _poll_forever(self) -> None:
        await asyncio.sleep(0.5)
        while True:
            try:
                await self.catch_up()
            except Exception as exc:
                log.debug("outbox catch-up failed: %s", exc)
            await asyncio.sleep(POLL_INTERVAL_S)

    def _client(self) -> httpx.AsyncClient:
        s = self.settings
        base = s.payments_url or f"http://{s.host}:{s.port}"
        token = issue_token(self.secret, "hub", "service", ttl=300)
        return httpx.AsyncClient(
            base_url=base, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )

    async def catch_up(self) -> int:
        """Read the payments outbox past our cursor; hand every event to `handle`."""
        total = 0
        async with self._client() as http:
            async with self.store.acquire() as db:
                cursor = await notif_store.event_cursor(db, SOURCE)
            while True:
                resp = await http.get(
                    "/api/events", params={"after_id": cursor, "limit": PAGE_SIZE}
                )
                if resp.status_code != 200:
                    return total
                body = resp.json()
                events = body.get("events") or []
                good = await not_yet_handled(self.store, [e for e in events if valid_event(e)])
                if good:
                    await self.handle(good)
                    total += len(good)
                new_cursor = body.get("next_after_id", cursor)
                if new_cursor == cursor or not events:
                    return total
                cursor = new_cursor
                async with self.store.acquire() as db:
                    await notif_store.advance_event_cursor(db, SOURCE, cursor)
