"""The help bot's shell: feeds the pure dialogue (`hub.helpbot.dialogue`) with the chat,
the user's recent transactions and its stored state; posts its replies as `bot`
messages; hands the chat to the human queue when the dialogue says so; and follows up
when a transaction the user asked about changes status."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import asyncpg
import httpx

from hub.cluster.delivery import Delivery
from hub.helpbot import dialogue
from hub.rules.clock import zone_name
from hub.store import Store, notes
from hub.store import campaigns as campaign_store
from hub.store import conversations as conv_store
from hub.store import users as user_store
from hub.store.messages import MessageWrite
from supporthub_core.auth import issue_token
from supporthub_core.errors import Conflict
from supporthub_core.outbound import tls_context
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

BOT_ID = "helpbot"
BOT_NAME = {"zh": "小助手", "en": "Help bot"}
FILES_REPLY = {
    "zh": "我暂时看不懂图片和文件。点击“转人工”，客服会查看您发来的内容。",
    "en": "I can't read pictures or files yet. Tap “Talk to a person” and an agent will look at them.",
}
# The latest payments the bot looks through (counterpart names are matched among them);
# amounts and days the customer mentions are searched in the whole history by the API.
TRANSACTIONS_LIMIT = 100
FOUND_LIMIT = 20
ALERTS_LIMIT = 3


class HandOver(Protocol):
    """What the bot needs of the chat: to hand a conversation to the human queue."""

    async def escalate(self, claims: None, cid: str, topic: str | None = None) -> str: ...


class FeedbackSink(Protocol):
    """Where the suggestions and complaints the bot recognises go (hub.services.feedback)."""

    async def from_bot(self, conv: Any, text: str, kind: str, theme: str) -> None: ...


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
        self.feedback: FeedbackSink | None = None  # seated by the composition

    def _lock(self, cid: str) -> asyncio.Lock:
        lock = self._locks.get(cid)
        if lock is None:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[cid] = asyncio.Lock()
        return lock

    async def say(self, conv, text: str, choices: list[dict] | None = None) -> bool:
        """Post a bot message; False (and nothing posted) once the chat is closed. `choices`
        (quick replies: [{label, text}]) travel with the live frame; the stored message is
        the text alone."""
        lang = conv["lang"] if conv["lang"] in BOT_NAME else "zh"
        op = MessageWrite(conv["id"], "bot", BOT_ID, BOT_NAME[lang], text)
        try:
            msg = await self.store.writer.submit(op)
        except Conflict:
            return False
        frame = msg.frame()
        if choices:
            frame["choices"] = choices
        await self.delivery.to_conversation(
            {"user_id": msg.user_id, "agent_id": msg.agent_id}, frame
        )
        return True

    def handover_topic(self, conv) -> str | None:
        """The queue the bot just offered this chat to (the anti-fraud answer offers
        `security`): a user's one tap on "talk to a person" goes there."""
        return dialogue.handover_topic(conv["bot_state"])

    async def on_open(self, conv, text: str | None) -> None:
        async with self._lock(conv["id"]):
            greeting = dialogue.greeting(conv["lang"], conv["topic"])
            chips = None if text else dialogue.greeting_choices(conv["lang"])
            if not await self.say(conv, greeting, chips):
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
            now = datetime.now(UTC)
            ctx = await self._context(conv, text, now)
            turn = dialogue.respond(state, text, ctx)
            await self._save(cid, turn.new_state)
            if turn.feedback is not None and self.feedback is not None:
                await self.feedback.from_bot(conv, text, turn.feedback.kind, turn.feedback.theme)
            for n, reply in enumerate(turn.replies, 1):
                last = n == len(turn.replies)
                if not await self.say(conv, reply, turn.choices if last else None):
                    return
            if turn.escalate and turn.summary:
                async with self.store.acquire() as db:
                    await notes.add(
                        db, cid, BOT_ID, BOT_NAME.get(conv["lang"], "小助手"), turn.summary
                    )
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

    async def on_transaction_updates(
        self, updates: list[tuple[str, dict]], chats: list[dict] | None = None
    ) -> None:
        """Follow-ups for transactions users asked the bot about. `chats`: those users' open
        chats in which the bot keeps a state ({id, user_id, lang}), as the notifications'
        write read them; None: one query per batch reads them here."""
        convs: list[Any] = chats if chats is not None else []
        if chats is None:
            async with self.store.acquire() as db:
                convs = list(
                    await conv_store.open_with_bot_state(
                        db, list({user_id for user_id, _ in updates})
                    )
                )
        for conv in convs:
            for user_id, tx in updates:
                if user_id == conv["user_id"]:
                    await self._follow_up(conv, tx)

    async def _follow_up(self, conv, tx: dict) -> None:
        async with self._lock(conv["id"]):
            async with self.store.acquire() as db:
                stored = await conv_store.bot_state(db, conv["id"])
                tz = await self._tz(db, conv["user_id"])
            state = dialogue.BotState.from_dict(stored)
            turn = dialogue.on_transaction_update(state, tx, datetime.now(UTC), tz)
            if not turn.replies:
                return
            await self._save(conv["id"], turn.new_state)
            for reply in turn.replies:
                if not await self.say(conv, reply):
                    return

    async def _save(self, cid: str, state: dialogue.BotState) -> None:
        async with self.store.acquire() as db:
            await conv_store.save_bot_state(db, cid, state.to_dict())

    async def _context(self, conv, text: str, now: datetime) -> dialogue.BotContext:
        """What the payments API knows of the customer: payments, account, alerts, and the
        history searched for the amount or day the message mentions."""
        user_id = conv["user_id"]
        async with self.store.acquire() as db:
            tz = await self._tz(db, user_id)
            maintenance = await campaign_store.maintenance_window(db)
        query = dialogue.tx_query(text, now, tz)
        async with self._payments() as http:
            transactions = await self.recent_transactions(user_id, http=http)
            # None: unknown (the API could not be reached); {}: the user has no account
            account = await self._get(http, f"/api/accounts/{quote(user_id, safe='')}")
            alerts_body = await self._get(
                http, f"/api/accounts/{quote(user_id, safe='')}/alerts", {"limit": ALERTS_LIMIT}
            )
            found = None
            if query.amounts or query.since:
                params: dict[str, object] = {"user_id": user_id, "limit": FOUND_LIMIT}
                if query.amounts:
                    params["amount"] = f"{query.amounts[0]:.2f}"
                if query.since is not None and query.until is not None:
                    params["since"] = query.since.isoformat()
                    params["until"] = query.until.isoformat()
                found = _items(await self._get(http, "/api/payments", params))
        alerts = alerts_body.get("alerts", []) if isinstance(alerts_body, dict) else []
        return dialogue.BotContext(
            lang=conv["lang"],
            topic=conv["topic"],
            transactions=transactions,
            now=now,
            account=account if isinstance(account, dict) else None,
            alerts=[a for a in alerts if isinstance(a, dict)],
            found=found,
            tz=tz,
            maintenance=maintenance,
        )

    async def _tz(self, db: asyncpg.Connection, user_id: str) -> str:
        """The customer's time zone: what their devices last said, else HUB_DEFAULT_TZ."""
        found = await user_store.locales(db, [user_id])
        return zone_name(found.get(user_id, ("zh", None))[1], self.settings.default_tz)

    def _payments(self) -> httpx.AsyncClient:
        s = self.settings
        base = s.payments_url or f"http://{s.host}:{s.port}"
        token = issue_token(self.secret, "hub", "service", ttl=60)
        return httpx.AsyncClient(
            base_url=base,
            timeout=5,
            verify=tls_context(),  # one CA bundle in memory, not one per question
            headers={"Authorization": f"Bearer {token}"},
        )

    async def _get(self, http: httpx.AsyncClient, path: str, params: dict | None = None):
        """The JSON body; {} for a 404 (no such account); None when it could not be had."""
        try:
            resp = await http.get(path, params=params)
            if resp.status_code == 404:
                return {}
            if resp.status_code != 200:
                return None
            return resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.info("could not reach the payments API for the bot: %s", exc)
            return None

    async def recent_transactions(
        self, user_id: str, http: httpx.AsyncClient | None = None
    ) -> list[dict]:
        """The user's latest payments from the payments API (the hub owns no ledger)."""
        if http is None:
            async with self._payments() as own:
                return await self.recent_transactions(user_id, own)
        body = await self._get(
            http, "/api/payments", {"user_id": user_id, "limit": TRANSACTIONS_LIMIT}
        )
        return _items(body) or []


def _items(body: object) -> list[dict] | None:
    """The payments of a list response; None when there is none to read."""
    if body is None or body == {}:
        return None
    items = body.get("payments", body.get("transactions", [])) if isinstance(body, dict) else body
    return [t for t in items if isinstance(t, dict)] if isinstance(items, list) else None
