"""The pure routing core: one test per rule, then properties over random queues and agents."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.rules.routing import (
    PRIORITY_RANK,
    TOPICS,
    AgentLoad,
    Assignment,
    QueuedChat,
    can_take,
    estimate_wait_s,
    pick_agent_for_transfer,
    plan,
    priority_for_topic,
    queue_order,
    queue_positions,
    relax_exclusions,
    requeued,
)


def chat(
    cid: str,
    topic: str = "payment",
    priority: str = "normal",
    at: float = 0.0,
    preferred: str | None = None,
    excluded: frozenset[str] = frozenset(),
) -> QueuedChat:
    return QueuedChat(cid, topic, priority, at, preferred, excluded)  # type: ignore[arg-type]


def agent(
    aid: str,
    skills: tuple[str, ...] = ("payment",),
    capacity: int = 1,
    active: int = 0,
    online: bool = True,
    idle: float = 0.0,
) -> AgentLoad:
    return AgentLoad(aid, frozenset(skills), capacity, active, online, idle)


def as_map(assignments: list[Assignment]) -> dict[str, str]:
    return {a.conversation_id: a.agent_id for a in assignments}


# --- plain rules ------------------------------------------------------------------------


def test_priority_for_topic() -> None:
    assert priority_for_topic("payment") == "high"
    assert priority_for_topic("arrival") == "high"
    for topic in ("account", "security", "technical", "feedback", "other", "unknown"):
        assert priority_for_topic(topic) == "normal"


def test_queue_order_priority_then_fifo_then_id() -> None:
    q = [
        chat("n1", priority="normal", at=1),
        chat("h2", priority="high", at=5),
        chat("u1", priority="urgent", at=9),
        chat("h1b", priority="high", at=2),
        chat("h1a", priority="high", at=2),
    ]
    assert [c.conversation_id for c in queue_order(q)] == ["u1", "h1a", "h1b", "h2", "n1"]


def test_bad_priority_and_nan_rejected() -> None:
    with pytest.raises(ValueError):
        chat("c", priority="asap")
    with pytest.raises(ValueError):
        chat("c", at=float("nan"))


def test_excluded_agents_coerced_to_frozenset() -> None:
    c = QueuedChat("c", "payment", "normal", 0.0, excluded_agents={"a"})  # type: ignore[arg-type]
    assert c.excluded_agents == frozenset({"a"})
    hash(c)


def test_duplicates_rejected() -> None:
    with pytest.raises(ValueError):
        plan([chat("c"), chat("c", at=1)], [agent("a")])
    with pytest.raises(ValueError):
        plan([chat("c")], [agent("a"), agent("a")])


def test_assigns_in_queue_order_to_skilled_online_agent_with_room() -> None:
    agents = [
        agent("off", online=False),
        agent("noskill", skills=("security",)),
        agent("full", capacity=2, active=2),
        agent("ok"),
    ]
    assert plan([chat("c")], agents) == [Assignment("c", "ok")]


def test_capacity_zero_or_negative_gets_nothing() -> None:
    assert plan([chat("c")], [agent("z", capacity=0), agent("n", capacity=-1)]) == []


def test_agent_over_capacity_gets_nothing() -> None:
    assert plan([chat("c")], [agent("a", capacity=1, active=3)]) == []


def test_never_fills_above_capacity_within_one_plan() -> None:
    q = [chat(f"c{i}", at=i) for i in range(5)]
    result = plan(q, [agent("a", capacity=2)])
    assert [a.conversation_id for a in result] == ["c0", "c1"]


def test_least_active_first() -> None:
    agents = [agent("a", capacity=5, active=2), agent("b", capacity=2, active=1)]
    assert plan([chat("c")], agents) == [Assignment("c", "b")]


def test_then_lowest_ratio() -> None:
    agents = [agent("a", capacity=2, active=1), agent("b", capacity=4, active=1)]
    assert plan([chat("c")], agents) == [Assignment("c", "b")]


def test_then_longest_idle_then_id() -> None:
    agents = [agent("a", idle=50), agent("b", idle=10), agent("c", idle=10)]
    assert plan([chat("x")], agents) == [Assignment("x", "b")]


def test_spreads_load_and_agent_that_just_got_a_chat_counts_as_busiest() -> None:
    # x1 -> a (active 0). Then a and b both have active 1; b has been idle longer than
    # a, which just got a chat, so x2 -> b although a's idle_since is older.
    agents = [agent("a", capacity=3, idle=1), agent("b", capacity=3, active=1, idle=5)]
    q = [chat("x1", at=1), chat("x2", at=2), chat("x3", at=3)]
    assert as_map(plan(q, agents)) == {"x1": "a", "x2": "b", "x3": "a"}


def test_preferred_agent_first_when_eligible() -> None:
    agents = [agent("idle"), agent("prev", capacity=3, active=2, idle=99)]
    assert plan([chat("c", preferred="prev")], agents) == [Assignment("c", "prev")]


@pytest.mark.parametrize(
    "prev",
    [
        agent("prev", active=1),  # full
        agent("prev", online=False),
        agent("prev", skills=("security",)),
    ],
)
def test_preferred_agent_not_eligible_never_makes_chat_wait(prev: AgentLoad) -> None:
    assert plan([chat("c", preferred="prev")], [prev, agent("other")]) == [Assignment("c", "other")]


def test_excluded_beats_preferred() -> None:
    c = chat("c", preferred="a", excluded=frozenset({"a"}))
    assert plan([c], [agent("a"), agent("b", active=0, idle=9)]) == [Assignment("c", "b")]
    assert plan([c], [agent("a")]) == []


def test_no_head_of_line_blocking_across_skills() -> None:
    q = [chat("sec", topic="security", priority="urgent"), chat("pay", at=5)]
    assert plan(q, [agent("a")]) == [Assignment("pay", "a")]


def test_fifo_within_skill() -> None:
    q = [chat("late", at=5), chat("early", at=1)]
    assert plan(q, [agent("a")]) == [Assignment("early", "a")]


def test_priority_within_skill() -> None:
    q = [chat("old-normal", at=0), chat("new-urgent", priority="urgent", at=100)]
    assert plan(q, [agent("a")]) == [Assignment("new-urgent", "a")]


def test_exclusion_lets_a_later_chat_of_the_same_skill_go_first() -> None:
    q = [chat("moved", at=0, excluded=frozenset({"a"})), chat("next", at=1)]
    assert plan(q, [agent("a")]) == [Assignment("next", "a")]


def test_greedy_not_maximum_matching_documented_case() -> None:
    # A can do both, B only payment; the payment chat comes first and A is less busy.
    agents = [agent("A", skills=("payment", "security")), agent("B", active=0, idle=5)]
    q = [chat("pay", at=0), chat("sec", topic="security", at=1)]
    assert plan(q, agents) == [Assignment("pay", "A")]


def test_empty_inputs() -> None:
    assert plan([], [agent("a")]) == []
    assert plan([chat("c")], []) == []
    assert queue_positions([]) == {}


def test_queue_positions() -> None:
    q = [
        chat("n", at=0),
        chat("s", topic="security", priority="urgent", at=5),
        chat("p", priority="high", at=3),
        chat("s2", topic="security", at=1),
    ]
    assert queue_positions(q) == {"s": 1, "p": 2, "n": 3, "s2": 4}
    assert queue_positions(q, by_topic=True) == {"s": 1, "p": 1, "n": 2, "s2": 2}


def test_estimate_wait_s() -> None:
    agents = [
        agent("a", capacity=2),
        agent("b", capacity=2, active=2),
        agent("off", capacity=5, online=False),
        agent("other", skills=("security",), capacity=5),
    ]
    # 4 slots for payment: each frees about once per 120 s.
    assert estimate_wait_s(1, agents, "payment", 120) == 30
    assert estimate_wait_s(6, agents, "payment", 120) == 180
    assert estimate_wait_s(3, agents, "payment", 100) == 75
    # No online agent with the skill: still a finite number.
    assert estimate_wait_s(3, agents, "arrival", 100) == 300
    assert estimate_wait_s(0, agents, "payment", 100) == 0
    assert estimate_wait_s(2, agents, "payment", 0) == 0
    with pytest.raises(ValueError):
        estimate_wait_s(1, agents, "payment", float("inf"))
    with pytest.raises(ValueError):
        estimate_wait_s(1, agents, "payment", -1)


def test_pick_agent_for_transfer() -> None:
    c = chat("c", topic="security", excluded=frozenset({"x"}))
    agents = [agent("ok"), agent("full", active=1), agent("off", online=False), agent("x")]
    assert pick_agent_for_transfer(c, agents, "ok") == "ok"  # skill not required
    assert pick_agent_for_transfer(c, agents, "full") is None
    assert pick_agent_for_transfer(c, agents, "off") is None
    assert pick_agent_for_transfer(c, agents, "x") is None
    assert pick_agent_for_transfer(c, agents, "ghost") is None


def test_requeued() -> None:
    c = chat("c", topic="payment", priority="high", at=7, preferred="a")
    moved = requeued(c, "a", to_topic="technical")
    assert moved == chat("c", "technical", "high", 7, None, frozenset({"a"}))
    assert requeued(chat("c", "other", "normal"), "b", to_topic="arrival").priority == "high"
    assert requeued(chat("c", priority="urgent"), "b").priority == "urgent"
    assert requeued(c, "z").preferred_agent == "a"


def test_can_take() -> None:
    c = chat("c", excluded=frozenset({"x"}))
    assert can_take(agent("a"), c)
    assert not can_take(agent("a"), c, active=1)
    assert not can_take(agent("x"), c)
    assert not can_take(agent("a", capacity=0), c)


# --- properties -------------------------------------------------------------------------

SOME_TOPICS = TOPICS[:3]  # few topics and agents, so that chats compete for the same ones
AGENT_IDS = [f"a{i}" for i in range(6)]


# Small value pools drawn with sampled_from keep generation cheap (the whole file runs in
# a few seconds) while still covering empty, single and overlapping sets.
SKILL_SETS = [frozenset(s) for r in range(4) for s in itertools.combinations(SOME_TOPICS, r)]
EXCLUSIONS = [
    *[frozenset()] * 4,
    *(frozenset({a}) for a in AGENT_IDS),
    *(frozenset(pair) for pair in itertools.combinations(AGENT_IDS[:3], 2)),
    frozenset(AGENT_IDS),
]
PREFERENCES: list[str | None] = [None, None, None, *AGENT_IDS]

agent_fields = st.tuples(
    st.sampled_from(SKILL_SETS),
    st.integers(-1, 4),  # capacity
    st.integers(0, 5),  # active, may exceed capacity (capacity lowered by a supervisor)
    st.booleans(),  # online
    st.integers(0, 5),  # idle_since, small so that ties happen
)
agents_st = st.lists(agent_fields, max_size=len(AGENT_IDS)).map(
    lambda rows: [AgentLoad(AGENT_IDS[i], *row) for i, row in enumerate(rows)]
)
chat_fields = st.tuples(
    st.sampled_from(SOME_TOPICS),
    st.sampled_from(list(PRIORITY_RANK)),
    st.integers(0, 10),  # enqueued_at, small so that ties happen
    st.sampled_from(PREFERENCES),
    st.sampled_from(EXCLUSIONS),
)
queue_st = st.lists(chat_fields, max_size=25).map(
    lambda rows: [QueuedChat(f"c{i:02d}", *row) for i, row in enumerate(rows)]
)


def final_loads(agents: list[AgentLoad], result: list[Assignment]) -> dict[str, int]:
    active = {a.agent_id: a.active for a in agents}
    for a in result:
        active[a.agent_id] += 1
    return active


@settings(max_examples=300, deadline=None)
@given(queue_st, agents_st)
def test_plan_invariants(queue: list[QueuedChat], agents: list[AgentLoad]) -> None:
    result = plan(queue, agents)
    chats = {c.conversation_id: c for c in queue}
    by_id = {a.agent_id: a for a in agents}
    assigned = as_map(result)

    # No conversation twice, only known chats and agents.
    assert len(assigned) == len(result)
    assert set(assigned) <= set(chats)

    # Replay in returned (= queue) order: every step is a legal choice, and the choice
    # is the preferred agent when it could take the chat, else the least busy one.
    order = {c.conversation_id: i for i, c in enumerate(queue_order(queue))}
    assert [order[a.conversation_id] for a in result] == sorted(
        order[a.conversation_id] for a in result
    )
    active = {a.agent_id: a.active for a in agents}
    got_at: dict[str, int] = {}
    for step, a in enumerate(result):
        c, ag = chats[a.conversation_id], by_id[a.agent_id]
        assert ag.online and ag.capacity > 0
        assert c.topic in ag.skills
        assert ag.agent_id not in c.excluded_agents
        assert active[ag.agent_id] < ag.capacity
        eligible = [x for x in agents if can_take(x, c, active=active[x.agent_id])]
        pref = by_id.get(c.preferred_agent or "")
        if pref is not None and pref in eligible:
            assert ag.agent_id == pref.agent_id
        else:

            def key(x: AgentLoad) -> tuple[object, ...]:
                n = active[x.agent_id]
                return (n, n / x.capacity, got_at.get(x.agent_id, -1), x.idle_since, x.agent_id)

            assert ag == min(eligible, key=key)
        active[ag.agent_id] += 1
        got_at[ag.agent_id] = step

    # Never above capacity (an agent already over it got nothing).
    for aid, n in final_loads(agents, result).items():
        added = n - by_id[aid].active
        assert added <= max(0, by_id[aid].capacity - by_id[aid].active)

    # No starvation while capacity exists: nobody could still take a waiting chat.
    loads = final_loads(agents, result)
    waiting = [c for c in queue if c.conversation_id not in assigned]
    for c in waiting:
        assert not any(can_take(x, c, active=loads[x.agent_id]) for x in agents)

    # Priority and FIFO within a skill: a later chat of the same topic went ahead of a
    # waiting one only to an agent the waiting one excludes.
    for c in waiting:
        for cid, aid in assigned.items():
            d = chats[cid]
            if d.topic == c.topic and d.order_key > c.order_key:
                assert aid in c.excluded_agents, (c, d, aid)


@settings(max_examples=300, deadline=None)
@given(queue_st, agents_st, st.randoms(use_true_random=False))
def test_plan_is_deterministic_and_order_independent(
    queue: list[QueuedChat], agents: list[AgentLoad], rnd: random.Random
) -> None:
    first = plan(queue, agents)
    assert plan(queue, agents) == first
    q2, a2 = list(queue), list(agents)
    rnd.shuffle(q2)
    rnd.shuffle(a2)
    assert plan(q2, a2) == first


@settings(max_examples=300, deadline=None)
@given(queue_st, agents_st)
def test_all_chats_served_when_anyone_can_take_them(
    queue: list[QueuedChat], agents: list[AgentLoad]
) -> None:
    # With unconstrained chats of one topic, exactly min(chats, free slots) are served,
    # and they are the first ones in queue order.
    queue = [QueuedChat(c.conversation_id, "payment", c.priority, c.enqueued_at) for c in queue]
    slots = sum(a.free for a in agents if a.capacity > 0 and "payment" in a.skills)
    result = plan(queue, agents)
    expected = [c.conversation_id for c in queue_order(queue)][: min(len(queue), slots)]
    assert [a.conversation_id for a in result] == expected


@settings(max_examples=300, deadline=None)
@given(queue_st, st.randoms(use_true_random=False))
def test_queue_positions_are_1_to_n_in_order(queue: list[QueuedChat], rnd: random.Random) -> None:
    positions = queue_positions(queue)
    assert [positions[c.conversation_id] for c in queue_order(queue)] == list(
        range(1, len(queue) + 1)
    )
    shuffled = list(queue)
    rnd.shuffle(shuffled)
    assert queue_positions(shuffled) == positions
    per_topic = queue_positions(queue, by_topic=True)
    for topic in SOME_TOPICS:
        ordered = [c for c in queue_order(queue) if c.topic == topic]
        assert [per_topic[c.conversation_id] for c in ordered] == list(range(1, len(ordered) + 1))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-2, 500),
    agents_st,
    st.sampled_from(SOME_TOPICS),
    st.floats(0, 3600, allow_nan=False),
)
def test_estimate_wait_is_finite_non_negative_and_monotone(
    position: int, agents: list[AgentLoad], topic: str, handle: float
) -> None:
    eta = estimate_wait_s(position, agents, topic, handle)
    assert isinstance(eta, int) and eta >= 0
    assert estimate_wait_s(position + 1, agents, topic, handle) >= eta
    if position >= 1:
        assert eta <= position * handle + 1


def test_exclusions_relax_when_they_cover_every_skilled_online_agent():
    alice = AgentLoad(
        "alice", frozenset({"payment"}), capacity=2, active=0, online=True, idle_since=0
    )
    bob = AgentLoad("bob", frozenset({"payment"}), capacity=2, active=0, online=True, idle_since=1)
    carol = AgentLoad(
        "carol", frozenset({"payment"}), capacity=2, active=0, online=False, idle_since=2
    )
    both = QueuedChat("c1", "payment", "high", 0.0, excluded_agents=frozenset({"alice", "bob"}))
    one = QueuedChat("c2", "payment", "high", 1.0, excluded_agents=frozenset({"alice"}))
    relaxed = relax_exclusions([both, one], [alice, bob, carol])
    assert relaxed[0].excluded_agents == frozenset()  # carol is offline: nobody else exists
    assert relaxed[1].excluded_agents == frozenset({"alice"})  # bob can take it
    assert {a.conversation_id for a in plan(relaxed, [alice, bob, carol])} == {"c1", "c2"}
