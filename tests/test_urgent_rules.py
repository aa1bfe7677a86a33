"""The urgent ladder (hub.rules.urgent): one test per rule, then properties over generated
histories on a fake clock: agents come and go, chats arrive, nobody or somebody answers,
and a routing pass runs every `tick` seconds as the sweeper does."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.rules.routing import AgentLoad
from hub.rules.urgent import (
    Claim,
    UrgentChat,
    UrgentPolicy,
    assign_refusal,
    candidates,
    limit,
    notice_text,
    plan,
    rung_of,
    take_refusal,
)
from supporthub_core.errors import Conflict, Forbidden, NotFound

POLICY = UrgentPolicy(answer_s=60, escalate_s=30, extra_slots=1)


def agent(
    aid: str,
    skills: tuple[str, ...] = ("security",),
    capacity: int = 2,
    active: int = 0,
    online: bool = True,
    idle: float = 0.0,
    supervisor: bool = False,
    backup: bool = False,
) -> AgentLoad:
    return AgentLoad(aid, frozenset(skills), capacity, active, online, idle, supervisor, backup)


def urgent(cid: str = "c1", since: float = 0.0, **kw) -> UrgentChat:
    return UrgentChat(cid, "security", since, **kw)


def only(steps):
    [step] = steps
    return step


# --- the rungs ------------------------------------------------------------------------


def test_a_security_agent_with_room_first():
    step = only(
        plan(
            [urgent()],
            [agent("sec", active=1), agent("boss", skills=(), supervisor=True)],
            5,
            POLICY,
        )
    )
    assert (step.agent_id, step.rung, step.page, step.staffed) == ("sec", "skilled", False, True)
    assert step.due_at == 60  # the deadline from when it became urgent


def test_b_a_full_security_agent_takes_it_in_an_urgent_slot():
    agents = [agent("sec", capacity=2, active=2), agent("gen", skills=("payment",))]
    step = only(plan([urgent()], agents, 1, POLICY))
    assert (step.agent_id, step.rung) == ("sec", "urgent_slot")
    # ...but only `extra_slots` above capacity
    agents = [agent("sec", capacity=2, active=3)]
    assert only(plan([urgent()], agents, 1, POLICY)).agent_id is None


def test_room_beats_an_urgent_slot_and_skill_beats_supervisors():
    agents = [
        agent("full", capacity=1, active=1),
        agent("free", capacity=3, active=2, idle=9),
        agent("boss", skills=(), supervisor=True),
    ]
    assert only(plan([urgent()], agents, 0, POLICY)).agent_id == "free"
    agents = [agent("full", capacity=1, active=1), agent("boss", skills=(), supervisor=True)]
    assert only(plan([urgent()], agents, 0, POLICY)).agent_id == "full"


def test_c_supervisors_then_d_security_backups():
    away_sec = agent("sec", online=False)
    agents = [
        away_sec,
        agent("bk", skills=("payment",), backup=True),
        agent("boss", skills=(), supervisor=True),
    ]
    step = only(plan([urgent()], agents, 0, POLICY))
    assert (step.agent_id, step.rung) == ("boss", "supervisor")
    agents = [
        away_sec,
        agent("bk", skills=("payment",), backup=True),
        agent("plain", skills=("payment",)),
    ]
    step = only(plan([urgent()], agents, 0, POLICY))
    assert (step.agent_id, step.rung) == ("bk", "backup")


def test_a_supervisor_with_capacity_zero_still_has_the_urgent_slot():
    boss = agent("boss", skills=(), capacity=0, supervisor=True)
    assert rung_of(boss, "security", 0, POLICY) == "supervisor"
    assert rung_of(boss, "security", 1, POLICY) is None
    assert limit(boss, POLICY) == 1


def test_never_away_or_offline_nor_a_plain_agent():
    agents = [agent("sec", online=False), agent("boss", skills=(), supervisor=True, online=False),
              agent("plain", skills=("payment", "account"))]  # fmt: skip
    step = only(plan([urgent()], agents, 0, POLICY))
    assert step.agent_id is None and not step.staffed


# --- nobody, deadlines, pages ---------------------------------------------------------


def test_nobody_online_pages_at_once_then_every_step():
    step = only(plan([urgent(since=100)], [agent("sec", online=False)], 100, POLICY))
    assert (step.agent_id, step.page, step.reason, step.staffed) == (
        None,
        True,
        "nobody_online",
        False,
    )
    assert step.due_at == 130
    chat = urgent(since=100, due_at=130, paged_at=100)
    assert not only(plan([chat], [], 129, POLICY)).page
    again = only(plan([chat], [], 130, POLICY))
    assert again.page and again.due_at == 160


def test_someone_who_comes_online_gets_it_at_once_with_at_least_one_step_to_answer():
    chat = urgent(since=0, due_at=60, paged_at=30)
    step = only(plan([chat], [agent("sec")], 55, POLICY))
    assert (step.agent_id, step.page, step.due_at) == ("sec", False, 85)


def test_an_unanswered_chat_is_paged_and_offered_to_the_next_person_at_its_deadline():
    chat = urgent(agent_id="sec1")
    agents = [agent("sec1", active=1), agent("sec2"), agent("boss", skills=(), supervisor=True)]
    assert only(plan([chat], agents, 59.9, POLICY)).agent_id == "sec1"
    step = only(plan([chat], agents, 60, POLICY))
    assert (step.agent_id, step.moved_from, step.page, step.reason) == (
        "sec2",
        "sec1",
        True,
        "unanswered",
    )
    assert step.due_at == 90


def test_an_answered_chat_is_left_alone():
    chat = urgent(agent_id="sec1", answered=True)
    assert plan([chat], [agent("sec1", active=1), agent("sec2")], 1000, POLICY) == []


def test_with_nobody_else_the_holder_keeps_it_and_it_is_paged_every_step():
    chat = urgent(agent_id="sec1")
    step = only(plan([chat], [agent("sec1", active=1)], 61, POLICY))
    assert (step.agent_id, step.moved_from, step.page, step.due_at, step.staffed) == (
        "sec1",
        None,
        True,
        91,
        True,
    )


def test_a_holder_who_went_away_loses_it_at_once():
    chat = urgent(agent_id="sec1")
    agents = [agent("sec1", active=1, online=False), agent("boss", skills=(), supervisor=True)]
    step = only(plan([chat], agents, 10, POLICY))
    assert (step.agent_id, step.moved_from, step.page) == ("boss", "sec1", False)
    step = only(plan([chat], agents[:1], 10, POLICY))
    assert (step.agent_id, step.moved_from, step.page, step.staffed) == (None, "sec1", True, False)


def test_people_it_already_left_come_last():
    chat = urgent(agent_id="sec2", excluded_agents=frozenset({"sec1"}))
    agents = [agent("sec1"), agent("sec2", active=1), agent("bk", skills=(), backup=True)]
    assert only(plan([chat], agents, 60, POLICY)).agent_id == "bk"
    assert only(plan([chat], agents[:2], 60, POLICY)).agent_id == "sec1"


def test_loads_grow_within_a_pass():
    chats = [urgent("c1", 0), urgent("c2", 1), urgent("c3", 2)]
    steps = plan(chats, [agent("sec", capacity=1)], 3, POLICY)
    assert [s.agent_id for s in steps] == ["sec", "sec", None]
    assert [s.rung for s in steps] == ["skilled", "urgent_slot", None]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        plan([urgent("c"), urgent("c")], [], 0, POLICY)
    with pytest.raises(ValueError):
        plan([], [agent("a"), agent("a")], 0, POLICY)
    with pytest.raises(ValueError):
        UrgentPolicy(answer_s=0)
    with pytest.raises(ValueError):
        UrgentPolicy(extra_slots=-1)


# --- take and assign ------------------------------------------------------------------


def claim(**kw) -> Claim:
    base = dict(conversation_id="c1", status="queued", priority="urgent", topic="security",
                agent_id=None, answered=False, since=0.0)  # fmt: skip
    return Claim(**{**base, **kw})


def test_take_an_urgent_chat_when_on_the_ladder():
    ok = dict(supervisor=False, now=1, policy=POLICY)
    assert take_refusal(claim(), agent("sec", capacity=1, active=1), **ok) is None  # urgent slot
    assert take_refusal(claim(), agent("bk", skills=(), backup=True), **ok) is None
    refused = take_refusal(claim(), agent("plain", skills=("payment",)), **ok)
    assert isinstance(refused, Forbidden)
    assert isinstance(take_refusal(claim(), agent("sec", online=False), **ok), Conflict)
    assert isinstance(take_refusal(claim(), agent("sec", capacity=1, active=2), **ok), Conflict)
    assert isinstance(take_refusal(claim(), None, **ok), NotFound)


def test_supervisors_always_take_rung_and_skill_aside_but_online_with_room():
    boss = agent("boss", skills=(), capacity=1, active=1)
    assert take_refusal(claim(), boss, supervisor=True, now=0, policy=POLICY) is None
    assert take_refusal(claim(priority="normal", topic="payment"), agent("boss", skills=()),
                        supervisor=True, now=0, policy=POLICY) is None  # fmt: skip
    assert isinstance(
        take_refusal(claim(priority="normal"), boss, supervisor=True, now=0, policy=POLICY),
        Conflict,
    )
    held = claim(status="assigned", agent_id="sec")
    assert take_refusal(held, agent("boss"), supervisor=True, now=1, policy=POLICY) is None


def test_an_assigned_urgent_chat_can_be_taken_once_its_deadline_passed_unanswered():
    held = claim(status="assigned", agent_id="sec1")
    other = agent("sec2")
    assert isinstance(take_refusal(held, other, supervisor=False, now=59, policy=POLICY), Conflict)
    assert take_refusal(held, other, supervisor=False, now=60, policy=POLICY) is None
    answered = replace(held, answered=True)
    assert isinstance(
        take_refusal(answered, other, supervisor=True, now=99, policy=POLICY), Conflict
    )
    assert isinstance(
        take_refusal(held, agent("sec1"), supervisor=False, now=99, policy=POLICY), Conflict
    )
    normal = claim(status="assigned", agent_id="x", priority="normal")
    assert isinstance(take_refusal(normal, other, supervisor=True, now=99, policy=POLICY), Conflict)


def test_take_a_normal_chat_needs_its_skill_and_room_below_capacity():
    chat = claim(priority="high", topic="payment")
    assert (
        take_refusal(chat, agent("p", skills=("payment",)), supervisor=False, now=0, policy=POLICY)
        is None
    )
    assert isinstance(
        take_refusal(chat, agent("s"), supervisor=False, now=0, policy=POLICY), Forbidden
    )
    full = agent("p", skills=("payment",), capacity=1, active=1)
    assert isinstance(take_refusal(chat, full, supervisor=False, now=0, policy=POLICY), Conflict)


def test_assign_to_an_online_agent_with_room_only():
    assert assign_refusal(claim(), agent("plain", skills=("payment",)), POLICY) is None
    assert (
        assign_refusal(claim(), agent("sec", capacity=1, active=1), POLICY) is None
    )  # urgent slot
    assert isinstance(assign_refusal(claim(), agent("x", online=False), POLICY), Conflict)
    assert isinstance(assign_refusal(claim(), None, POLICY), NotFound)
    assert isinstance(
        assign_refusal(claim(priority="normal"), agent("sec", capacity=1, active=1), POLICY),
        Conflict,
    )
    assert isinstance(
        assign_refusal(claim(status="assigned", agent_id="a"), agent("b"), POLICY), Conflict
    )
    assert isinstance(assign_refusal(claim(status="closed"), agent("b"), POLICY), Conflict)


# --- the customer's texts -------------------------------------------------------------


def test_the_texts_say_what_is_true():
    staffed = notice_text("staffed", "en", policy=POLICY, oncall=True)
    assert "no money can leave it" in staffed and "within a minute" in staffed
    nobody = notice_text("unstaffed", "en", policy=POLICY, oncall=True)
    assert "No security specialist is online right now" in nobody
    assert "alerted the on-call team" in nobody and "next" not in nobody and "minute" not in nobody
    assert "alerted" not in notice_text("unstaffed", "en", policy=POLICY, oncall=False)
    assert "值班团队" in notice_text("unstaffed", "zh", policy=POLICY, oncall=True)
    assert "一分钟" in notice_text("staffed", "zh", policy=POLICY, oncall=False)
    assert "3 minutes" in notice_text(
        "staffed", "en", policy=UrgentPolicy(answer_s=150), oncall=False
    )


# --- properties on a fake clock -------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class SimAgent:
    agent_id: str
    skills: frozenset[str]
    capacity: int
    normal: int  # non-urgent chats it holds (the normal router stops at capacity)
    supervisor: bool
    backup: bool
    online: bool
    answers_after: float | None  # seconds it takes to answer an urgent chat; None: never


@dataclass
class SimChat:
    cid: str
    since: float
    agent_id: str | None = None
    given_at: float | None = None
    answered: bool = False
    due_at: float | None = None
    paged_at: float | None = None
    excluded: set[str] = field(default_factory=set)
    pages: list[float] = field(default_factory=list)


agent_spec = st.tuples(
    st.frozensets(st.sampled_from(["security", "payment"])),
    st.integers(0, 3),  # capacity
    st.integers(0, 3),  # normal load (capped at capacity)
    st.booleans(),  # supervisor
    st.booleans(),  # security back-up
    st.booleans(),  # online at the start
    st.one_of(st.none(), st.floats(0, 120)),  # answers after
)
policies = st.builds(
    UrgentPolicy,
    answer_s=st.sampled_from([1.0, 10.0, 60.0]),
    escalate_s=st.sampled_from([1.0, 5.0, 30.0]),
    extra_slots=st.integers(0, 2),
)


def build_agents(specs) -> list[SimAgent]:
    out = []
    for i, (skills, cap, normal, sup, backup, online, answers) in enumerate(specs):
        out.append(SimAgent(f"a{i}", skills, cap, min(normal, cap), sup, backup, online, answers))
    return out


def loads(agents: list[SimAgent], chats: list[SimChat]) -> list[AgentLoad]:
    held: dict[str, int] = {}
    for c in chats:
        if c.agent_id is not None:
            held[c.agent_id] = held.get(c.agent_id, 0) + 1
    return [
        AgentLoad(
            a.agent_id,
            a.skills,
            a.capacity,
            a.normal + held.get(a.agent_id, 0),
            a.online,
            0.0,
            a.supervisor,
            a.backup,
        )  # fmt: skip
        for a in agents
    ]


def as_urgent(c: SimChat) -> UrgentChat:
    return UrgentChat(c.cid, "security", c.since, c.agent_id, c.answered, c.due_at, c.paged_at,
                      frozenset(c.excluded))  # fmt: skip


def run_pass(chats: list[SimChat], agents: list[SimAgent], now: float, policy: UrgentPolicy):
    """One routing pass: plan, check the step-level rules, apply."""
    before = {a.agent_id: a for a in loads(agents, chats)}
    by_cid = {c.cid: c for c in chats}
    steps = plan([as_urgent(c) for c in chats], list(before.values()), now, policy)
    for step in steps:
        chat = by_cid[step.conversation_id]
        if step.given:
            # never given to someone who is not online
            assert before[step.agent_id].online, step
        if step.moved_from is not None:
            chat.excluded.add(step.moved_from)
        if step.agent_id != chat.agent_id:
            chat.given_at = now if step.agent_id is not None else None
        chat.agent_id = step.agent_id
        chat.due_at = step.due_at
        if step.page:
            chat.paged_at = now
            chat.pages.append(now)
        # the next deadline is always ahead: a pass never leaves one behind
        assert step.due_at > now, step
    after = loads(agents, chats)
    for a in after:
        # capacity: the urgent slots at most, never for normal chats
        gained = a.active - before[a.agent_id].active
        if gained > 0:
            assert a.active <= limit(a, policy), (a, policy)
        assert a.active - sum(c.agent_id == a.agent_id for c in chats) <= a.capacity
    # nobody eligible is left idle while an urgent chat has no online holder
    online_holder = {a.agent_id for a in after if a.online}
    for c in chats:
        if not c.answered and c.agent_id not in online_holder:
            loads_now = {a.agent_id: a.active for a in after}
            assert candidates(as_urgent(c), after, loads_now, policy) == [], (c, after)
    return steps


def answer_some(chats: list[SimChat], agents: list[SimAgent], now: float) -> None:
    by_id = {a.agent_id: a for a in agents}
    for c in chats:
        if c.answered or c.agent_id is None or c.given_at is None:
            continue
        a = by_id[c.agent_id]
        if a.online and a.answers_after is not None and now - c.given_at >= a.answers_after:
            c.answered = True


@settings(max_examples=150, deadline=None)
@given(
    specs=st.lists(agent_spec, min_size=0, max_size=5),
    arrivals=st.lists(st.floats(0, 200), min_size=1, max_size=4),
    churn=st.lists(st.tuples(st.floats(0, 300), st.integers(0, 4), st.booleans()), max_size=8),
    policy=policies,
    tick=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_ladder_invariants_under_churn(specs, arrivals, churn, policy, tick):
    """Agents come and go, chats arrive, some agents answer, some never: never away or
    offline, never above capacity + urgent slots, nobody eligible left idle, and each
    chat's deadline always ahead of the clock."""
    clock = FakeClock()
    agents = build_agents(specs)
    chats: list[SimChat] = []
    pending = sorted(arrivals)
    events = sorted(churn)
    while clock.now < 400:
        while pending and pending[0] <= clock.now:
            chats.append(SimChat(f"c{len(chats)}", pending.pop(0)))
        while events and events[0][0] <= clock.now:
            _, who, online = events.pop(0)
            if agents:
                agents[who % len(agents)].online = online
        answer_some(chats, agents, clock.now)
        run_pass(chats, agents, clock.now, policy)
        clock.advance(tick)


