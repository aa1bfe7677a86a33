"""hub.rules.alarms: highlight levels and the floor's alarms, by property."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.rules import alarms
from hub.rules.alarms import Thresholds, WaitingChat

T = Thresholds(wait_warn_s=120, wait_alarm_s=600, reply_warn_s=60, reply_alarm_s=180)
seconds = st.floats(min_value=0, max_value=86_400, allow_nan=False)
chats = st.builds(
    WaitingChat,
    conversation_id=st.uuids().map(str),
    priority=st.sampled_from(["urgent", "high", "normal"]),
    status=st.sampled_from(["queued", "assigned"]),
    waiting_s=seconds,
    unanswered_s=st.none() | seconds,
)


def test_the_defects_examples():
    # a 12-minute wait is highlighted, red
    twelve = alarms.flags(WaitingChat("c", "normal", "queued", 720.0), T)
    assert twelve.wait == "alarm" and twelve.breach_soon
    # 0 agents online and 3 waiting: an alarm naming the three
    waiting = [alarms.flags(WaitingChat(f"c{i}", "normal", "queued", 5.0), T) for i in range(3)]
    raised = alarms.alarms(waiting, agents_online=0)
    assert [a.kind for a in raised] == ["no_agents"] and raised[0].waiting == 3
    assert alarms.alarms(waiting, agents_online=1) == []


@given(seconds, seconds, seconds)
def test_levels_grow_with_the_wait(a, b, warn):
    alarm_s = warn + 60
    order = {"ok": 0, "warn": 1, "alarm": 2}
    lo, hi = sorted((a, b))
    assert order[alarms.level(lo, warn, alarm_s)] <= order[alarms.level(hi, warn, alarm_s)]
    assert alarms.level(alarm_s, warn, alarm_s) == "alarm"
    assert alarms.level(None, warn, alarm_s) == "ok"


@given(st.lists(chats, max_size=20), st.integers(min_value=0, max_value=5))
def test_alarms_say_exactly_what_the_flags_say(waiting, online):
    flagged = [alarms.flags(c, T) for c in waiting]
    raised = {a.kind: a for a in alarms.alarms(flagged, online)}
    queued = [c.conversation_id for c in waiting if c.status == "queued"]
    assert ("no_agents" in raised) == (online == 0 and bool(queued))
    urgent = [c.conversation_id for c in waiting if c.priority == "urgent"]
    assert ("urgent_unanswered" in raised) == bool(urgent)
    if urgent:
        assert list(raised["urgent_unanswered"].conversations) == urgent
    soon = [f.conversation_id for f in flagged if f.breach_soon]
    assert ("sla_breach_soon" in raised) == bool(soon)
    # a chat is about to breach exactly when one of its times is red
    for c, f in zip(waiting, flagged, strict=True):
        red = (c.status == "queued" and c.waiting_s >= T.wait_alarm_s) or (
            c.unanswered_s is not None and c.unanswered_s >= T.reply_alarm_s
        )
        assert f.breach_soon == red
        if c.status == "assigned":
            assert f.wait == "ok"  # its wait is over


@given(st.lists(chats, max_size=20), st.integers(min_value=0, max_value=5))
def test_the_order_is_most_serious_first(waiting, online):
    kinds = [a.kind for a in alarms.alarms([alarms.flags(c, T) for c in waiting], online)]
    rank = ["no_agents", "urgent_unanswered", "sla_breach_soon"]
    assert kinds == sorted(kinds, key=rank.index) and len(set(kinds)) == len(kinds)


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()))
def test_a_csv_cell_never_starts_a_formula(value):
    from hub.http.api import _cell

    cell = _cell(value)
    if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        float(cell)  # only a number may start so (a negative one)
