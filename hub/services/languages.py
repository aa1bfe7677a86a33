"""Each user's language, remembered for a while: it changes rarely, and a text in the
previous language for a few seconds is harmless. Whoever changes a user's language
calls `forget`, so the change shows at once on this node."""

from __future__ import annotations

import time

from hub.store import Store
from hub.store import users as user_store

LANG_TTL_S = 10.0
LANG_CACHE_SIZE = 200_000
DEFAULT_LANG = "zh"  # unknown users read Chinese


class Languages:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[str, float]] = {}

    def forget(self, user_id: str) -> None:
        self._cache.pop(user_id, None)

    async def of(self, user_ids: set[str]) -> dict[str, str]:
        now = time.monotonic()
        cache = self._cache
        missing = [u for u in user_ids if (hit := cache.get(u)) is None or hit[1] < now]
        if missing:
            async with self.store.acquire() as db:
                found = await user_store.langs(db, missing)
            if len(cache) > LANG_CACHE_SIZE:
                cache.clear()
            for user_id in missing:
                cache[user_id] = (found.get(user_id, DEFAULT_LANG), now + LANG_TTL_S)
        return {u: cache[u][0] for u in user_ids}
