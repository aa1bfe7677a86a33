"""Which hub node handles a user's payment events.

Every node hears every event on `payments.events`; if each stored every one, N nodes
would do N times the database work and race each other on the unique `event_id`. So
each node takes only the users it owns: rendezvous hashing over the live nodes (the
highest `crc32(user, seed(node))` wins), which moves only the departed or arrived
node's share of users when membership changes.

Membership is a sorted set in Redis that each node refreshes every second; a node that
stops beating drops out after `NODE_TTL_S`. While views differ (a node joined or left a
moment ago), an event may be handled by two nodes, which the unique `event_id` turns into
one notification, or by none, which the outbox poller of every node picks up within its
interval. Nothing is lost either way; the ring only keeps the common case cheap.

Pure: the membership I/O is in `hub.cluster.node`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

NODE_BEAT_S = 1.0
NODE_TTL_S = 4.0


class NodeRing:
    __slots__ = ("me", "nodes", "_seeds")

    def __init__(self, me: str):
        self.me = me
        self.nodes: tuple[str, ...] = (me,)
        self._seeds: list[tuple[int, str]] = []

    def update(self, nodes: Iterable[str]) -> bool:
        """Set the live nodes (this one is always among them); True if the view changed."""
        view = tuple(sorted(set(nodes) | {self.me}))
        if view == self.nodes:
            return False
        self.nodes = view
        self._seeds = [(zlib.crc32(n.encode()) << 32, n) for n in view]
        return True

    @property
    def alone(self) -> bool:
        return len(self.nodes) == 1

    def owner(self, user_id: str) -> str:
        if len(self.nodes) == 1:
            return self.me
        key = zlib.crc32(user_id.encode())
        return max(self._seeds, key=lambda s: (_mix(key ^ s[0]), s[1]))[1]

    def owns(self, user_id: str) -> bool:
        return len(self.nodes) == 1 or self.owner(user_id) == self.me


_M64 = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finaliser: crc32 alone is linear, so its rankings would be lopsided."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)
