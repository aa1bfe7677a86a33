"""Paging the on-call team when an urgent chat has nobody, or nobody answers it in time
(hub.rules.urgent). `Pager` is the port the chat service uses; which pager a process gets:

- `HUB_ONCALL_WEBHOOK_URL` set: `WebhookPager` POSTs the page there as JSON, signed like
  the SMS webhook (`X-Supporthub-Signature: sha256=<hex HMAC-SHA256 of the body>`, keyed
  with `HUB_ONCALL_WEBHOOK_KEY`, default `HUB_SECRET`). The receiver (a paging service's
  adapter, a chat-ops bot) decides whom to wake.
- otherwise: `LogPager` logs each page at ERROR level. The customer is then not told that
  anyone was alerted (hub.rules.urgent.notice_text).

There is no e-mail pager: the hub has no SMTP settings. A mail relay can sit behind the
webhook.

A page carries no message text, no alert details and no name: ids, the reason, how long
the customer has waited, and who holds the chat.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import httpx
import orjson
from prometheus_client import Counter

from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

PAGES = Counter("supporthub_oncall_pages_total", "On-call pages for urgent chats", ["result"])


@dataclass(frozen=True, slots=True)
class OnCallPage:
    conversation_id: str
    user_id: str
    reason: str  # nobody_online: no one on the ladder is online; unanswered: past its deadline
    agent_id: str | None  # who holds the chat now, if anyone
    missed_by: str | None  # the holder who let its deadline pass (or left), if any
    urgent_since: datetime
    waiting_s: float
    topic: str = "security"

    def body(self) -> dict:
        return {
            "kind": "supporthub.urgent_chat",
            "severity": "critical",
            "reason": self.reason,
            "conversation_id": self.conversation_id,
            "user_id": self.user_id,
            "topic": self.topic,
            "agent_id": self.agent_id,
            "missed_by": self.missed_by,
            "urgent_since": self.urgent_since.isoformat(),
            "waiting_s": round(self.waiting_s),
            "sent_at": datetime.now(UTC).isoformat(),
        }


class Pager(Protocol):
    @property
    def configured(self) -> bool:
        """Whether a page reaches a person (not only the log)."""
        ...

    async def page(self, page: OnCallPage) -> bool:
        """Send the page; True when the receiver took it. Never raises."""
        ...


class LogPager:
    """No pager configured: each page is an ERROR in the log, for whoever watches it."""

    configured = False

    async def page(self, page: OnCallPage) -> bool:
        PAGES.labels("unconfigured").inc()
        log.error(
            "urgent chat %s (user %s) needs a person (%s, waiting %ds) and no on-call pager is"
            " configured (HUB_ONCALL_WEBHOOK_URL)",
            page.conversation_id,
            page.user_id,
            page.reason,
            round(page.waiting_s),
        )
        return False


class WebhookPager:
    """POSTs each page to an on-call webhook, signed with a shared key."""

    configured = True

    def __init__(self, url: str, key: str, timeout_s: float = 5.0) -> None:
        self._url = url
        self._key = key.encode()
        self._timeout_s = timeout_s

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self._key, body, hashlib.sha256).hexdigest()

    async def page(self, page: OnCallPage) -> bool:
        body = orjson.dumps(page.body())
        headers = {"Content-Type": "application/json", "X-Supporthub-Signature": self.sign(body)}
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                resp = await client.post(self._url, content=body, headers=headers)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            PAGES.labels("failed").inc()
            log.error(
                "on-call page for urgent chat %s failed: %s (paged again at the next step)",
                page.conversation_id,
                exc,
            )
            return False
        PAGES.labels("sent").inc()
        return True


def pager_for(settings: Settings, secret: str) -> Pager:
    if settings.oncall_webhook_url:
        return WebhookPager(
            settings.oncall_webhook_url,
            settings.oncall_webhook_key or secret,
            timeout_s=settings.oncall_timeout_s,
        )
    return LogPager()
