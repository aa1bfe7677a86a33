"""Mail in: the SMTP listener (`HUB_SMTP_LISTEN`) that turns mail to the support address
into chats.

A mail is accepted (250) only once it is stored, or answered: when the store is down the
listener says 451 and the sending server tries again later, so nothing is lost. Who sent
it is decided by `hub.rules.mail.sender_verdict`: a verified address of a known user, with
SPF or DKIM passed as our trusted relay reports it. Anyone else gets a generic answer by
mail (write from your verified address, or use the app) and nothing of any conversation;
nothing is opened or continued. A trusted mail continues the conversation its
`In-Reply-To`/`References` name (`hub.rules.mail.thread_of`), else opens one on channel
`email`, routed like any chat with a topic guessed from the subject and text. Its files go
through the attachment service (type by content, size limit, images re-encoded without
metadata); a file that is refused is named in an explanatory reply. The text is masked
like any typed message (`Chat.post`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parseaddr

import asyncpg
from aiosmtpd.smtp import SMTP, Envelope, Session

from hub import metrics
from hub.helpbot import catalog, dialogue, intents
from hub.rules import access, masking, routing
from hub.rules import mail as rules
from hub.services.attachments import Attachments
from hub.services.chat import Chat
from hub.services.mail_out import MailOut, fallback_subject
from hub.store import Store
from hub.store import conversations as conv_store
from hub.store import mail as mail_store
from hub.store.ids import new_id
from supporthub_core.auth import Claims
from supporthub_core.errors import Conflict, HubError, Invalid, Unavailable
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

GENERIC = (
    "We could not accept your message. For your security, please write to us from the "
    "e-mail address verified in your account, or contact us in the app.\n\n"
    "我们无法受理这封邮件。为保障您的账户安全，请使用您账户中已验证的邮箱地址来信，"
    "或在 App 内联系我们。\n"
)
REFUSED_FILES = (
    "We received your message, but could not accept these files:\n{files}\n\n"
    "Files up to {mb} MB in PNG, JPEG, WebP, GIF or PDF format are accepted.\n\n"
    "我们已收到您的邮件，但以下文件无法受理：\n{files}\n"
    "可接受的文件：PNG、JPEG、WebP、GIF 或 PDF，每个不超过 {mb} MB。\n"
)
MAX_TEXT = 8000  # characters of a mail's text kept as the message


def guess_topic(text: str) -> str:
    """The queue a mail goes to: security words first, else the help center's confident
    best article's topic, else `other`."""
    if intents.mentions_security(text):
        return "security"
    hit, confident = catalog.best(text)
    if hit is None or not confident:
        return "other"
    return dialogue.escalation_topic(hit.slug, None, catalog.load_help_center())


def body_text(msg: Message) -> str:
    """The text of a mail: its plain part, else its HTML part's text."""
    if not isinstance(msg, EmailMessage):
        return ""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        return ""
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        import html
        import re

        content = html.unescape(re.sub(r"<[^>]+>", " ", content))
    return content


def files_of(msg: Message) -> list[tuple[str | None, bytes]]:
    """The attachments of a mail: (file name, bytes)."""
    out: list[tuple[str | None, bytes]] = []
    if not isinstance(msg, EmailMessage):
        return out
    for part in msg.iter_attachments():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            out.append((part.get_filename(), payload))
    return out


