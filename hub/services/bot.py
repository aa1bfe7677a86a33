"""The help bot's shell: feeds the pure dialogue (`hub.helpbot.dialogue`) with the chat,
the user's recent transactions and its stored state; posts its replies as `bot`
messages; hands the chat to the human queue when the dialogue says so; and follows up
when a transaction the user asked about changes status."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Protocol

import httpx

from hub.cluster.delivery import Delivery
from hub.helpbot import dialogue
from hub.store import Store
from hub.store import conversations as conv_store
from hub.store.messages import MessageWrite
from supporthub_core.auth import issue_token
from supporthub_core.errors import Conflict
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

BOT_ID = "helpbot"
BOT_NAME = {"zh": "小助手", "en": "Help bot"}
FILES_REPLY = {
    "zh": "我暂时看不懂图片和文件。点击“转人工”，客服会查看您发来的内容。",
    "en": "I can't read pictures or files yet. Tap “Talk to a person” and an agent will look at them.",
}
TRANSACTIONS_LIMIT = 10


class HandOver(Protocol):
    """What the bot needs of the chat: to hand a conversation to the human queue."""

    async def escalate(self, claims: None, cid: str, topic: str | None = None) -> str: ...


class Bot:
    def __init__(
        self,
        store: Store,
        delivery: Delivery,
        hand_over: HandOver,
        settings: Settings,
        secret: str,
    ) -> None:
        self.store = store
        self.delivery = delivery
        self.hand_over = hand_over
        self.settings = settings
        self.secret = secret
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, cid: str) -> asyncio.Lock:
        lock = self._locks.get(cid)
        if lock is None:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[cid] = asyncio.Lock()
        return lock

    async def say(self, conv, text: str) -> bool:
        """Post a bot message; False (and nothing posted) once the chat is closed."""
        lang = conv["lang"] if conv["lang"] in BOT_NAME else "zh"
        op = MessageWrite(conv["id"], "bot", BOT_ID, BOT_NAME[lang], text)
        try:
            msg = await self.store.writer.submit(op)
        except Conflict:
            return False
        await self.delivery.to_conversation(
            {"user_id": msg.user_id, "agent_id": msg.agent_id}, msg.frame()
        )
        return True

    def handover_topic(self, conv) -> str | None:
        """The queue the bot just offered this chat to (the anti-fraud answer offers
        `security`): a user's one tap on "talk to a person" goes there."""
        return dialogue.handover_topic(conv["bot_state"])

    async def on_open(self, conv, text: str | None) -> None:
        async with self._lock(conv["id"]):
            if not await self.say(conv, dialogue.greeting(conv["lang"], conv["topic"])):
                return
        if text:
            await self.on_user_message(conv["id"], text)

    async def on_user_message(self, cid: str, text: str) -> None:
        async with self._lock(cid):
            async with self.store.acquire() as db:
                conv = await conv_store.get(db, cid)
            if conv is None or conv["status"] != "bot":
                return
            state = dialogue.BotState.from_dict(conv["bot_state"])
            ctx = dialogue.BotContext(
                lang=conv["lang"],
                topic=conv["topic"],
                transactions=await self.recent_transactions(conv["user_id"]),
                now=datetime.now(UTC),
            )
            turn = dialogue.respond(state, text, ctx)
            await self._save(cid, turn.new_state)
            for reply in turn.replies:
                if not await self.say(conv, reply):
                    return
        if turn.escalate:
            try:
                await self.hand_over.escalate(None, cid, turn.escalate_topic)
            except Conflict:
                pass  # the user closed the chat meanwhile: nobody to hand over

    async def on_user_files(self, cid: str) -> None:
        """The user sent files and no text: the bot says a person will look at them."""
        async with self._lock(cid):
            async with self.store.acquire() as db:
                conv = await conv_store.get(db, cid)
            if conv is None or conv["status"] != "bot":
                return
            await self.say(conv, FILES_REPLY.get(conv["lang"], FILES_REPLY["zh"]))

    async def on_transaction_updates(self, updates: list[tuple[str, dict]]) -> None:
        """Follow-ups for transactions users asked the bot about; one query per batch."""
        async with self.store.acquire() as db:
            convs = await conv_store.open_with_bot_state(
                db, list({user_id for user_id, _ in updates})
            )
        for conv in convs:
            for user_id, tx in updates:
                if user_id == conv["user_id"]:
                    await self._follow_up(conv, tx)

    async def _follow_up(self, conv, tx: dict) -> None:
        async with self._lock(conv["id"]):
            async with self.store.acquire() as db:
                stored = await conv_store.bot_state(db, conv["id"])
            state = dialogue.BotState.from_dict(stored)
            turn = dialogue.on_transaction_update(state, tx, datetime.now(UTC))
            if not turn.replies:
                return
            await self._save(conv["id"], turn.new_state)
            for reply in turn.replies:
                if not await self.say(conv, reply):
                    return

    async def _save(self, cid: str, state: dialogue.BotState) -> None:
        async with self.store.acquire() as db:
            await conv_store.save_bot_state(db, cid, state.to_dict())

    async def recent_transactions(self, user_id: str) -> list[dict]:
        """The user's latest payments from the payments API (the hub owns no ledger)."""
        s = self.settings
        base = s.payments_url or f"http://{s.host}:{s.port}"
        token = issue_token(self.secret, "hub", "service", ttl=60)
        try:
            async with httpx.AsyncClient(base_url=base, timeout=5) as http:
                resp = await http.get(
                    "/api/payments",
                    params={"user_id": user_id, "limit": TRANSACTIONS_LIMIT},
                    headers={"Authorization": f"Bearer {token}"},
                )
            if resp.status_code != 200:
                return []
            body = resp.json()
            items = (
                body.get("payments", body.get("transactions", []))
                if isinstance(body, dict)
                else body
            )
            return [t for t in items if isinstance(t, dict)]
        except (httpx.HTTPError, ValueError) as exc:
            log.info("could not fetch transactions for the bot: %s", exc)
            return []
