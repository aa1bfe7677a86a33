"""Each user's language and time zone, remembered for a while: they change rarely, and a
text in the previous language for a few seconds is harmless. Whoever changes them calls
`forget`, so the change shows at once on this node. An entry past its time is still
used once more while it is read again in the background: the notifier's batches never
wait for a query about users they know (only about users they have not seen).

These are the user's as a whole (what their devices last said): the texts stored once per
user (notifications, pushes) use them; each connected device then gets notifications
re-rendered in its own language and zone (`hub.rules.notices.localize`)."""

from __future__ import annotations

import asyncio
import logging
import time

from hub.rules.clock import DEFAULT_TZ, zone_name
from hub.store import Store
from hub.store import users as user_store

log = logging.getLogger(__name__)

LANG_TTL_S = 10.0
LANG_CACHE_SIZE = 200_000
DEFAULT_LANG = "zh"  # unknown users read Chinese


class Languages:
    def __init__(self, store: Store, default_tz: str = DEFAULT_TZ) -> None:
        self.store = store
        self.default_tz = zone_name(default_tz)  # HUB_DEFAULT_TZ; a wrong name: Beijing time
        self._cache: dict[str, tuple[str, str, float]] = {}
        self._due: dict[str, tuple[str, str, float]] = {}  # stale entries to read again
        self._refresh: asyncio.Task | None = None

    def forget(self, user_id: str) -> None:
        self._cache.pop(user_id, None)

    async def locales(self, user_ids: set[str]) -> dict[str, tuple[str, str]]:
        """user id -> (language, IANA time zone: what their devices last said, else the
        hub's default). Users not in the cache are read now; those whose entry is past
        its time get it once more and are read again in the background."""
        now = time.monotonic()
        missing = self._not_cached(user_ids, now)
        if missing:
            await self._read(missing, now)
        return self._entries(user_ids)

    def cached(self, user_ids: set[str]) -> dict[str, tuple[str, str]] | None:
        """`locales` without a query: None when a user is not in the cache (entries past
        their time are used and read again in the background, as `locales` does)."""
        if self._not_cached(user_ids, time.monotonic()):
            return None
        return self._entries(user_ids)

    def _not_cached(self, user_ids: set[str], now: float) -> list[str]:
        """The users with no entry; those whose entry is past its time are read again in
        the background."""
        cache = self._cache
        missing = []
        for u in user_ids:
            hit = cache.get(u)
            if hit is None:
                missing.append(u)
            elif hit[2] < now:
                self._due[u] = hit
        if self._due and self._refresh is None:
            self._refresh = asyncio.get_running_loop().create_task(self._read_due())
        return missing

    def _entries(self, user_ids: set[str]) -> dict[str, tuple[str, str]]:
        cache = self._cache
        return {u: cache[u][:2] for u in user_ids}

    async def _read(self, user_ids: list[str], now: float, *, only_if: dict | None = None) -> None:
        """Read these users' entries; with `only_if`, replace only the entries still as
        they were (one forgotten or read anew meanwhile is newer than this read)."""
        async with self.store.acquire() as db:
            found = await user_store.locales(db, user_ids)
        cache = self._cache
        if len(cache) > LANG_CACHE_SIZE:
            cache.clear()
        for user_id in user_ids:
            if only_if is not None and cache.get(user_id) is not only_if[user_id]:
                continue
            lang, tz = found.get(user_id, (DEFAULT_LANG, None))
            cache[user_id] = (lang, zone_name(tz, self.default_tz), now + LANG_TTL_S)

    async def _read_due(self) -> None:
        try:
            while self._due:
                due, self._due = self._due, {}
                await self._read(list(due), time.monotonic(), only_if=due)
        except Exception as exc:  # the store is away: the stale entries serve meanwhile
            log.debug("could not read languages again: %s", exc)
            self._due.clear()
        finally:
            self._refresh = None

    async def refreshed(self) -> None:
        """Wait for the background read of stale entries (tests)."""
        while self._refresh is not None:
            await asyncio.shield(self._refresh)

    async def of(self, user_ids: set[str]) -> dict[str, str]:
        """user id -> language."""
        return {u: lang for u, (lang, _) in (await self.locales(user_ids)).items()}
