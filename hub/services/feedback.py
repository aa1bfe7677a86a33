"""Feedback to the product team: what customers suggest or complain about (the help bot
recognises it: hub.helpbot.feedback), what agents tag as feedback (`feedback.tag`), and
rating comments. Each item is stored, then POSTed to `HUB_FEEDBACK_WEBHOOK_URL` (a
product team's tracker, a chat-ops bot), signed like the other webhooks
(`X-Supporthub-Signature: sha256=<hex HMAC-SHA256 of the body>`, keyed with
`HUB_FEEDBACK_WEBHOOK_KEY`, default `HUB_SECRET`). A receiver that fails or is down gets
the item again with doubling backoff, `HUB_FEEDBACK_WEBHOOK_RETRIES` times; items of the
last week still undelivered (a restart came between, or the receiver was down through every
retry) are sent again by the next node to start. The receiver may see an item twice:
`feedback_id` is its key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from typing import Any

import httpx
import orjson
from prometheus_client import Counter

from hub.background import Background
from hub.helpbot import feedback as recogniser
from hub.rules import access, masking
from hub.services.audit import entry_by
from hub.store import Store
from hub.store import conversations as conv_store
from hub.store import feedback as feedback_store
from hub.store.feedback import NewFeedback
from supporthub_core.audit import AuditEntry
from supporthub_core.auth import Claims
from supporthub_core.errors import Forbidden, NotFound
from supporthub_core.outbound import tls_context
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

WEBHOOK = Counter(
    "supporthub_feedback_webhook_total", "Feedback items POSTed to the webhook", ["result"]
)
ITEMS = Counter("supporthub_feedback_items_total", "Feedback items recorded", ["kind"])


def tag_answer(item: dict[str, Any], new: bool) -> dict[str, Any]:
    """What a tag is answered with (the `ack` of `feedback.tag`, the REST body): on a repeat,
    the item stored first, who tagged it and its note."""
    return {"feedback_id": item["feedback_id"], "kind": item["kind"], "theme": item["theme"],
            "new": new, "message_id": item["message_id"], "tagged_by": item["tagged_by"],
            "note": item["note"]}  # fmt: skip


def tag_entry(claims: Claims, cid: str, item: dict[str, Any], new: bool) -> AuditEntry:
    """The audit log's `feedback.tag` entry."""
    return entry_by(claims, "feedback.tag", conversation_id=cid, subject_user_id=item["user_id"],
                    details={"feedback_id": item["feedback_id"],
                             "message_id": item["message_id"], "new": new})  # fmt: skip


class FeedbackHub:
    def __init__(self, store: Store, settings: Settings, secret: str, tasks: Background) -> None:
        self.store = store
        self.settings = settings
        self.tasks = tasks
        self._url = settings.feedback_webhook_url
        self._key = (settings.feedback_webhook_key or secret).encode()

    def start(self) -> None:
        if self._url:
            self.tasks.spawn(self._send_undelivered(), "feedback-webhook-backlog")

    async def record(self, item: NewFeedback) -> tuple[dict[str, Any], bool]:
        """Store an item and send it on; (the item, whether it is new)."""
        async with self.store.acquire() as db:
            stored, new = await feedback_store.add(db, item)
        if new:
            ITEMS.labels(item.kind).inc()
            if self._url:
                self.tasks.spawn(self._deliver(stored), "feedback-webhook")
        return stored, new

    async def from_bot(self, conv: Any, text: str, kind: str, theme: str) -> None:
        """The help bot recognised a suggestion or complaint in the customer's message."""
        await self.record(
            NewFeedback(kind, "bot", text, theme=theme, lang=conv["lang"],
                        conversation_id=conv["id"], user_id=conv["user_id"],
                        topic=conv["topic"])
        )  # fmt: skip

    async def from_rating(self, conv: Any, score: int, comment: str) -> None:
        """A rating with a comment: the comment (masked already) joins the feedback."""
        await self.record(
            NewFeedback("rating", "rating", comment, theme=recogniser.theme_of(comment),
                        lang=conv["lang"], score=score, conversation_id=conv["id"],
                        user_id=conv["user_id"], topic=conv["topic"])
        )  # fmt: skip

    async def tag(
        self, claims: Claims, cid: str, message_id: str | None, note: str | None
    ) -> tuple[dict[str, Any], bool]:
        """Staff mark a message of a chat (or the chat as a whole) as feedback: the agent
        holding it, or a supervisor, any chat. A message, or the chat as a whole, is one
        item: tagging it again answers the item stored first (and its note), not new."""
        if not claims.is_staff:
            raise Forbidden("only staff tag feedback")
        if note:
            note = masking.mask(note).text  # like every note: no secret is stored or sent
        async with self.store.acquire() as db:
            conv = await conv_store.get(db, cid)
            past = await conv_store.agent_ids(db, cid) if conv is not None else []
            access.ensure(access.may_read(claims.role, claims.sub, conv, past))
            assert conv is not None
            text = note or ""
            if message_id is not None:
                said = await feedback_store.message_text(db, cid, message_id)
                if said is None:
                    raise NotFound("no such message in this conversation")
                text = said if not note else f"{said}\n— {note}"
        found = recogniser.recognise(text) if text else None
        item = NewFeedback(
            found.kind if found else "tagged", "agent", text or "(chat)",
            theme=recogniser.theme_of(text) if text else "other", lang=conv["lang"],
            conversation_id=cid, message_id=message_id, user_id=conv["user_id"],
            topic=conv["topic"], tagged_by=claims.sub, note=note or None,
        )  # fmt: skip
        return await self.record(item)

    # --- the webhook -------------------------------------------------------------------

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self._key, body, hashlib.sha256).hexdigest()

    async def _deliver(self, item: dict[str, Any]) -> bool:
        """POST one item, retrying with doubling backoff; True once the receiver took it."""
        s = self.settings
        delay = s.feedback_webhook_backoff_s
        for attempt in range(s.feedback_webhook_retries + 1):
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            ok = await self._post(item)
            async with self.store.acquire() as db:
                await feedback_store.attempted(db, item["feedback_id"], ok)
            if ok:
                return True
        log.error(
            "feedback %s not delivered to the webhook after %d attempts",
            item["feedback_id"],
            s.feedback_webhook_retries + 1,
        )
        return False

    async def _post(self, item: dict[str, Any]) -> bool:
        assert self._url is not None
        body = orjson.dumps({"kind": "supporthub.feedback", "item": item})
        headers = {"Content-Type": "application/json", "X-Supporthub-Signature": self.sign(body)}
        try:
            async with httpx.AsyncClient(
                timeout=self.settings.feedback_webhook_timeout_s, verify=tls_context()
            ) as c:
                resp = await c.post(self._url, content=body, headers=headers)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            WEBHOOK.labels("failed").inc()
            log.warning("feedback webhook: %s", exc)
            return False
        WEBHOOK.labels("sent").inc()
        return True

    async def _send_undelivered(self) -> None:
        """Items of the last week the webhook never took, once at start."""
        try:
            async with self.store.acquire() as db:
                items = await feedback_store.undelivered(db)
        except Exception as exc:
            log.warning("feedback webhook: backlog not read: %s", exc)
            return
        for item in items:
            await self._deliver(item)
