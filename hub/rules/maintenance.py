"""A maintenance window as customers read it: what is paused, from when, and when it is
expected back, in their language and time zone (hub.rules.clock: their zone, labelled).
The window is what the payments module announces (`data.window` of its system notice:
`{active, starts_at?, expected_end?, functions}`). Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from hub.rules.clock import local_time

FUNCTIONS = {
    "standard": {"zh": "普通转账", "en": "standard transfers"},
    "instant": {"zh": "实时转账", "en": "instant transfers"},
}
ALL = {"zh": "转账和付款", "en": "payments and transfers"}


def affected(window: Mapping[str, Any], lang: str) -> str:
    """What the window pauses, in words: "普通转账" / "standard transfers"."""
    names = [FUNCTIONS[f][lang] for f in window.get("functions") or () if f in FUNCTIONS]
    if not names:
        return ALL[lang]
    return ("、" if lang == "zh" else " and ").join(names)


def window_text(window: Mapping[str, Any], lang: str | None, tz: str | None) -> tuple[str, str]:
    """(title, body) of a maintenance notice or banner, its end said in the reader's zone."""
    lang = lang if lang in ("zh", "en") else "zh"
    what = affected(window, lang)
    if not window.get("active"):
        if lang == "zh":
            return "维护已结束", f"{what}已恢复正常，感谢您的耐心等待。"
        return (
            "Maintenance is over",
            f"{what[0].upper()}{what[1:]} work again. Thank you for waiting.",
        )
    start = local_time(window.get("starts_at"), tz, lang)
    end = local_time(window.get("expected_end"), tz, lang)
    if lang == "zh":
        body = f"{start}起，" if start else "系统维护中，"
        body += f"{what}暂停使用"
        body += f"，预计 {end}恢复。" if end else "，恢复时间另行通知。"
        return "系统维护通知", body
    body = f"From {start}, " if start else "Maintenance is under way: "
    body += f"{what} are paused"
    body += f"; expected back by {end}." if end else "; we will tell you when they are back."
    return "Scheduled maintenance", body


def refusal_text(expected_end: Any, lang: str | None, tz: str | None) -> str:
    """What a payment refused for maintenance adds: when the window is expected to end."""
    lang = lang if lang in ("zh", "en") else "zh"
    end = local_time(expected_end, tz, lang)
    if not end:
        return ""
    return f"，预计 {end}恢复" if lang == "zh" else f"; expected back by {end}"


def valid_window(window: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(window, dict) and isinstance(window.get("active"), bool)
