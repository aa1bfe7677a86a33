"""The door of `payments.events`: only events signed with `HUB_EVENTS_KEY` come in.

Anyone who can publish on Redis can publish on `payments.events`, so every message is
opened as `supporthub_core.event_signing.open_signed` would (by an `EventOpener`, its key
checked once) before the notifier sees it. A message that does not verify, or is not in
the signed form, is dropped, counted in `supporthub_payment_events_rejected_total{reason}`
and logged, at most one warning per `warn_every_s` (with the counts since the last one): a
flood of forgeries costs a counter bump each, not a log line each. Its content is never
logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable

from hub import metrics
from supporthub_core.event_signing import EventOpener, SignedEventError

log = logging.getLogger(__name__)

WARN_EVERY_S = 5.0


class EventGate:
    def __init__(
        self,
        key: bytes,
        *,
        warn_every_s: float = WARN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not key:
            raise ValueError("payments.events cannot be verified without HUB_EVENTS_KEY")
        self._opener = EventOpener(bytes(key))  # the key checked once, here
        self._every = warn_every_s
        self._clock = clock
        self.rejected: Counter[str] = Counter()  # per reason, since start
        self._unreported: Counter[str] = Counter()
        self._quiet_until = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    def open(self, message: bytes) -> dict | None:
        """The event map of a signed message; None (counted, maybe logged) otherwise."""
        try:
            return self._opener.open(message)
        except SignedEventError as exc:
            self._refused(exc.reason)
            return None

    def _refused(self, reason: str) -> None:
        metrics.EVENTS_REJECTED.labels(reason).inc()
        self.rejected[reason] += 1
        self._unreported[reason] += 1
        now = self._clock()
        if now >= self._quiet_until:
            self._report(now)
        elif self._timer is None:
            # the rest is said when the quiet period ends, even if nothing more comes
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._timer = loop.call_later(self._quiet_until - now, self._report_late)

    def _report_late(self) -> None:
        self._timer = None
        if self._unreported:
            self._report(self._clock())

    def _report(self, now: float) -> None:
        counts = ", ".join(f"{r}: {n}" for r, n in sorted(self._unreported.items()))
        log.warning(
            "payments.events: dropped %d message(s) that are not events signed with the"
            " events key (%s); counted in supporthub_payment_events_rejected_total",
            sum(self._unreported.values()),
            counts,
        )
        self._unreported.clear()
        self._quiet_until = now + self._every
