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
import re
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg

from hub.attachments.links import AttachmentLinks
from hub.background import Background
from hub.cluster.bus import user_channel
from hub.cluster.delivery import Delivery
from hub.rules import access, masking, routing, urgent
from hub.services.audit import Audit
from hub.services.languages import Languages
from hub.services.pager import LogPager, OnCallPage, Pager
from hub.store import Store, notes
from hub.store import agents as agent_store
from hub.store import conversations as conv_store
from hub.store import notifications as notif_store
from hub.store import queue as assigner
from hub.store import users as user_store
from hub.store.ids import new_id
from hub.store.messages import MessageWrite, StoredMessage
from hub.ws.connection import Connection
from hub.ws.protocol import encode_msgpack
from supporthub_core.audit import AuditEntry
from supporthub_core.auth import Claims
from supporthub_core.errors import Conflict, Forbidden, Invalid, NotFound
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
}


#: Senders whose text is typed by a person, so masked before it is stored.
TYPED_BY_PEOPLE = frozenset({"user", "agent"})
LANGS: tuple[masking.Lang, ...] = ("zh", "en")

#: The `security.warning` text for staff, whose own message had a secret hidden.
STAFF_MASKED = {
    "zh": "消息中的验证码、卡号、证件号或密码已自动隐藏。",
    "en": "Codes, card numbers, ID numbers and passwords in your message were hidden.",
}


def system_text(key: str, lang: str, **fields) -> str:
    texts = SYSTEM_TEXT[key]
    return texts.get(lang, texts["zh"]).format(**fields)


class BotSeat(Protocol):
    """What a chat needs of the help bot: it answers first in a `bot` chat."""

    async def on_open(self, conv: Any, text: str | None) -> None: ...

    async def on_user_message(self, cid: str, text: str) -> None: ...

    def handover_topic(self, conv: Any) -> str | None: ...

    async def on_user_files(self, cid: str) -> None: ...


