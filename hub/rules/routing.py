"""Chat routing: which queued chat goes to which agent. Pure: no I/O, no clock, no awaits.

The I/O shell loads the queue and the agents' loads inside a transaction that holds the
routing advisory lock, calls `plan()` and applies the assignments it returns. The lock
serialises plans across hub nodes, so `plan()` treats its inputs as one consistent
snapshot and never reasons about a concurrent plan. Times (`enqueued_at`, `idle_since`)
are passed in by the shell, in seconds on any one clock.

How `plan()` decides, for each chat in `queue_order()` (priority class, then
`enqueued_at`, then `conversation_id`):

* An agent can take the chat when it is online, has the chat's topic among its skills,
  has `active < capacity` (loads as updated by this plan so far) and is not in the
  chat's `excluded_agents`. Agents with `capacity <= 0` never take anything.
* The preferred agent (a returning customer's previous agent) gets it when it can take
  it. A preference never makes a chat wait: if that agent is busy, full or lacks the
  skill, the chat goes to whoever is next by the rule below.
* Otherwise the least busy agent that can take it: lowest `active`, then lowest
  `active / capacity`, then longest idle (agents that got a chat earlier in this plan
  count as the most recently busy, later in the plan = busier), then `agent_id`.

Ordering guarantees, and why they hold without look-ahead:

* No head-of-line blocking across skills: a chat nobody can take is skipped and the
  walk goes on, so a `security` chat with no free security agent does not hold up a
  `payment` chat behind it.
* Within one skill, priority and FIFO order are kept: if a chat C of topic S stays
  unassigned, every later chat D of topic S that was assigned got an agent in
  C's `excluded_agents`. Loads only grow during a plan, so an agent that had room for D
  had room when C was considered; C passed it over only because C excludes it. An
  exclusion is therefore the one thing that lets a later chat of the same skill go first
  (on purpose: the chat just moved away from that agent, and the agent should not sit
  idle while it waits for a colleague). Preferences never reorder anything.
* No starvation while capacity exists: a chat left unassigned has no agent that could
  take it even after the plan.

Not done, on purpose: `plan()` is greedy in queue order, not a maximum matching. With
agent A (skills payment, security) and agent B (payment), one free slot each, and the
queue [payment chat, security chat], the payment chat may take A and the security chat
waits for the next plan. Moving earlier chats around to fit later ones would break the
"least busy first" rule that agents and supervisors can check, and the shell re-plans on
every enqueue, finish and status change, so such a gap closes at the next free slot.

Exclusions are hard inside `plan()`. The shell first applies `relax_exclusions()`, so
that a chat is never kept from the only agents who could serve it: an exclusion holds
only while some other online agent with the skill exists.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

Priority = Literal["urgent", "high", "normal"]
# urgent: security incidents (set by the risk monitor path); high: payment failures,
# money not arrived.
PRIORITY_RANK: dict[str, int] = {"urgent": 0, "high": 1, "normal": 2}
TOPICS = ("account", "payment", "arrival", "security", "technical", "feedback", "other")

_HIGH_PRIORITY_TOPICS = frozenset({"payment", "arrival"})


def priority_for_topic(topic: str) -> Priority:
    """The default priority of a chat opened on `topic`; `urgent` is never a default."""
    return "high" if topic in _HIGH_PRIORITY_TOPICS else "normal"


@dataclass(frozen=True, slots=True)
class QueuedChat:
    """A chat waiting for an agent."""

    conversation_id: str
    topic: str  # the skill needed
    priority: Priority
    # FIFO key within a priority class. A chat put back at the head (transfer, agent
    # timeout) keeps its ORIGINAL enqueued_at, so it sorts ahead of later arrivals.
    enqueued_at: float
    # Previous agent of a returning customer: gets the chat if it can take it.
    preferred_agent: str | None = None
    # Agents that must not get it, e.g. the agent who just transferred it or timed out.
    excluded_agents: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.priority not in PRIORITY_RANK:
            raise ValueError(f"unknown priority {self.priority!r}")
        if math.isnan(self.enqueued_at):
            raise ValueError("enqueued_at is NaN")
        if not isinstance(self.excluded_agents, frozenset):
            # Accept any iterable from the shell; keep the dataclass hashable.
            object.__setattr__(self, "excluded_agents", frozenset(self.excluded_agents))

    @property
    def order_key(self) -> tuple[int, float, str]:
        """Sort key of `queue_order()`: priority class, then arrival, then id."""
        return (PRIORITY_RANK[self.priority], self.enqueued_at, self.conversation_id)


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """An agent as routing sees it: skills, status and how many chats it holds."""

    agent_id: str
    skills: frozenset[str]
    capacity: int
    active: int
    online: bool
    idle_since: float  # when the agent last got or finished a chat; longest idle wins ties
    # what the urgent ladder (hub.rules.urgent) reads; `plan()` ignores both
    supervisor: bool = False
    security_backup: bool = False

    @property
    def free(self) -> int:
        """Chats the agent may still take (0 when offline or at or over capacity)."""
        return max(0, self.capacity - self.active) if self.online else 0


@dataclass(frozen=True, slots=True)
class Assignment:
    conversation_id: str
    agent_id: str


def can_take(agent: AgentLoad, chat: QueuedChat, *, active: int | None = None) -> bool:
    """Whether `agent` may get `chat` now; `active` overrides the agent's current load."""
    load = agent.active if active is None else active
    return (
        agent.online
        and agent.capacity > 0
        and load < agent.capacity
        and chat.topic in agent.skills
        and agent.agent_id not in chat.excluded_agents
    )


