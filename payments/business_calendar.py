"""Business hours and when a standard transfer is due, pure (no I/O).

A standard transfer is due `settlement_delay_s` after it is made; a due time outside the
business windows (hours on business days, in `business_tz`) moves to the start of the
next window. The ledger uses this to set `expected_by`; the settlement worker then
settles what is due. Both import this module; it imports neither.

(Not named `calendar`: that would shadow the standard library's module whenever this
directory is first on sys.path.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Business windows: minute ranges [start, end) of a day, on some weekdays (Monday=0)."""

    windows: tuple[tuple[int, int], ...]
    days: frozenset[int]
    tz: ZoneInfo

    @classmethod
    def parse(cls, hours: str, days: str, tz: str) -> BusinessCalendar:
        """`hours` like "09:00-17:00" or "09:00-12:00,13:00-18:00" ("24:00" ends a day);
        `days` like "0,1,2,3,4"."""
        windows = []
        for part in hours.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                start_s, end_s = part.split("-")
                start, end = _minutes(start_s), _minutes(end_s)
            except ValueError:
                raise ValueError(f"business hours: bad window {part!r}") from None
            if not 0 <= start < end <= 24 * 60:
                raise ValueError(f"business hours: bad window {part!r}")
            windows.append((start, end))
        day_set = frozenset(int(d) for d in days.split(",") if d.strip())
        if not windows or not day_set or not day_set <= set(range(7)):
            raise ValueError("business hours: need at least one window and days within 0-6")
        return cls(tuple(sorted(windows)), day_set, ZoneInfo(tz))

    def _spans(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        if day.weekday() not in self.days:
            return
        for start, end in self.windows:
            # wall-clock times of that date in the business time zone
            yield _at_minute(day, start, self.tz), _at_minute(day, end, self.tz)

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.tz)
        return any(s <= local < e for s, e in self._spans(local.date()))

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when inside a window, else the start of the next window."""
        local = at.astimezone(self.tz)
        for offset in range(8):
            for start, end in self._spans(local.date() + timedelta(days=offset)):
                if start <= local < end:
                    return at
                if start > local:
                    return start.astimezone(at.tzinfo)
        raise AssertionError("a calendar with a business day has a window within 8 days")


def _minutes(text: str) -> int:
    hh, mm = text.strip().split(":")
    if len(mm) != 2:
        raise ValueError(text)
    return int(hh) * 60 + int(mm)


def _at_minute(day: date, minute: int, tz: ZoneInfo) -> datetime:
    if minute >= 24 * 60:
        return datetime.combine(day + timedelta(days=1), time(0), tz)
    return datetime.combine(day, time(minute // 60, minute % 60), tz)


def due_time(now: datetime, delay_s: float, calendar: BusinessCalendar) -> datetime:
    """When a standard transfer made at `now` should arrive."""
    return calendar.next_open(now + timedelta(seconds=delay_s))