@settings(max_examples=150, deadline=None)
@given(
    specs=st.lists(agent_spec, min_size=1, max_size=5),
    arrivals=st.lists(st.floats(0, 100), min_size=1, max_size=4),
    policy=policies,
    tick=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_no_chat_waits_past_its_deadline_plus_one_step(specs, arrivals, policy, tick):
    """With the same people online throughout and nobody ever answering (the worst case):
    a chat is held by an online person from the first pass whenever anyone is eligible
    (run_pass); it is paged by its deadline plus one escalation step, then again at least
    every two steps; and a holder who does not answer loses it to anyone else who could
    take it by the deadline plus one step (checked while one chat waits: several chats
    may compete for the same free person in one pass)."""
    clock = FakeClock()
    agents = [replace(a, answers_after=None) for a in build_agents(specs)]
    chats: list[SimChat] = []
    pending = sorted(arrivals)
    step = policy.escalate_s
    while clock.now < 300:
        while pending and pending[0] <= clock.now:
            pending.pop(0)
            chats.append(SimChat(f"c{len(chats)}", clock.now))  # opened at this pass
        # a holder past the deadline plus one step, with someone else who could take it
        # (with one chat: several may compete for the same free person within a pass)
        due_to_move = {}
        current = loads(agents, chats)
        for c in chats if len(chats) == 1 else ():
            if c.agent_id is not None and c.given_at is not None:
                # given (or paged and kept) at `last`: re-offered one step later at most
                last = max(c.given_at, c.paged_at if c.paged_at is not None else c.given_at)
                bound = max(c.since + policy.answer_s, last + step)
                others = candidates(as_urgent(c), current, None, policy, avoid={c.agent_id})
                if clock.now >= bound and others:
                    due_to_move[c.cid] = c.agent_id
        run_pass(chats, agents, clock.now, policy)
        for c in chats:
            if c.cid in due_to_move:
                assert c.agent_id != due_to_move[c.cid], (c, policy, clock.now)
        clock.advance(tick)
    for c in chats:
        first = c.pages[0] if c.pages else None
        assert first is not None, c  # nobody answers: it must have been paged
        assert first <= c.since + policy.answer_s + step + tick, (c, policy)
        for earlier, later in zip(c.pages, c.pages[1:], strict=False):
            assert later - earlier <= 2 * step + tick, (c, policy)


@settings(max_examples=100, deadline=None)
@given(specs=st.lists(agent_spec, min_size=1, max_size=5), policy=policies)
def test_one_pass_is_one_consistent_plan(specs, policy):
    """Inputs in any order give the same steps; loads after a pass respect the limits."""
    agents = loads(build_agents(specs), [])
    chats = [urgent(f"c{i}", since=float(i)) for i in range(4)]
    a = plan(chats, agents, 10, policy)
    b = plan(list(reversed(chats)), list(reversed(agents)), 10, policy)
    assert a == b
    got: dict[str, int] = {}
    for s in a:
        if s.agent_id:
            got[s.agent_id] = got.get(s.agent_id, 0) + 1
    for ag in agents:
        if got.get(ag.agent_id):
            assert ag.online and ag.active + got[ag.agent_id] <= limit(ag, policy)


@settings(max_examples=300, deadline=None)
@given(
    spec=agent_spec,
    active=st.integers(0, 6),
    status=st.sampled_from(["queued", "assigned", "resolved"]),
    priority=st.sampled_from(["urgent", "high", "normal"]),
    topic=st.sampled_from(["security", "payment"]),
    holder=st.sampled_from([None, "a0", "other"]),
    answered=st.booleans(),
    supervisor=st.booleans(),
    now=st.floats(0, 200),
    policy=policies,
)
def test_take_and_assign_never_break_the_ladder_limits(
    spec, active, status, priority, topic, holder, answered, supervisor, now, policy
):
    """Whatever the chat and whoever asks: a take or an assignment that is allowed goes to
    someone online, below capacity (plus the urgent slots for an urgent chat only), and
    never takes an answered chat from its holder."""
    skills, cap, _, sup, backup, online, _ = spec
    person = AgentLoad("a0", skills, cap, active, online, 0.0, sup, backup)
    chat = claim(status=status, priority=priority, topic=topic,
                 agent_id=holder if status == "assigned" else None, answered=answered)  # fmt: skip
    bound = limit(person, policy) if priority == "urgent" else cap
    for refusal in (
        take_refusal(chat, person, supervisor=supervisor, now=now, policy=policy),
        assign_refusal(chat, person, policy),
    ):
        if refusal is None:
            assert person.online and person.active < bound
            assert status in ("queued", "assigned")
            if status == "assigned":
                assert priority == "urgent" and not answered and holder != "a0"
