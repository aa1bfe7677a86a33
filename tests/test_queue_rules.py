"""The pure queue, opening-hours and service-level rules, on a fake clock."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.rules import hours as hours_rule
from hub.rules import queue as q
from hub.rules import sla
from hub.rules.routing import TOPICS, AgentLoad


def agent(aid: str, skills: set[str], cap: int = 2, online: bool = True) -> AgentLoad:
    return AgentLoad(aid, frozenset(skills), cap, 0, online, 0.0)


def w(cid: str, user: str, topic: str = "payment", prio: str = "normal", at: float = 0.0):
    return q.Waiting(cid, user, topic, prio, at)


# --- the defects testers saw ----------------------------------------------------------------


def test_customers_on_different_topics_of_one_team_share_one_line() -> None:
    # three customers, three topics, the same agents: not three "you are next"
    staff = [agent("a", {"payment", "account", "arrival"})]
    waiting = [w("c1", "u1", "payment", at=1), w("c2", "u2", "account", at=2),
               w("c3", "u3", "arrival", at=3)]  # fmt: skip
    got = q.places(waiting, staff)
    assert [got[c].position for c in ("c1", "c2", "c3")] == [1, 2, 3]


def test_a_customers_own_earlier_chat_is_not_ahead_of_them() -> None:
    staff = [agent("a", {"payment"})]
    waiting = [w("mine-1", "u1", at=1), w("mine-2", "u1", at=2), w("other", "u2", at=3)]
    got = q.places(waiting, staff)
    assert got["mine-1"].position == got["mine-2"].position == 1
    assert got["other"].position == 2


def test_separate_teams_have_separate_lines() -> None:
    staff = [agent("a", {"payment"}), agent("s", {"security"})]
    waiting = [w("p", "u1", "payment", at=1), w("s", "u2", "security", at=2)]
    got = q.places(waiting, staff)
    assert got["p"].position == got["s"].position == 1
    assert got["p"].pool == "payment" and got["s"].pool == "security"


def test_eta_follows_measured_handle_times_and_is_none_with_nobody_online() -> None:
    staff = [agent("a", {"payment"}, cap=2), agent("b", {"payment"}, cap=1)]
    handle = {"a": 600.0, "b": 300.0}
    # rate = 2/600 + 1/300 = 1/150 chats a second
    assert q.eta_s(1, "payment", staff, handle, 180) == 150
    assert q.eta_s(3, "payment", staff, handle, 180) == 450
    assert q.eta_s(1, "payment", [agent("a", {"payment"}, online=False)], handle, 180) is None
    assert q.eta_s(1, "security", staff, handle, 180) is None


def test_handle_time_estimate_is_pulled_towards_the_default_while_samples_are_few() -> None:
    assert q.handle_time_estimate([], 180) == 180
    assert q.handle_time_estimate([60], 180, prior_weight=3) == pytest.approx(150)
    many = q.handle_time_estimate([60] * 100, 180, prior_weight=3)
    assert 60 < many < 64


def test_eta_error() -> None:
    err = q.eta_error([(60, 90), (120, 60)])
    assert err.count == 2 and err.mean_abs_s == 45 and err.bias_s == -15
    assert q.eta_error([]).mean_abs_s is None


# --- properties -----------------------------------------------------------------------------

skills_st = st.frozensets(st.sampled_from(TOPICS), min_size=1, max_size=3)
agents_st = st.lists(
    st.builds(
        lambda i, s, cap, on: AgentLoad(f"a{i}", s, cap, 0, on, 0.0),
        st.integers(0, 1000),
        skills_st,
        st.integers(0, 4),
        st.booleans(),
    ),
    max_size=6,
    unique_by=lambda a: a.agent_id,
)
waiting_st = st.lists(
    st.builds(
        q.Waiting,
        st.uuids().map(lambda u: u.hex[:8]),
        st.sampled_from(["u1", "u2", "u3", "u4", "u5", "u6"]),
        st.sampled_from(TOPICS),
        st.sampled_from(["urgent", "high", "normal"]),
        st.floats(0, 1000, allow_nan=False),
    ),
    max_size=25,
    unique_by=lambda c: c.conversation_id,
)


@given(waiting_st, agents_st, st.randoms())
def test_places_are_a_permutation_per_pool_in_priority_then_wait_order(
    waiting: list[q.Waiting], agents: list[AgentLoad], rnd: random.Random
) -> None:
    got = q.places(waiting, agents)
    shuffled = list(waiting)
    rnd.shuffle(shuffled)
    assert q.places(shuffled, agents) == got  # independent of input order
    by_pool: dict[str, dict[str, int]] = {}
    for chat in waiting:
        place = got[chat.conversation_id]
        seen = by_pool.setdefault(place.pool, {})
        # one place per customer in a pool
        assert seen.setdefault(chat.user_id, place.position) == place.position
    for pool, customers in by_pool.items():
        assert sorted(customers.values()) == list(range(1, len(customers) + 1))
        assert all(got[c.conversation_id].size == len(customers)
                   for c in waiting if got[c.conversation_id].pool == pool)  # fmt: skip
    # a customer ahead of another has a chat that comes first in service order, and no
    # chat of one's own is ever counted ahead
    for a in waiting:
        for b in waiting:
            pa, pb = got[a.conversation_id], got[b.conversation_id]
            if pa.pool != pb.pool:
                continue
            if a.user_id == b.user_id:
                assert pa.position == pb.position
            elif pa.position < pb.position:
                first_b = min(
                    c.order_key
                    for c in waiting
                    if c.user_id == b.user_id
                    and got[c.conversation_id].pool == pb.pool  # fmt: skip
                )
                assert any(c.order_key < first_b for c in waiting
                           if c.user_id == a.user_id and got[c.conversation_id].pool == pa.pool)  # fmt: skip


@given(waiting_st, agents_st)
def test_chats_whose_agents_overlap_are_in_one_pool(
    waiting: list[q.Waiting], agents: list[AgentLoad]
) -> None:
    got = q.places(waiting, agents)
    for a in waiting:
        for b in waiting:
            shared = any(
                ag.capacity > 0 and a.topic in ag.skills and b.topic in ag.skills for ag in agents
            )
            if shared:
                assert got[a.conversation_id].pool == got[b.conversation_id].pool


@given(
    agents_st,
    st.sampled_from(TOPICS),
    st.integers(0, 200),
    st.dictionaries(st.sampled_from([f"a{i}" for i in range(20)]), st.floats(1, 10_000)),
    st.floats(1, 3600),
)
def test_eta_is_monotone_in_position_and_none_only_when_nobody_can_help(
    agents: list[AgentLoad], topic: str, pos: int, handle: dict[str, float], default: float
) -> None:
    eta = q.eta_s(pos, topic, agents, handle, default)
    helpers = [a for a in agents if q.can_help(a, topic)]
    if pos < 1:
        assert eta == 0
        return
    if not helpers:
        assert eta is None
        return
    assert eta is not None and eta >= 1
    later = q.eta_s(pos + 1, topic, agents, handle, default)
    assert later is not None and later >= eta
    # a slower team never promises a shorter wait
    slower = {a.agent_id: handle.get(a.agent_id, default) * 2 for a in helpers}
    assert (q.eta_s(pos, topic, agents, slower, default * 2) or 0) >= eta


@given(
    agents_st,
    st.dictionaries(
        st.uuids().map(lambda u: u.hex[:8]),
        st.tuples(st.integers(-1, 200), st.sampled_from(TOPICS)),
        max_size=30,
    ),
    st.dictionaries(st.sampled_from([f"a{i}" for i in range(20)]), st.floats(1, 10_000)),
    st.floats(1, 3600),
)
def test_the_waits_of_a_whole_line_are_each_chats_own(
    agents: list[AgentLoad],
    line: dict[str, tuple[int, str]],
    handle: dict[str, float],
    default: float,
) -> None:
    assert q.etas(line, agents, handle, default) == {
        cid: q.eta_s(pos, topic, agents, handle, default) for cid, (pos, topic) in line.items()
    }


@given(st.lists(st.floats(0, 10_000), max_size=30), st.floats(1, 3600))
def test_handle_time_estimate_lies_between_samples_and_prior(
    samples: list[float], prior: float
) -> None:
    est = q.handle_time_estimate(samples, prior)
    lo, hi = min([prior, *samples]), max([prior, *samples])
    assert lo - 1e-6 <= est <= hi + 1e-6


# --- opening hours --------------------------------------------------------------------------

SH = "Asia/Shanghai"


def at(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(SH))


def test_opening_hours_weekdays_and_holidays() -> None:
    office = hours_rule.Hours(
        time(9), time(18), frozenset(range(5)), frozenset({date(2026, 12, 1)}), SH
    )
    # Monday 30 Nov 2026, 20:00: closed; next opening Wednesday (Tuesday is a holiday)
    assert not hours_rule.is_open(office, at(2026, 11, 30, 20))
    assert hours_rule.next_opening(office, at(2026, 11, 30, 20)) == at(2026, 12, 2, 9)
    assert hours_rule.is_open(office, at(2026, 11, 30, 10))
    assert hours_rule.next_opening(office, at(2026, 11, 30, 10)) is None
    # Saturday: next opening Monday
    assert hours_rule.next_opening(office, at(2026, 12, 5, 11)) == at(2026, 12, 7, 9)
    night = hours_rule.Hours(time(22), time(6), tz=SH)
    assert hours_rule.is_open(night, at(2026, 11, 30, 23))
    assert hours_rule.is_open(night, at(2026, 11, 30, 5))
    assert not hours_rule.is_open(night, at(2026, 11, 30, 12))
    assert hours_rule.parse_span("00:00-24:00") == (time(0), None)
    assert hours_rule.parse_teams("security=00:00-24:00;payment=08:00-22:00") == {
        "security": "00:00-24:00", "payment": "08:00-22:00",
    }  # fmt: skip


@given(st.integers(0, 60 * 24 * 30), st.integers(0, 23), st.integers(1, 24))
def test_next_opening_is_after_now_and_open(minutes: int, start_h: int, length_h: int) -> None:
    start = time(start_h)
    end_h = start_h + length_h
    end = None if end_h >= 24 else time(end_h)
    team = hours_rule.Hours(start, end, frozenset({0, 2, 4}), tz=SH)
    now = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    nxt = hours_rule.next_opening(team, now)
    if hours_rule.is_open(team, now):
        assert nxt is None
    else:
        assert nxt is not None and nxt > now and hours_rule.is_open(team, nxt)


# --- service levels -------------------------------------------------------------------------

TARGETS = sla.Targets({"urgent": 60, "high": 120, "normal": 300},
                      {"urgent": 600, "high": 1200, "normal": 3000})  # fmt: skip


def test_sla_states_on_a_fake_clock() -> None:
    chat = sla.SlaChat("c", "high", started_at=1000)
    assert sla.state(chat, 1000, TARGETS).state == "ok"
    assert sla.state(chat, 1095, TARGETS).state == "ok"
    s = sla.state(chat, 1096, TARGETS)  # 80 % of 120 s
    assert s.state == "at_risk" and s.kind == "first_response" and s.due_at == 1120
    assert sla.state(chat, 1121, TARGETS).state == "breached"
    answered = sla.SlaChat("c", "high", 1000, first_response_at=1050)
    s = sla.state(answered, 1500, TARGETS)
    assert s.first_response == "met" and s.state == "ok" and s.kind == "resolution"
    assert sla.state(answered, 1000 + 1200 * 0.8, TARGETS).state == "at_risk"
    late = sla.SlaChat("c", "high", 1000, first_response_at=1200, ended_at=1300)
    assert sla.state(late, 5000, TARGETS).first_response == "breached"
    assert sla.state(late, 5000, TARGETS).resolution == "met"
    assert sla.parse_targets("high=30, normal=90", sla.DEFAULT_FIRST_RESPONSE_S)["high"] == 30


sla_chat_st = st.builds(
    lambda prio, start, fr, end: sla.SlaChat("c", prio, start, fr, end),
    st.sampled_from(["urgent", "high", "normal"]),
    st.floats(0, 1000),
    st.none() | st.floats(0, 10_000),
    st.none() | st.floats(0, 10_000),
)


@given(sla_chat_st, st.floats(0, 10_000), st.floats(0, 10_000))
def test_sla_state_only_gets_worse_as_time_passes(chat: sla.SlaChat, t1: float, dt: float) -> None:
    a, b = sla.state(chat, t1, TARGETS), sla.state(chat, t1 + dt, TARGETS)
    for x, y in ((a.first_response, b.first_response), (a.resolution, b.resolution)):
        if x in ("met", "breached"):
            assert y == x  # final
        elif y != "met":
            assert sla.RANK[y] >= sla.RANK[x]


@given(sla_chat_st, st.floats(0, 10_000))
def test_breached_exactly_when_past_target_without_the_event(chat: sla.SlaChat, now: float) -> None:
    s = sla.state(chat, now, TARGETS)
    target = TARGETS.first_response_s[chat.priority]
    done = chat.first_response_at is not None and chat.first_response_at <= now
    if not done:
        assert (s.first_response == "breached") == (now - chat.started_at > target)
        assert s.first_response != "met"


@given(
    st.lists(st.tuples(st.sampled_from(["high", "normal"]), st.floats(0, 1000)), max_size=12),
    st.lists(st.tuples(st.integers(1, 3), st.integers(0, 3)), min_size=1, max_size=4),
)
def test_the_customers_the_router_serves_next_are_the_first_places(
    chats: list[tuple[str, float]], staff: list[tuple[int, int]]
) -> None:
    """'1 = next in line' holds: with k free slots, plan() serves exactly places 1..k."""
    from hub.rules.routing import QueuedChat, plan

    waiting = [w(f"c{i}", f"u{i}", "payment", prio, at) for i, (prio, at) in enumerate(chats)]
    agents = [
        AgentLoad(f"a{i}", frozenset({"payment"}), cap, min(active, cap), True, 0.0)
        for i, (cap, active) in enumerate(staff)
    ]
    free = sum(a.free for a in agents)
    got = q.places(waiting, agents)
    queue = [QueuedChat(c.conversation_id, c.topic, c.priority, c.enqueued_at) for c in waiting]  # type: ignore[arg-type]
    served = {a.conversation_id for a in plan(queue, agents)}
    assert served == {cid for cid, place in got.items() if place.position <= free}


@given(st.permutations(list(range(1, 9))), st.sampled_from([None, 0, 3]))
def test_places_of_passes_arriving_in_any_order_are_shown_in_commit_order(arrivals, last):
    """Whatever order the passes' announcements arrive in, what a device shows is in pass
    (commit) order, never an older pass after a newer one, and the newest pass always
    shows (unless the device had a newer word already)."""
    shown = []
    for pass_no in arrivals:
        if q.is_news(last, pass_no):
            shown.append(pass_no)
            last = pass_no
    assert shown == sorted(set(shown))
    assert shown[-1] == 8
    assert q.is_news(None, 5) and q.is_news(5, None)  # a number unknown: shown
