"""What a waiting customer is told: their place in line and how long it should take.
Pure: no I/O, no clock of its own (times are passed in, seconds on one clock).

* **Pools.** Chats compete when the same agents could take them. Topics are joined when
  one agent has both skills (and so on, transitively): a pool is a set of topics whose
  staff overlap, and the chats of a pool share one line. A topic nobody has the skill
  for is a pool of its own.
* **One place per customer.** Within a pool, customers are ordered by their first chat in
  service order (priority class, then enqueue time, then id); a customer's own other
  chats never stand ahead of them, and every chat of a customer in that pool shows the
  same place. Places in a pool are 1..n over its n customers.
* **ETA from measured handle times.** Each agent's handle time is a rolling estimate
  (`handle_time_estimate`: the mean of its recent chats, pulled towards the default while
  it has few). The agents online who can take a chat serve it at a rate of
  sum(capacity_i / handle_i) chats a second; the customer at place p is served after p
  slots free: eta = ceil(p / rate). With nobody online who can take it there is no
  estimate (None): the customer is told so plainly, never "about 3 minutes".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from hub.rules.routing import PRIORITY_RANK, AgentLoad


@dataclass(frozen=True, slots=True)
class Waiting:
    """A chat in the queue as the line sees it."""

    conversation_id: str
    user_id: str
    topic: str
    priority: str
    enqueued_at: float

    @property
    def order_key(self) -> tuple[int, float, str]:
        return (PRIORITY_RANK[self.priority], self.enqueued_at, self.conversation_id)


@dataclass(frozen=True, slots=True)
class Place:
    """A waiting chat's place: `position` 1 = next, among `size` customers of its pool."""

    position: int
    size: int
    pool: str  # the pool's name: its topics, sorted and joined by "+"


def pools(topics: Iterable[str], agents: Sequence[AgentLoad]) -> dict[str, str]:
    """topic -> the name of its pool (connected topics over the agents' skills).

    Every agent counts, online or not: a pool is the team, so a customer's place does not
    jump when a colleague signs in."""
    parent: dict[str, str] = {}

    def find(t: str) -> str:
        parent.setdefault(t, t)
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for topic in topics:
        find(topic)
    for agent in agents:
        if agent.capacity <= 0:
            continue
        skills = sorted(agent.skills)
        for skill in skills[1:]:
            a, b = find(skills[0]), find(skill)
            if a != b:
                parent[max(a, b)] = min(a, b)
    members: dict[str, list[str]] = {}
    for topic in list(parent):
        members.setdefault(find(topic), []).append(topic)
    names = {root: "+".join(sorted(ts)) for root, ts in members.items()}
    return {topic: names[find(topic)] for topic in parent}


def places(waiting: Sequence[Waiting], agents: Sequence[AgentLoad]) -> dict[str, Place]:
    """conversation id -> its place (rules in the module doc). Independent of input order."""
    seen: set[str] = set()
    for chat in waiting:
        if chat.conversation_id in seen:
            raise ValueError(f"duplicate conversation_id {chat.conversation_id!r}")
        seen.add(chat.conversation_id)
    pool_of = pools((c.topic for c in waiting), agents)
    # per pool: customers in the order of their first chat
    lines: dict[str, dict[str, int]] = {}
    for chat in sorted(waiting, key=lambda c: c.order_key):
        line = lines.setdefault(pool_of[chat.topic], {})
        if chat.user_id not in line:
            line[chat.user_id] = len(line) + 1
    return {
        chat.conversation_id: Place(
            position=lines[pool_of[chat.topic]][chat.user_id],
            size=len(lines[pool_of[chat.topic]]),
            pool=pool_of[chat.topic],
        )
        for chat in waiting
    }


def handle_time_estimate(
    samples: Sequence[float], prior_s: float, prior_weight: float = 3.0
) -> float:
    """An agent's rolling handle time: the mean of its recent `samples` (seconds, newest
    few only: the shell passes a window), pulled towards `prior_s` as if `prior_weight`
    chats of that length had been seen too, so one quick chat does not promise the next
    customer a one-second wait. Negative or non-finite samples are ignored."""
    if not math.isfinite(prior_s) or prior_s <= 0:
        raise ValueError(f"prior_s must be finite and > 0, got {prior_s!r}")
    good = [s for s in samples if math.isfinite(s) and s >= 0]
    return (sum(good) + prior_weight * prior_s) / (len(good) + prior_weight)


def can_help(agent: AgentLoad, topic: str) -> bool:
    """Whether `agent` is online and could ever take a chat of `topic` (room aside)."""
    return agent.online and agent.capacity > 0 and topic in agent.skills


def service_rate(
    topic: str,
    agents: Sequence[AgentLoad],
    handle_s: Mapping[str, float],
    default_s: float,
) -> float:
    """Chats a second the online agents who can take `topic` finish (0: nobody online)."""
    rate = 0.0
    for agent in agents:
        if can_help(agent, topic):
            rate += agent.capacity / max(1.0, handle_s.get(agent.agent_id, default_s))
    return rate


def eta_s(
    position: int,
    topic: str,
    agents: Sequence[AgentLoad],
    handle_s: Mapping[str, float],
    default_s: float,
) -> int | None:
    """Seconds the customer at `position` should wait, or None when nobody online can take
    the chat. Monotone in `position`; 0 for a position below 1 (not waiting)."""
    if position < 1:
        return 0
    return _eta(position, service_rate(topic, agents, handle_s, default_s))


def etas(
    line: Mapping[str, tuple[int, str]],
    agents: Sequence[AgentLoad],
    handle_s: Mapping[str, float],
    default_s: float,
) -> dict[str, int | None]:
    """`eta_s` of every chat of `line` (conversation id -> (position, topic)), each topic's
    service rate worked out once: a queue of thousands over a team of hundreds is then a
    pass over the agents per topic, not one per chat."""
    rates: dict[str, float] = {}
    out: dict[str, int | None] = {}
    for cid, (position, topic) in line.items():
        if position < 1:
            out[cid] = 0
            continue
        rate = rates.get(topic)
        if rate is None:
            rate = rates[topic] = service_rate(topic, agents, handle_s, default_s)
        out[cid] = _eta(position, rate)
    return out


def _eta(position: int, rate: float) -> int | None:
    if rate <= 0:
        return None
    return math.ceil(round(position / rate, 6))  # no float dust: 1 / (1 / 474) is 474


@dataclass(frozen=True, slots=True)
class EtaError:
    """How the waits we announced compared with what happened (seconds)."""

    count: int
    mean_abs_s: float | None  # mean |actual - told|
    bias_s: float | None  # mean (actual - told): > 0 means we promised too little


def eta_error(pairs: Iterable[tuple[float, float]]) -> EtaError:
    """(told, actual) pairs -> the error of the estimate."""
    diffs = [actual - told for told, actual in pairs]
    if not diffs:
        return EtaError(0, None, None)
    return EtaError(len(diffs), sum(abs(d) for d in diffs) / len(diffs), sum(diffs) / len(diffs))


def is_news(last_told: int | None, pass_no: int | None) -> bool:
    """Whether a place (or an assignment) from routing pass `pass_no` may be shown on a
    device whose newest word on that chat came from pass `last_told`.

    Passes are numbered in commit order across every node (one decider at a time), but
    each node announces its own passes after its COMMIT, so two nodes' announcements can
    reach a device in either order. Only a later pass than the last one shown is news; an
    older one is stale (its place is not true any more). Either number unknown (a frame
    without one): shown, as before numbers existed."""
    return last_told is None or pass_no is None or pass_no > last_told
