"""Chat use cases: open, escalate, send, typing, read, note, transfer, resolve, close, rate,
agent status. Thin: each checks who may do it, changes the store, then publishes.

What people type (messages of users and agents, notes, rating comments) is masked before it
is written (hub.rules.masking): codes, card numbers, ID numbers and passwords never reach
the store, the bus, other devices, agents, pushes or the log in clear. The sender's own
connection gets a `security.warning` saying what was hidden. Staff asking a customer for a
code or a password are refused (`error invalid`, `reason: asks_for_secret`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import asyncpg

from hub import metrics
from hub.attachments.links import AttachmentLinks
from hub.background import Background
from hub.cluster.bus import agent_channel, user_channel
from hub.cluster.delivery import Delivery
from hub.rules import access, masking, opening, routing, sla, urgent
from hub.rules import hours as hours_rule
from hub.rules import queue as queue_rules
from hub.rules.mentions import mentions
from hub.services.audit import Audit
from hub.services.languages import Languages
from hub.services.pager import LogPager, OnCallPage, Pager
from hub.store import Store, notes
from hub.store import agents as agent_store
from hub.store import assignments as assign_store
from hub.store import conversations as conv_store
from hub.store import feedback as feedback_store
from hub.store import notifications as notif_store
from hub.store import queue as assigner
from hub.store import service_levels as sl_store
from hub.store import users as user_store
from hub.store.ids import new_id
from hub.store.messages import MessageWrite, StoredMessage
from hub.store.opening import ChatOpen
from hub.ws.connection import Connection
from hub.ws.protocol import encode_msgpack
from supporthub_core.audit import AuditEntry
from supporthub_core.auth import Claims
from supporthub_core.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

HISTORY_LIMIT = 200
SYSTEM = ("system", "supporthub")

SYSTEM_TEXT = {
    "transferred": {
        "zh": "您的对话已转接给 {name}。",
        "en": "Your chat was transferred to {name}.",
    },
    "requeued": {
        "zh": "正在为您转接其他客服，请稍候。",
        "en": "We are connecting you to another agent.",
    },
    "resolved": {
        "zh": "本次对话已结束，感谢您的耐心。",
        "en": "This chat has been resolved. Thank you.",
    },
    "idle": {
        "zh": "由于长时间无新消息，对话已自动关闭。",
        "en": "This chat was closed after a period of inactivity.",
    },
    "queued": {
        "zh": "已为您转接人工客服，请稍候。",
        "en": "You are in the queue for a support agent.",
    },
    # the answer deadline passed and someone else who can take the chat is free
    "reoffered": {
        "zh": "您的客服暂时没有回复，正在为您转接另一位客服。",
        "en": "Your agent has not replied, so we are connecting you to another agent.",
    },
    # the answer deadline passed and nobody else can take it now: it keeps its place
    "kept_place": {
        "zh": "您的客服暂时没有回复。目前没有其他能处理此问题的客服有空，您仍保留排队位置，"
        "有客服空闲时会立即为您接入。",
        "en": "Your agent has not replied. No other agent who can help with this is free right"
        " now; you keep your place in the queue and will be connected as soon as one is.",
    },
    # moved to another team's queue, where nobody can take it now
    "transferred_wait": {
        "zh": "您的对话已转给相关团队。目前该团队暂无客服有空，您已在排队，有客服空闲时会立即为您接入。",
        "en": "Your chat was passed to the right team. No one there is free right now; you are"
        " in their queue and will be connected as soon as someone is.",
    },
    # its agent left (went offline or away) and nobody else can take it now
    "agent_left": {
        "zh": "您的客服暂时离开了。目前没有其他能处理此问题的客服有空，您仍保留排队位置，"
        "有客服空闲或原客服回来时会立即为您接入。",
        "en": "Your agent had to step away. No other agent who can help with this is free right"
        " now; you keep your place in the queue and will be connected as soon as one is, or"
        " when your agent is back.",
    },
    # nobody who can take the chat is online
    "unstaffed": {
        "zh": "目前没有能处理此问题的客服在线。您的对话会保留，您可以在此留言：客服上线后会在"
        "应用内回复您，如您开启了通知，也会收到推送提醒。",
        "en": "No one who can help with this is online right now. Your chat stays open and you"
        " can leave a message here: an agent will reply in the app when they are back, and you"
        " will get a push notification if you turned them on.",
    },
    "hours": {
        "zh": "服务时间：{hours}，下次开始服务：{opens}。",
        "en": "Opening hours: {hours}; we open again at {opens}.",
    },
    "hours_open": {
        "zh": "服务时间：{hours}。",
        "en": "Opening hours: {hours}.",
    },
    "message_left": {
        "zh": "已收到您的留言。客服上线后会在应用内回复您，如您开启了通知，也会收到推送提醒。"
        "您可以先离开，对话会一直保留。",
        "en": "Your message is saved. An agent will reply here in the app, and you will get a"
        " push notification if you turned them on. You can leave now: the chat stays open.",
    },
    # service level breached: the chat moves to someone free, or a supervisor is alerted
    "sla_rerouted": {
        "zh": "让您久等了，正在为您转接另一位有空的客服。",
        "en": "Sorry for the wait: we are moving your chat to another agent who is free.",
    },
}


#: What an agent set away for an unanswered chat is told (`agent.state.text`).
AWAY_TEXT = {
    "zh": "您未在规定时间内回复新对话，已被设为离开，不会再分配新对话。回来后请切换为在线。",
    "en": "You did not answer a new chat in time, so you were set away and get no new chats."
    " Switch back to online when you are back.",
}

#: Senders whose text is typed by a person, so masked before it is stored.
TYPED_BY_PEOPLE = frozenset({"user", "agent"})
LANGS: tuple[masking.Lang, ...] = ("zh", "en")

#: The `security.warning` text for staff, whose own message had a secret hidden.
STAFF_MASKED = {
    "zh": "消息中的验证码、卡号、证件号或密码已自动隐藏。",
    "en": "Codes, card numbers, ID numbers and passwords in your message were hidden.",
}


def system_text(key: str, lang: str, **fields: object) -> str:
    texts = SYSTEM_TEXT[key]
    return texts.get(lang, texts["zh"]).format(**fields)


def system_texts(key: str, **fields: object) -> dict[str, str]:
    """A system text in every language (each user device shows its own)."""
    return {lang: system_text(key, lang, **fields) for lang in LANGS}


class BotSeat(Protocol):
    """What a chat needs of the help bot: it answers first in a `bot` chat."""

    async def on_open(self, conv: Any, text: str | None) -> None: ...

    async def on_user_message(self, cid: str, text: str) -> None: ...

    def handover_topic(self, conv: Any) -> str | None: ...

    async def on_user_files(self, cid: str) -> None: ...


class Presence(Protocol):
    async def online(self, user_ids) -> set[str]: ...


class MessagePush(Protocol):
    """What a chat tells the push sender (PushOut, seated after both are built)."""

    def message_posted(self, msg: StoredMessage) -> None: ...

    def urgent_staffed(self, msg: StoredMessage) -> None: ...


class MessageMail(Protocol):
    """What a chat tells the mail sender (MailOut): a reply may be due by mail."""

    def message_posted(self, msg: StoredMessage) -> None: ...


class RatingFeedback(Protocol):
    async def from_rating(self, conv: Any, score: int, comment: str) -> None: ...


class _Pass:
    """A routing pass as its callers wait for it: it starts after they asked, COMMITs
    (`committed`: then `result` or `error`), and its frames go out (`announced`)."""

    __slots__ = ("watch", "before", "committed", "announced", "result", "error")

    def __init__(self) -> None:
        self.watch: set[str] = set()
        self.before: list[Callable[[assigner.RouteResult], None]] = []
        self.committed = asyncio.Event()
        self.announced = asyncio.Event()
        self.result: assigner.RouteResult | None = None
        self.error: Exception | None = None

    def fail(self, error: Exception) -> None:
        self.error = error
        self.committed.set()
        self.announced.set()


class Chat:
    def __init__(
        self,
        store: Store,
        delivery: Delivery,
        languages: Languages,
        tasks: Background,
        settings: Settings,
        links: AttachmentLinks,
        pager: Pager | None = None,
        audit: Audit | None = None,
    ) -> None:
        self.store = store
        self.delivery = delivery
        self.languages = languages
        self.tasks = tasks
        self.settings = settings
        self.pager: Pager = pager or LogPager()
        self.audit = audit or Audit(store)
        self.policy = urgent.UrgentPolicy(
            answer_s=settings.urgent_answer_s,
            escalate_s=settings.urgent_escalate_s,
            extra_slots=settings.urgent_extra_slots,
        )
        self.links = links  # signs the links of attachments in the frames it sends
        self.bot: BotSeat | None = None
        self.presence: Presence | None = None  # who of the customers has a socket open
        self.push_out: MessagePush | None = None
        self.mail_out: MessageMail | None = None  # replies in e-mail chats go out by mail
        self.feedback: RatingFeedback | None = None  # rating comments join the feedback
        # routing: the pass new callers join (not started yet), the task running passes
        # one after another, and the committed passes whose frames have not gone out yet
        # (announced in commit order by another task, so that the next pass need not wait)
        self._next_pass: _Pass | None = None
        self._router: asyncio.Task | None = None
        self._unannounced: list[_Pass] = []
        self._announcer: asyncio.Task | None = None
        self.sla_targets = sla_targets(settings)

    def seat_bot(self, bot: BotSeat) -> None:
        """The help bot answers `bot` chats (chats open without one: straight to humans)."""
        self.bot = bot

    # --- helpers -----------------------------------------------------------------------

    async def _conversation(
        self, db, cid: str, claims: Claims | None, *, lock: bool = False
    ) -> asyncpg.Record:
        """The conversation the caller may act on (`claims` None: the hub itself, as when
        the bot hands a chat over); raises the access rule's refusal otherwise."""
        conv = await conv_store.get(db, cid, lock=lock)
        role, caller = ("system", SYSTEM[1]) if claims is None else (claims.role, claims.sub)
        access.ensure(access.may_act(role, caller, conv))
        assert conv is not None  # may_act refuses a conversation that does not exist
        return conv

    async def post(
        self,
        conv,
        role: str,
        sender_id: str,
        name: str,
        text: str,
        client_msg_id: str | None = None,
        attachments: tuple[str, ...] = (),
        *,
        sender: Connection | None = None,
        texts: dict[str, str] | None = None,
        system: dict | None = None,
    ) -> StoredMessage:
        """Store a message (with the files it carries, in the same write), then push it to
        both sides. Every message goes through here, so this is where a person's text is
        masked: the masked text is what is stored, pushed, replayed and echoed to the
        sender; `sender`, the connection it came from, is told what was hidden."""
        masked = masking.mask(text) if role in TYPED_BY_PEOPLE else masking.Masked(text)
        op = MessageWrite(
            conv["id"],
            role,
            sender_id,
            name,
            masked.text,
            client_msg_id,
            attachments,
            texts,
            system,
        )
        msg: StoredMessage = await self.store.writer.submit(op)
        if isinstance(msg, Exception):
            raise msg
        await self._posted(conv, msg, masked, sender)
        return msg

    async def _posted(
        self, conv, msg: StoredMessage, masked: masking.Masked, sender: Connection | None
    ) -> None:
        """A stored message goes out: to both sides, to push and mail, and its sender is
        told what was hidden."""
        if not msg.duplicate:
            # queued before this task awaits anything: a COMMIT's writes resume in their
            # batch's order, so a conversation's frames are queued, and published, in seq
            # order (one overtaken on the bus would wait at the receiving socket for the gap)
            await self.delivery.to_conversation_queued(
                {"user_id": msg.user_id, "agent_id": msg.agent_id}, self.frame(msg)
            )
        if self.push_out is not None:
            self.push_out.message_posted(msg)  # push: an agent's reply to a user with no socket
        if self.mail_out is not None:
            self.mail_out.message_posted(msg)  # an e-mail chat's reply: the outbox has it
        if masked.kinds and sender is not None:
            # the device's own language when it said one, else the chat's
            lang = (
                (sender.locale[0] if sender.locale else None)
                or conv.get("lang")
                or (await self.languages.of({msg.user_id}))[msg.user_id]
            )
            warn(sender, msg.conversation_id, masked, lang)

    def frame(self, msg: StoredMessage) -> dict:
        """The `message` frame of a stored message, its attachments' links signed now."""
        return self.links.frame(msg.frame())

    async def system_message(
        self, conv, key: str, params: dict | None = None, **fields
    ) -> StoredMessage:
        """A system message in the chat's language for the customer (and in every language
        as `texts`, for each device to read its own), with what it says as
        `system {kind, params}` for agents' consoles to word in their own."""
        text = system_text(key, conv["lang"], **fields)
        return await self.post(
            conv, "system", *SYSTEM, text,
            texts=system_texts(key, **fields), system={"kind": key, "params": params or {}},
        )  # fmt: skip

    # --- user --------------------------------------------------------------------------

    async def open(
        self,
        conn: Connection,
        topic: str,
        text: str | None,
        handoff: str,
        lang: str | None,
        fid: str | None = None,
    ) -> dict:
        claims = conn.identity
        cid = new_id()
        status = "bot" if handoff == "bot" else "queued"
        priority = routing.priority_for_topic(topic)
        # stored with whatever else opened meanwhile (hub.store.opening); the chat's
        # language becomes the user's for notifications too
        # the same open again (its answer lost) names the same topic and words: the chat
        # the first one stored, if it is still open (hub.rules.opening)
        masked = masking.mask(text) if text else None
        key = opening.open_key(topic, masked.text if masked else None)
        conv = await self.store.opener.submit(
            ChatOpen(
                cid, claims.sub, topic, priority, status, lang, conn.client_kind,
                self.settings.returning_customer_window_s, key,
                masked.text if masked else None, claims.display_name,
            )
        )  # fmt: skip
        if lang:
            self.languages.forget(claims.sub)

        def reply(now: str, **more: Any) -> None:
            frame = {"type": "chat.opened", "conversation_id": cid, "status": now, "topic": topic}
            if fid is not None:
                frame["id"] = fid
            conn.send_frame({**frame, **more})

        if conv["id"] != cid:
            # an open sent again (its answer was lost, or the client gave up waiting) or a
            # second tap: the open that stored the chat posted its text and routes it; this
            # one names it, and starts the bot if that one gave up before it could
            cid, topic = conv["id"], conv["topic"]
            reply(conv["status"], existing=True)
            if conv["open_follow_up_at"] is not None:  # after the answer, whatever befalls it
                self.tasks.spawn(self.finish_open(cid), "open-finish")
            return {"conversation_id": cid}

        # the opening message comes back over the bus; this socket holds it (and anything
        # else live) until `chat.opened` is out, so the client learns of the chat first
        holding = conn.held is None
        if holding:
            conn.hold()
        try:
            if masked is not None:  # stored with the chat, as message 1
                first = StoredMessage(
                    conv["first_message_id"], cid, 1, "user", claims.sub, claims.display_name,
                    masked.text, None, conv["first_message_at"], claims.sub, None,
                    conversation_status=status,
                )  # fmt: skip
                await self._posted(conv, first, masked, conn)
            if status == "queued":  # its status as the pass that saw it left it
                await self.route(
                    before_announce=lambda result: reply(result.statuses.get(cid, status)),
                    watch=cid,
                )
            else:
                reply(status)
        finally:
            if holding:
                conn.release()
        if status == "bot":  # a queued chat needs no more: every routing pass places it
            self._follow_up(conv, masked.text if masked else None)
        return {"conversation_id": cid}

    def _follow_up(self, conv, text: str | None) -> None:
        """After a `bot` chat is opened: the bot takes its first turn (unless the chat left
        the bot meanwhile); then nothing is left of the open to do."""
        if conv["status"] == "bot" and self.bot is not None:
            self.tasks.spawn(self._bot_first_turn(self.bot, conv, text), "bot-open")
        else:
            self.tasks.spawn(self._open_done(conv["id"]), "open-done")

    async def _bot_first_turn(self, bot: BotSeat, conv, text: str | None) -> None:
        await bot.on_open(conv, text)
        await self._open_done(conv["id"])

    async def _open_done(self, cid: str) -> None:
        async with self.store.acquire() as db:
            await conv_store.open_follow_up_done(db, cid)

    async def finish_open(self, cid: str, conv=None) -> None:
        """The follow-up of a `bot` chat's open that was stored but whose node never did it
        (it gave up waiting for the store's answer, or stopped): the customer's devices get
        the chat's first message, then the bot takes its first turn. `conv`: the chat,
        already taken (the sweeper's); else taken here if it is due."""
        async with self.store.acquire() as db:
            if conv is None:
                conv = await conv_store.take_open_follow_up(db, cid, self.settings.open_follow_up_s)
                if conv is None:
                    return  # done, or another node is on it
            first = await conv_store.messages_after(db, cid, 0, limit=1)
        if first:
            await self.delivery.to_conversation(conv, self.links.frame(first[0]))
        question = first[0]["text"] if first and first[0]["sender"]["role"] == "user" else None
        self._follow_up(conv, question)

    async def escalate(self, claims: Claims | None, cid: str, topic: str | None = None) -> str:
        """From the bot to the human queue; `claims` None when the bot itself hands over."""
        async with self.store.acquire() as db, db.transaction():
            conv = await self._conversation(db, cid, claims, lock=True)
            if conv["status"] != "bot":
                if conv["status"] in ("queued", "assigned"):
                    return conv["status"]
                raise Conflict("the conversation is closed")
            if topic is None and self.bot is not None:
                topic = self.bot.handover_topic(conv)  # what its last reply offered, if any
            topic = topic or conv["topic"]
            priority = routing.priority_for_topic(topic)
            conv = await conv_store.hand_to_queue(db, cid, topic, priority)
        await self.system_message(conv, "queued")
        await self.route()
        return "queued"

    async def close(self, claims: Claims, cid: str) -> dict:
        """The user ends the chat; `{status, by}`: the chat's final state, which is another
        end's when that one came first (a resolve, an idle close): the close is then an
        idempotent no-op."""
        async with self.store.acquire() as db:
            await self._conversation(db, cid, claims)
            conv = await conv_store.end(db, cid, "closed", "user")
            if conv is None:
                return await self._ended_state(db, cid)
        await self.delivery.to_conversation(
            conv, {"type": "chat.closed", "conversation_id": cid, "by": "user"}
        )
        if conv["agent_id"]:
            await self.push_agent_state(conv["agent_id"])
            await self.ended_by(conv["agent_id"])
        await self.route()
        return {"status": "closed", "by": "user"}

    async def _ended_state(self, db, cid: str) -> dict:
        """The final state of a chat an end did not apply to; Conflict if it is open."""
        conv = await conv_store.get(db, cid)
        state = conv_store.ended_state(conv) if conv is not None else None
        if state is None:
            raise Conflict("only an assigned chat can be resolved")
        return state

    async def close_idle(self, conv) -> None:
        async with self.store.acquire() as db:
            row = await conv_store.close_if_idle(db, conv["id"], conv["last_activity_at"])
        if row is None:
            return  # something happened meanwhile
        await self.system_message(row, "idle")
        await self.delivery.to_conversation(
            row, {"type": "chat.closed", "conversation_id": row["id"], "by": "system"}
        )
        if row["agent_id"]:
            await self.push_agent_state(row["agent_id"])
            await self.ended_by(row["agent_id"])

    async def rate(self, claims: Claims, cid: str, score: int, comment: str | None) -> None:
        if comment:
            comment = masking.mask(comment).text
        async with self.store.acquire() as db:
            conv = await self._conversation(db, cid, claims)
            if conv["status"] not in ("resolved", "closed"):
                raise Conflict("a chat can be rated once it is closed")
            rated = await conv_store.rate_once(db, cid, score, comment)
        if not rated:
            if (conv["rating"], conv["rating_comment"]) == (score, comment):
                return  # the same rating again (a retry after a reconnect): already done
            raise Conflict("this chat has been rated already")
        if comment and self.feedback is not None:
            await self.feedback.from_rating(conv, score, comment)
        # the agent sees it; the user's other devices stop offering the form
        await self.delivery.to_conversation(
            conv, {"type": "chat.rated", "conversation_id": cid, "score": score, "comment": comment}
        )

    # --- both sides --------------------------------------------------------------------

    async def send(
        self,
        claims: Claims,
        cid: str,
        client_msg_id: str,
        text: str,
        attachments: tuple[str, ...] = (),
        sender: Connection | None = None,
    ) -> StoredMessage:
        """A message from the user or the agent: text, files (uploaded to this chat by the
        sender, POST /api/attachments), or both. A socket's `chat.send`s may be in flight
        together (hub.ws.endpoint pipelines them): stored, and published, in their order."""
        if not text and not attachments:
            raise Invalid("a message needs text or attachments")
        if len(attachments) > self.settings.attachment_max_per_message:
            limit = self.settings.attachment_max_per_message
            raise Invalid(f"at most {limit} attachments per message")
        role = _side(claims)
        # nothing here may wait before the write is queued (but a refusal): a socket's
        # pipelined sends (hub.ws.endpoint) reach the store in the order they were sent
        if role == "agent" and text:
            await self._refuse_requests_for_secrets(claims, cid, text)
        conv = {"id": cid}  # the writer checks the conversation in its batch
        msg = await self.post(
            conv, role, claims.sub, claims.display_name, text, client_msg_id, attachments,
            sender=sender,
        )  # fmt: skip
        if role == "user" and not msg.duplicate and msg.conversation_status == "bot":
            if self.bot is not None:
                if text:
                    self.tasks.spawn(self.bot.on_user_message(cid, msg.text), "bot-reply")
                else:  # only files: the bot cannot read them, a person can
                    self.tasks.spawn(self.bot.on_user_files(cid), "bot-files")
        return msg

    async def _refuse_requests_for_secrets(self, claims: Claims, cid: str, text: str) -> None:
        """Staff never ask a customer for a verification code or a password: such a message
        is refused, and the agent told why (in the chat's language, and both in `details`).
        Someone else's chat is refused as such first, with no explanation."""
        kind = masking.asks_for_secret(text)
        if kind is None:
            return
        async with self.store.acquire() as db:
            conv = await self._conversation(db, cid, claims)
        lang: masking.Lang = conv["lang"] if conv["lang"] in LANGS else "zh"
        explanation = {each: masking.ask_explanation(kind, each) for each in LANGS}
        raise Invalid(
            explanation[lang],
            details={"reason": "asks_for_secret", "kind": kind, "explanation": explanation},
        )

    async def typing(self, claims: Claims, cid: str, state: bool) -> None:
        async with self.store.acquire() as db:
            conv = await self._conversation(db, cid, claims)
        frame = {"type": "typing", "conversation_id": cid, "state": state,
                 "from": {"role": _side(claims), "id": claims.sub, "name": claims.display_name}}  # fmt: skip
        await self._to_other_side(conv, claims, frame)

    async def read(self, claims: Claims, cid: str, seq: int) -> None:
        async with self.store.acquire() as db:
            conv = await self._conversation(db, cid, claims)
            seq = min(seq, conv["last_seq"])
            await conv_store.mark_read(db, cid, _side(claims), seq)
        frame = {"type": "read", "conversation_id": cid, "seq": seq,
                 "by": {"role": _side(claims), "id": claims.sub}}  # fmt: skip
        await self._to_other_side(conv, claims, frame)

    async def _to_other_side(self, conv, claims: Claims, frame: dict) -> None:
        if claims.role == "user":
            if conv["agent_id"]:
                await self.delivery.to_agent(conv["agent_id"], frame)
        else:
            await self.delivery.to_user(conv["user_id"], frame)

    # --- agent -------------------------------------------------------------------------

    async def note(
        self, claims: Claims, cid: str, text: str, sender: Connection | None = None
    ) -> dict:
        masked = masking.mask(text)
        async with self.store.acquire() as db:
            conv = await self._conversation(db, cid, claims)
            note = await notes.add(db, cid, claims.sub, claims.display_name, masked.text)
            mentioned = await agent_store.usernames_to_ids(db, mentions(masked.text))
        if masked.kinds and sender is not None:
            warn(sender, cid, masked, conv["lang"])
        frame = {"type": "note", **note}
        # notes go to agent channels only: never to the user's channel
        targets = {claims.sub} | ({conv["agent_id"]} if conv["agent_id"] else set())
        for agent_id in targets:
            await self.delivery.to_agent(agent_id, frame)
        for agent_id in set(mentioned) - {claims.sub}:
            await self.delivery.to_agent(agent_id, {
                "type": "note.mention", "conversation_id": cid, "note": note,
                "by": {"id": claims.sub, "name": claims.display_name},
                "user": {"id": conv["user_id"]}, "topic": conv["topic"],
            })  # fmt: skip
        return frame

    async def resolve(
        self, claims: Claims, cid: str, outcome: str = "solved", tags: list[str] | None = None
    ) -> tuple[dict, bool]:
        """The agent holding the chat ends it: (`{status, by}` as for `close`, whether this
        call ended it). Only an assigned chat can be resolved (Conflict otherwise), unless
        it has ended already: then the answer is its final state. The `outcome` and `tags`
        are stored with the end, in the same conditional update."""
        holder = claims.sub if claims.role == "agent" else None  # supervisors: any holder
        async with self.store.acquire() as db:
            await self._conversation(db, cid, claims)
            conv = await conv_store.end(
                db, cid, "resolved", "agent", from_statuses=("assigned",), agent_id=holder,
                outcome=outcome, tags=tags or [],
            )  # fmt: skip
            if conv is None:
                return await self._ended_state(db, cid), False
        by = {"id": claims.sub, "name": claims.display_name}
        await self.system_message(conv, "resolved", {"by": by, "outcome": outcome})
        await self.delivery.to_conversation(
            conv, {"type": "chat.closed", "conversation_id": cid, "by": "agent"}
        )
        await self.push_agent_state(conv["agent_id"])
        await self.ended_by(conv["agent_id"])
        await self.route()
        return {"status": "resolved", "by": "agent"}, True

    async def transfer(
        self,
        claims: Claims,
        cid: str,
        to_agent: str | None,
        to_topic: str | None,
        note: str | None = None,
    ) -> None:
        """Hand the chat to an agent or back to a topic's queue. A handover `note` is kept
        as a note and shown first to whoever gets the chat (`handover` in `chat.assigned`)."""
        if not to_agent and not to_topic:
            raise Invalid("give to_agent or to_topic")
        note = masking.mask(note).text if note and note.strip() else None
        async with self.store.acquire() as db, db.transaction():
            told = await assigner.lock_routing(db)
            conv = await self._conversation(db, cid, claims, lock=True)
            if conv["status"] != "assigned":
                raise Conflict("only an assigned chat can be transferred")
            old = conv["agent_id"]
            if to_agent:
                if to_agent == old:
                    raise Invalid("the chat is already yours")
                agents = await assigner.load_agents(db)
                chat = routing.QueuedChat(cid, conv["topic"], conv["priority"], 0.0)
                target = routing.pick_agent_for_transfer(chat, agents, to_agent)
                if target is None:
                    if not await agent_store.exists(db, to_agent):
                        raise NotFound("no such agent")
                    raise Conflict("that agent is not online or has no free capacity")
                conv = await conv_store.transfer_to_agent(db, cid, target, old)
            else:
                entry = routing.requeued(assigner.queued_chat(conv), old, to_topic=to_topic)
                conv = await conv_store.requeue(db, entry)
                # "connecting you to another agent" only when someone can take it now
                helps = can_be_taken(entry, await assigner.load_agents(db))
            handover = None
            if note:
                stored = await notes.add(db, cid, claims.sub, claims.display_name, note)
                handover = {"from": {"id": claims.sub, "name": claims.display_name},
                            "note": note, "note_id": stored["note_id"], "ts": stored["ts"]}  # fmt: skip
            conv = await conv_store.set_handover(db, cid, handover)
        await self.delivery.to_agent(old, {"type": "chat.transferred", "conversation_id": cid,
                                       "to_agent": to_agent, "to_topic": to_topic})  # fmt: skip
        await self.push_agent_state(old)
        by = {"id": claims.sub, "name": claims.display_name}
        if to_agent:
            await self.announce_assignment(conv, by=by, queue_seq=told)
        else:
            await self.system_message(
                conv, "requeued" if helps else "transferred_wait", {"by": by, "topic": to_topic}
            )
            await self.route()

    async def set_status(self, claims: Claims, status: str) -> dict:
        async with self.store.acquire() as db:
            if not await agent_store.set_status(db, claims.sub, status):
                raise NotFound("no such agent: create it with `supporthub agent add`")
        if status == "offline":
            await self.requeue_agent_chats(claims.sub)
        # route first: the answer is the load after the chats this brought, not before (the
        # console applies the answer last, so a stale one stuck until a reload)
        await self.route()
        return await self.push_agent_state(claims.sub)

    async def requeue_agent_chats(self, agent_id: str) -> None:
        """Put an agent's open chats back at the head of the queue (original enqueue time).
        They stay the agent's (preferred, not excluded as `routing.requeued()` would): it
        gets them back if it returns before someone else takes them."""
        async with self.store.acquire() as db:
            rows = await conv_store.requeue_agent_chats(db, agent_id)
            agents = await assigner.load_agents(db) if rows else []
        others = [a for a in agents if a.agent_id != agent_id]
        for conv in rows:
            await self.delivery.to_agent(agent_id, {"type": "chat.transferred", "conversation_id": conv["id"],
                                                "to_agent": None, "to_topic": conv["topic"]})  # fmt: skip
            # "connecting you to another agent" only when there is one to connect to
            entry = assigner.queued_chat(conv)
            helps = can_be_taken(entry, others)
            await self.system_message(
                conv,
                "requeued" if helps else "agent_left",
                {"reason": "offline", "topic": conv["topic"]},
            )

    async def take_back(self, cid: str, agent_id: str) -> None:
        """A new chat its agent did not answer by the deadline. The agent is not at its
        desk: it is set away and told why. The chat goes back to the queue at its old place
        and is re-offered only when someone else who can take it is free now; otherwise it
        waits there and supervisors are alerted. The customer is told which happened."""
        async with self.store.acquire() as db, db.transaction():
            await assigner.lock_routing(db)
            conv = await conv_store.get(db, cid, lock=True)
            if conv is None or conv["agent_id"] != agent_id or conv["status"] != "assigned":
                return  # transferred, closed or requeued meanwhile
            entry = routing.requeued(assigner.queued_chat(conv), agent_id)
            conv = await conv_store.requeue(db, entry)
            await agent_store.mark_away(db, agent_id)
            agents = await assigner.load_agents(db)
            reoffered = can_be_taken(entry, agents)
        metrics.UNANSWERED.labels(str(reoffered).lower()).inc()
        await self.delivery.to_agent(agent_id, {"type": "chat.transferred", "conversation_id": cid,
                                            "to_agent": None, "to_topic": conv["topic"], "reason": "timeout"})  # fmt: skip
        await self.push_agent_state(
            agent_id, reason="unanswered", conversation_id=cid, text=AWAY_TEXT
        )
        await self.system_message(
            conv,
            "reoffered" if reoffered else "kept_place",
            {"reason": "timeout", "topic": conv["topic"]},
        )
        if not reoffered:
            await self.to_supervisors({
                "type": "queue.alert", "kind": "unanswered", "conversation_id": cid,
                "agent_id": agent_id, "topic": conv["topic"], "priority": conv["priority"],
                "reoffered": False, "enqueued_at": _iso(conv["enqueued_at"]),
            })  # fmt: skip
        await self.route()

    async def to_supervisors(self, frame: dict) -> None:
        """A frame to every supervisor's consoles, wherever they are."""
        async with self.store.acquire() as db:
            ids = await sl_store.supervisor_ids(db)
        for sid in ids:
            await self.delivery.to_agent(sid, frame)

    async def sla_pass(self) -> None:
        """Judge every chat in human hands against its service levels (hub.rules.sla) on the
        database's clock. Supervisors get `sla.alert` whenever a chat's state changes to
        or from at risk / breached. A chat that breaches its first-response target is
        re-routed to the next free agent who can take it, or escalated to supervisors; a
        resolution breach is escalated. Each breach is counted once."""
        async with self.store.acquire() as db:
            rows = await sl_store.open_for_sla(db)
            agents = await assigner.load_agents(db)
        for row in rows:
            st = sla.state(sl_store.sla_chat(row), row["now_s"], self.sla_targets)
            if (st.state, st.kind) == (row["sla_state"], row["sla_kind"]):
                continue
            if row["sla_state"] is None and st.state in ("ok", "met"):
                continue  # nothing to say yet
            action = None
            breach = st.state == "breached" and row["sla_state"] != "breached"
            if breach:
                action = await self._on_breach(row, st, agents)
            async with self.store.acquire() as db:
                if not await sl_store.set_sla_state(db, row["id"], st.state, st.kind, action):
                    continue  # another node told them
            if breach:
                metrics.SLA_BREACHES.labels(st.kind, action or "none").inc()
            await self.to_supervisors({
                "type": "sla.alert", "conversation_id": row["id"], "state": st.state,
                "kind": st.kind, "due_at": datetime.fromtimestamp(st.due_at, UTC).isoformat(),
                "priority": row["priority"], "topic": row["topic"], "status": row["status"],
                "agent_id": row["agent_id"], "user_id": row["user_id"], "action": action,
            })  # fmt: skip

    async def _on_breach(
        self, row: Any, st: sla.SlaState, agents: list[routing.AgentLoad]
    ) -> str | None:
        """What a breach does: `rerouted` (an unanswered chat moved to someone free who can
        take it) or `escalated` (supervisors alerted: nobody free can); None for a first
        response that came, late (nothing left to do but count it)."""
        if st.kind == "first_response" and row["first_response_s"] is not None:
            return None
        if st.kind != "first_response" or row["status"] != "assigned":
            return "escalated"  # a queued chat: the router gives it to anyone free already
        holder = row["agent_id"]
        async with self.store.acquire() as db, db.transaction():
            await assigner.lock_routing(db)
            conv = await conv_store.get(db, row["id"], lock=True)
            if conv is None or conv["status"] != "assigned" or conv["agent_id"] != holder:
                return "escalated"
            entry = routing.requeued(assigner.queued_chat(conv), holder)
            if not can_be_taken(entry, agents):
                return "escalated"
            conv = await conv_store.requeue(db, entry)
        await self.delivery.to_agent(holder, {"type": "chat.transferred", "conversation_id": row["id"],
                                          "to_agent": None, "to_topic": conv["topic"], "reason": "sla"})  # fmt: skip
        await self.push_agent_state(holder)
        await self.system_message(conv, "sla_rerouted")
        await self.route()
        return "rerouted"

    async def take(self, claims: Claims, cid: str) -> tuple[asyncpg.Record, str | None]:
        """Staff take a chat themselves (`chat.take`): a queued one, or an urgent one its
        holder let pass its deadline unanswered; rules in hub.rules.urgent.take_refusal.
        The chat as it is now, and the holder it left (if any)."""
        async with self.store.acquire() as db, db.transaction():
            told = await assigner.lock_routing(db)
            row = await conv_store.claim_view(db, cid)
            if row is None:
                raise NotFound("no such conversation")
            taker = await assigner.load_agent(db, claims.sub)
            boss = claims.role == "supervisor" or (taker is not None and taker.supervisor)
            access.ensure(
                urgent.take_refusal(
                    _claim(row), taker, supervisor=boss, now=row["now_s"], policy=self.policy
                )
            )
            conv = await conv_store.give(db, cid, claims.sub, told)
        return conv, await self._given(row, conv, reason="taken", queue_seq=told)

    async def assign(self, claims: Claims, cid: str, agent_id: str) -> asyncpg.Record:
        """A supervisor gives a queued chat to an agent of their choice (`chat.assign`):
        online, with room (an urgent slot counts for an urgent chat), skills aside."""
        if claims.role != "supervisor":
            raise Forbidden("only supervisors assign chats")
        async with self.store.acquire() as db, db.transaction():
            told = await assigner.lock_routing(db)
            row = await conv_store.claim_view(db, cid)
            if row is None:
                raise NotFound("no such conversation")
            target = await assigner.load_agent(db, agent_id)
            access.ensure(urgent.assign_refusal(_claim(row), target, self.policy))
            conv = await conv_store.give(db, cid, agent_id, told)
        await self._given(row, conv, reason="assigned", queue_seq=told)
        return conv

    async def takeover(self, claims: Claims, cid: str) -> tuple[asyncpg.Record, str]:
        """A supervisor takes over a chat another agent holds (`chat.takeover`): the
        supervisor becomes its agent, the agent it leaves gets `chat.transferred {reason:
        "taken_over"}`. The supervisor must be online (with a console open); their
        capacity does not stop it (a deliberate act, like an urgent slot). The chat as it
        is now, and the agent it left."""
        if claims.role != "supervisor":
            raise Forbidden("only supervisors take over chats")
        async with self.store.acquire() as db, db.transaction():
            told = await assigner.lock_routing(db)
            row = await conv_store.claim_view(db, cid)
            if row is None:
                raise NotFound("no such conversation")
            if row["status"] != "assigned":
                raise Conflict("only a chat an agent holds can be taken over (queued: chat.take)")
            if row["agent_id"] == claims.sub:
                raise Conflict("this chat is yours already")
            me = await assigner.load_agent(db, claims.sub)
            if me is None:
                raise NotFound("no such agent")
            if not me.online:
                raise Conflict("go online first: a chat you take over is yours to answer")
            conv = await conv_store.give(db, cid, claims.sub, told)
        left = await self._given(row, conv, reason="taken_over", queue_seq=told)
        assert left is not None
        return conv, left

    async def _given(self, before, conv, *, reason: str, queue_seq: int) -> str | None:
        """Frames after a take or an assignment: the holder it left (returned), both
        sides, the customer's notice, the queue. `queue_seq`: the number the decision
        drew under the routing lock (a place a pass told before it is stale)."""
        old = before["agent_id"] if before["status"] == "assigned" else None
        if old:
            await self.delivery.to_agent(old, {"type": "chat.transferred", "conversation_id": conv["id"],
                                           "to_agent": conv["agent_id"], "to_topic": None, "reason": reason})  # fmt: skip
            await self.push_agent_state(old)
        await self.announce_assignment(conv, queue_seq=queue_seq)
        if conv["priority"] == "urgent" and before["urgent_notice"] != "staffed":
            await self._urgent_notice(conv, "staffed")
        await self.publish_queue()
        await self.route()
        return old

    async def push_agent_state(self, agent_id: str, **why: Any) -> dict:
        """`agent.state` to the agent's consoles; `why` (reason, text...) says what changed
        it when the hub did (set away for an unanswered chat)."""
        async with self.store.acquire() as db:
            state = (await conv_store.agent_session(db, agent_id))["agent"]
        frame = {"type": "agent.state", "status": state["status"], "capacity": state["capacity"],
                 "active": state["active"], "agent_id": agent_id, **why}  # fmt: skip
        await self.delivery.to_agent(agent_id, frame)
        return frame

    # --- routing -----------------------------------------------------------------------

    async def route(
        self,
        before_announce: Callable[[assigner.RouteResult], None] | None = None,
        watch: str | None = None,
    ) -> None:
        """Have a routing pass run that starts after this call (so it sees whatever the
        caller stored) and wait until its frames are out. Calls that arrive while a pass
        runs share the next one. `before_announce(result)` runs after COMMIT, before any
        frame of the pass goes out; `watch`: a chat whose status after the pass it needs
        (`result.statuses`).

        The passes of this node run one after another in one task, each holding the
        routing connection (and the cluster's routing lock) only for its transaction; the
        frames of committed passes go out in commit order from another task, while the
        next pass runs (10,000 chats opened at once: the chats keep coming while the
        agents of the last pass are sent their chats' histories)."""
        run = self._next_pass
        if run is None:
            run = self._next_pass = _Pass()
        if watch is not None:
            run.watch.add(watch)
        if before_announce is not None:
            run.before.append(before_announce)
        if self._router is None or self._router.done():
            self._router = self.tasks.spawn(self._run_passes(), "routing-passes")
        await run.committed.wait()
        if run.error is not None:
            raise run.error
        await run.announced.wait()

    async def _run_passes(self) -> None:
        run: _Pass | None = None
        try:
            while (run := self._next_pass) is not None:
                self._next_pass = None
                try:
                    run.result = await assigner.route_once(
                        self.store.routing_pool, self.settings.default_handle_time_s,
                        self.policy, watch=run.watch,
                    )  # fmt: skip
                except Exception as exc:  # the callers hear it (the store is down...)
                    run.fail(exc)
                    continue
                for before in run.before:
                    try:
                        before(run.result)
                    except Exception:
                        log.exception("routing: a caller's reply failed")
                run.committed.set()
                self._unannounced.append(run)
                if self._announcer is None or self._announcer.done():
                    self._announcer = self.tasks.spawn(self._run_announcer(), "routing-announcer")
        finally:  # cancelled (the hub stops): nobody may wait for ever
            stopping = Unavailable("the hub is stopping")
            if run is not None and not run.committed.is_set():
                run.fail(stopping)
            if self._next_pass is not None:
                self._next_pass.fail(stopping)
                self._next_pass = None

    async def _run_announcer(self) -> None:
        try:
            while self._unannounced:
                runs, self._unannounced = self._unannounced, []
                try:
                    await self._announce([r.result for r in runs if r.result is not None])
                except Exception:
                    log.exception("routing: announcing a pass failed")
                finally:
                    for r in runs:
                        r.announced.set()
        finally:
            runs, self._unannounced = self._unannounced, []
            for r in runs:
                r.announced.set()

    async def ended_by(self, agent_id: str | None) -> None:
        """An agent ended a chat: its rolling handle time moves (stored for every node)."""
        if not agent_id:
            return
        try:
            async with self.store.acquire() as db:
                await sl_store.refresh_handle_times(
                    db, self.settings.handle_time_window, self.settings.default_handle_time_s,
                    agent_id,
                )  # fmt: skip
        except Exception as exc:  # a wait estimate must never fail an end
            log.warning("handle time of %s not refreshed: %s", agent_id, exc)

    def team_hours(self, topic: str) -> hours_rule.Hours | None:
        """The opening hours of the team of `topic` (None: not configured)."""
        s = self.settings
        span = hours_rule.parse_teams(s.support_hours_by_topic).get(topic) or s.support_hours
        if not span:
            return None
        start, end = hours_rule.parse_span(span)
        days = frozenset(int(d) for d in s.support_days.split(",") if d.strip())
        holidays = frozenset(
            datetime.fromisoformat(d.strip()).date()
            for d in s.support_holidays.split(",")
            if d.strip()
        )
        return hours_rule.Hours(start, end, days, holidays, s.support_tz)

    def unstaffed_fields(self, conv: Any) -> dict:
        """What a queued chat with nobody online who can take it says instead of a wait:
        `notice` (plain words, the chat's language), the choice to leave a message, and
        the team's opening hours when they are configured."""
        fields: dict[str, Any] = {
            "staffed": False,
            "notice": self.unstaffed_text(conv),
            "leave_message": True,
            "message_left": conv.get("message_left_at") is not None,
        }
        team = self.team_hours(conv["topic"])
        if team is not None:
            fields["hours"] = team.label()
            opens = hours_rule.next_opening(team, datetime.now(UTC))
            fields["opens_at"] = opens.isoformat() if opens else None
        return fields

    def unstaffed_text(self, conv: Any) -> str:
        lang = conv["lang"] if conv["lang"] in LANGS else "zh"
        text = system_text("unstaffed", lang)
        team = self.team_hours(conv["topic"])
        if team is not None:
            opens = hours_rule.next_opening(team, datetime.now(UTC))
            sep = "" if lang == "zh" else " "
            if opens is None:
                text += sep + system_text("hours_open", lang, hours=team.label())
            else:
                when = opens.strftime("%Y-%m-%d %H:%M")
                text += sep + system_text("hours", lang, hours=team.label(), opens=when)
        return text

    def queued_frame(
        self, conv: Any, position: int, eta: int | None, place: queue_rules.Place | None
    ) -> dict:
        """`chat.queued` of a chat that is not urgent. `eta_s` stays a number (the
        contract); with nobody online who can take the chat (`staffed: false`) it is no
        promise (the time to the next opening when hours are set, else a nominal
        position x default handle time) and a client shows `notice` instead."""
        frame: dict[str, Any] = {
            "type": "chat.queued", "conversation_id": conv["id"], "position": position,
            "ahead": max(0, position - 1), "staffed": eta is not None,
        }  # fmt: skip
        if place is not None:
            frame["queue_size"] = place.size
        if eta is not None:
            frame["eta_s"] = eta
            return frame
        nominal = round(position * self.settings.default_handle_time_s)
        team = self.team_hours(conv["topic"])
        if team is not None:
            now = datetime.now(UTC)
            opens = hours_rule.next_opening(team, now)
            if opens is not None:
                nominal = max(0, round((opens - now).total_seconds()))
        frame["eta_s"] = nominal
        frame.update(self.unstaffed_fields(conv))
        return frame

    async def leave_message(self, claims: Claims, cid: str) -> dict:
        """The customer chooses to leave a message while nobody can help: the chat stays
        open (never closed for inactivity) until an agent answers it."""
        async with self.store.acquire() as db:
            conv = await self._conversation(db, cid, claims)
            row = await sl_store.leave_message(db, cid)
        if row is None:
            return {"status": conv["status"], "message_left": False}
        await self.system_message(row, "message_left")
        return {"status": "queued", "message_left": True}

    async def _announce(self, results: list[assigner.RouteResult]) -> None:
        """The frames of committed passes, in commit order. Queue positions of several
        passes (they pile up while the last ones are announced) go out once each, the
        latest; none for a chat a later pass assigned."""
        assigned_in: dict[str, int] = {}
        latest: dict[str, tuple[int, assigner.RouteResult, Any, int, int | None]] = {}
        unstaffed: dict[str, Any] = {}
        for i, result in enumerate(results):
            for page in result.pages:  # first: the on-call team is the slowest to arrive
                self.tasks.spawn(self._page(page), "oncall-page")
            for conv, left in result.moved:
                # the urgent ladder took it from a holder who did not answer in time or left
                await self.delivery.to_agent(left, {"type": "chat.transferred", "conversation_id": conv["id"],
                                                "to_agent": conv["agent_id"], "to_topic": None,
                                                "reason": "urgent_escalation"})  # fmt: skip
                await self.push_agent_state(left)
            await self.announce_assignments(result.assigned, routing=True, queue_seq=result.seq)
            for conv in result.assigned:
                assigned_in[conv["id"]] = i
            for conv, notice in result.notices:
                await self._urgent_notice(conv, notice)
            for conv, position, eta in result.positions:
                latest[conv["id"]] = (i, result, conv, position, eta)
                if (
                    eta is None
                    and conv["id"] not in result.urgent
                    and conv.get("was_staffed") is not False
                    and conv["message_left_at"] is None
                ):  # newly nobody online who can help: said once in the chat, where push finds it
                    unstaffed[conv["id"]] = (i, conv)
        # every changed position in one signed fan-out, not one publish awaited per user
        # (10,000 chats opened at once: thousands of positions per pass)
        items: list = []
        for i, result, conv, position, eta in latest.values():
            if assigned_in.get(conv["id"], -1) > i:
                continue  # a later pass gave it to an agent: its place is no news
            if conv["id"] in result.urgent:
                frame = {"type": "chat.queued", "conversation_id": conv["id"],
                         "position": position, "eta_s": eta}  # fmt: skip
                frame.update(self._urgent_fields(conv, result.urgent[conv["id"]][0]))
            else:
                frame = self.queued_frame(conv, position, eta, result.places.get(conv["id"]))
            frame["queue_seq"] = result.seq  # a device drops it if a later pass came first
            items.append((user_channel(conv["user_id"]), encode_msgpack(frame)))
        if items:
            await self.delivery.fan_out(items)
        for i, conv in unstaffed.values():
            if assigned_in.get(conv["id"], -1) <= i:
                await self.post(conv, "system", *SYSTEM, self.unstaffed_text(conv))
        if any(r.assigned or r.positions or r.moved for r in results):
            await self.publish_queue(routing=True)

    # --- urgent chats ------------------------------------------------------------------

    def _urgent_fields(self, conv, notice: urgent.Notice, lang: str | None = None) -> dict:
        """The extension fields of an urgent chat's `chat.queued`: no "you are next" when
        nobody can answer, but what is true. `notice` is in `lang` (else the chat's);
        `notices` has it in every language, for each device to show its own."""
        notices = {
            each: urgent.notice_text(notice, each, policy=self.policy, oncall=self.pager.configured)
            for each in LANGS
        }
        shown = lang if lang in notices else conv["lang"]
        return {
            "priority": "urgent",
            "staffed": notice == "staffed",
            "oncall": self.pager.configured,
            "notice": notices.get(shown, notices["zh"]),
            "notices": notices,
        }

    def describe_urgent(self, conversations: list[dict], lang: str | None = None) -> None:
        """The user's open chats in `welcome`: a queued urgent one carries the notice its
        customer saw last (`notice`, `staffed`), as its `chat.queued` did, in the device's
        language `lang` (else the chat's)."""
        for item in conversations:
            if item.pop("unstaffed", False) and item["priority"] != "urgent":
                item.update(self.unstaffed_fields(item))
            item.pop("message_left_at", None)
            notice = item.pop("urgent_notice", None)
            if notice and item["status"] == "queued":
                fields = self._urgent_fields(item, notice, lang)
                item.update(notice=fields["notice"], staffed=fields["staffed"])

    async def _urgent_notice(self, conv, notice: urgent.Notice) -> None:
        """Tell the customer where their urgent chat stands, in the chat's language; a
        person on it is pushed to their devices if no app is open."""
        texts: dict[str, str] = {
            lang: urgent.notice_text(notice, lang, policy=self.policy, oncall=self.pager.configured)
            for lang in LANGS
        }
        text = texts.get(conv["lang"], texts["zh"])
        system = {"kind": f"urgent_{notice}", "params": {}}
        msg = await self.post(conv, "system", *SYSTEM, text, texts=texts, system=system)
        if notice == "staffed" and self.push_out is not None:
            self.push_out.urgent_staffed(msg)

    async def _page(self, page: assigner.Page) -> None:
        sent = await self.pager.page(
            OnCallPage(
                conversation_id=page.conversation_id,
                user_id=page.user_id,
                reason=page.reason,
                agent_id=page.agent_id,
                missed_by=page.missed_by,
                urgent_since=page.since,
                waiting_s=page.waiting_s,
                topic=page.topic,
            )
        )
        details = {
            "reason": page.reason,
            "agent_id": page.agent_id,
            "missed_by": page.missed_by,
            "waiting_s": round(page.waiting_s),
            "delivered": sent,
        }
        await self.audit.record(
            AuditEntry(
                "system",
                SYSTEM[1],
                "urgent.page",
                subject_user_id=page.user_id,
                conversation_id=page.conversation_id,
                details=details,
            )
        )

    async def announce_assignment(
        self, conv, by: dict | None = None, queue_seq: int | None = None
    ) -> None:
        """Give the chat to its agent (with history, notes, a handover); after a transfer
        (`by`: who did it, when an agent did) the chat says so. `queue_seq`: the number
        the decision drew under the routing lock (hub.store.queue.lock_routing)."""
        await self.announce_assignments([conv], by, queue_seq=queue_seq)

    async def announce_assignments(
        self,
        convs: list,
        by: dict | None = None,
        *,
        routing: bool = False,
        queue_seq: int | None = None,
    ) -> None:
        """Give each chat to its agent: `chat.assigned` to the customer, and to the agent
        with the customer, history and notes, then each agent's `agent.state`. What they
        need is read for all the chats at once, on the routing connection for a routing
        pass's chats (`routing`: the main pool may have thousands of requests queued;
        `queue_seq`: that pass's number, which the customer's copy carries)."""
        if not convs:
            return
        acquiring = self.store.acquire_routing() if routing else self.store.acquire()
        async with acquiring as db:
            known = await assign_store.briefs(db, convs, HISTORY_LIMIT)
        live = (
            None
            if self.presence is None
            else await self.presence.online(c["user_id"] for c in convs)
        )
        items: list = []
        for conv in convs:
            agent, user = known.agents.get(conv["agent_id"]), known.users.get(conv["user_id"])
            assert agent is not None and user is not None  # the conversation's foreign keys
            told: dict[str, Any] = {
                "type": "chat.assigned", "conversation_id": conv["id"],
                "agent": {"id": agent["id"], "name": agent["name"]},
            }  # fmt: skip
            if queue_seq is not None:
                told["queue_seq"] = queue_seq
            items.append((user_channel(conv["user_id"]), encode_msgpack(told)))
            history = self.links.frames(known.history.get(conv["id"], []))
            online = None if live is None else user["id"] in live
            frame = assigned_frame(conv, user, history, known.notes.get(conv["id"], []), online)
            # tagged by whoever had the chat before (a transfer, a take, a re-route)
            frame["feedback"] = known.feedback.get(conv["id"], [])
            items.append((agent_channel(agent["id"]), encode_msgpack(frame)))
        await self.delivery.fan_out(items)
        for conv in convs:
            if (
                conv["previous_agent_id"]
                and conv["previous_agent_id"] != conv["agent_id"]
                and conv["status"] == "assigned"
            ):
                agent = known.agents[conv["agent_id"]]
                previous = known.agents.get(conv["previous_agent_id"])
                params = {
                    "to": {"id": agent["id"], "name": agent["name"]},
                    "from": {"id": previous["id"], "name": previous["name"]} if previous else None,
                    "by": by,
                }
                await self.system_message(conv, "transferred", params, name=agent["name"])
        states = []
        for agent_id in dict.fromkeys(c["agent_id"] for c in convs):
            state = known.agents[agent_id]
            frame = {"type": "agent.state", "status": state["status"],
                     "capacity": state["capacity"], "active": state["active"],
                     "agent_id": agent_id}  # fmt: skip
            states.append((agent_channel(agent_id), encode_msgpack(frame)))
        await self.delivery.fan_out(states)

    async def customers_presence(self, user_ids: list[str]) -> None:
        """Customers' sockets opened or closed: tell the agents serving each whether the
        customer is still reachable anywhere, and since when (one store visit for all)."""
        if self.presence is None:
            return
        online = await self.presence.online(user_ids)
        async with self.store.acquire() as db:
            seen = await user_store.seen(db, user_ids)
            serving = await notif_store.agents_serving(db, user_ids)
        for user_id, agents in serving.items():
            last_seen = seen.get(user_id)
            frame = {"type": "customer.presence", "user_id": user_id, "online": user_id in online,
                     "last_seen": last_seen.isoformat() if last_seen else None}  # fmt: skip
            for agent_id in agents:
                await self.delivery.to_agent(agent_id, frame)

    async def _online(self, user_id: str) -> bool | None:
        return None if self.presence is None else user_id in await self.presence.online([user_id])

    async def publish_queue(self, *, routing: bool = False) -> None:
        """The queue to staff (`routing`: read on the routing connection, as a pass's
        announcements are)."""
        acquiring = self.store.acquire_routing() if routing else self.store.acquire()
        async with acquiring as db:
            queue = await assigner.queue_snapshot(db)
        await self.delivery.to_staff({"type": "queue.snapshot", "queue": queue, "ts": _now()})

    async def resume_agent(self, db, conn: Connection, resume) -> None:
        """An agent (re)connecting gets every chat assigned to them, with history."""
        known = (resume.conversations or {}) if resume is not None else {}
        for conv in await conv_store.assigned_to(db, conn.identity.sub):
            user = await user_store.brief(db, conv["user_id"])
            assert user is not None  # the conversation's foreign key
            history = self.links.frames(
                await conv_store.messages_after(db, conv["id"], 0, HISTORY_LIMIT)
            )
            conv_notes = await notes.listing(db, conv["id"])
            frame = assigned_frame(conv, user, history, conv_notes, await self._online(user["id"]))
            # what was tagged as feedback, so that a reloaded console marks it again
            frame["feedback"] = await feedback_store.tagged_in(db, conv["id"])
            frame["resumed"] = True
            conn.send_frame(frame)
            conn.set_base(
                conv["id"], max(known.get(conv["id"], 0), history[-1]["seq"] if history else 0)
            )
        queue = await assigner.queue_snapshot(db)
        conn.send_frame({"type": "queue.snapshot", "queue": queue, "ts": _now()})