def relax_exclusions(queue: Sequence[QueuedChat], agents: Sequence[AgentLoad]) -> list[QueuedChat]:
    """Drop a chat's exclusions when they cover every online agent with its skill (say
    alice and then bob each let it time out): offered to an agent who passed on it once
    beats waiting for one who does not exist."""
    staff: dict[str, set[str]] = {}
    for agent in agents:
        if agent.online and agent.capacity > 0:
            for skill in agent.skills:
                staff.setdefault(skill, set()).add(agent.agent_id)
    out = []
    for chat in queue:
        skilled = staff.get(chat.topic)
        if chat.excluded_agents and skilled and skilled <= chat.excluded_agents:
            chat = replace(chat, excluded_agents=frozenset())
        out.append(chat)
    return out


def queue_order(queue: Iterable[QueuedChat]) -> list[QueuedChat]:
    """The queue in service order: priority class, then `enqueued_at`, then id."""
    return sorted(queue, key=lambda chat: chat.order_key)


def plan(queue: Sequence[QueuedChat], agents: Sequence[AgentLoad]) -> list[Assignment]:
    """Assign as many queued chats as the agents have room for (rules in the module doc).

    Returns the assignments in queue order. The result depends only on the contents of
    `queue` and `agents`, not on their order. Raises ValueError on a repeated
    conversation id or agent id.
    """
    ordered = queue_order(queue)
    _check_unique((chat.conversation_id for chat in ordered), "conversation_id")
    _check_unique((agent.agent_id for agent in agents), "agent_id")

    # Agents that can ever take anything, per skill, in agent_id order so that the
    # candidate lists (and thus the result) do not depend on the input order.
    by_skill: dict[str, list[AgentLoad]] = {}
    for agent in sorted(agents, key=lambda a: a.agent_id):
        if agent.online and agent.capacity > 0:
            for skill in agent.skills:
                by_skill.setdefault(skill, []).append(agent)
    active = {agent.agent_id: agent.active for agent in agents}
    free_slots = sum(agent.free for agent in agents)
    got_at: dict[str, int] = {}  # agent_id -> how many assignments preceded its latest one
    # Topics whose agents are all full. Loads only grow within a plan, so a topic that
    # is full stays full: every later chat of it can be skipped without a scan.
    full_topics: set[str] = set()

    def busyness(agent: AgentLoad) -> tuple[int, float, int, float, str]:
        load = active[agent.agent_id]
        # An agent that got a chat earlier in this plan has just stopped being idle: it
        # ranks after every agent idle since before the plan (-1), later steps after
        # earlier ones.
        return (
            load,
            load / agent.capacity,
            got_at.get(agent.agent_id, -1),
            agent.idle_since,
            agent.agent_id,
        )

    assignments: list[Assignment] = []
    for chat in ordered:
        if free_slots == 0:
            break
        if chat.topic in full_topics:
            continue
        with_room = [a for a in by_skill.get(chat.topic, ()) if active[a.agent_id] < a.capacity]
        if not with_room:
            full_topics.add(chat.topic)
            continue
        eligible = [a for a in with_room if a.agent_id not in chat.excluded_agents]
        if not eligible:
            continue  # blocked only by its exclusions: later chats of this topic may go
        chosen = next((a for a in eligible if a.agent_id == chat.preferred_agent), None)
        if chosen is None:
            chosen = min(eligible, key=busyness)
        active[chosen.agent_id] += 1
        got_at[chosen.agent_id] = len(assignments)
        free_slots -= 1
        assignments.append(Assignment(chat.conversation_id, chosen.agent_id))
    return assignments


