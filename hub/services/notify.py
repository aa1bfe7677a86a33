"""Payment events -> user notifications.

Events arrive on the Redis channel `payments.events` (the fast path) and, as a safety net,
from the payments outbox over HTTP (`GET /api/events`), polled at start, after a bus
reconnect and every few seconds. Each `event_id` is handled once across all nodes (the
unique `event_id` of stored notifications decides), so the two paths may overlap freely.

The subscriber callback only appends to a buffer; one consumer task drains it in batches
through the group writer: no task per event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Protocol

import httpx
import msgpack

from hub import metrics
from hub.background import Background
from hub.cluster.bus import agent_channel, user_channel
from hub.cluster.delivery import Delivery
from hub.cluster.node import Node
from hub.helpbot.transactions import format_time
from hub.services.languages import Languages
from hub.store import Store
from hub.store.writer import (
    MessageWrite,
    NotificationWrite,
    StoredNotification,
    new_id,
    write_messages,
    write_notifications,
)
from hub.ws.protocol import encode_msgpack
from supporthub_core.auth import issue_token
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "payments.events"
BATCH = 2000
POLL_INTERVAL_S = 5.0
BUFFER_LIMIT = 100_000
WATCH_AFTER_S = 3.0  # check another node's events this long after they arrived...
WATCH_UNTIL_S = 8.0  # ...and again until their owner has had time to drop out of the ring
WATCH_LIMIT = 200_000

REASONS = {
    "insufficient_balance": {"zh": "余额不足", "en": "insufficient balance"},
    "invalid_payee": {"zh": "收款账户无效", "en": "invalid payee"},
    "maintenance": {"zh": "系统维护中", "en": "system maintenance"},
    "network_error": {"zh": "网络异常", "en": "network error"},
    "account_frozen": {"zh": "账户已冻结", "en": "account frozen"},
}
TX_TEXT = {
    "processing": {
        "zh": ("转账处理中", "您的 {amount} {currency} 转账正在处理中{eta}。"),
        "en": ("Transfer processing", "Your transfer of {amount} {currency} is processing{eta}."),
    },
    "succeeded": {
        "zh": ("转账成功", "您的 {amount} {currency} 转账已成功到账。"),
        "en": ("Transfer succeeded", "Your transfer of {amount} {currency} has arrived."),
    },
    "failed": {
        "zh": ("转账失败", "您的 {amount} {currency} 转账失败：{reason}。"),
        "en": ("Transfer failed", "Your transfer of {amount} {currency} failed: {reason}."),
    },
}
ALERT_TEXT = {
    "new_device_login": {"zh": ("新设备登录", "您的账户在新设备上登录。如非本人操作，请立即联系客服。"),
                         "en": ("New device sign-in", "Your account signed in on a new device. If it was not you, contact support now.")},
    "suspicious_activity": {"zh": ("账户异常活动", "我们检测到您的账户存在异常活动。"),
                            "en": ("Suspicious activity", "We detected suspicious activity on your account.")},
    "account_frozen": {"zh": ("账户已临时冻结", "为保护您的资金安全，账户已临时冻结，安全专员将与您联系。"),
                       "en": ("Account frozen", "To protect your money your account is frozen; a security agent will contact you.")},
    "account_unfrozen": {"zh": ("账户已解冻", "您的账户已恢复正常使用。"),
                         "en": ("Account unfrozen", "Your account is active again.")},
    "password_changed": {"zh": ("密码已修改", "您的登录密码已修改。如非本人操作，请立即联系客服。"),
                         "en": ("Password changed", "Your password was changed. If it was not you, contact support now.")},
}  # fmt: skip
URGENT_OPENING = {
    "zh": "安全提醒：我们检测到您的账户存在异常活动，已临时冻结。安全专员正在接入，请稍候确认是否为本人操作。",
    "en": "Security notice: we saw unusual activity and froze your account for your protection. A security agent is joining to confirm with you.",
}


def render(event: dict, lang: str) -> tuple[str, str, str] | None:
    """(kind, title, body) for an event in the user's language; None for unknown types."""
    lang = lang if lang in ("zh", "en") else "zh"
    kind = event.get("type")
    if kind == "transaction.status":
        status = event.get("status")
        texts = TX_TEXT.get(status)
        if texts is None:
            return None
        title, body = texts[lang]
        eta = ""
        if status == "processing" and event.get("expected_by"):
            when = format_time(event["expected_by"]) or str(event["expected_by"])
            # the same clock as the bot's answers: Beijing time, said so
            eta = (
                f"，预计 {when}（北京时间）前到账"
                if lang == "zh"
                else f", expected by {when} (Beijing time)"
            )
        reason = REASONS.get(event.get("reason") or "", {}).get(lang, event.get("reason") or "")
        body = body.format(
            amount=event.get("amount", ""),
            currency=event.get("currency", "CNY"),
            eta=eta,
            reason=reason,
        )
        return kind, title, body
    if kind == "security.alert":
        texts = ALERT_TEXT.get(event.get("alert"), None)
        if texts is None:
            title, body = (
                ("安全提醒", "您的账户有一条安全提醒。")
                if lang == "zh"
                else ("Security alert", "There is a security alert on your account.")
            )
        else:
            title, body = texts[lang]
        return kind, title, body
    return None


