"""What a payment event tells its user: validation, the texts in both languages and their
rendering. Pure: no I/O, no clock, no awaits."""

from __future__ import annotations

from typing import Any

from hub.rules.clock import local_time
from hub.rules.maintenance import refusal_text, valid_window, window_text

REASONS = {
    "insufficient_balance": {"zh": "余额不足", "en": "insufficient balance"},
    "invalid_payee": {"zh": "收款账户无效", "en": "invalid payee"},
    "maintenance": {"zh": "系统维护中", "en": "system maintenance"},
    "network_error": {"zh": "网络异常", "en": "network error"},
    "account_frozen": {"zh": "账户已冻结", "en": "account frozen"},
}
TX_TEXT = {
    "processing": {
        "zh": ("转账处理中", "您的 {amount} {currency} 转账正在处理中{eta}。"),
        "en": ("Transfer processing", "Your transfer of {amount} {currency} is processing{eta}."),
    },
    "succeeded": {
        "zh": ("转账成功", "您的 {amount} {currency} 转账已成功到账。"),
        "en": ("Transfer succeeded", "Your transfer of {amount} {currency} has arrived."),
    },
    "failed": {
        "zh": ("转账失败", "您的 {amount} {currency} 转账失败：{reason}。"),
        "en": ("Transfer failed", "Your transfer of {amount} {currency} failed: {reason}."),
    },
}
ALERT_TEXT = {
    "new_device_login": {"zh": ("新设备登录", "您的账户在新设备上登录。如非本人操作，请立即联系客服。"),
                         "en": ("New device sign-in", "Your account signed in on a new device. If it was not you, contact support now.")},
    "suspicious_activity": {"zh": ("账户异常活动", "我们检测到您的账户存在异常活动。"),
                            "en": ("Suspicious activity", "We detected suspicious activity on your account.")},
    "account_frozen": {"zh": ("账户已临时冻结", "为保护您的资金安全，账户已临时冻结，安全专员将与您联系。"),
                       "en": ("Account frozen", "To protect your money your account is frozen; a security agent will contact you.")},
    "account_unfrozen": {"zh": ("账户已解冻", "您的账户已恢复正常使用。"),
                         "en": ("Account unfrozen", "Your account is active again.")},
    "password_changed": {"zh": ("密码已修改", "您的登录密码已修改。如非本人操作，请立即联系客服。"),
                         "en": ("Password changed", "Your password was changed. If it was not you, contact support now.")},
}  # fmt: skip
# What happens next (who is on it, or that nobody is online yet) follows from the urgent
# ladder (hub.rules.urgent.notice_text): the opening promises nothing it cannot keep.
URGENT_OPENING = {
    "zh": "安全提醒：我们检测到您的账户存在异常活动，为保护您的资金已临时冻结账户。",
    "en": "Security notice: we saw unusual activity and froze your account to protect your money.",
}


def render(event: dict[str, Any], lang: str, tz: str | None = None) -> tuple[str, str, str] | None:
    """(kind, title, body) for an event in the user's language, times in their zone
    (`tz`, IANA; None: Beijing time), labelled; None for unknown types."""
    lang = lang if lang in ("zh", "en") else "zh"
    kind = event.get("type")
    if kind == "transaction.status":
        status = event.get("status") or ""
        texts = TX_TEXT.get(str(status))
        if texts is None:
            return None
        title, body = texts[lang]
        eta = ""
        if status == "processing" and event.get("expected_by"):
            # the one rule of the bot's answers too (hub.rules.clock): their zone, said so
            when = local_time(event["expected_by"], tz, lang) or str(event["expected_by"])
            eta = f"，预计 {when}前到账" if lang == "zh" else f", expected by {when}"
        reason = REASONS.get(event.get("reason") or "", {}).get(lang, event.get("reason") or "")
        if event.get("reason") == "maintenance":  # and when it is expected back, in their zone
            reason += refusal_text(event.get("maintenance_until"), lang, tz)
        body = body.format(
            amount=event.get("amount", ""),
            currency=event.get("currency", "CNY"),
            eta=eta,
            reason=reason,
        )
        return kind, title, body
    if kind == "security.alert":
        texts = ALERT_TEXT.get(event.get("alert") or "")
        if texts is None:
            title, body = (
                ("安全提醒", "您的账户有一条安全提醒。")
                if lang == "zh"
                else ("Security alert", "There is a security alert on your account.")
            )
        else:
            title, body = texts[lang]
        return kind, title, body
    return None


