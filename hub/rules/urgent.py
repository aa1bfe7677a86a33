"""The urgent ladder: who gets an urgent chat (a frozen customer's security chat), and what
happens when nobody answers it. Pure: no I/O, no clock, no awaits.

An urgent chat must be answered by a person within `answer_s` seconds of becoming urgent
(setting `urgent_answer_s`). "Answered" means its holder wrote in it since it was given to
them. Until then the routing shell calls `plan()` on every routing pass (the sweeper runs
one every `routing_sweep_s`), with the time `now` on the database's clock, and applies the
steps it returns.

Who may hold an urgent chat, best first (the rungs):

1. `skilled`: an online agent with the chat's skill (`security`) and room (`active <
   capacity`);
2. `urgent_slot`: else such an agent at capacity, in an urgent slot above it: up to
   `extra_slots` chats above capacity (setting `urgent_extra_slots`), and only urgent ones;
3. `supervisor`: else an online supervisor;
4. `backup`: else an online agent flagged `security_backup`.

Rungs 3 and 4 also stop at `capacity + extra_slots`. Only agents that are online (status
`online` with a live console) are ever on a rung: never one who is away or offline.
Within a rung the least loaded wins (room before an urgent slot, then `active`, then the
longest idle, then `agent_id`).

What a pass does with each urgent chat not yet answered:

* Held by an online person, deadline not passed: nothing.
* Nobody holds it, or its holder is no longer online: it goes to the best person on the
  ladder at once. With nobody on the ladder it waits in the queue (a holder who left
  loses it) and the on-call target is paged at once, then every `escalate_s`.
* Deadline passed (no answer): the on-call target is paged and the chat is offered to the
  next person on the ladder (not its holder; people it already left come last). With no
  one else it stays where it is. The next deadline is `escalate_s` later, and so on.

A person who gets the chat has at least `escalate_s` to answer it: its deadline is
`max(deadline, now + escalate_s)`.

Guarantees (property-tested on a fake clock in tests/test_urgent_rules.py):

* An urgent chat is never given to an agent who is not online.
* Nobody holds more than `capacity + extra_slots` chats because of the ladder, and never
  more than `capacity` non-urgent ones (the normal router stops at capacity).
* While anyone is on the ladder, no urgent chat goes a routing pass without an online
  holder, and a chat nobody answers is paged and re-offered no later than its deadline
  plus one escalation step (plus one pass of the sweeper), then again every step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from hub.rules.routing import AgentLoad
from supporthub_core.errors import Conflict, Forbidden, HubError, NotFound

Rung = Literal["skilled", "urgent_slot", "supervisor", "backup"]
RUNGS: tuple[Rung, ...] = ("skilled", "urgent_slot", "supervisor", "backup")
Notice = Literal["staffed", "unstaffed"]


@dataclass(frozen=True, slots=True)
class UrgentPolicy:
    answer_s: float = 60.0  # a person answers an urgent chat within this
    escalate_s: float = 30.0  # then page and re-offer it this often
    extra_slots: int = 1  # urgent chats an agent may hold above its capacity

    def __post_init__(self) -> None:
        for name in ("answer_s", "escalate_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be finite and > 0, got {value!r}")
        if self.extra_slots < 0:
            raise ValueError(f"extra_slots must be >= 0, got {self.extra_slots!r}")


@dataclass(frozen=True, slots=True)
class UrgentChat:
    """An urgent chat that may still be waiting for a person."""

    conversation_id: str
    topic: str  # the skill of the first two rungs: `security` for a freeze
    since: float  # when it became urgent (or changed hands outside the ladder)
    agent_id: str | None = None  # who holds it (None: in the queue)
    answered: bool = False  # its holder wrote in it since it got it
    due_at: float | None = None  # the deadline of this step; None: since + answer_s
    paged_at: float | None = None  # the last page for it, if any
    excluded_agents: frozenset[str] = frozenset()  # holders it left

    def __post_init__(self) -> None:
        if math.isnan(self.since):
            raise ValueError("since is NaN")
        if not isinstance(self.excluded_agents, frozenset):
            object.__setattr__(self, "excluded_agents", frozenset(self.excluded_agents))

    def deadline(self, policy: UrgentPolicy) -> float:
        return self.due_at if self.due_at is not None else self.since + policy.answer_s

    @property
    def waiting(self) -> bool:
        """Not answered by a person yet (queued, or held without an answer)."""
        return self.agent_id is None or not self.answered


@dataclass(frozen=True, slots=True)
class Step:
    """What a routing pass does with one urgent chat."""

    conversation_id: str
    agent_id: str | None  # who holds it after the step (None: in the queue)
    moved_from: str | None  # the holder it left in this step, if any
    rung: Rung | None  # the rung of `agent_id` when it was given in this step
    page: bool  # page the on-call target now
    due_at: float  # the next deadline
    staffed: bool  # an online person holds it after the step
    reason: Literal["nobody_online", "unanswered"] | None  # why it is paged

    @property
    def given(self) -> bool:
        return self.rung is not None

    @property
    def notice(self) -> Notice:
        """What the customer is told (hub.rules.urgent.NOTICE_TEXT)."""
        return "staffed" if self.staffed else "unstaffed"


def limit(agent: AgentLoad, policy: UrgentPolicy) -> int:
    """How many chats `agent` may hold counting urgent slots."""
    return max(0, agent.capacity) + policy.extra_slots


def rung_of(agent: AgentLoad, topic: str, active: int, policy: UrgentPolicy) -> Rung | None:
    """The rung `agent` stands on for an urgent chat of `topic` with `active` chats held;
    None when it may not get one now (not online, no room even in an urgent slot, or
    neither skilled, supervisor nor back-up)."""
    if not agent.online or active >= limit(agent, policy):
        return None
    if topic in agent.skills:
        return "skilled" if active < agent.capacity else "urgent_slot"
    if agent.supervisor:
        return "supervisor"
    if agent.security_backup:
        return "backup"
    return None


def candidates(
    chat: UrgentChat,
    agents: Iterable[AgentLoad],
    active: dict[str, int] | None = None,
    policy: UrgentPolicy = UrgentPolicy(),
    *,
    avoid: Iterable[str] = (),
) -> list[tuple[AgentLoad, Rung]]:
    """Everyone who may get `chat` now, best first; `avoid` are skipped, the chat's
    excluded agents come after everyone else."""
    avoid = set(avoid)
    loads = active or {}
    ranked = []
    for agent in agents:
        if agent.agent_id in avoid:
            continue
        load = loads.get(agent.agent_id, agent.active)
        rung = rung_of(agent, chat.topic, load, policy)
        if rung is None:
            continue
        key = (
            agent.agent_id in chat.excluded_agents,
            RUNGS.index(rung),
            load >= agent.capacity,
            load,
            agent.idle_since,
            agent.agent_id,
        )
        ranked.append((key, agent, rung))
    ranked.sort(key=lambda item: item[0])
    return [(agent, rung) for _, agent, rung in ranked]


def plan(
    chats: Sequence[UrgentChat],
    agents: Sequence[AgentLoad],
    now: float,
    policy: UrgentPolicy = UrgentPolicy(),
) -> list[Step]:
    """One routing pass over the urgent chats (rules in the module doc), oldest first.
    Answered chats are left out. Loads change as chats are given, so the result is one
    consistent plan. Raises ValueError on a repeated conversation or agent id."""
    if math.isnan(now):
        raise ValueError("now is NaN")
    _unique((c.conversation_id for c in chats), "conversation_id")
    _unique((a.agent_id for a in agents), "agent_id")
    by_id = {a.agent_id: a for a in agents}
    active = {a.agent_id: a.active for a in agents}
    steps: list[Step] = []
    for chat in sorted(chats, key=lambda c: (c.since, c.conversation_id)):
        if not chat.waiting:
            continue
        steps.append(_step(chat, by_id, active, now, policy))
    return steps


def _step(
    chat: UrgentChat,
    by_id: dict[str, AgentLoad],
    active: dict[str, int],
    now: float,
    policy: UrgentPolicy,
) -> Step:
    due = chat.deadline(policy)
    overdue = now >= due
    holder = by_id.get(chat.agent_id) if chat.agent_id is not None else None
    held = holder is not None and holder.online
    if held and not overdue:
        return Step(chat.conversation_id, chat.agent_id, None, None, False, due, True, None)
    avoid = {chat.agent_id} if chat.agent_id is not None else set()
    found = candidates(chat, by_id.values(), active, policy, avoid=avoid)
    if found:
        agent, rung = found[0]
        if chat.agent_id is not None and chat.agent_id in active:
            active[chat.agent_id] -= 1
        active[agent.agent_id] += 1
        return Step(
            chat.conversation_id,
            agent.agent_id,
            chat.agent_id,
            rung,
            overdue,
            max(due, now + policy.escalate_s),
            True,
            "unanswered" if overdue else None,
        )
    if held:  # overdue, and nobody else: it stays; page, and try again a step later
        return Step(chat.conversation_id, chat.agent_id, None, None, True,
                    now + policy.escalate_s, True, "unanswered")  # fmt: skip
    # nobody online may take it: in the queue (a holder who left loses it), paged at once
    # for this wait, then every step
    moved_from = chat.agent_id
    if moved_from is not None and moved_from in active:
        active[moved_from] -= 1
    first = chat.paged_at is None or chat.paged_at < chat.since
    page = first or overdue
    next_due = now + policy.escalate_s if page else due
    return Step(chat.conversation_id, None, moved_from, None, page, next_due, False,
                "nobody_online" if page else None)  # fmt: skip


def staffed(chat: UrgentChat, agents: Iterable[AgentLoad], policy: UrgentPolicy) -> bool:
    """Whether someone on the ladder is online for `chat` (holding it or able to)."""
    agents = list(agents)
    if chat.agent_id is not None and any(a.agent_id == chat.agent_id and a.online for a in agents):
        return True
    return bool(candidates(chat, agents, None, policy))


# --- a person asks for a chat ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """A chat someone asks for: `chat.take` or `chat.assign`."""

    conversation_id: str
    status: str
    priority: str
    topic: str
    agent_id: str | None
    answered: bool
    since: float
    due_at: float | None = None

    @property
    def urgent(self) -> bool:
        return self.priority == "urgent"

    def deadline(self, policy: UrgentPolicy) -> float:
        return self.due_at if self.due_at is not None else self.since + policy.answer_s


def room(agent: AgentLoad, claim: Claim, policy: UrgentPolicy) -> bool:
    """Whether `agent` may hold one more chat like this one: below capacity, or in an
    urgent slot for an urgent chat."""
    cap = limit(agent, policy) if claim.urgent else agent.capacity
    return agent.active < cap


def take_refusal(
    claim: Claim, taker: AgentLoad | None, *, supervisor: bool, now: float, policy: UrgentPolicy
) -> HubError | None:
    """Why `taker` may not take the chat itself (`chat.take`), or None.

    A queued chat, or an urgent one whose holder let its deadline pass without a word
    (a supervisor: at any time before its first answer). The taker must be online with
    room (an urgent slot counts for an urgent chat); an urgent chat needs a person on
    the ladder (skilled, supervisor or security back-up), any other the chat's skill.
    Supervisors may always take, rung and skill aside.
    """
    if taker is None:
        return NotFound("no such agent: create it with `supporthub agent add`")
    if claim.status not in ("queued", "assigned"):
        return Conflict("the conversation is closed")
    if claim.status == "assigned":
        if claim.agent_id == taker.agent_id:
            return Conflict("the chat is already yours")
        if not claim.urgent or claim.answered:
            return Conflict("the chat is assigned; a supervisor can transfer it")
        if not supervisor and now < claim.deadline(policy):
            return Conflict("the chat is assigned and its agent still has time to answer")
    if not taker.online:
        return Conflict("go online to take a chat")
    if not room(taker, claim, policy):
        return Conflict("you have no free capacity for this chat")
    if supervisor:
        return None
    if claim.urgent:
        if rung_of(taker, claim.topic, taker.active, policy) is None:
            return Forbidden(
                "an urgent chat is taken by security agents, supervisors and security back-ups"
            )
        return None
    if claim.topic not in taker.skills:
        return Forbidden("the chat needs a skill you do not have")
    return None


def assign_refusal(claim: Claim, target: AgentLoad | None, policy: UrgentPolicy) -> HubError | None:
    """Why a supervisor may not give the queued chat to `target` (`chat.assign`), or
    None. Any agent online with room will do (an urgent slot counts for an urgent
    chat): the supervisor chose on purpose, skills aside."""
    if claim.status != "queued":
        if claim.status == "assigned":
            return Conflict("only a queued chat can be assigned; transfer an assigned one")
        return Conflict("the conversation is closed")
    if target is None:
        return NotFound("no such agent")
    if not target.online:
        return Conflict("that agent is not online")
    if not room(target, claim, policy):
        return Conflict("that agent has no free capacity")
    return None


# --- what the customer is told --------------------------------------------------------

NOTICE_TEXT = {
    "staffed": {
        "zh": "您的账户已受到保护：资金无法转出。安全专员将在{within}内与您联系，请留在此对话中。",
        "en": "Your account is protected: no money can leave it. A security specialist will "
        "contact you within {within}. Please stay in this chat.",
    },
    "unstaffed": {
        "zh": "您的账户已受到保护：资金无法转出。目前没有安全专员在线{alerted}。在此期间您的账户保持"
        "保护状态；专员接入后，您会在这里收到通知（如已开启通知，也会收到推送提醒）。",
        "en": "Your account is protected: no money can leave it. No security specialist is "
        "online right now{alerted}. Your account stays protected meanwhile, and you will be "
        "notified here (and by push notification, if you turned it on) as soon as one joins.",
    },
}
_ALERTED = {"zh": "，我们已通知值班团队", "en": "; we have alerted the on-call team"}


def within(seconds: float, lang: str) -> str:
    """ "a minute", "3 minutes" (rounded up), in the chat's language."""
    minutes = max(1, math.ceil(seconds / 60))
    if lang == "en":
        return "a minute" if minutes == 1 else f"{minutes} minutes"
    return "一分钟" if minutes == 1 else f"{minutes} 分钟"


def notice_text(notice: Notice, lang: str, *, policy: UrgentPolicy, oncall: bool) -> str:
    """The system message of a notice. `oncall`: a pager is configured, so a page did go
    out; without one the customer is not told that anyone was alerted."""
    lang = lang if lang in ("zh", "en") else "zh"
    text = NOTICE_TEXT[notice][lang]
    return text.format(
        within=within(policy.answer_s, lang), alerted=_ALERTED[lang] if oncall else ""
    )


def _unique(ids: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"duplicate {what} {item!r}")
        seen.add(item)
