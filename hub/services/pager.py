"""Paging the on-call team when an urgent chat has nobody, or nobody answers it in time
(hub.rules.urgent). `Pager` is the port the chat service uses; which pager a process gets:

- `HUB_ONCALL_WEBHOOK_URL` set: `WebhookPager` POSTs the page there as JSON, signed like
  the SMS webhook (`X-Supporthub-Signature: sha256=<hex HMAC-SHA256 of the body>`, keyed
  with `HUB_ONCALL_WEBHOOK_KEY`, default `HUB_SECRET`). The receiver (a paging service's
  adapter, a chat-ops bot) decides whom to wake.
- `HUB_ONCALL_EMAIL` set: `EmailPager` mails the page to that address (or addresses)
  through the e-mail channel's SMTP relay (`HUB_SMTP_RELAY_*`, hub.services.mail_out),
  sent at once rather than through the mail outbox: a page that is late is worth little,
  and the ladder pages again at every step until someone answers.
- both: every page goes both ways (`Pagers`), and counts as delivered if either took it.
- neither: `LogPager` logs each page at ERROR level. The customer is then not told that
  anyone was alerted (hub.rules.urgent.notice_text).

A page carries no message text, no alert details and no name: ids, the reason, how long
the customer has waited, and who holds the chat. The mail says exactly what the webhook's
body says (`OnCallPage.body`), in words and as the same JSON, and nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Protocol

import httpx
import orjson
from prometheus_client import Counter

from supporthub_core.outbound import tls_context
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

PAGES = Counter(
    "supporthub_oncall_pages_total", "On-call pages for urgent chats", ["result", "channel"]
)

REASONS = {
    "nobody_online": "nobody who may take it is online",
    "unanswered": "its holder did not answer in time",
}


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
        PAGES.labels("unconfigured", "log").inc()
        log.error(
            "urgent chat %s (user %s) needs a person (%s, waiting %ds) and no on-call pager is"
            " configured (HUB_ONCALL_WEBHOOK_URL, HUB_ONCALL_EMAIL)",
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
            async with httpx.AsyncClient(timeout=self._timeout_s, verify=tls_context()) as client:
                resp = await client.post(self._url, content=body, headers=headers)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            PAGES.labels("failed", "webhook").inc()
            log.error(
                "on-call page for urgent chat %s failed: %s (paged again at the next step)",
                page.conversation_id,
                exc,
            )
            return False
        PAGES.labels("sent", "webhook").inc()
        return True


class MailRelay(Protocol):
    """Where mail goes out (hub.services.mail_out.SmtpRelay)."""

    @property
    def configured(self) -> bool: ...

    async def send(self, msg: EmailMessage, timeout_s: float | None = None) -> None: ...


def oncall_addresses(value: str | None) -> list[str]:
    """The addresses of `HUB_ONCALL_EMAIL` (comma-separated); ValueError for one that is
    not a plain `name@domain`."""
    out: list[str] = []
    for part in (value or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            address = Address(addr_spec=part)
        except (ValueError, IndexError, HeaderParseError) as exc:
            raise ValueError(f"{part!r} is not an e-mail address") from exc
        if not address.username or not address.domain or address.addr_spec != part:
            raise ValueError(f"{part!r} is not an e-mail address")
        out.append(part)
    return out


class EmailPager:
    """Mails each page to the on-call address(es) through the e-mail channel's relay."""

    def __init__(
        self, to: list[str], relay: MailRelay, settings: Settings, timeout_s: float = 5.0
    ) -> None:
        self.to = to
        self.relay = relay
        self.settings = settings
        self._timeout_s = timeout_s

    @property
    def configured(self) -> bool:
        # no relay (serve refuses that at start; dev points it at its catcher): only logged
        return bool(self.to) and self.relay.configured

    def compose(self, page: OnCallPage) -> EmailMessage:
        """The page as a mail: the webhook's fields in words, and the same JSON attached
        (for a mail-to-pager gateway); nothing else about the customer or the chat."""
        body = page.body()
        s = self.settings
        msg = EmailMessage()
        msg["From"] = formataddr((f"{s.brand_name_en} on-call pager", s.support_email))
        msg["To"] = ", ".join(self.to)
        msg["Subject"] = (
            f"[URGENT] security chat {page.conversation_id} waiting {body['waiting_s']}s:"
            f" {REASONS.get(page.reason, page.reason)}"
        )
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain=s.mail_id_domain)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a page
        msg["X-Priority"] = "1"
        msg["Importance"] = "high"
        lines = [
            "An urgent security chat needs a person now.",
            "",
            f"Reason:        {page.reason} ({REASONS.get(page.reason, page.reason)})",
            f"Conversation:  {page.conversation_id}",
            f"Customer id:   {page.user_id}",
            f"Topic:         {page.topic}",
            f"Held by:       {page.agent_id or 'nobody'}",
            f"Missed by:     {page.missed_by or '-'}",
            f"Urgent since:  {body['urgent_since']}",
            f"Waiting:       {body['waiting_s']} s",
            "",
            "Open the agents' console and take the chat. What the customer wrote is there",
            "only: this mail carries ids, never the chat or the alert.",
            "You are paged again at every escalation step until someone answers.",
        ]
        msg.set_content("\n".join(lines) + "\n")
        msg.add_attachment(
            orjson.dumps(body, option=orjson.OPT_INDENT_2),
            maintype="application",
            subtype="json",
            filename="page.json",
        )
        return msg

    async def page(self, page: OnCallPage) -> bool:
        if not self.configured:
            return await LogPager().page(page)
        msg = self.compose(page)
        try:
            # smtplib's timeout is per operation: bound the whole exchange too
            await asyncio.wait_for(
                self.relay.send(msg, timeout_s=self._timeout_s), self._timeout_s * 3
            )
        except Exception as exc:  # the relay refused, timed out, or is not there
            PAGES.labels("failed", "email").inc()
            log.error(
                "on-call mail for urgent chat %s failed: %r (paged again at the next step)",
                page.conversation_id,
                exc,
            )
            return False
        PAGES.labels("sent", "email").inc()
        return True


class Pagers:
    """Every configured pager at once: the page is delivered if any of them took it."""

    def __init__(self, pagers: list[Pager]) -> None:
        self.pagers = pagers

    @property
    def configured(self) -> bool:
        return any(p.configured for p in self.pagers)

    async def page(self, page: OnCallPage) -> bool:
        ready = [p for p in self.pagers if p.configured]
        if not ready:
            return await LogPager().page(page)
        sent = await asyncio.gather(*(p.page(page) for p in ready))
        return any(sent)


def pager_for(settings: Settings, secret: str, relay: MailRelay | None = None) -> Pager:
    pagers: list[Pager] = []
    if settings.oncall_webhook_url:
        pagers.append(
            WebhookPager(
                settings.oncall_webhook_url,
                settings.oncall_webhook_key or secret,
                timeout_s=settings.oncall_timeout_s,
            )
        )
    to = oncall_addresses(settings.oncall_email)
    if to and relay is not None:
        pagers.append(EmailPager(to, relay, settings, timeout_s=settings.oncall_timeout_s))
    if not pagers:
        return LogPager()
    return pagers[0] if len(pagers) == 1 else Pagers(pagers)
