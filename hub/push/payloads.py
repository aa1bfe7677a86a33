"""What a push says. The payload is JSON:

    {notification_id | message_id, kind, title, body, ts, conversation_id?}

The id lets the app show it once when the socket delivers the same thing. A push passes
through a third-party push service (which cannot read it: RFC 8291) and lands on a lock
screen (which anyone nearby can read), so a security alert never says more than "there
is a security alert, open the app", and an agent's reply shows at most its first words
(none with HUB_PUSH_MESSAGE_PREVIEW=false).
"""

from __future__ import annotations

import base64
import hashlib

import orjson

from hub.push.providers import PushMessage
from hub.store.messages import StoredMessage
from hub.store.notifications import StoredNotification

BODY_MAX = 280  # characters; the encrypted payload must stay under 4 KiB
PREVIEW_MAX = 120

SECURITY_ALERT = {
    "zh": ("安全提醒", "您的账户有一条安全提醒——请打开应用查看"),
    "en": ("Security alert", "Security alert on your account — open the app"),
}
REPLY_TITLE = {"zh": "客服{name}回复了您", "en": "{name} from support replied"}
REPLY_GENERIC = {
    "zh": "您有一条新的客服回复——请打开应用查看",
    "en": "You have a new reply from support — open the app",
}


def _lang(lang: str | None) -> str:
    return lang if lang in ("zh", "en") else "zh"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def notification(n: StoredNotification, lang: str | None, ttl_s: int) -> PushMessage:
    if n.kind == "security.alert":
        title, body = SECURITY_ALERT[_lang(lang)]
        urgency = "high"
    else:
        title, body = n.title, n.body
        urgency = "normal"
    payload = {
        "notification_id": n.notification_id,
        "kind": n.kind,
        "title": _clip(title, BODY_MAX),
        "body": _clip(body, BODY_MAX),
        "ts": n.ts_text or n.ts.isoformat(),
    }
    topic = None
    tx = n.data.get("transaction_id") if n.kind == "transaction.status" else None
    if isinstance(tx, str):
        # "succeeded" replaces a still-undelivered "processing" of the same transfer
        topic = _topic(f"tx:{tx}")
    return PushMessage(orjson.dumps(payload), ttl_s, urgency, topic)


def broadcast_copy(row, ttl_s: int) -> PushMessage:
    """A system notice copy (hub.store.push.broadcast_copies_for_push row)."""
    payload = {
        "notification_id": row["id"],
        "kind": row["kind"],
        "title": _clip(row["title"], BODY_MAX),
        "body": _clip(row["body"], BODY_MAX),
        "ts": row["created_at"].isoformat(),
    }
    return PushMessage(orjson.dumps(payload), ttl_s, "normal")


def message(m: StoredMessage, lang: str | None, ttl_s: int, *, preview: bool) -> PushMessage:
    lang = _lang(lang)
    body = _clip(m.text, PREVIEW_MAX) if preview and m.text.strip() else REPLY_GENERIC[lang]
    payload = {
        "message_id": m.message_id,
        "kind": "chat.message",
        "title": REPLY_TITLE[lang].format(name=_clip(m.sender_name, 40)),
        "body": body,
        "ts": m.ts.isoformat(),
        "conversation_id": m.conversation_id,
    }
    return PushMessage(orjson.dumps(payload), ttl_s, "high")


URGENT_STAFFED = {
    "zh": ("账户安全", "安全专员已接入您的对话——请打开应用查看"),
    "en": ("Account security", "A security specialist is on your chat — open the app"),
}


def urgent_staffed(m: StoredMessage, lang: str | None, ttl_s: int) -> PushMessage:
    """A person has the customer's urgent security chat. Like a security alert, the lock
    screen learns no more than that: the notice itself stays in the app."""
    title, body = URGENT_STAFFED[_lang(lang)]
    payload = {
        "message_id": m.message_id,
        "kind": "chat.urgent",
        "title": title,
        "body": body,
        "ts": m.ts.isoformat(),
        "conversation_id": m.conversation_id,
    }
    return PushMessage(orjson.dumps(payload), ttl_s, "high", _topic(f"urgent:{m.conversation_id}"))


def _topic(key: str) -> str:
    """RFC 8030 Topic: at most 32 characters of the URL-safe base64 alphabet."""
    digest = hashlib.sha256(key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]
