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
