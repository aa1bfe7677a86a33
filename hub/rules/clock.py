"""One rule for every time shown to a customer: in the customer's time zone, labelled.

The zone is the device's (`hello.tz`, an IANA name such as "America/New_York"), else the
one the customer's devices last said, else the hub's default (Beijing time). Every text a
customer reads with a time in it (the bot's answers, notification cards, pushes) is made
with `local_time`, so a card and an answer about the same transfer say the same time on
the same device. Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TZ = "Asia/Shanghai"
# Zones whose clock is China Standard Time, said as 北京时间 / Beijing time.
BEIJING_ZONES = frozenset(
    {"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"}
)
MAX_TZ_CHARS = 64


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def is_zone(name: object) -> bool:
    """Whether `name` is an IANA time zone this machine knows ("Europe/Berlin", "UTC")."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= MAX_TZ_CHARS
        and not name.startswith(("/", "."))
        and ".." not in name
        and _zone(name) is not None
    )


def zone_name(tz: str | None, default: str = DEFAULT_TZ) -> str:
    """`tz` when it is a known zone, else `default` (else Beijing time)."""
    if tz and is_zone(tz):
        return tz
    return default if is_zone(default) else DEFAULT_TZ


def parse_time(value: object) -> datetime | None:
    """An aware datetime from an ISO 8601 string or datetime (naive ones are taken as UTC);
    None when absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def zone_label(tz: str | None, lang: str, at: datetime, default: str = DEFAULT_TZ) -> str:
    """北京时间 / "Beijing time" for China's zone, else the offset at that moment: "GMT-5",
    "GMT+5:30", "GMT"."""
    name = zone_name(tz, default)
    if name in BEIJING_ZONES:
        return "北京时间" if lang == "zh" else "Beijing time"
    offset = at.astimezone(_zone(name)).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0:
        return "GMT"
    sign, minutes = ("+" if minutes > 0 else "-"), abs(minutes)
    hours, rest = divmod(minutes, 60)
    return f"GMT{sign}{hours}" + (f":{rest:02d}" if rest else "")


def local_time(value: object, tz: str | None, lang: str, *, default: str = DEFAULT_TZ) -> str:
    """`2026-11-26 21:00（北京时间）` / `2026-11-26 08:00 (GMT-5)`: the moment in the
    customer's zone with the zone said; '' when the value is absent or unreadable."""
    moment = parse_time(value)
    if moment is None:
        return ""
    name = zone_name(tz, default)
    shown = moment.astimezone(_zone(name)).strftime("%Y-%m-%d %H:%M")
    label = zone_label(name, lang, moment)
    return f"{shown}（{label}）" if lang == "zh" else f"{shown} ({label})"


def local_day_start(now: datetime, tz: str | None, default: str = DEFAULT_TZ) -> datetime:
    """Midnight of `now`'s day in the customer's zone ("yesterday" means their yesterday)."""
    local = now.astimezone(_zone(zone_name(tz, default)))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)
