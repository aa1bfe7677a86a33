"""What the supervisor view highlights and raises alarms for: pure, property-tested.

Two steps, kept apart so that the flags can come from elsewhere (an SLA rule) and the
alarms stay the same:

1. `flags(chat, thresholds, service)`: one chat waiting for a person (queued, or assigned
   and not answered yet) -> its highlight levels (`ok`, `warn`, `alarm`, colours only) for
   the wait in the queue and for the first answer, and whether it is about to breach
   (`breach_soon`): its service levels (`service`, from `hub.rules.sla.state`) say it is at
   risk or breached, on first response or on resolution.
2. `alarms(flagged, agents_online)`: the whole floor -> the alarms to raise, most serious
   first: `no_agents` (chats waiting and nobody online), `urgent_unanswered` (an urgent
   chat no person has answered), `sla_breach_soon` (chats about to breach).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hub.rules import sla

Level = Literal["ok", "warn", "alarm"]
AlarmKind = Literal["no_agents", "urgent_unanswered", "sla_breach_soon"]
LEVELS: tuple[Level, ...] = ("ok", "warn", "alarm")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Seconds: a wait in the queue from `wait_warn_s` is amber and from `wait_alarm_s`
    red; likewise an assigned chat still unanswered after `reply_warn_s` / `reply_alarm_s`."""

    wait_warn_s: float = 120.0
    wait_alarm_s: float = 600.0
    reply_warn_s: float = 60.0
    reply_alarm_s: float = 180.0


@dataclass(frozen=True, slots=True)
class WaitingChat:
    """A chat waiting for a person. `waiting_s`: time in the queue so far (queued) or
    spent there (assigned); `unanswered_s`: time since it was assigned with no answer yet
    (None while queued)."""

    conversation_id: str
    priority: Literal["urgent", "high", "normal"]
    status: Literal["queued", "assigned"]
    waiting_s: float
    unanswered_s: float | None = None


@dataclass(frozen=True, slots=True)
class Flags:
    conversation_id: str
    priority: Literal["urgent", "high", "normal"]
    status: Literal["queued", "assigned"]
    wait: Level
    reply: Level
    breach_soon: bool


@dataclass(frozen=True, slots=True)
class Alarm:
    kind: AlarmKind
    conversations: tuple[str, ...]
    waiting: int = 0  # no_agents: chats waiting

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "conversations": list(self.conversations),
            "waiting": self.waiting,
        }


def level(seconds: float | None, warn_s: float, alarm_s: float) -> Level:
    """`alarm` from `alarm_s` on, `warn` from `warn_s`, else `ok` (None: `ok`)."""
    if seconds is None:
        return "ok"
    if seconds >= alarm_s:
        return "alarm"
    if seconds >= warn_s:
        return "warn"
    return "ok"


def breach_soon(service: sla.SlaState) -> bool:
    """At risk or breached on either target (first response, resolution)."""
    worst = max(sla.RANK[service.first_response], sla.RANK[service.resolution])
    return worst >= sla.RANK["at_risk"]


def flags(chat: WaitingChat, t: Thresholds, service: sla.SlaState) -> Flags:
    """The chat's colours from the thresholds; `breach_soon` from its service levels."""
    wait = level(chat.waiting_s if chat.status == "queued" else None, t.wait_warn_s, t.wait_alarm_s)
    reply = level(chat.unanswered_s, t.reply_warn_s, t.reply_alarm_s)
    return Flags(
        chat.conversation_id,
        chat.priority,
        chat.status,
        wait,
        reply,
        breach_soon=breach_soon(service),
    )


def alarms(flagged: Sequence[Flags], agents_online: int) -> list[Alarm]:
    """The alarms for the floor, most serious first; none when all is well."""
    out: list[Alarm] = []
    queued = [f.conversation_id for f in flagged if f.status == "queued"]
    if agents_online <= 0 and queued:
        out.append(Alarm("no_agents", tuple(queued), waiting=len(queued)))
    urgent = tuple(f.conversation_id for f in flagged if f.priority == "urgent")
    if urgent:
        out.append(Alarm("urgent_unanswered", urgent))
    soon = tuple(f.conversation_id for f in flagged if f.breach_soon)
    if soon:
        out.append(Alarm("sla_breach_soon", soon))
    return out