class Presence(Protocol):
    async def online(self, user_ids) -> set[str]: ...


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
        self._route_lock = asyncio.Lock()
        self._route_again = False

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
    ) -> StoredMessage:
        """Store a message (with the files it carries, in the same write), then push it to
        both sides. Every message goes through here, so this is where a person's text is
        masked: the masked text is what is stored, pushed, replayed and echoed to the
        sender; `sender`, the connection it came from, is told what was hidden."""
        masked = masking.mask(text) if role in TYPED_BY_PEOPLE else masking.Masked(text)
        op = MessageWrite(
            conv["id"], role, sender_id, name, masked.text, client_msg_id, attachments
        )
        msg: StoredMessage = await self.store.writer.submit(op)
        if isinstance(msg, Exception):
            raise msg
        if not msg.duplicate:
            await self.delivery.to_conversation(
                {"user_id": msg.user_id, "agent_id": msg.agent_id}, self.frame(msg)
            )
        self.push_out.message_posted(msg)  # push: an agent's reply to a user with no socket
        if masked.kinds and sender is not None:
            lang = conv.get("lang") or (await self.languages.of({msg.user_id}))[msg.user_id]
            warn(sender, msg.conversation_id, masked, lang)
        return msg

    def frame(self, msg: StoredMessage) -> dict:
        """The `message` frame of a stored message, its attachments' links signed now."""
        return self.links.frame(msg.frame())

    async def system_message(self, conv, key: str, **fields) -> None:
        await self.post(conv, "system", *SYSTEM, system_text(key, conv["lang"], **fields))

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
        claims = conn.claims
        cid = new_id()
        status = "bot" if handoff == "bot" else "queued"
        priority = routing.priority_for_topic(topic)
        async with self.store.acquire() as db:
            if lang:  # the chat's language becomes the user's for notifications too
                await user_store.set_lang(db, claims.sub, lang)
                self.languages.forget(claims.sub)
            else:
                lang = await user_store.lang(db, claims.sub) or "zh"
            conv = await conv_store.create(
                db, cid, claims.sub, topic=topic, priority=priority, status=status, lang=lang
            )

        async def reply() -> None:
            async with self.store.acquire() as db:
                now = await conv_store.status(db, cid)
            frame = {"type": "chat.opened", "conversation_id": cid, "status": now, "topic": topic}
            if fid is not None:
                frame["id"] = fid
            conn.send_frame(frame)

        # the opening message comes back over the bus; this socket holds it (and anything
        # else live) until `chat.opened` is out, so the client learns of the chat first
        holding = conn.held is None
        if holding:
            conn.hold()
        try:
            if text:
                first = await self.post(
                    conv, "user", claims.sub, claims.display_name, text, sender=conn
                )
                text = first.text  # masked: all the bot ever reads
            if status == "queued":
                await self.route(before_announce=reply)
            else:
                await reply()
        finally:
            if holding:
                conn.release()
        if conv["status"] == "bot" and self.bot is not None:
            self.tasks.spawn(self.bot.on_open(conv, text), "bot-open")
        return {"conversation_id": cid}

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
        await self.route()
        return {"status": "closed", "by": "user"}

    async def _ended_state(self, db, cid: str) -> dict:
        """The final state of a chat an end did not apply to; Conflict if it is open."""
        state = conv_store.ended_state(await conv_store.get(db, cid))
        if state is None:
            raise Conflict("only an assigned chat can be resolved")
        return state

    async def close_idle(self, conv) -> None:
        async with self.store.acquire() as db:
            row = await conv_store.close_if_idle(db, conv["id"], conv["last_activity_at"])
        if row is None:
            return  # something happened meanwhile
        await self.post(row, "system", *SYSTEM, system_text("idle", row["lang"]))
        await self.delivery.to_conversation(
            row, {"type": "chat.closed", "conversation_id": row["id"], "by": "system"}
        )
        if row["agent_id"]:
            await self.push_agent_state(row["agent_id"])

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
        sender, POST /api/attachments), or both."""
        if not text and not attachments:
            raise Invalid("a message needs text or attachments")
        if len(attachments) > self.settings.attachment_max_per_message:
            limit = self.settings.attachment_max_per_message
            raise Invalid(f"at most {limit} attachments per message")
        role = _side(claims)
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
        lang = conv["lang"] if conv["lang"] in LANGS else "zh"
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
        await self.system_message(conv, "resolved")
        await self.delivery.to_conversation(
            conv, {"type": "chat.closed", "conversation_id": cid, "by": "agent"}
        )
        await self.push_agent_state(conv["agent_id"])
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
            await assigner.lock_routing(db)
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
            handover = None
            if note:
                stored = await notes.add(db, cid, claims.sub, claims.display_name, note)
                handover = {"from": {"id": claims.sub, "name": claims.display_name},
                            "note": note, "note_id": stored["note_id"], "ts": stored["ts"]}  # fmt: skip
            conv = await conv_store.set_handover(db, cid, handover)
        await self.delivery.to_agent(old, {"type": "chat.transferred", "conversation_id": cid,
                                       "to_agent": to_agent, "to_topic": to_topic})  # fmt: skip
        await self.push_agent_state(old)
        if to_agent:
            await self.announce_assignment(conv)
        else:
            await self.system_message(conv, "requeued")
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
        for conv in rows:
            await self.delivery.to_agent(agent_id, {"type": "chat.transferred", "conversation_id": conv["id"],
                                                "to_agent": None, "to_topic": conv["topic"]})  # fmt: skip
            await self.system_message(conv, "requeued")

    async def take_back(self, cid: str, agent_id: str) -> None:
        """A new chat the agent did not answer in time goes back to the queue head,
        offered to someone else first."""
        async with self.store.acquire() as db, db.transaction():
            conv = await conv_store.get(db, cid, lock=True)
            if conv is None or conv["agent_id"] != agent_id or conv["status"] != "assigned":
                return  # transferred, closed or requeued meanwhile
            entry = routing.requeued(assigner.queued_chat(conv), agent_id)
            conv = await conv_store.requeue(db, entry)
        await self.delivery.to_agent(agent_id, {"type": "chat.transferred", "conversation_id": cid,
                                            "to_agent": None, "to_topic": conv["topic"], "reason": "timeout"})  # fmt: skip
        await self.system_message(conv, "requeued")
        await self.push_agent_state(agent_id)

    async def take(self, claims: Claims, cid: str) -> tuple[asyncpg.Record, str | None]:
        """Staff take a chat themselves (`chat.take`): a queued one, or an urgent one its
        holder let pass its deadline unanswered; rules in hub.rules.urgent.take_refusal.
        The chat as it is now, and the holder it left (if any)."""
        async with self.store.acquire() as db, db.transaction():
            await assigner.lock_routing(db)
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
            conv = await conv_store.give(db, cid, claims.sub)
        return conv, await self._given(row, conv, reason="taken")

    async def assign(self, claims: Claims, cid: str, agent_id: str) -> asyncpg.Record:
        """A supervisor gives a queued chat to an agent of their choice (`chat.assign`):
        online, with room (an urgent slot counts for an urgent chat), skills aside."""
        if claims.role != "supervisor":
            raise Forbidden("only supervisors assign chats")
        async with self.store.acquire() as db, db.transaction():
            await assigner.lock_routing(db)
            row = await conv_store.claim_view(db, cid)
            if row is None:
                raise NotFound("no such conversation")
            target = await assigner.load_agent(db, agent_id)
            access.ensure(urgent.assign_refusal(_claim(row), target, self.policy))
            conv = await conv_store.give(db, cid, agent_id)
        await self._given(row, conv, reason="assigned")
        return conv

    async def _given(self, before, conv, *, reason: str) -> str | None:
        """Frames after a take or an assignment: the holder it left (returned), both
        sides, the customer's notice, the queue."""
        old = before["agent_id"] if before["status"] == "assigned" else None
        if old:
            await self.delivery.to_agent(old, {"type": "chat.transferred", "conversation_id": conv["id"],
                                           "to_agent": conv["agent_id"], "to_topic": None, "reason": reason})  # fmt: skip
            await self.push_agent_state(old)
        await self.announce_assignment(conv)
        if conv["priority"] == "urgent" and before["urgent_notice"] != "staffed":
            await self._urgent_notice(conv, "staffed")
        await self.publish_queue()
        await self.route()
        return old

    async def push_agent_state(self, agent_id: str) -> dict:
        async with self.store.acquire() as db:
            state = (await conv_store.agent_session(db, agent_id))["agent"]
        frame = {"type": "agent.state", "status": state["status"], "capacity": state["capacity"],
                 "active": state["active"], "agent_id": agent_id}  # fmt: skip
        await self.delivery.to_agent(agent_id, frame)
        return frame

    # --- routing -----------------------------------------------------------------------

    async def route(self, before_announce=None) -> None:
        """Run the router; calls that arrive while a pass runs are coalesced into one more
        pass. `before_announce` runs after COMMIT, before any frame of the pass goes out."""
        if self._route_lock.locked():
            self._route_again = True
            async with self._route_lock:
                pass
            if before_announce is not None:
                await before_announce()
            return
        async with self._route_lock:
            while True:
                self._route_again = False
                result = await assigner.route_once(
                    self.store.routing_pool, self.settings.default_handle_time_s, self.policy
                )
                if before_announce is not None:
                    await before_announce()
                    before_announce = None
                await self._announce(result)
                if not self._route_again:
                    return

    async def _announce(self, result: assigner.RouteResult) -> None:
        for page in result.pages:  # first: the on-call team is the slowest to arrive
            self.tasks.spawn(self._page(page), "oncall-page")
        for conv, left in result.moved:
            # the urgent ladder took it from a holder who did not answer in time or left
            await self.delivery.to_agent(left, {"type": "chat.transferred", "conversation_id": conv["id"],
                                            "to_agent": conv["agent_id"], "to_topic": None,
                                            "reason": "urgent_escalation"})  # fmt: skip
            await self.push_agent_state(left)
        for conv in result.assigned:
            await self.announce_assignment(conv)
        for conv, notice in result.notices:
            await self._urgent_notice(conv, notice)
        # every changed position in one signed fan-out, not one publish awaited per user
        # (10,000 chats opened at once: thousands of positions per pass)
        items: list = []
        for conv, position, eta in result.positions:
            frame = {"type": "chat.queued", "conversation_id": conv["id"], "position": position,
                     "eta_s": eta}  # fmt: skip
            if conv["id"] in result.urgent:
                frame.update(self._urgent_fields(conv, result.urgent[conv["id"]][0]))
            items.append((user_channel(conv["user_id"]), encode_msgpack(frame)))
        if items:
            await self.delivery.fan_out(items)
        if result.assigned or result.positions or result.moved:
            await self.publish_queue()

    # --- urgent chats ------------------------------------------------------------------

    def _urgent_fields(self, conv, notice: str) -> dict:
        """The extension fields of an urgent chat's `chat.queued`: no "you are next" when
        nobody can answer, but what is true."""
        return {
            "priority": "urgent",
            "staffed": notice == "staffed",
            "oncall": self.pager.configured,
            "notice": urgent.notice_text(
                notice, conv["lang"], policy=self.policy, oncall=self.pager.configured
            ),
        }

    def describe_urgent(self, conversations: list[dict]) -> None:
        """The user's open chats in `welcome`: a queued urgent one carries the notice its
        customer saw last (`notice`, `staffed`), as its `chat.queued` did."""
        for item in conversations:
            notice = item.pop("urgent_notice", None)
            if notice and item["status"] == "queued":
                fields = self._urgent_fields(item, notice)
                item.update(notice=fields["notice"], staffed=fields["staffed"])

    async def _urgent_notice(self, conv, notice: str) -> None:
        """Tell the customer where their urgent chat stands, in the chat's language; a
        person on it is pushed to their devices if no app is open."""
        text = urgent.notice_text(
            notice, conv["lang"], policy=self.policy, oncall=self.pager.configured
        )
        msg = await self.post(conv, "system", *SYSTEM, text)
        if notice == "staffed":
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

    async def announce_assignment(self, conv) -> None:
        async with self.store.acquire() as db:
            agent = await agent_store.brief(db, conv["agent_id"])
            user = await user_store.brief(db, conv["user_id"])
            history = self.links.frames(
                await conv_store.messages_after(db, conv["id"], 0, HISTORY_LIMIT)
            )
            conv_notes = await notes.listing(db, conv["id"])
        await self.delivery.to_user(conv["user_id"], {
            "type": "chat.assigned", "conversation_id": conv["id"],
            "agent": {"id": agent["id"], "name": agent["name"]},
        })  # fmt: skip
        frame = assigned_frame(conv, user, history, conv_notes, await self._online(user["id"]))
        await self.delivery.to_agent(agent["id"], frame)
        if (
            conv["previous_agent_id"]
            and conv["previous_agent_id"] != agent["id"]
            and conv["status"] == "assigned"
        ):
            await self.system_message(conv, "transferred", name=agent["name"])
        await self.push_agent_state(agent["id"])

    async def customer_presence(self, user_id: str) -> None:
        """A customer's socket opened or closed: tell the agents serving them whether the
        customer is still reachable anywhere, and since when."""
        if self.presence is None:
            return
        online = user_id in await self.presence.online([user_id])
        async with self.store.acquire() as db:
            last_seen = await user_store.seen(db, user_id)
            serving = (await notif_store.agents_serving(db, [user_id])).get(user_id, [])
        frame = {"type": "customer.presence", "user_id": user_id, "online": online,
                 "last_seen": last_seen.isoformat() if last_seen else None}  # fmt: skip
        for agent_id in serving:
            await self.delivery.to_agent(agent_id, frame)

    async def _online(self, user_id: str) -> bool | None:
        return None if self.presence is None else user_id in await self.presence.online([user_id])

    async def publish_queue(self) -> None:
        async with self.store.acquire() as db:
            queue = await assigner.queue_snapshot(db)
        await self.delivery.to_staff({"type": "queue.snapshot", "queue": queue, "ts": _now()})

    async def resume_agent(self, db, conn: Connection, resume) -> None:
        """An agent (re)connecting gets every chat assigned to them, with history."""
        known = (resume.conversations or {}) if resume is not None else {}
        for conv in await conv_store.assigned_to(db, conn.claims.sub):
            user = await user_store.brief(db, conv["user_id"])
            history = self.links.frames(
                await conv_store.messages_after(db, conv["id"], 0, HISTORY_LIMIT)
            )
            conv_notes = await notes.listing(db, conv["id"])
            frame = assigned_frame(conv, user, history, conv_notes, await self._online(user["id"]))
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
            "lang": user["lang"],
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
    }


MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_.\-]{1,64})")


def mentions(text: str) -> list[str]:
    """The usernames `@mentioned` in a note, in order, once each."""
    return list(dict.fromkeys(m.rstrip(".-") for m in MENTION.findall(text)))


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


def _side(claims: Claims) -> str:
    return "user" if claims.role == "user" else "agent"


def _now() -> str:
    return datetime.now(UTC).isoformat()
