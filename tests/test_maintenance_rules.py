"""The maintenance window in the customer's words, pure: the expected end is always said,
in the reader's zone and language, with the zone labelled; the end of the window too."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from hub.rules.clock import local_time
from hub.rules.maintenance import affected, refusal_text, valid_window, window_text

ZONES = st.sampled_from(
    ["Asia/Shanghai", "America/New_York", "Europe/London", "Asia/Kolkata", None]
)
FUNCTIONS = st.lists(st.sampled_from(["instant", "standard"]), unique=True, max_size=2)


@given(
    end=st.datetimes(
        min_value=datetime(2001, 1, 1), max_value=datetime(2199, 1, 1), timezones=st.just(UTC)
    ),
    tz=ZONES,
    lang=st.sampled_from(["zh", "en", None, "fr"]),
    functions=FUNCTIONS,
)
def test_the_expected_end_is_said_in_the_readers_zone(end, tz, lang, functions):
    window = {"active": True, "expected_end": end.isoformat(), "functions": functions}
    title, body = window_text(window, lang, tz)
    said = "en" if lang == "en" else "zh"
    assert local_time(end.isoformat(), tz, said) in body
    assert affected(window, said) in body
    assert title == ("Scheduled maintenance" if said == "en" else "系统维护通知")
    assert local_time(end.isoformat(), tz, said) in refusal_text(end.isoformat(), lang, tz)
    over_title, over_body = window_text({**window, "active": False}, lang, tz)
    assert over_title == ("Maintenance is over" if said == "en" else "维护已结束")
    assert valid_window(window) and not valid_window({"expected_end": "x"})


def test_without_an_end_it_promises_no_time():
    _, body = window_text({"active": True, "functions": []}, "en", None)
    assert "payments and transfers are paused" in body and "we will tell you" in body
    assert refusal_text(None, "zh", None) == ""
