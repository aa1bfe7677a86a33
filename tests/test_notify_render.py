"""Notification texts (pure)."""

from __future__ import annotations

from hub.rules.notices import render

PROCESSING = {"type": "transaction.status", "status": "processing", "amount": "12.50",
              "currency": "CNY", "speed": "standard", "expected_by": "2026-11-25T13:03:00+00:00"}  # fmt: skip


def test_expected_arrival_is_told_in_beijing_time_as_the_bot_does():
    kind, title, body = render(PROCESSING, "zh")
    assert kind == "transaction.status" and title == "转账处理中"
    assert "预计 2026-11-25 21:03（北京时间）前到账" in body
    _, title, body = render(PROCESSING, "en")
    assert title == "Transfer processing" and "expected by 2026-11-25 21:03 (Beijing time)" in body


def test_failures_name_their_reason_in_the_users_language():
    failed = {"type": "transaction.status", "status": "failed", "reason": "account_frozen",
              "amount": "2.00", "currency": "CNY"}  # fmt: skip
    assert "账户已冻结" in render(failed, "zh")[2]
    assert "account frozen" in render(failed, "en")[2]
    assert render({"type": "transaction.status", "status": "weird"}, "zh") is None


# --- one time rule: the customer's zone, labelled (hub.rules.clock) ---------------------


def test_local_time_is_in_the_customers_zone_and_says_which() -> None:
    from hub.rules.clock import local_time

    at = "2026-11-25T13:03:00+00:00"
    assert local_time(at, None, "zh") == "2026-11-25 21:03（北京时间）"
    assert local_time(at, "Asia/Shanghai", "en") == "2026-11-25 21:03 (Beijing time)"
    assert local_time(at, "America/New_York", "en") == "2026-11-25 08:03 (GMT-5)"
    assert (
        local_time("2026-07-01T13:03:00Z", "America/New_York", "en") == "2026-07-01 09:03 (GMT-4)"
    )
    assert local_time(at, "Asia/Kolkata", "zh") == "2026-11-25 18:33（GMT+5:30）"
    assert local_time(at, "UTC", "en") == "2026-11-25 13:03 (GMT)"
    assert local_time(at, "Not/AZone", "en") == "2026-11-25 21:03 (Beijing time)"  # default
    assert local_time(at, None, "en", default="Europe/Berlin") == "2026-11-25 14:03 (GMT+1)"
    assert local_time("2026-11-25T13:03:00", "UTC", "en") == "2026-11-25 13:03 (GMT)"  # naive: UTC
    assert local_time("yesterday", "UTC", "en") == "" and local_time(None, "UTC", "zh") == ""


def test_only_real_zone_names_are_zones() -> None:
    from hub.rules.clock import is_zone

    assert is_zone("Europe/Berlin") and is_zone("UTC")
    for bad in ("", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "x" * 65, None, 3):
        assert not is_zone(bad), bad


def test_a_notification_is_rendered_again_for_a_device_in_another_language_or_zone() -> None:
    from hub.rules.notices import localize

    kind, title, body = render(PROCESSING, "zh")
    data = {k: v for k, v in PROCESSING.items() if k != "type"}
    frame = {"type": "notification", "seq": 3, "kind": kind, "title": title, "body": body,
             "data": data, "ts": "2026-11-25T08:00:00+00:00"}  # fmt: skip
    assert localize(frame, "zh", "Asia/Shanghai") is None  # as stored: nothing to do
    en = localize(frame, "en", "America/New_York")
    assert en is not None and en["title"] == "Transfer processing"
    assert "expected by 2026-11-25 08:03 (GMT-5)" in en["body"]
    assert {k: v for k, v in en.items() if k not in ("title", "body")} == {
        k: v for k, v in frame.items() if k not in ("title", "body")
    }
    zone_only = localize(frame, None, "Europe/Berlin")  # the stored language, another zone
    assert zone_only is not None and "预计 2026-11-25 14:03（GMT+1）前到账" in zone_only["body"]
    notice = {**frame, "kind": "system.notice", "title": "维护", "body": "今晚维护", "data": {}}
    assert localize(notice, "en", "UTC") is None  # a person's words stay as written
    texts = {"en": {"title": "Maintenance", "body": "Tonight"}}
    both = {**notice, "data": {"texts": texts}}  # ...unless they wrote them in both
    assert localize(both, "en", "UTC")["title"] == "Maintenance"  # type: ignore[index]
    assert localize(both, "zh", "UTC") is None and localize(both, None, "UTC") is None
    assert localize({"type": "message", "text": "hi"}, "en", "UTC") is None
