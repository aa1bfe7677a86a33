"""Chat use cases: open, escalate, send, typing, read, note, transfer, resolve, close, rate,
agent status. Thin: each checks who may do it, changes the store, then publishes."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg

from hub.background import Background
from hub.cluster.delivery import Delivery
from hub.rules import access, routing
from hub.services.languages import Languages
from hub.store import Store, notes
from hub.store import agents as agent_store
from hub.store import conversations as conv_store
from hub.store import queue as assigner
from hub.store import users as user_store
from hub.store.ids import new_id
from hub.store.messages import MessageWrite, StoredMessage
from hub.ws.connection import Connection
from supporthub_core.auth import Claims
from supporthub_core.errors import Conflict, Invalid, NotFound
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


def system_text(key: str, lang: str, **fields) -> str:
    texts = SYSTEM_TEXT[key]
    return texts.get(lang, texts["zh"]).format(**fields)


class BotSeat(Protocol):
    """What a chat needs of the help bot: it answers first in a `bot` chat."""

    async def on_open(self, conv: Any, text: str | None) -> None: ...

    async def on_user_message(self, cid: str, text: str) -> None: ...


class Chat:
    def __init__(
        self,
        store: Store,
        delivery: Delivery,
        languages: Languages,
        tasks: Background,
        settings: Settings,
    ) -> None:
        self.store = store
        self.delivery = delivery
        self.languages = languages
        self.tasks = tasks
        self.settings = settings
        self.bot: BotSeat | None = None
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
    ) -> StoredMessage:
        """Store a message, then push it to both sides."""
        op = MessageWrite(conv["id"], role, sender_id, name, text, client_msg_id)
        msg: StoredMessage = await self.store.writer.submit(op)
        if isinstance(msg, Exception):
            raise msg
        if not msg.duplicate:
            await self.delivery.to_conversation(
                {"user_id": msg.user_id, "agent_id": msg.agent_id}, msg.frame()
            )
        self.push_out.message_posted(msg)  # push: an agent's reply to a user with no socket
        return msg

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
                await self.post(conv, "user", claims.sub, claims.display_name, text)
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

    async def send(self, claims: Claims, cid: str, client_msg_id: str, text: str) -> StoredMessage:
        role = "user" if claims.role == "user" else "agent"
        conv = {"id": cid, "lang": "zh"}
        msg = await self.post(conv, role, claims.sub, claims.display_name, text, client_msg_id)
        if role == "user" and not msg.duplicate and msg.conversation_status == "bot":
            if self.bot is not None:
                self.tasks.spawn(self.bot.on_user_message(cid, text), "bot-reply")
        return msg

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

    async def note(self, claims: Claims, cid: str, text: str) -> dict:
        async with self.store.acquire() as db:
            conv = await self._conversation(db, cid, claims)
            note = await notes.add(db, cid, claims.sub, claims.display_name, text)
        frame = {"type": "note", **note}
        # notes go to agent channels only: never to the user's channel
        targets = {claims.sub} | ({conv["agent_id"]} if conv["agent_id"] else set())
        for agent_id in targets:
            await self.delivery.to_agent(agent_id, frame)
        return frame

    async def resolve(self, claims: Claims, cid: str) -> tuple[dict, bool]:
        """The agent holding the chat ends it: (`{status, by}` as for `close`, whether this
        call ended it). Only an assigned chat can be resolved (Conflict otherwise), unless
        it has ended already: then the answer is its final state."""
        holder = claims.sub if claims.role == "agent" else None  # supervisors: any holder
        async with self.store.acquire() as db:
            await self._conversation(db, cid, claims)
            conv = await conv_store.end(
                db, cid, "resolved", "agent", from_statuses=("assigned",), agent_id=holder
            )
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
        self, claims: Claims, cid: str, to_agent: str | None, to_topic: str | None
    ) -> None:
        if not to_agent and not to_topic:
            raise Invalid("give to_agent or to_topic")
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
        state = await self.push_agent_state(claims.sub)
        await self.route()
        return state

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
                    self.store.pool, self.settings.default_handle_time_s
                )
                if before_announce is not None:
                    await before_announce()
                    before_announce = None
                await self._announce(result)
                if not self._route_again:
                    return

    async def _announce(self, result: assigner.RouteResult) -> None:
        for conv in result.assigned:
            await self.announce_assignment(conv)
        for conv, position, eta in result.positions:
            await self.delivery.to_user(conv["user_id"], {"type": "chat.queued", "conversation_id": conv["id"],
                                                      "position": position, "eta_s": eta})  # fmt: skip
        if result.assigned or result.positions:
            await self.publish_queue()

    async def announce_assignment(self, conv) -> None:
        async with self.store.acquire() as db:
            agent = await agent_store.brief(db, conv["agent_id"])
            user = await user_store.brief(db, conv["user_id"])
            history = await conv_store.messages_after(db, conv["id"], 0, HISTORY_LIMIT)
            conv_notes = await notes.listing(db, conv["id"])
        await self.delivery.to_user(conv["user_id"], {
            "type": "chat.assigned", "conversation_id": conv["id"],
            "agent": {"id": agent["id"], "name": agent["name"]},
        })  # fmt: skip
        await self.delivery.to_agent(agent["id"], assigned_frame(conv, user, history, conv_notes))
        if (
            conv["previous_agent_id"]
            and conv["previous_agent_id"] != agent["id"]
            and conv["status"] == "assigned"
        ):
            await self.system_message(conv, "transferred", name=agent["name"])
        await self.push_agent_state(agent["id"])

    async def publish_queue(self) -> None:
        async with self.store.acquire() as db:
            queue = await assigner.queue_snapshot(db)
        await self.delivery.to_staff({"type": "queue.snapshot", "queue": queue, "ts": _now()})

    async def resume_agent(self, db, conn: Connection, resume) -> None:
        """An agent (re)connecting gets every chat assigned to them, with history."""
        known = (resume.conversations or {}) if resume is not None else {}
        for conv in await conv_store.assigned_to(db, conn.claims.sub):
            user = await user_store.brief(db, conv["user_id"])
            history = await conv_store.messages_after(db, conv["id"], 0, HISTORY_LIMIT)
            conv_notes = await notes.listing(db, conv["id"])
            frame = assigned_frame(conv, user, history, conv_notes)
            frame["resumed"] = True
            conn.send_frame(frame)
            conn.set_base(
                conv["id"], max(known.get(conv["id"], 0), history[-1]["seq"] if history else 0)
            )
        queue = await assigner.queue_snapshot(db)
        conn.send_frame({"type": "queue.snapshot", "queue": queue, "ts": _now()})


def assigned_frame(conv, user, history: list[dict], notes: list[dict]) -> dict:
    return {
        "type": "chat.assigned",
        "conversation_id": conv["id"],
        "user": {"id": user["id"], "name": user["name"] or user["id"], "lang": user["lang"]},
        "topic": conv["topic"],
        "priority": conv["priority"],
        "history": history,
        "notes": notes,
        "alert": conv["alert"],
        "status": conv["status"],
    }


def _side(claims: Claims) -> str:
    return "user" if claims.role == "user" else "agent"


def _now() -> str:
    return datetime.now(UTC).isoformat()
