"""Dev only: a local SMTP server that keeps the mail the hub sends (the relay `dev` uses
when no `HUB_SMTP_RELAY_HOST` is set), listed at `/dev/mail`."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.smtp import SMTP, Envelope, Session

KEEP = 200


@dataclass(frozen=True, slots=True)
class CaughtMail:
    received_at: datetime
    mail_from: str
    rcpt_to: tuple[str, ...]
    subject: str
    message_id: str
    in_reply_to: str
    text: str

    def view(self) -> dict:
        return {
            "received_at": self.received_at.isoformat(),
            "from": self.mail_from,
            "to": list(self.rcpt_to),
            "subject": self.subject,
            "message_id": self.message_id,
            "in_reply_to": self.in_reply_to,
            "text": self.text,
        }


class DevMailCatcher:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.mail: collections.deque[CaughtMail] = collections.deque(maxlen=KEEP)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="dev-mail-catcher"), self.host, self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        text = ""
        if isinstance(msg, EmailMessage):
            body = msg.get_body(preferencelist=("plain",))
            if body is not None:
                content = body.get_content()
                text = content if isinstance(content, str) else ""
        self.mail.appendleft(
            CaughtMail(
                datetime.now(UTC),
                str(envelope.mail_from or ""),
                tuple(envelope.rcpt_tos),
                str(msg.get("Subject", "")),
                str(msg.get("Message-ID", "")),
                str(msg.get("In-Reply-To", "")),
                text,
            )
        )
        return "250 OK"
