"""Opening hours of the support teams: when someone is expected to be there, and when the
next opening is. Pure: the caller passes the time.

A team (a topic's agents) works `start`-`end` local time on its working days (Monday=0),
except on holidays. `end` may be 24:00; a span that ends before it starts runs past
midnight (22:00-06:00)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Hours:
    start: time
    end: time | None  # None: 24:00
    days: frozenset[int] = frozenset(range(7))
    holidays: frozenset[date] = field(default_factory=frozenset)
    tz: str = "Asia/Shanghai"

    def label(self) -> str:
        """'09:00-18:00 (Asia/Shanghai)', for people."""
        end = "24:00" if self.end is None else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end} ({self.tz})"


def parse_span(text: str) -> tuple[time, time | None]:
    """'09:00-18:00' -> (09:00, 18:00); '00:00-24:00' -> (00:00, None)."""
    start_s, end_s = (part.strip() for part in text.split("-", 1))
    start = time.fromisoformat(start_s)
    end = None if end_s == "24:00" else time.fromisoformat(end_s)
    return start, end


def parse_teams(spec: str) -> dict[str, str]:
    """'security=00:00-24:00;payment=08:00-22:00' -> {topic: span}."""
    out: dict[str, str] = {}
    for item in spec.replace(",", ";").split(";"):
        if "=" in item:
            topic, span = item.split("=", 1)
            out[topic.strip()] = span.strip()
    return out


def _open_on(hours: Hours, day: date) -> bool:
    return day.weekday() in hours.days and day not in hours.holidays


def is_open(hours: Hours, now: datetime) -> bool:
    """Whether the team works at `now` (an aware datetime)."""
    local = now.astimezone(ZoneInfo(hours.tz))
    t = local.time().replace(tzinfo=None)
    end = hours.end
    if end is None or hours.start < end:  # a span within one day
        return _open_on(hours, local.date()) and t >= hours.start and (end is None or t < end)
    # past midnight: the evening part belongs to today, the morning part to yesterday
    if t >= hours.start:
        return _open_on(hours, local.date())
    return t < end and _open_on(hours, local.date() - timedelta(days=1))


def next_opening(hours: Hours, now: datetime, horizon_days: int = 370) -> datetime | None:
    """When the team next opens after `now` (None: open now, or never within the horizon).
    An aware datetime in the team's time zone."""
    if is_open(hours, now):
        return None
    zone = ZoneInfo(hours.tz)
    local = now.astimezone(zone)
    for offset in range(horizon_days + 1):
        day = local.date() + timedelta(days=offset)
        if not _open_on(hours, day):
            continue
        opening = datetime.combine(day, hours.start, tzinfo=zone)
        if opening > local:
            return opening
    return None