def queue_positions(queue: Sequence[QueuedChat], *, by_topic: bool = False) -> dict[str, int]:
    """Position of each queued chat, 1 = next in line, counted in `queue_order()`.

    With `by_topic=True` each topic is counted on its own. What customers are told is
    `hub.rules.queue.places()` instead: one place per customer over the pool of topics
    whose agents overlap, with waits from measured handle times (`hub.rules.queue.eta_s`).
    """
    ordered = queue_order(queue)
    _check_unique((chat.conversation_id for chat in ordered), "conversation_id")
    if not by_topic:
        return {chat.conversation_id: i for i, chat in enumerate(ordered, start=1)}
    counts: dict[str, int] = {}
    positions: dict[str, int] = {}
    for chat in ordered:
        counts[chat.topic] = counts.get(chat.topic, 0) + 1
        positions[chat.conversation_id] = counts[chat.topic]
    return positions


def estimate_wait_s(
    position: int, agents: Sequence[AgentLoad], topic: str, handle_time_s: float
) -> int:
    """Seconds a chat at `position` should wait: ceil(position * handle_time_s / slots).

    `slots` is the total capacity of the online agents with the skill (at least 1): each
    slot frees about once per average handle time, and the chat is served when the
    `position`-th slot frees. With no such agent the estimate is position * handle_time_s,
    finite so that the user still sees a number. A position below 1 (not queued) is 0.
    """
    if not math.isfinite(handle_time_s) or handle_time_s < 0:
        raise ValueError(f"handle_time_s must be finite and >= 0, got {handle_time_s!r}")
    if position < 1:
        return 0
    slots = sum(a.capacity for a in agents if a.online and a.capacity > 0 and topic in a.skills)
    return math.ceil(position * handle_time_s / max(1, slots))


def pick_agent_for_transfer(
    chat: QueuedChat, agents: Sequence[AgentLoad], to_agent: str
) -> str | None:
    """`to_agent` if it may take `chat` handed to it by name, else None.

    A named hand-off skips the skill check (the sender chose a colleague on purpose) but
    still needs the target online, with room and not excluded. On None the shell answers
    `conflict` or requeues the chat with `requeued()`.
    """
    for agent in agents:
        if agent.agent_id == to_agent:
            if (
                agent.online
                and 0 <= agent.active < agent.capacity
                and agent.agent_id not in chat.excluded_agents
            ):
                return to_agent
            return None
    return None


def requeued(chat: QueuedChat, away_from: str, *, to_topic: str | None = None) -> QueuedChat:
    """The queue entry for a chat that leaves agent `away_from` (transfer or timeout).

    Keeps the original `enqueued_at` (so it goes back near the head of its class), adds
    `away_from` to the exclusions, drops a preference for that agent, and on a topic
    change never lowers the priority.
    """
    topic = chat.topic if to_topic is None else to_topic
    priority = min(chat.priority, priority_for_topic(topic), key=PRIORITY_RANK.__getitem__)
    preferred = None if chat.preferred_agent == away_from else chat.preferred_agent
    return replace(
        chat,
        topic=topic,
        priority=priority,
        preferred_agent=preferred,
        excluded_agents=chat.excluded_agents | {away_from},
    )


def _check_unique(ids: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"duplicate {what} {item!r}")
        seen.add(item)
