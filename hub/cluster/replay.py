"""Replay protection for signed bus frames (pure: no I/O, time passed in).

Every sealed frame carries a stamp: the sending process's random id, a counter that
grows by one per frame it seals, and the wall-clock time in ms. A receiver accepts a
stamp at most once: per sender it keeps the highest counter seen and a bitmap of the
`WINDOW` counters below it (the sliding window of IPsec and DTLS), since frames from one
sender can arrive slightly out of order over several Redis connections. Stamps older
than `MAX_AGE_MS` are refused outright, so a sender the receiver has forgotten (idle
longer than that) cannot be replayed either. Nodes' clocks must agree within that age.
"""

from __future__ import annotations

import itertools
import os
import struct
from dataclasses import dataclass

STAMP = struct.Struct(">8sQQ")  # sender, counter, ms
WINDOW = 4096
MAX_AGE_MS = 30_000


class Stamper:
    """The stamps of one sending process."""

    def __init__(self, sender: bytes | None = None) -> None:
        self.sender = sender or os.urandom(8)
        self._counter = itertools.count(1)

    def stamp(self, now_ms: int) -> bytes:
        return STAMP.pack(self.sender, next(self._counter), now_ms)


@dataclass(slots=True)
class _Seen:
    highest: int
    bits: int  # bit i set: counter `highest - i` was accepted
    last_ms: int


class ReplayWindow:
    """Which stamps a receiver has accepted."""

    def __init__(self, *, window: int = WINDOW, max_age_ms: int = MAX_AGE_MS) -> None:
        self.window = window
        self.max_age_ms = max_age_ms
        self._senders: dict[bytes, _Seen] = {}
        self._next_prune_ms = 0

    def accept(self, stamp: bytes, now_ms: int) -> bool:
        """True the first time a fresh stamp is seen; False for a replay, a stamp too
        old or too far in the future, or one that is malformed."""
        if len(stamp) != STAMP.size:
            return False
        sender, counter, ms = STAMP.unpack(stamp)
        if abs(now_ms - ms) > self.max_age_ms:
            return False
        if now_ms >= self._next_prune_ms:
            self._prune(now_ms)
        seen = self._senders.get(sender)
        if seen is None:
            self._senders[sender] = _Seen(counter, 1, now_ms)
            return True
        seen.last_ms = now_ms
        if counter > seen.highest:
            shift = counter - seen.highest
            seen.bits = (
                ((seen.bits << shift) | 1) & ((1 << self.window) - 1) if shift < self.window else 1
            )
            seen.highest = counter
            return True
        offset = seen.highest - counter
        if offset >= self.window or seen.bits >> offset & 1:
            return False
        seen.bits |= 1 << offset
        return True

    def _prune(self, now_ms: int) -> None:
        stale = now_ms - 2 * self.max_age_ms
        self._senders = {s: v for s, v in self._senders.items() if v.last_ms >= stale}
        self._next_prune_ms = now_ms + self.max_age_ms
