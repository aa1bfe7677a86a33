"""A chat in the terminal (`supporthub chat`): the user's side of a support chat over the
Python client. Each line typed (or piped) is a message; replies, typing, queue positions
and notifications print as they come. The first line opens a chat unless one is open.

Commands: `/agent` asks for a person, `/close` ends the chat, `/quit` leaves (also at the
end of the input, once every line has been acked).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from supporthub_client.client import Client, HubError, client_msg_id
from supporthub_client.events import (
    ChatAssigned,
    ChatClosed,
    ChatOpened,
    ChatQueued,
    Error,
    Event,
    Message,
    Notification,
    StateChange,
    Typing,
    Welcome,
)

OPEN = ("bot", "queued", "assigned")
DRAIN_TIMEOUT_S = 30


@dataclass
class ChatOptions:
    url: str  # the hub's base URL, http(s)://host:port
    user: str | None = None
    name: str | None = None
    token: str | None = None
    topic: str = "other"
    handoff: str = "bot"
    codec: str = "msgpack"
    lang: str | None = None
    connect_timeout: float = 30


def ws_url_of(base: str) -> str:
    base = base.rstrip("/")
    if base.startswith(("ws://", "wss://")):
        return base if base.endswith("/ws") else base + "/ws"
    scheme, rest = base.split("://", 1) if "://" in base else ("http", base)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"


class TerminalChat:
    def __init__(self, opts: ChatOptions, out: TextIO, err: TextIO) -> None:
        self.opts = opts
        self.out = out
        self.err = err
        self.me: str | None = None
        self.current: str | None = None
        self.mine: set[str] = set()  # client_msg_ids typed here: not echoed back
        self.typing_shown: set[str] = set()
        self.sending: set[asyncio.Task[None]] = set()
        base = opts.url.rstrip("/")
        if base.startswith("ws"):
            base = "http" + base[2:].removesuffix("/ws")
        self.http_base = base
        hello: dict[str, Any] = {"lang": opts.lang} if opts.lang else {}
        # a token given is used as it is (refused: the chat ends); else demo tokens, anew
        # for every connection
        token: str | Callable[[], Awaitable[str]] = opts.token or self._token
        self.client = Client(ws_url_of(opts.url), token, codec=opts.codec, hello=hello,
                             http_url=self.http_base)  # fmt: skip

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def note(self, line: str) -> None:
        print(line, file=self.err, flush=True)

    async def _token(self) -> str:
        if self.opts.token:
            return self.opts.token
        # the way `supporthub dev` hands out demo tokens (absent from `serve`: pass --token)
        params = {k: v for k, v in (("user", self.opts.user), ("name", self.opts.name)) if v}
        async with httpx.AsyncClient(base_url=self.http_base, timeout=10) as http:
            r = await http.get("/api/dev/token", params=params)
        if r.status_code != 200:
            raise HubError("unauthorized", f"no demo token from {self.http_base} ({r.status_code})")
        body = r.json()
        self.me = body.get("user_id")
        return str(body["token"])

    # --- what arrives ------------------------------------------------------------------------

    def show(self, event: Event) -> None:
        match event:
            case StateChange(state="reconnecting"):
                self.note("[connection lost: reconnecting]")
            case StateChange(state="open"):
                pass
            case Welcome():
                self.me = event.sub
                opened = [c for c in event.conversations if c.get("status") in OPEN]
                if self.current is None and opened:
                    self.current = opened[-1]["conversation_id"]
                    self.note(f"[connected as {event.sub}; chat {self.current} is open]")
                else:
                    self.note(f"[connected as {event.sub}]")
            case Message():
                if event.client_msg_id in self.mine:
                    return
                who = event.sender
                if who.role == "user" and who.id == self.me:
                    label = "you"
                elif who.role == "system":
                    label = "[system]"
                else:
                    label = who.name or who.id
                files = "".join(f" [file: {a.get('name')}]" for a in event.attachments)
                self.typing_shown.discard(event.conversation_id)
                self.say(
                    f"{label}: {event.text}{files}"
                    if label != "[system]"
                    else f"{label} {event.text}"
                )
            case Typing():
                name = event.sender.get("name") if isinstance(event.sender, dict) else None
                if event.state and event.conversation_id not in self.typing_shown:
                    self.typing_shown.add(event.conversation_id)
                    self.say(f"[{name or 'agent'} is typing…]")
                elif not event.state:
                    self.typing_shown.discard(event.conversation_id)
            case ChatOpened():
                self.current = event.conversation_id
            case ChatQueued():
                notice = event.raw.get("notice")
                self.say(f"[queue] {notice}" if notice else
                         f"[queue] position {event.position}, about {event.eta_s} s")  # fmt: skip
            case ChatAssigned():
                agent = event.agent or {}
                self.say(f"[{agent.get('name') or agent.get('id')} joined the chat]")
            case ChatClosed():
                self.say(f"[chat closed by {event.by}]")
                if event.conversation_id == self.current:
                    self.current = None
            case Notification():
                self.say(f"[notification] {event.title}: {event.body}")
            case Error() if event.id is None:
                self.note(f"[error] {event.code}: {event.message}")
            case _:
                pass

    # --- what is typed -----------------------------------------------------------------------

    async def handle_line(self, line: str) -> bool:
        """False when the user asked to leave."""
        text = line.strip()
        if not text:
            return True
        if text == "/quit":
            return False
        try:
            if text == "/agent":
                if self.current:
                    await self.client.request(
                        {"type": "chat.escalate", "conversation_id": self.current}, retry=True
                    )
                else:
                    self.note("[no open chat]")
            elif text == "/close":
                if self.current:
                    await self.client.request(
                        {"type": "chat.close", "conversation_id": self.current}, retry=True
                    )
                else:
                    self.note("[no open chat]")
            elif self.current is None:
                opened = await self.client.open_chat(
                    self.opts.topic, text, handoff=self.opts.handoff,
                    **({"lang": self.opts.lang} if self.opts.lang else {}),
                )  # fmt: skip
                self.current = opened["conversation_id"]
            else:
                cmid = client_msg_id()
                self.mine.add(cmid)
                task = asyncio.create_task(self._send(self.current, text, cmid))
                self.sending.add(task)
                task.add_done_callback(self.sending.discard)
        except HubError as exc:
            self.note(f"[not sent: {exc.code}: {exc.message or exc.code}]")
        return True

    async def _send(self, cid: str, text: str, cmid: str) -> None:
        """Through the outbox: sent again after a reconnect until acked, stored once."""
        try:
            await self.client.send_message(cid, text, client_msg_id=cmid, timeout=365 * 86400)
        except HubError as exc:
            self.note(f"[not sent: {exc.code}: {exc.message or exc.code}]")

    async def run(self, lines: asyncio.Queue[str | None]) -> int:
        self.client.on("*", self.show)
        self.client.on("state", self.show)
        try:
            await self.client.start(timeout=self.opts.connect_timeout)
        except TimeoutError:
            self.note(f"[could not reach the hub at {self.opts.url}]")
            await self.client.stop()
            return 4
        except HubError as exc:
            self.note(f"[{exc.message or exc.code}]")
            await self.client.stop()
            return 1
        try:
            while True:
                line = await lines.get()
                if line is None or not await self.handle_line(line):
                    break
            await self._drain()
        finally:
            await self.client.stop()
        return 0

    async def _drain(self) -> None:
        """Wait (a while) until every line typed has been acked."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT_S
        while self.client.unsent and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self.client.unsent:
            self.note(f"[{len(self.client.unsent)} message(s) not sent]")


def _read_lines(
    stream: TextIO, loop: asyncio.AbstractEventLoop, q: asyncio.Queue[str | None]
) -> None:
    for line in stream:
        loop.call_soon_threadsafe(q.put_nowait, line)
    loop.call_soon_threadsafe(q.put_nowait, None)


async def chat(opts: ChatOptions, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout,
               err: TextIO = sys.stderr) -> int:  # fmt: skip
    """Run the terminal chat until the input ends or `/quit`; the exit code."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=_read_lines, args=(stdin, loop, lines), daemon=True).start()
    return await TerminalChat(opts, out, err).run(lines)
