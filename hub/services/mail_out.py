"""Mail out: agents' replies in e-mail conversations, and the hub's own notices, sent by
SMTP to the configured relay.

Nothing is lost when the relay is down: an agent's reply is put in `mail_outbox` by the
same transaction that stores the message (a trigger, migration 0017), and this worker
reads the outbox (every `HUB_MAIL_POLL_S`, and at once when a reply is stored), leases
what is due so that two nodes never send one mail at once, sends it, and on failure tries
again later (`HUB_MAIL_RETRY_S`, doubling up to `HUB_MAIL_RETRY_MAX_S`). A mail's
Message-ID is fixed before its first try, so a retry is the same mail, and stored on the
message, so the customer's reply to it continues the conversation.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from hub import metrics
from hub.attachments.storage import AttachmentStore
from hub.background import Background
from hub.helpbot import brand
from hub.rules import mail as rules
from hub.store import Store
from hub.store import mail as mail_store
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

LEASE_S = 60.0


def signature(settings: Settings) -> str:
    if settings.mail_signature:
        return settings.mail_signature
    b = brand.Brand.from_settings(settings)
    return f"{b.name_zh} / {b.name_en} support\n{settings.support_email}"


def fallback_subject(settings: Settings) -> str:
    return f"{brand.Brand.from_settings(settings).name_en} support"


class SmtpRelay:
    """One message to the relay: plain SMTP, STARTTLS and AUTH as configured."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.host = settings.smtp_relay_host
        self.port = settings.smtp_relay_port

    @property
    def configured(self) -> bool:
        return bool(self.host)

    def point_at(self, host: str, port: int) -> None:
        """Dev: send to the local catcher (hub.services.mail_catcher)."""
        self.host, self.port = host, port

    async def send(self, msg: EmailMessage, timeout_s: float | None = None) -> None:
        """Send `msg`; `timeout_s` per SMTP operation (default `HUB_SMTP_TIMEOUT_S`)."""
        await asyncio.to_thread(self._send, msg, timeout_s or self.settings.smtp_timeout_s)

    def _send(self, msg: EmailMessage, timeout_s: float) -> None:
        s = self.settings
        assert self.host is not None
        with smtplib.SMTP(self.host, self.port, timeout=timeout_s) as smtp:
            if s.smtp_relay_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_relay_user:
                smtp.login(s.smtp_relay_user, s.smtp_relay_password or "")
            smtp.send_message(msg)


