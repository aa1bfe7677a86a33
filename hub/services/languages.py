"""Each user's language and time zone, remembered for a while: they change rarely, and a
text in the previous language for a few seconds is harmless. Whoever changes them calls
`forget`, so the change shows at once on this node.

These are the user's as a whole (what their devices last said): the texts stored once per
user (notifications, pushes) use them; each connected device then gets notifications
re-rendered in its own language and zone (`hub.rules.notices.localize`)."""

from __future__ import annotations

import time

from hub.rules.clock import DEFAULT_TZ, zone_name
from hub.store import Store
from hub.store import users as user_store

LANG_TTL_S = 10.0
LANG_CACHE_SIZE = 200_000
DEFAULT_LANG = "zh"  # unknown users read Chinese


class Languages:
    def __init__(self, store: Store, default_tz: str = DEFAULT_TZ) -> None:
        self.store = store
        self.default_tz = zone_name(default_tz)  # HUB_DEFAULT_TZ; a wrong name: Beijing time
        self._cache: dict[str, tuple[str, str, float]] = {}

    def forget(self, user_id: str) -> None:
        self._cache.pop(user_id, None)

    async def locales(self, user_ids: set[str]) -> dict[str, tuple[str, str]]:
        """user id -> (language, IANA time zone: what their devices last said, else the
        hub's default)."""
        now = time.monotonic()
        cache = self._cache
        missing = [u for u in user_ids if (hit := cache.get(u)) is None or hit[2] < now]
        if missing:
            async with self.store.acquire() as db:
                found = await user_store.locales(db, missing)
            if len(cache) > LANG_CACHE_SIZE:
                cache.clear()
            for user_id in missing:
                lang, tz = found.get(user_id, (DEFAULT_LANG, None))
                cache[user_id] = (lang, zone_name(tz, self.default_tz), now + LANG_TTL_S)
        return {u: (cache[u][0], cache[u][1]) for u in user_ids}

    async def of(self, user_ids: set[str]) -> dict[str, str]:
        """user id -> language."""
        return {u: lang for u, (lang, _) in (await self.locales(user_ids)).items()}
