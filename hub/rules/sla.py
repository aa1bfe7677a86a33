"""Service levels: each chat's state against its first-response and resolution targets.
Pure: the caller passes the time (seconds on one clock).

A chat's clocks start when it reached the human queue (`started_at`, its first enqueue).
First response: until a person first wrote in it. Resolution: until it ended. Targets
are per priority. A target is

* `ok` while less than `at_risk` (a fraction, 0.8 by default) of it has passed,
* `at_risk` from then on, until it passes,
* `breached` once more than the target has passed without the event,
* `met` once the event happened in time (a final state, as `breached` is).

The chat's state is the worse of the two (breached > at_risk > ok > met), so a chat
answered in time but not yet resolved is judged by its resolution target. As time passes
an open chat's state only gets worse; a met or breached target never changes again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

State = Literal["met", "ok", "at_risk", "breached"]
RANK: dict[str, int] = {"met": 0, "ok": 1, "at_risk": 2, "breached": 3}

DEFAULT_FIRST_RESPONSE_S = {"urgent": 60.0, "high": 120.0, "normal": 300.0}
DEFAULT_RESOLUTION_S = {"urgent": 1800.0, "high": 3600.0, "normal": 7200.0}


@dataclass(frozen=True, slots=True)
class Targets:
    first_response_s: Mapping[str, float]
    resolution_s: Mapping[str, float]
    at_risk: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.at_risk <= 1:
            raise ValueError(f"at_risk must be in (0, 1], got {self.at_risk!r}")


@dataclass(frozen=True, slots=True)
class SlaChat:
    conversation_id: str
    priority: str
    started_at: float  # reached the human queue
    first_response_at: float | None = None
    ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class SlaState:
    first_response: State
    resolution: State
    first_response_due: float
    resolution_due: float

    @property
    def state(self) -> State:
        """The chat's state: the worse of its two targets."""
        return max(self.first_response, self.resolution, key=RANK.__getitem__)

    @property
    def kind(self) -> Literal["first_response", "resolution"]:
        """Which target sets `state` (first response on a tie)."""
        if RANK[self.first_response] >= RANK[self.resolution]:
            return "first_response"
        return "resolution"

    @property
    def due_at(self) -> float:
        return self.first_response_due if self.kind == "first_response" else self.resolution_due


def _one(start: float, target: float, done: float | None, now: float, at_risk: float) -> State:
    if done is not None and done <= now:
        return "met" if done - start <= target else "breached"
    elapsed = now - start
    if elapsed > target:
        return "breached"
    if elapsed >= at_risk * target:
        return "at_risk"
    return "ok"


def target_for(table: Mapping[str, float], priority: str) -> float:
    value = table.get(priority, table.get("normal", math.inf))
    return float(value)


def state(chat: SlaChat, now: float, targets: Targets) -> SlaState:
    """Where `chat` stands at `now` (rules in the module doc)."""
    first = target_for(targets.first_response_s, chat.priority)
    whole = target_for(targets.resolution_s, chat.priority)
    return SlaState(
        first_response=_one(chat.started_at, first, chat.first_response_at, now, targets.at_risk),
        resolution=_one(chat.started_at, whole, chat.ended_at, now, targets.at_risk),
        first_response_due=chat.started_at + first,
        resolution_due=chat.started_at + whole,
    )


def parse_targets(spec: str, default: Mapping[str, float]) -> dict[str, float]:
    """'urgent=60,high=120,normal=300' -> {priority: seconds}, over `default`."""
    out = dict(default)
    for item in spec.replace(";", ",").split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            out[key.strip()] = float(value)
    return out
