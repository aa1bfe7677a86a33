"""Campaigns, the pure part: who a campaign is for, when it may still change, which
language a user reads it in, and how fast it goes out. No I/O, no clock: every time is
passed in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Status = Literal["scheduled", "sending", "sent", "cancelled"]
Category = Literal["notice", "security", "maintenance"]
AudienceKind = Literal["all", "lang", "active", "alert", "list"]
LANGS = ("zh", "en")
MIN_YEAR, MAX_YEAR = 2000, 2200
EPSILON = 1e-6
MIN_WAIT_S = 0.001  # a wait too short to move a float clock would spin
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")


@dataclass(frozen=True, slots=True)
class Audience:
    """Everyone; a language; users seen within `days`; users who got the security alert
    `alert` within `days`; or an uploaded list (kept beside the campaign)."""

    kind: AudienceKind
    lang: str | None = None
    days: int | None = None
    alert: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for name in ("lang", "days", "alert"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Audience:
        return cls(data["kind"], data.get("lang"), data.get("days"), data.get("alert"))


def audience_problem(a: Audience, list_size: int = 0) -> str | None:
    """Why an audience cannot be used (None: it can)."""
    if a.kind == "lang" and a.lang not in LANGS:
        return "audience.lang must be zh or en"
    if a.kind in ("active", "alert") and (a.days is None or not 1 <= a.days <= 365):
        return "audience.days must be 1 to 365"
    if a.kind == "alert" and not a.alert:
        return "audience.alert names a security alert, e.g. new_device_login"
    if a.kind == "list" and list_size == 0:
        return "audience kind list needs user_ids"
    if a.kind != "list" and list_size:
        return "user_ids go with audience kind list only"
    return None


def joins_later(a: Audience, user_lang: str | None) -> bool:
    """Whether a user first seen after the campaign went out belongs to its audience:
    everyone, or their language. (Activity and alerts are judged when it goes out; a
    list is a list.)"""
    return a.kind == "all" or (a.kind == "lang" and user_lang == a.lang)


def may_change(status: str, send_at: datetime, now: datetime) -> bool:
    """A scheduled campaign can be edited or cancelled until it starts."""
    return status == "scheduled" and send_at > now


def is_due(status: str, send_at: datetime, now: datetime) -> bool:
    """A campaign a node should be sending: one that started (its sender may have died),
    or a scheduled one whose time has come."""
    return status == "sending" or (status == "scheduled" and send_at <= now)


def text_for(texts: dict[str, Any], lang: str | None) -> tuple[str, str]:
    """(title, body) in `lang`, else Chinese, else whatever language there is."""
    for choice in (lang, "zh", "en", *texts):
        t = texts.get(choice) if choice else None
        if isinstance(t, dict) and isinstance(t.get("title"), str):
            return t["title"], str(t.get("body", ""))
    return "", ""


def link_ok(link: str) -> bool:
    """A help article's slug or an https URL."""
    return bool(SLUG.match(link)) or (link.startswith("https://") and len(link) <= 2000)


def local_send_at(when: datetime, tz: str | None) -> datetime:
    """The send time as an aware UTC instant. A time with an offset stands; a naive one is
    read in `tz` (an IANA name), which is then required: the time zone is never guessed."""
    if when.tzinfo is None:
        if not tz:
            raise ValueError("send_at has no offset: give one, or tz")
        try:
            when = when.replace(tzinfo=ZoneInfo(tz))
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown time zone {tz!r}") from exc
    try:
        out = when.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("send_at is out of range") from exc
    if not MIN_YEAR <= out.year <= MAX_YEAR:
        raise ValueError(f"send_at must be between the years {MIN_YEAR} and {MAX_YEAR}")
    return out


@dataclass(slots=True)
class Pacer:
    """A token bucket: at most `rate` copies a second on average, in batches of at most
    `batch`, never more than one batch ahead of the rate."""

    rate: float
    batch: int
    tokens: float = 0.0
    at: float | None = None

    def take(self, now: float) -> tuple[int, float]:
        """(how many to send now, how long to wait before asking again)."""
        if self.at is None:
            self.at, self.tokens = now, float(self.batch)
        elapsed = max(0.0, now - self.at)
        self.at = max(self.at, now)
        self.tokens = min(float(self.batch), self.tokens + elapsed * self.rate)
        n = int(self.tokens + EPSILON)  # 0.9999999 after a wait is the one token it waited for
        if n >= 1:
            self.tokens = max(0.0, self.tokens - n)
            return n, 0.0
        return 0, max((1.0 - self.tokens) / self.rate, MIN_WAIT_S)

    def give_back(self, n: int) -> None:
        """Copies taken but not sent (the audience ran out): the bucket keeps them."""
        self.tokens = min(float(self.batch), self.tokens + n)


def lease_until(now: datetime, lease_s: float) -> datetime:
    return now + timedelta(seconds=lease_s)
