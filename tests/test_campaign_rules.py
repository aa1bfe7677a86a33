"""The pure rules of campaigns on a fake clock: the pacing never runs ahead of the rate
and never stalls, a campaign changes only before it starts, the send time's zone is
never guessed, and each user reads their own language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.rules.campaigns import (
    Audience,
    Pacer,
    audience_problem,
    is_due,
    joins_later,
    link_ok,
    local_send_at,
    may_change,
    text_for,
)

STATUSES = st.sampled_from(["scheduled", "sending", "sent", "cancelled"])
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@given(
    rate=st.floats(min_value=1.0, max_value=100_000.0),
    batch=st.integers(min_value=1, max_value=5000),
    steps=st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=200),
    short=st.lists(st.integers(min_value=0, max_value=5000), max_size=200),
)
def test_pacer_never_runs_ahead_of_the_rate(rate, batch, steps, short):
    """Whatever the calls' timing and however many a batch really sent, the copies sent
    by time t are at most one batch plus rate × t."""
    pacer, now, sent = Pacer(rate, batch), 0.0, 0
    for i, step in enumerate(steps):
        now += step
        n, wait = pacer.take(now)
        assert 0 <= n <= batch and wait >= 0
        if n == 0:
            assert wait > 0
        used = min(n, short[i]) if i < len(short) else n
        if used < n:
            pacer.give_back(n - used)
        sent += used
        assert sent <= batch + rate * now + 1e-6 * (1 + rate * now)


@given(
    rate=st.floats(min_value=1.0, max_value=10_000.0),
    batch=st.integers(min_value=1, max_value=2000),
    total=st.integers(min_value=0, max_value=5_000),
)
def test_pacer_following_its_waits_sends_everything_in_time(rate, batch, total):
    """A sender that sleeps as told finishes `total` copies in about total / rate."""
    pacer, now, left = Pacer(rate, batch), 0.0, total
    for _ in range(100_000):
        if left == 0:
            break
        n, wait = pacer.take(now)
        if n:
            left -= min(n, left)
        else:
            now += wait
    assert left == 0
    assert now <= max(0.0, (total - batch) / rate) + 1.0 / rate + 0.002 * (total + 1)


@given(status=STATUSES, offset=st.integers(min_value=-10_000, max_value=10_000))
def test_only_a_scheduled_campaign_not_yet_started_may_change(status, offset):
    send_at = T0 + timedelta(seconds=offset)
    assert may_change(status, send_at, T0) == (status == "scheduled" and offset > 0)
    # it is due exactly when it may no longer change, unless it is over
    if status in ("scheduled", "sending"):
        assert is_due(status, send_at, T0) == (status == "sending" or offset <= 0)
    else:
        assert not is_due(status, send_at, T0)


@given(
    when=st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2199, 1, 1)),
    tz=st.sampled_from(["Asia/Shanghai", "America/New_York", "Europe/London", "UTC"]),
)
def test_send_time_is_read_in_the_zone_it_names(when, tz):
    from zoneinfo import ZoneInfo

    got = local_send_at(when, tz)
    assert got.tzinfo is not None
    assert got == when.replace(tzinfo=ZoneInfo(tz))
    aware = when.replace(tzinfo=UTC)
    assert local_send_at(aware, tz) == aware  # an offset given stands
    with pytest.raises(ValueError):
        local_send_at(when, None)  # never guessed
    with pytest.raises(ValueError):
        local_send_at(when, "Mars/Olympus")


@pytest.mark.parametrize(
    "when", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+00:00", "1999-06-01T00:00:00"]
)
def test_send_times_out_of_range_are_refused_not_crashed(when):
    with pytest.raises(ValueError):
        local_send_at(datetime.fromisoformat(when), "America/New_York")


@given(lang=st.sampled_from(["zh", "en", None, "fr"]))
def test_each_user_reads_their_language_else_chinese(lang):
    texts = {"zh": {"title": "标题", "body": "正文"}, "en": {"title": "Title", "body": "Body"}}
    title, _ = text_for(texts, lang)
    assert title == ("Title" if lang == "en" else "标题")
    assert text_for({"en": texts["en"]}, "zh") == ("Title", "Body")


def test_audiences():
    assert audience_problem(Audience("all")) is None
    assert audience_problem(Audience("lang", lang="fr"))
    assert audience_problem(Audience("active", days=0))
    assert audience_problem(Audience("active", days=30)) is None
    assert audience_problem(Audience("alert", days=7))  # which alert?
    assert audience_problem(Audience("alert", days=7, alert="new_device_login")) is None
    assert audience_problem(Audience("list"))
    assert audience_problem(Audience("list"), 3) is None
    assert audience_problem(Audience("all"), 3)
    assert joins_later(Audience("all"), None)
    assert joins_later(Audience("lang", lang="en"), "en")
    assert not joins_later(Audience("lang", lang="en"), "zh")
    assert not joins_later(Audience("active", days=7), "zh")
    assert not joins_later(Audience("list"), "zh")
    a = Audience("alert", days=7, alert="new_device_login")
    assert Audience.from_json(a.as_json()) == a


def test_links():
    assert link_ok("account-security")
    assert link_ok("https://help.example/a")
    assert not link_ok("javascript:alert(1)")
    assert not link_ok("http://plain.example")
    assert not link_ok("Account Security")