def warn(conn: Connection, cid: str, masked: masking.Masked, lang: str) -> None:
    """`security.warning` to the connection a masked text came from, in the chat's language:
    to a user why not to share it, to staff that it was hidden. Queued behind what the
    connection holds back, so a new chat's `chat.opened` comes first."""
    lang = lang if lang in LANGS else "zh"
    if conn.claims is not None and conn.claims.role == "user":
        text = ("" if lang == "zh" else " ").join(masked.warnings(lang))
    else:
        text = STAFF_MASKED[lang]
    frame = {"type": "security.warning", "conversation_id": cid,
             "kinds": [k for k in masking.KINDS if k in masked.kinds], "text": text}  # fmt: skip
    conn.push(frame, conn.encode(frame))


def assigned_frame(
    conv, user, history: list[dict], notes: list[dict], online: bool | None = None
) -> dict:
    last_seen = user.get("last_seen_at")
    return {
        "type": "chat.assigned",
        "conversation_id": conv["id"],
        "user": {
            "id": user["id"],
            "name": user["name"] or user["id"],
            # the chat's language (the customer's when they opened or switched it), not
            # that of whichever device connected last
            "lang": conv["lang"] or user["lang"],
            "online": online,
            "last_seen": last_seen.isoformat() if last_seen else None,
        },  # fmt: skip
        "topic": conv["topic"],
        "priority": conv["priority"],
        "history": history,
        "notes": notes,
        "alert": conv["alert"],
        "status": conv["status"],
        "handover": conv.get("handover"),
        "channel": conv.get("channel"),
        # the agent's replies also go out by mail (an e-mail chat, or chat.leave_message)
        "reply_by_email": bool(conv.get("reply_email")),
    }