class MailOut:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        tasks: Background,
        files: AttachmentStore | None = None,
        relay: SmtpRelay | None = None,
    ) -> None:
        self.store = store
        self.files = files  # the chat's files an agent's reply carries go along
        self.settings = settings
        self.tasks = tasks
        self.relay = relay or SmtpRelay(settings)  # shared with the on-call mail pager
        self._wake = asyncio.Event()

    def start(self) -> None:
        if self.relay.configured:
            self.tasks.spawn(self._run(), "mail-out")

    def nudge(self) -> None:
        """Something may be due now (an agent replied in an e-mail conversation)."""
        self._wake.set()

    def message_posted(self, msg) -> None:
        if msg.sender_role == "agent" and not msg.duplicate:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                busy = await self.pass_once()
            except Exception as exc:
                log.warning("mail outbox pass failed: %r", exc)
                busy = False
            if busy:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.mail_poll_s)
            except TimeoutError:
                pass
            self._wake.clear()

    async def pass_once(self) -> bool:
        """Send what is due; True if anything was."""
        async with self.store.acquire() as db:
            rows = await mail_store.claim_due(db, LEASE_S)
        for row in rows:
            await self._deliver(row)
        return bool(rows)

    async def _deliver(self, row) -> None:
        delay = min(
            self.settings.mail_retry_max_s,
            self.settings.mail_retry_s * 2 ** min(row["attempts"], 16),
        )
        try:
            msg, message_id, mail_id = await self._compose(row)
        except LookupError as exc:  # the message is gone: nothing to send, ever
            log.warning("mail %s cannot be composed: %r", row["id"], exc)
            async with self.store.acquire() as db:
                await mail_store.failed(db, row["id"], 24 * 3600.0, f"compose: {exc!r}")
            return
        except Exception as exc:  # the file store, the database: try again later
            log.warning("mail %s not composed, again in %.0fs: %r", row["id"], delay, exc)
            async with self.store.acquire() as db:
                await mail_store.failed(db, row["id"], delay, f"compose: {exc!r}")
            return
        try:
            await self.relay.send(msg)
        except Exception as exc:
            log.warning("mail %s not sent (try %d), again in %.0fs: %r",
                        row["id"], row["attempts"] + 1, delay, exc)  # fmt: skip
            metrics.MAIL_OUT.labels("failed").inc()
            async with self.store.acquire() as db:
                await mail_store.failed(db, row["id"], delay, repr(exc))
            return
        metrics.MAIL_OUT.labels("sent").inc()
        async with self.store.acquire() as db:
            await mail_store.sent(db, row["id"], message_id, mail_id)

    async def _compose(self, row) -> tuple[EmailMessage, str | None, str]:
        s = self.settings
        msg = EmailMessage()
        msg["From"] = formataddr((fallback_subject(s), s.support_email))
        msg["To"] = row["to_address"]
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Auto-Submitted"] = "auto-replied" if row["kind"] == "notice" else "no"
        async with self.store.acquire() as db:
            mail_id = await mail_store.fix_mail_id(
                db, row["id"], make_msgid(domain=s.mail_id_domain)[1:-1]
            )
            if row["kind"] == "notice":
                msg["Subject"] = row["subject"]
                if row["in_reply_to"]:
                    msg["In-Reply-To"] = f"<{row['in_reply_to']}>"
                    msg["References"] = f"<{row['in_reply_to']}>"
                msg["Message-ID"] = f"<{mail_id}>"
                msg.set_content(row["body"])
                return msg, None, mail_id
            ctx = await mail_store.reply_context(db, row["message_id"])
            if ctx is None:
                raise LookupError("the message is gone")
            # the reply's id on the message before it is out: a fast answer threads
            await mail_store.set_mail_id(db, row["message_id"], mail_id)
            thread = await mail_store.thread_before(db, ctx["conversation_id"], ctx["seq"])
            files = await mail_store.attachments_of(db, row["message_id"])
        refs = [t["mail_id"] for t in thread if t["mail_id"]]
        customer_ids = [t["mail_id"] for t in thread if t["mail_id"] and t["sender_role"] == "user"]
        msg["Subject"] = rules.reply_subject(ctx["mail_subject"], fallback_subject(s))
        msg["Message-ID"] = f"<{mail_id}>"
        if customer_ids or refs:
            msg["In-Reply-To"] = f"<{(customer_ids or refs)[-1]}>"
            msg["References"] = " ".join(f"<{r}>" for r in refs[-20:])
        text = ctx["text"]
        attached = await self._attachable(files)
        left_out = [f["name"] for f in files if f["id"] not in attached]
        if left_out:
            text = f"{text}\n\n[in the chat, not attached: {', '.join(left_out)}]".strip()
        lines = [rules.ThreadLine(t["sender_name"], t["text"]) for t in thread]
        msg.set_content(rules.reply_body(text, lines, signature(s)))
        for f in files:
            data = attached.get(f["id"])
            if data is not None:
                maintype, _, subtype = f["content_type"].partition("/")
                msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=f["name"])
        return msg, row["message_id"], mail_id

    async def _attachable(self, files) -> dict[str, bytes]:
        """The files' bytes (as served: images re-encoded), up to `HUB_MAIL_MAX_BYTES` in
        all; the others are named in the text instead."""
        out: dict[str, bytes] = {}
        if self.files is None:
            return out
        budget = self.settings.mail_max_bytes // 2  # base64 and the rest of the mail
        for f in files:
            if f["size"] > budget:
                continue
            blob = await self.files.open(f["id"])
            if blob is None:
                continue
            data = await blob.read()
            budget -= len(data)
            out[f["id"]] = data
        return out