def valid_event(event: Any) -> bool:
    """An event the hub can take: an id and a user of sane length, a type it knows."""
    return (
        isinstance(event, dict)
        and isinstance(event.get("event_id"), str)
        and 0 < len(event["event_id"]) <= 200
        and isinstance(event.get("user_id"), str)
        and 0 < len(event["user_id"]) <= 128
        and event.get("type") in ("transaction.status", "security.alert")
    )


def has_notice(event: dict[str, Any]) -> bool:
    """True when a valid event makes a notification (its text does not depend on the
    language); False for the ones that are dropped, such as an unknown status."""
    return valid_event(event) and render(event, "zh") is not None


def is_freeze(event: dict[str, Any]) -> bool:
    """A freeze opens an urgent security chat as well as notifying."""
    return event["type"] == "security.alert" and event.get("alert") == "account_frozen"


def event_data(event: dict[str, Any]) -> dict[str, Any]:
    """The `data` of the notification: the event without its envelope fields."""
    data = dict(event)  # a copy in C, then two deletions: no Python step per field
    data.pop("type", None)
    data.pop("outbox_id", None)
    return data


# Notification kinds whose title and body are made here from `data` (a broadcast's are
# written by a person and stay as they are).
RENDERED_KINDS = frozenset({"transaction.status", "security.alert"})


# Frame types a user device may get in its own language (see `localize`).
LOCALIZED = frozenset({"notification", "message", "chat.queued"})


def localize(frame: dict[str, Any], lang: str | None, tz: str | None) -> dict[str, Any] | None:
    """The frame as one device should read it: a `notification` re-rendered in its language
    (`lang`) and time zone (`tz`); a system `message` (one with `texts`) and an urgent
    `chat.queued` (one with `notices`) in its language.
    None when the frame needs no change (another kind, the same text, or nothing to render
    from)."""
    if frame.get("type") in ("message", "chat.queued"):
        # a system message's `texts`, an urgent chat's `notices`: the hub's words in every
        # language, of which the device reads its own
        field, every = ("text", "texts") if frame["type"] == "message" else ("notice", "notices")
        texts = frame.get(every)
        if not lang or not isinstance(texts, dict):
            return None
        text = texts.get(lang)
        if not isinstance(text, str) or text == frame.get(field):
            return None
        return {**frame, field: text}
    if frame.get("type") != "notification":
        return None
    if frame.get("kind") == "system.notice":
        return _notice_in(frame, lang, tz)
    if frame.get("kind") not in RENDERED_KINDS:
        return None
    data = frame.get("data")
    if not isinstance(data, dict) or (lang is None and tz is None):
        return None
    rendered = render({**data, "type": frame["kind"]}, lang or _lang_of(frame), tz)
    if rendered is None:
        return None
    _, title, body = rendered
    if title == frame.get("title") and body == frame.get("body"):
        return None
    return {**frame, "title": title, "body": body}


def _lang_of(frame: dict[str, Any]) -> str:
    """The language a stored notification was written in (Chinese text, else English)."""
    text = f"{frame.get('title', '')}{frame.get('body', '')}"
    return "zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en"


def _notice_in(
    frame: dict[str, Any], lang: str | None, tz: str | None = None
) -> dict[str, Any] | None:
    """A broadcast is a person's words: sent as written, unless its author gave it in
    several languages (`data.texts`: {"en": {"title", "body"}, ...}); then in the device's.
    A maintenance window's notice (`data.window`) is the hub's words: the device's language,
    its expected end in the device's zone."""
    data = frame.get("data")
    window = data.get("window") if isinstance(data, dict) else None
    if valid_window(window) and (lang or tz):
        title, body = window_text(window, lang or _lang_of(frame), tz)
        return {**frame, "title": title, "body": body}
    texts = data.get("texts") if isinstance(data, dict) else None
    chosen = texts.get(lang) if isinstance(texts, dict) and lang else None
    if not isinstance(chosen, dict):
        return None
    chosen_title, chosen_body = chosen.get("title"), chosen.get("body")
    if not isinstance(chosen_title, str) or not isinstance(chosen_body, str):
        return None
    if chosen_title == frame.get("title") and chosen_body == frame.get("body"):
        return None
    return {**frame, "title": chosen_title, "body": chosen_body}