def _claim(row) -> urgent.Claim:
    """A row of `conv_store.claim_view` as the take and assign rules see it."""
    return urgent.Claim(
        conversation_id=row["id"],
        status=row["status"],
        priority=row["priority"],
        topic=row["topic"],
        agent_id=row["agent_id"],
        answered=row["answered"],
        since=row["since_s"],
        due_at=row["due_s"],
    )


def can_be_taken(entry: routing.QueuedChat, agents: list[routing.AgentLoad]) -> bool:
    """Whether the router would give `entry` to one of `agents` now (its exclusions relaxed
    as the router relaxes them): what makes "connecting you to another agent" true."""
    chat = routing.relax_exclusions([entry], agents)[0]
    return any(routing.can_take(a, chat) for a in agents)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _side(claims: Claims) -> Literal["user", "agent"]:
    return "user" if claims.role == "user" else "agent"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def sla_targets(settings: Settings) -> sla.Targets:
    """The service-level targets of the settings (`HUB_SLA_*`)."""
    return sla.Targets(
        sla.parse_targets(settings.sla_first_response_s, sla.DEFAULT_FIRST_RESPONSE_S),
        sla.parse_targets(settings.sla_resolution_s, sla.DEFAULT_RESOLUTION_S),
        settings.sla_at_risk,
    )
