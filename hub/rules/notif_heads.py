"""Each user's notification head as a node last saw it stored: what its group writers
number a batch from, so that PostgreSQL does not keep a counter row per user.

A head known here is never above the user's committed head: it is learned from the store
or advanced once the node's own write committed, and forgotten when a write fails. A
writer that numbers from a head below the committed one (another node or statement wrote
since) meets the primary key (user_id, seq); it forgets those users, loads their heads
again and numbers again. So every seq written follows one that is committed, and seqs
stay gapless (migration 0031). A user's writes are never in flight twice on one node
(hub.store.writer.Writers), so two batches of this node never number from the same head."""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_LIMIT = 200_000  # heads kept (~100 B each), plus one batch's; then the oldest quarter goes


class NotifHeads:
    __slots__ = ("_heads", "_limit")

    def __init__(self, limit: int = DEFAULT_LIMIT):
        self._heads: dict[str, int] = {}
        self._limit = max(4, limit)

    def __len__(self) -> int:
        return len(self._heads)

    def unknown(self, users: Iterable[str]) -> list[str]:
        """Those of `users` whose head is not known here."""
        heads = self._heads
        return [u for u in users if u not in heads]

    def learn(self, heads: Iterable[tuple[str, int]]) -> None:
        """Heads read from the store (committed). Room is made first, so what a batch
        learns stays until it is numbered."""
        self._bound()
        self._heads.update(heads)

    def number(self, users: list[str]) -> tuple[list[int], dict[str, int]]:
        """Seqs for a batch of writes (their users in batch order, every head known), and
        each user's head once the batch is committed. Nothing changes here until
        `advance` is given those heads."""
        heads = self._heads
        after: dict[str, int] = {}
        seqs = [0] * len(users)
        for i, user_id in enumerate(users):
            seqs[i] = after[user_id] = after.get(user_id, heads[user_id]) + 1
        return seqs, after

    def advance(self, heads: dict[str, int]) -> None:
        """The heads after a committed batch."""
        self._bound()
        self._heads.update(heads)

    def forget(self, users: Iterable[str]) -> None:
        """Load these users' heads again before their next write (a write failed, or
        another writer may have written)."""
        heads = self._heads
        for u in users:
            heads.pop(u, None)

    def clear(self) -> None:
        """Forget every head (a notice or campaign numbered many users' copies)."""
        self._heads.clear()

    def _bound(self) -> None:
        heads = self._heads
        if len(heads) >= self._limit:
            for u in list(heads)[: len(heads) - self._limit * 3 // 4]:
                del heads[u]