class MailIn:
    def __init__(
        self,
        store: Store,
        chat: Chat,
        attachments: Attachments,
        mail_out: MailOut,
        settings: Settings,
    ) -> None:
        self.store = store
        self.chat = chat
        self.attachments = attachments
        self.mail_out = mail_out
        self.settings = settings
        self._server: asyncio.Server | None = None
        self.address: tuple[str, int] | None = None  # where it listens, once started

    # --- the listener ----------------------------------------------------------------------

    async def start(self) -> None:
        listen = self.settings.smtp_listen
        if not listen:
            return
        if self.settings.mail_require_auth and not self.settings.mail_trusted_authserv:
            log.warning("HUB_MAIL_TRUSTED_AUTHSERV is not set: every mail gets the generic"
                        " answer (set it, or HUB_MAIL_REQUIRE_AUTH=false behind no relay)")  # fmt: skip
        host, _, port = listen.rpartition(":")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host or "127.0.0.1", int(port))
        bound = self._server.sockets[0].getsockname()
        self.address = (bound[0], bound[1])
        log.info("SMTP listener on %s:%s for %s", *self.address, self.settings.support_email)

    def _protocol(self) -> SMTP:
        return SMTP(
            _Handler(self),
            data_size_limit=self.settings.mail_max_bytes,
            hostname=self.settings.mail_id_domain,
            ident="supporthub",
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def accepts(self, address: str) -> bool:
        return address.strip().lower() == self.settings.support_email.lower()

    # --- a mail ------------------------------------------------------------------------------

    async def receive(self, raw: bytes) -> str:
        """Handle one mail; what happened (`opened`, `continued`, `refused:<verdict>`,
        `duplicate`, `ignored`). Raises when the store is down (the listener says 451)."""
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        auto = str(msg.get("Auto-Submitted", "no")).strip().lower()
        from_address = parseaddr(str(msg.get("From", "")))[1].strip().lower()
        if auto != "no" or not from_address or self.accepts(from_address):
            return "ignored"  # no answers to automatic mail: no mail loops
        mail_id = rules.normal_id(str(msg.get("Message-ID", ""))) or (
            "sh-" + hashlib.sha256(raw).hexdigest()[:32] + "@" + self.settings.mail_id_domain
        )
        subject = str(msg.get("Subject", "") or "")
        in_reply_to = str(msg.get("In-Reply-To", "") or "")
        references = str(msg.get("References", "") or "")
        headers = [str(h) for h in msg.get_all("Authentication-Results") or []]
        results = rules.trusted_results(headers, self.settings.mail_trusted_authserv)
        async with self.store.acquire() as db:
            owner = await mail_store.owner(db, from_address)
            verdict = rules.sender_verdict(
                from_address,
                known_user=owner is not None,
                verified=bool(owner and owner["verified"]),
                results=results,
                require_auth=self.settings.mail_require_auth,
            )
            if verdict != "trusted" or owner is None:
                log.info("mail from an untrusted sender refused: %s", verdict)
                await mail_store.notice(
                    db, from_address, rules.reply_subject(subject, fallback_subject(self.settings)),
                    GENERIC, mail_id,
                )  # fmt: skip
                self.mail_out.nudge()
                return f"refused:{verdict}"
            if await mail_store.known_ids(db, [mail_id]):
                await self._queue_if_held(db, mail_id)
                return "duplicate"  # the same mail again (a retry of the sending server)
            known = await mail_store.known_ids(db, rules.message_ids(in_reply_to, references))
            opened_before = await mail_store.opened_by(db, mail_id)  # then cut off: retried
            await mail_store.ensure_user(db, owner["user_id"], owner["name"])
        user_id = owner["user_id"]
        name = owner["name"] or from_address
        text = rules.strip_quoted(body_text(msg))[:MAX_TEXT].strip()
        cid = opened_before or rules.thread_of(in_reply_to, references, known, user_id)
        outcome = "continued"
        if cid is None:
            outcome = "opened"
            topic_text = rules.subject_topic_text(subject)
            cid = await self._open(user_id, owner["lang"] or "zh", f"{topic_text}\n{text}",
                                   from_address, topic_text, mail_id)  # fmt: skip
            if topic_text and topic_text not in text:
                text = f"{topic_text}\n\n{text}".strip()
        else:
            async with self.store.acquire() as db:  # replies go to where this one came from
                await mail_store.set_reply_email(db, cid, from_address, None)
        claims = Claims(sub=user_id, role="user", name=name)
        stored, refused = await self._files(claims, cid, files_of(msg))
        if not text and not stored:
            text = rules.subject_topic_text(subject) or "(no text)"
        posted = await self.chat.post(
            {"id": cid}, "user", user_id, name, text, "mail:" + mail_id[:200], tuple(stored)
        )
        opening = outcome == "opened" or cid == opened_before
        async with self.store.acquire() as db:
            await mail_store.set_mail_id(db, posted.message_id, mail_id)
            if opening:
                await mail_store.enqueue_opened(db, cid)
            if refused:
                listing = "\n".join(f"- {n}: {why}" for n, why in refused)
                mb = self.settings.attachment_max_bytes // (1024 * 1024)
                await mail_store.notice(
                    db, from_address, rules.reply_subject(subject, fallback_subject(self.settings)),
                    REFUSED_FILES.format(files=listing, mb=mb), mail_id, cid,
                )  # fmt: skip
                self.mail_out.nudge()
        if opening:
            await self.chat.route()
        return outcome

    # --- leave a message: answered by mail ---------------------------------------------

    async def leave_message(self, claims: Claims, cid: str) -> str:
        """The user's open chat is answered by mail too, at their verified address (shown
        back half hidden); `invalid` (`reason: no_verified_email`) without one."""
        async with self.store.acquire() as db:
            conv = await conv_store.get(db, cid)
            access.ensure(access.may_act(claims.role, claims.sub, conv))
            assert conv is not None
            if conv["status"] not in conv_store.OPEN:
                raise Conflict("the conversation is closed")
            address = await mail_store.verified_address(db, claims.sub)
            if address is None:
                raise Invalid(
                    "no verified e-mail address: add one in the app first",
                    details={"reason": "no_verified_email"},
                )
            subject = f"{fallback_subject(self.settings)}: {conv['topic']}"
            await mail_store.set_reply_email(db, cid, address, subject)
        return rules.hide_address(address)

    async def _queue_if_held(self, db: asyncpg.Connection, mail_id: str) -> None:
        """The chat this mail opened joins the queue if it is still held: the node that
        stored the mail was cut off before it queued the chat."""
        opened = await mail_store.opened_by(db, mail_id)
        if opened is not None and await mail_store.enqueue_opened(db, opened):
            await self.chat.route()

    async def _open(
        self, user_id: str, lang: str, text: str, address: str, subject: str, mail_id: str
    ) -> str:
        """The mail's chat, held out of the queue (as `bot`, which no bot answers here)
        until its text and files are stored: a routing pass in between would hand an agent
        a chat with nothing in it. `enqueue_opened` queues it, on a retried mail too."""
        topic = guess_topic(text)
        cid = new_id()
        async with self.store.acquire() as db, db.transaction():
            await conv_store.create(
                db, cid, user_id, topic=topic, priority=routing.priority_for_topic(topic),
                status="bot", lang=lang, channel="email",
            )  # fmt: skip
            await mail_store.set_reply_email(db, cid, address, subject or None)
            await mail_store.record_opening(db, mail_id, cid)
        return cid

    async def _files(
        self, claims: Claims, cid: str, files: list[tuple[str | None, bytes]]
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """Each file through the attachment service; (stored ids, [(name, why refused)])."""
        stored: list[str] = []
        refused: list[tuple[str, str]] = []
        limit = self.settings.attachment_max_per_message
        for filename, data in files:
            shown = masking.mask(filename or "file").text
            if len(stored) >= limit:
                refused.append((shown, f"at most {limit} files per message"))
            elif len(data) > self.attachments.max_bytes:
                mb = self.attachments.max_bytes // (1024 * 1024)
                refused.append((shown, f"larger than {mb} MB"))
            else:
                try:
                    view = await self.attachments.upload(claims, cid, filename, data)
                except Unavailable:
                    raise  # the file store is down: the sending server retries the mail
                except HubError as exc:
                    refused.append((shown, exc.message))
                else:
                    stored.append(view["attachment_id"])
        return stored, refused


class _Handler:
    """aiosmtpd's hooks: only the support address is a recipient; DATA is handled."""

    def __init__(self, mail_in: MailIn) -> None:
        self.mail_in = mail_in

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if not self.mail_in.accepts(address):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode()
        try:
            outcome = await self.mail_in.receive(raw)
        except Exception as exc:
            log.warning("mail not taken (the sender will retry): %r", exc)
            return "451 4.3.0 Temporarily unable to take this message, try again later"
        log.info("mail %s", outcome)
        metrics.MAIL_IN.labels(outcome).inc()
        return "250 2.0.0 Message accepted"