def valid_event(event: Any) -> bool:
    return (
        isinstance(event, dict)
        and isinstance(event.get("event_id"), str)
        and 0 < len(event["event_id"]) <= 200
        and isinstance(event.get("user_id"), str)
        and 0 < len(event["user_id"]) <= 128
        and event.get("type") in ("transaction.status", "security.alert")
    )


class Reactions(Protocol):
    """What other use cases do when notifications go out."""

    async def transactions_changed(self, updates: list[tuple[str, dict]]) -> None:
        """The bot follows up on transactions users asked it about."""

    async def route(self) -> None:
        """The router places the urgent chat a freeze opened."""


class Notifier:
    def __init__(
        self,
        store: Store,
        delivery: Delivery,
        cluster: Node,
        languages: Languages,
        reactions: Reactions,
        tasks: Background,
        settings: Settings,
        secret: str,
    ) -> None:
        self.store = store
        self.delivery = delivery
        self.ring = cluster.ring
        self.bus = cluster.bus
        self.languages = languages
        self.reactions = reactions
        self.tasks = tasks
        self.settings = settings
        self.secret = secret
        self._buffer: deque[dict] = deque()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._offered = 0
        self._finished = 0
        self._raw: list[bytes] = []
        # events other nodes own, kept a while in case their owner died with them
        self._watch: deque[tuple[float, str, dict]] = deque(maxlen=WATCH_LIMIT)

    async def start(self) -> None:
        await self.bus.subscribe_raw(EVENTS_CHANNEL, self._on_raw)
        self.tasks.spawn(self._consume(), "events-consumer")
        self.tasks.spawn(self._poll_forever(), "events-poller")
        self.tasks.spawn(self._watch_forever(), "events-watch")

    def _on_raw(self, data: bytes) -> None:
        # events read from one socket read are decoded and offered together, once the
        # bus has parsed them all: one validation pass, one wake-up
        self._raw.append(data)
        if len(self._raw) == 1:
            asyncio.get_running_loop().call_soon(self._take_raw)

    def _take_raw(self) -> None:
        raw, self._raw = self._raw, []
        events = []
        for data in raw:
            try:
                events.append(msgpack.unpackb(data, raw=False, strict_map_key=False))
            except Exception:
                log.warning("dropped an undecodable payment event")
        self.offer(events, owned_only=True)

    def offer(self, events: list, *, owned_only: bool = False) -> None:
        """Queue events for storing and pushing. Live events (`owned_only`) are taken only
        for the users this node owns (hub.cluster.ring); the outbox poller offers all it reads."""
        good = [e for e in events if valid_event(e)]
        if len(good) != len(events):
            log.warning("dropped %d malformed payment events", len(events) - len(good))
        ring = self.ring
        if owned_only and not ring.alone:
            mine = []
            for e in good:
                owner = ring.owner(e["user_id"])
                if owner == ring.me:
                    mine.append(e)
                else:
                    self._watch.append((time.monotonic(), owner, e))
            good = mine
        if len(self._buffer) + len(good) > BUFFER_LIMIT:
            log.warning("event buffer full; the poller will catch up from the outbox")
            return
        self._buffer.extend(good)
        self._offered += len(good)
        self._wake.set()

    async def flushed(self) -> None:
        """Wait until every event offered so far has been stored and pushed."""
        target = self._offered
        while self._finished < target:
            self._progress.clear()
            await self._progress.wait()

    # Two ordered stages, so the next batch is prepared while the store commits this one:
    # stage 1 renders a batch and queues its writes; stage 2 awaits their COMMIT and
    # pushes. Batches reach the writers in buffer order and are pushed in that order, so
    # every user's notifications go out in seq order.

    # A freeze (rare) is a barrier: it has its own transaction (alert and urgent chat
    # together), so it waits until everything before it is pushed, and nothing after it is
    # written before it: the user's seq order stays the event order.

    async def _consume(self) -> None:
        staged: asyncio.Queue = asyncio.Queue(maxsize=4)
        self.tasks.spawn(self._push_stage(staged), "events-push")
        buffer = self._buffer
        while True:
            await self._wake.wait()
            self._wake.clear()
            while buffer:
                batch = [buffer.popleft() for _ in range(min(BATCH, len(buffer)))]
                for plain, freeze in _split_at_freezes(batch):
                    if plain:
                        await self._stage_or_drop(staged, plain)
                    if freeze is not None:
                        await staged.join()
                        await self._freeze_in_order(freeze)

    async def _stage_or_drop(self, staged: asyncio.Queue, events: list[dict]) -> None:
        try:
            await staged.put(await self._stage(events))
        except Exception:
            log.exception("could not stage %d payment events; the poller will retry", len(events))
            self._done(len(events))

    async def _freeze_in_order(self, event: dict) -> None:
        metrics.EVENTS_IN.labels("security.alert").inc()
        try:
            langs = await self.languages.of({event["user_id"]})
            await self.freeze_incident(event, langs[event["user_id"]])
        except Exception:
            log.exception(
                "could not handle a freeze of %s; the poller will retry", event["user_id"]
            )
        finally:
            self._done(1)

    async def _push_stage(self, staged: asyncio.Queue) -> None:
        while True:
            batch = await staged.get()
            try:
                await self._finish(batch)
            except Exception:
                log.exception("could not push %d payment events; the poller will retry", batch.size)
            finally:
                self._done(batch.size)
                staged.task_done()

    def _done(self, n: int) -> None:
        self._finished += n
        self._progress.set()

    async def _stage(self, events: list[dict]) -> _Staged:
        langs = await self.languages.of({e["user_id"] for e in events})
        ops = []
        for e in events:
            r = render(e, langs.get(e["user_id"], "zh"))
            if r is not None:
                kind, title, body = r
                ops.append(
                    NotificationWrite(e["user_id"], kind, title, body, _data(e), e["event_id"])
                )
        writes = self.store.writer.enqueue_many(ops)
        metrics.EVENTS_IN.labels("transaction.status").inc(
            sum(e["type"] == "transaction.status" for e in events)
        )
        metrics.EVENTS_IN.labels("security.alert").inc(
            sum(e["type"] == "security.alert" for e in events)
        )
        return _Staged(len(events), writes)

    async def _finish(self, batch: _Staged) -> None:
        results = await batch.writes.results()
        for r in results:
            if isinstance(r, Exception):
                raise r
        await self.push([r for r in results if isinstance(r, StoredNotification)])

    async def handle(self, events: list[dict]) -> None:
        """Store and push these events through the same ordered pipeline; return when done."""
        self.offer(events)
        await self.flushed()

    async def push(self, stored: list[StoredNotification]) -> None:
        """Publish to every device of each user, and tell the agents serving them."""
        if not stored:
            return
        items: list = [
            (user_channel(n.user_id), encode_msgpack(n.frame()), "notification", n.seq)
            for n in stored
        ]
        async with self.store.acquire() as db:
            serving = await db.fetch(
                "select distinct user_id, agent_id from conversations where status = 'assigned'"
                " and user_id = any($1::text[])",
                list({n.user_id for n in stored}),
            )
        agents_of: dict[str, list[str]] = {}
        for row in serving:
            agents_of.setdefault(row["user_id"], []).append(row["agent_id"])
        for n in stored:
            for agent_id in agents_of.get(n.user_id, ()):
                frame = {"type": "customer.event", "user_id": n.user_id, "kind": n.kind,
                         "title": n.title, "body": n.body, "data": n.data, "ts": n.ts.isoformat()}  # fmt: skip
                items.append((agent_channel(agent_id), encode_msgpack(frame)))
        await self.delivery.fan_out(items)
        self.push_out.notifications_stored(stored)  # push: to users with no socket anywhere
        updates = [(n.user_id, n.data) for n in stored if n.kind == "transaction.status"]
        if updates:
            await self.reactions.transactions_changed(updates)

    async def freeze_incident(self, event: dict, lang: str) -> None:
        """The critical alert and the urgent security chat, in one transaction."""
        kind, title, body = render(event, lang)
        op = NotificationWrite(event["user_id"], kind, title, body, _data(event), event["event_id"])
        async with self.store.acquire() as db, db.transaction():
            [stored] = await write_notifications(db, [op])
            if stored is None:
                return  # handled before, here or on another node
            conv = await db.fetchrow(
                "select * from conversations where user_id = $1 and topic = 'security'"
                " and status = any('{queued,assigned}'::text[]) order by created_at desc limit 1 for update",
                event["user_id"],
            )
            if conv is None:
                conv = await db.fetchrow(
                    "insert into conversations (id, user_id, topic, priority, status, lang, enqueued_at, alert)"
                    " values ($1, $2, 'security', 'urgent', 'queued', $3, now(), $4) returning *",
                    new_id(), event["user_id"], lang, _data(event),
                )  # fmt: skip
            else:
                conv = await db.fetchrow(
                    "update conversations set priority = 'urgent', alert = $2 where id = $1 returning *",
                    conv["id"], _data(event),
                )  # fmt: skip
            [msg] = await write_messages(
                db,
                [MessageWrite(conv["id"], "system", "system", "supporthub", URGENT_OPENING[lang])],
            )
        await self.push([stored])
        await self.delivery.to_user(event["user_id"], {"type": "chat.opened", "conversation_id": conv["id"],
                                              "status": "queued", "topic": "security", "priority": "urgent",
                                              "alert": _data(event)})  # fmt: skip
        await self.delivery.to_conversation(
            {"user_id": conv["user_id"], "agent_id": conv["agent_id"]}, msg.frame()
        )
        await self.reactions.route()

    # --- events of other nodes -----------------------------------------------------------

    async def _watch_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.take_over_orphans()
            except Exception as exc:
                log.debug("orphan check failed: %s", exc)

    async def take_over_orphans(self, now: float | None = None) -> int:
        """Handle other nodes' events still not stored a while after they came if their
        owner has left the ring meanwhile (it died between two membership beats). An owner
        still beating after `WATCH_UNTIL_S` is alive and trusted with them. The outbox poll
        would find such events too, but only those that went through the outbox; this
        covers every event on the channel, sooner."""
        now = time.monotonic() if now is None else now
        watch, due = self._watch, []
        while watch and now - watch[0][0] >= WATCH_AFTER_S:
            due.append(watch.popleft())
        if not due:
            return 0
        missing = {e["event_id"] for e in await self._not_yet_handled([e for _, _, e in due])}
        ring, orphans, later = self.ring, [], []
        for item in due:
            arrived, owner, event = item
            if event["event_id"] not in missing:
                continue
            if owner not in ring.nodes:
                orphans.append(event)
            elif now - arrived < WATCH_UNTIL_S:
                later.append(item)
        watch.extendleft(reversed(later))
        if orphans:
            log.info("taking over %d payment events of departed nodes", len(orphans))
            self.offer(orphans)
        return len(orphans)

    # --- catch-up from the outbox -------------------------------------------------------

    async def _poll_forever(self) -> None:
        await asyncio.sleep(0.5)
        while True:
            try:
                await self.catch_up()
            except Exception as exc:
                log.debug("outbox catch-up failed: %s", exc)
            await asyncio.sleep(POLL_INTERVAL_S)

    async def catch_up(self) -> int:
        """Read the payments outbox past our cursor; hand every event to `handle`."""
        s = self.settings
        base = s.payments_url or f"http://{s.host}:{s.port}"
        token = issue_token(self.secret, "hub", "service", ttl=300)
        total = 0
        async with httpx.AsyncClient(
            base_url=base, timeout=10, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            async with self.store.acquire() as db:
                cursor = (
                    await db.fetchval("select after_id from event_cursor where source = 'payments'")
                    or 0
                )
            while True:
                resp = await http.get("/api/events", params={"after_id": cursor, "limit": 1000})
                if resp.status_code != 200:
                    return total
                body = resp.json()
                events = body.get("events") or []
                good = await self._not_yet_handled([e for e in events if valid_event(e)])
                if good:
                    await self.handle(good)
                    total += len(good)
                new_cursor = body.get("next_after_id", cursor)
                if new_cursor == cursor or not events:
                    return total
                cursor = new_cursor
                async with self.store.acquire() as db:
                    await db.execute(
                        "insert into event_cursor (source, after_id) values ('payments', $1)"
                        " on conflict (source) do update set after_id = greatest(event_cursor.after_id, $1)",
                        cursor,
                    )

    async def _not_yet_handled(self, events: list[dict]) -> list[dict]:
        """Most events the poller reads went out on the live path long ago: skip those
        with one index lookup instead of rendering and writing them again."""
        if not events:
            return events
        async with self.store.acquire() as db:
            rows = await db.fetch(
                "select event_id from notifications where event_id = any($1::text[])",
                [e["event_id"] for e in events],
            )
        done = {r["event_id"] for r in rows}
        return [e for e in events if e["event_id"] not in done]


class _Staged:
    __slots__ = ("size", "writes")

    def __init__(self, size: int, writes):
        self.size, self.writes = size, writes


def _is_freeze(event: dict) -> bool:
    return event["type"] == "security.alert" and event.get("alert") == "account_frozen"


def _split_at_freezes(events: list[dict]):
    """(plain events, the freeze that follows them or None), in order."""
    start = 0
    for i, event in enumerate(events):
        if _is_freeze(event):
            yield events[start:i], event
            start = i + 1
    if start < len(events) or start == 0:
        yield events[start:], None


def _data(event: dict) -> dict:
    return {k: v for k, v in event.items() if k not in ("type", "outbox_id")}
