"""hub.rules.alarms: highlight levels and the floor's alarms, by property."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.rules import alarms, sla
from hub.rules.alarms import Thresholds, WaitingChat

T = Thresholds(wait_warn_s=120, wait_alarm_s=600, reply_warn_s=60, reply_alarm_s=180)
TARGETS = sla.Targets(sla.DEFAULT_FIRST_RESPONSE_S, sla.DEFAULT_RESOLUTION_S)
seconds = st.floats(min_value=0, max_value=86_400, allow_nan=False)
chats = st.builds(
    WaitingChat,
    conversation_id=st.uuids().map(str),
    priority=st.sampled_from(["urgent", "high", "normal"]),
    status=st.sampled_from(["queued", "assigned"]),
    waiting_s=seconds,
    unanswered_s=st.none() | seconds,
)


def service(chat: WaitingChat, since_queued_s: float | None = None) -> sla.SlaState:
    """The chat's service levels `since_queued_s` after it was queued (default: its wait
    plus its time unanswered), never answered."""
    if since_queued_s is None:
        since_queued_s = chat.waiting_s + (chat.unanswered_s or 0.0)
    return sla.state(sla.SlaChat(chat.conversation_id, chat.priority, 0.0), since_queued_s, TARGETS)


def flag(chat: WaitingChat, since_queued_s: float | None = None) -> alarms.Flags:
    return alarms.flags(chat, T, service(chat, since_queued_s))


def test_the_defects_examples():
    # a 12-minute wait is highlighted, red, and past the 5-minute first-response target
    twelve = flag(WaitingChat("c", "normal", "queued", 720.0))
    assert twelve.wait == "alarm" and twelve.breach_soon
    # 0 agents online and 3 waiting: an alarm naming the three
    waiting = [flag(WaitingChat(f"c{i}", "normal", "queued", 5.0)) for i in range(3)]
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


def test_a_chat_at_risk_raises_the_alarm_before_any_colour_is_red():
    # a high-priority chat (first answer within 120 s) queued 100 s ago: not even amber,
    # but 100 s is past 80% of its target, so it is about to breach
    chat = WaitingChat("h", "high", "queued", 100.0)
    st_ = service(chat)
    assert st_.first_response == "at_risk" and st_.state == "at_risk"
    f = alarms.flags(chat, T, st_)
    assert f.wait == "ok" and f.breach_soon
    assert alarms.alarms([f], agents_online=1) == [alarms.Alarm("sla_breach_soon", ("h",))]
    # the same chat 50 s in: ok on both targets, no alarm
    calm = flag(chat, 50.0)
    assert not calm.breach_soon and alarms.alarms([calm], agents_online=1) == []
    # a red wait that its (looser) target still allows raises nothing: colours are colours
    loose = sla.Targets({"normal": 3600.0}, {"normal": 7200.0})
    long = WaitingChat("n", "normal", "queued", 700.0)
    relaxed = sla.state(sla.SlaChat("n", "normal", 0.0), 700.0, loose)
    f = alarms.flags(long, T, relaxed)
    assert f.wait == "alarm" and not f.breach_soon
    # at risk on resolution only (answered in time long ago, still open) counts too
    late = sla.state(sla.SlaChat("r", "normal", 0.0, first_response_at=10.0), 6000.0, TARGETS)
    assert (late.first_response, late.resolution) == ("met", "at_risk")
    assert alarms.breach_soon(late)


@given(st.lists(chats, max_size=20), st.integers(min_value=0, max_value=5))
def test_alarms_say_exactly_what_the_flags_say(waiting, online):
    flagged = [flag(c) for c in waiting]
    raised = {a.kind: a for a in alarms.alarms(flagged, online)}
    queued = [c.conversation_id for c in waiting if c.status == "queued"]
    assert ("no_agents" in raised) == (online == 0 and bool(queued))
    urgent = [c.conversation_id for c in waiting if c.priority == "urgent"]
    assert ("urgent_unanswered" in raised) == bool(urgent)
    if urgent:
        assert list(raised["urgent_unanswered"].conversations) == urgent
    soon = [f.conversation_id for f in flagged if f.breach_soon]
    assert ("sla_breach_soon" in raised) == bool(soon)
    # a chat is about to breach exactly when its service levels say at risk or breached
    for c, f in zip(waiting, flagged, strict=True):
        assert f.breach_soon == (service(c).state in ("at_risk", "breached"))
        if c.status == "assigned":
            assert f.wait == "ok"  # its wait is over


@given(st.lists(chats, max_size=20), st.integers(min_value=0, max_value=5))
def test_the_order_is_most_serious_first(waiting, online):
    kinds = [a.kind for a in alarms.alarms([flag(c) for c in waiting], online)]
    rank = ["no_agents", "urgent_unanswered", "sla_breach_soon"]
    assert kinds == sorted(kinds, key=rank.index) and len(set(kinds)) == len(kinds)


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()))
def test_a_csv_cell_never_starts_a_formula(value):
    from hub.http.api import _cell

    cell = _cell(value)
    if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        float(cell)  # only a number may start so (a negative one)
