"""A real SMTP server on loopback that keeps what it is sent (the relay the hub mails
replies to), and a real SMTP client for mail the customer sends to the hub."""

from __future__ import annotations

import asyncio
import smtplib
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.smtp import SMTP, Envelope, Session


class MailCatcher:
    def __init__(self, port: int) -> None:
        self.port = port
        self.mail: asyncio.Queue[EmailMessage] = asyncio.Queue()
        self._server: asyncio.Server | None = None

    async def start(self) -> MailCatcher:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="catcher.test"), "127.0.0.1", self.port,
            reuse_address=True,
        )  # fmt: skip
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        msg["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.mail.put_nowait(msg)
        return "250 OK"

    async def next(self, timeout: float = 20) -> EmailMessage:
        return await asyncio.wait_for(self.mail.get(), timeout)


def send_mail(port: int, msg: EmailMessage) -> None:
    """Send `msg` to the hub's listener: blocking, run it in a thread."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        smtp.send_message(msg)


async def deliver(port: int, msg: EmailMessage) -> None:
    await asyncio.to_thread(send_mail, port, msg)
