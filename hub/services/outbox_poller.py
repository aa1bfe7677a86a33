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
from hub.rules.notices import has_notice, valid_event
from hub.services.notify import not_yet_handled
from hub.store import Store
from hub.store import notifications as notif_store
from supporthub_core.auth import issue_token
from supporthub_core.outbound import tls_context
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
        # one client for every poll: a client per poll left its connection pool (and,
        # before it shared a TLS context, 0.8 MiB of CA bundle) to the cyclic collector
        self._http: httpx.AsyncClient | None = None

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

    async def close(self) -> None:
        """Close the HTTP client (the node is stopping)."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            s = self.settings
            self._http = httpx.AsyncClient(
                base_url=s.payments_url or f"http://{s.host}:{s.port}",
                timeout=10,
                verify=tls_context(),
                # every few seconds on every node: the access log leaves its successes out
                headers={"User-Agent": "supporthub-outbox-poller"},
            )
        return self._http

    def _auth(self) -> dict[str, str]:
        """A fresh service token for one catch-up (valid 5 minutes)."""
        return {"Authorization": f"Bearer {issue_token(self.secret, 'hub', 'service', ttl=300)}"}

    async def catch_up(self) -> int:
        """Read the payments outbox past our cursor and hand every event not stored yet to
        `handle`; return how many were handed over. The stored cursor moves only past
        events that were stored (or make no notification): one whose handling failed is
        read again by the next poll, and so is everything after it."""
        total = 0
        gap = False  # an event failed: later pages are still handled, the cursor stays
        http, auth = self._client(), self._auth()
        async with self.store.acquire() as db:
            cursor = await notif_store.event_cursor(db, SOURCE)
        while True:
            page = await _read_page(http, auth, cursor)
            if page is None:
                return total
            events, page_end = page
            handed, missing = await self._handle_page(events)
            total += handed
            if page_end == cursor or not events:
                return total
            if not gap:
                await self._advance(cursor, _stored_up_to(events, missing, cursor, page_end))
                gap = bool(missing)
            cursor = page_end

    async def _handle_page(self, events: list[dict]) -> tuple[int, set[str]]:
        """Hand the events no notification was made for yet to the pipeline. Returns how
        many, and the ids of those that should have made one and still have not."""
        todo = await not_yet_handled(self.store, [e for e in events if valid_event(e)])
        if not todo:
            return 0, set()
        await self.handle(todo)
        still = await not_yet_handled(self.store, [e for e in todo if has_notice(e)])
        if still:
            log.warning("%d outbox events were not stored; the next poll retries", len(still))
        return len(todo), {e["event_id"] for e in still}

    async def _advance(self, cursor: int, stored_to: int) -> None:
        if stored_to != cursor:
            async with self.store.acquire() as db:
                await notif_store.advance_event_cursor(db, SOURCE, stored_to)


async def _read_page(
    http: httpx.AsyncClient, auth: dict[str, str], after_id: int
) -> tuple[list[dict], int] | None:
    """(events, the id to read after next) of the outbox page after `after_id`; None when
    the payments API does not answer it."""
    params = {"after_id": after_id, "limit": PAGE_SIZE}
    resp = await http.get("/api/events", params=params, headers=auth)
    if resp.status_code != 200:
        return None
    body = resp.json()
    return body.get("events") or [], body.get("next_after_id", after_id)


def _stored_up_to(events: list[dict], missing: set[str], cursor: int, page_end: int) -> int:
    """The outbox id just before the page's first event still missing (`cursor` if that
    is the first event), or `page_end` when none is missing. Events are in outbox order."""
    for event in events:
        if event.get("event_id") in missing:
            return cursor
        cursor = event.get("outbox_id", cursor)
    return page_end
