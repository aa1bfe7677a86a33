"""Payment events -> user notifications: the pipeline that stores and pushes them.

Events arrive on the Redis channel `payments.events` (the fast path: signed, and verified by
hub.services.event_gate before anything else looks at them) and, as a safety net, from the
payments outbox (hub.services.outbox_poller). Each `event_id` is handled once across all
nodes (the unique `event_id` of stored notifications decides), so the two paths may overlap
freely. What an event says to its user is hub.rules.notices.

The subscriber callback only appends to a buffer; one consumer task drains it in batches
through the group writer: no task per event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import datetime
from typing import Protocol

from hub import metrics
from hub.background import Background
from hub.cluster.bus import agent_channel, user_channel
from hub.cluster.delivery import Delivery
from hub.cluster.node import Node
from hub.rules.notices import URGENT_OPENING, event_data, is_freeze, render, valid_event
from hub.services.event_gate import EventGate
from hub.services.languages import Languages
from hub.store import Store, incidents
from hub.store import notifications as notif_store
from hub.store.notifications import NotificationWrite, StoredNotification
from hub.store.writer import BatchWrite
from hub.ws.protocol import encode_msgpack

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "payments.events"
BATCH = 2000
BUFFER_LIMIT = 100_000
STAGED_LIMIT = 4  # batches written ahead of the one being pushed
# batches pushed here ahead of their publish for the other nodes and their follow-ups: a
# Redis that stops answering holds the push stage back after these, so what waits for it
# stays bounded
PUBLISH_LIMIT = 8
WATCH_AFTER_S = 3.0  # check another node's events this long after they arrived...
WATCH_UNTIL_S = 8.0  # ...and again until their owner has had time to drop out of the ring
WATCH_LIMIT = 200_000


class Reactions(Protocol):
    """What other use cases do when notifications go out."""

    async def transactions_changed(
        self, updates: list[tuple[str, dict]], chats: list[dict] | None
    ) -> None:
        """The bot follows up on transactions users asked it about; `chats`: the users'
        open chats in which it keeps a state ({id, user_id, lang}), None: it reads them."""

    async def route(self) -> None:
        """The router places the urgent chat a freeze opened."""


class NotificationPush(Protocol):
    """What the notifier tells the push sender (PushOut, seated after both are built)."""

    def notifications_stored(self, stored: list[StoredNotification]) -> None: ...


class Notifier:
    """Stores and pushes payment events, in order, once across all nodes."""

    def __init__(
        self,
        store: Store,
        delivery: Delivery,
        cluster: Node,
        languages: Languages,
        reactions: Reactions,
        tasks: Background,
        events_key: str,
    ) -> None:
        self.store = store
        self.delivery = delivery
        self.ring = cluster.ring
        self.bus = cluster.bus
        self.languages = languages
        self.reactions = reactions
        self.tasks = tasks
        self.gate = EventGate(events_key.encode())
        self.events_key = events_key
        self.push_out: NotificationPush | None = None
        self._buffer: deque[dict] = deque()
        self._wake = asyncio.Event()
        # the consumer waits with nothing buffered nor staging: an offer may stage at once
        self._idle = False
        self._staged: asyncio.Queue[_Staged] = asyncio.Queue(maxsize=STAGED_LIMIT)
        self._pushing: _Staged | None = None  # the batch stage 2 waits for
        self._progress = asyncio.Event()
        self._offered = 0
        self._finished = 0
        self._raw: list[bytes] = []
        # pushed batches whose agents, web push and bot follow-ups are still to come, each
        # with the publish that carries it to the other nodes (None: nothing to publish)
        self._follow_ups: asyncio.Queue[
            tuple[list[StoredNotification], int, asyncio.Future | None]
        ] = asyncio.Queue(maxsize=PUBLISH_LIMIT)
        # events other nodes own, kept a while in case their owner died with them
        self._watch: deque[tuple[float, str, dict]] = deque(maxlen=WATCH_LIMIT)

    async def start(self) -> None:
        """Listen to the live channel; start the consumer and the watch on other nodes."""
        await self.bus.subscribe_raw(EVENTS_CHANNEL, self._on_raw)
        self.tasks.spawn(self._consume(), "events-consumer")
        self.tasks.spawn(self._watch_forever(), "events-watch")

    def _on_raw(self, data: bytes) -> None:
        # events read from one socket read are decoded and offered together, once the
        # bus has parsed them all: one validation pass, one wake-up
        self._raw.append(data)
        if len(self._raw) == 1:
            asyncio.get_running_loop().call_soon(self._take_raw)

    def _take_raw(self) -> None:
        raw, self._raw = self._raw, []
        opened = map(self.gate.open, raw)  # None: not signed with the key; counted there
        self.offer([e for e in opened if e is not None], owned_only=True)

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
        self._offered += len(good)
        if self._idle and self._stage_at_once(good):
            return
        self._buffer.extend(good)
        self._idle = False
        self._wake.set()

    def _stage_at_once(self, events: list[dict]) -> bool:
        """Stage these events now, in the offer's own loop turn, when nothing is ahead of
        them and their users' languages are known: a lone event reaches the writer without
        waiting for the consumer task to wake. False: nothing done, the consumer takes them."""
        staged = self._staged
        if not events or len(events) > BATCH or staged.full() or any(map(is_freeze, events)):
            return False
        locales = self.languages.cached({e["user_id"] for e in events})
        if locales is None:
            return False
        try:
            staged.put_nowait(self._render_and_queue(events, locales))
        except Exception:
            log.exception("could not stage %d payment events; the poller will retry", len(events))
            self._done(len(events))
        return True

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
        staged = self._staged
        self.tasks.spawn(self._push_stage(staged), "events-push")
        self.tasks.spawn(self._follow_up_stage(), "events-follow-up")
        buffer = self._buffer
        while True:
            self._idle = not buffer
            await self._wake.wait()
            self._wake.clear()
            self._idle = False
            while buffer:
                batch = [buffer.popleft() for _ in range(min(BATCH, len(buffer)))]
                for plain, freeze in _split_at_freezes(batch):
                    if plain:
                        await self._stage_or_drop(staged, plain)
                    if freeze is not None:
                        await staged.join()
                        await self._follow_ups.join()
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
            locales = await self.languages.locales({event["user_id"]})
            await self.freeze_incident(event, *locales[event["user_id"]])
        except Exception:
            log.exception(
                "could not handle a freeze of %s; the poller will retry", event["user_id"]
            )
        finally:
            self._done(1)

    # Stage 2 pushes a batch to this node's users right after its COMMIT and queues it for
    # the other nodes (hub.cluster.delivery: published in order, without waiting for Redis
    # to answer); what else the batch causes (the agents' `customer.event`, the bot's
    # follow-ups, web push: each a query) is a third stage, in order, which starts once the
    # batch is published, so the next batch's users never wait for Redis or those queries.

    async def _push_stage(self, staged: asyncio.Queue) -> None:
        while True:
            batch = await staged.get()
            self._pushing = batch
            stored: list[StoredNotification] = []
            published: asyncio.Future | None = None
            try:
                stored, published = await self._finish(batch)
                batch.observe_lag()
            except Exception:
                log.exception("could not push %d payment events; the poller will retry", batch.size)
            finally:
                self._pushing = None
                await self._follow_ups.put((stored, batch.size, published))
                staged.task_done()

    async def _follow_up_stage(self) -> None:
        while True:
            stored, size, published = await self._follow_ups.get()
            try:
                if published is not None:
                    await published
                await self._follow_up(stored)
            except Exception:
                log.exception("could not follow up %d notifications", len(stored))
            finally:
                self._done(size)
                self._follow_ups.task_done()

    def _done(self, n: int) -> None:
        self._finished += n
        self._progress.set()

    async def _stage(self, events: list[dict]) -> _Staged:
        locales = await self.languages.locales({e["user_id"] for e in events})
        return self._render_and_queue(events, locales)

    def _render_and_queue(self, events: list[dict], locales: dict) -> _Staged:
        ops = []
        for e in events:
            r = render(e, *locales[e["user_id"]])
            if r is not None:
                kind, title, body = r
                ops.append(
                    NotificationWrite(e["user_id"], kind, title, body, event_data(e), e["event_id"])
                )
        batch = _Staged(len(events), [t for t in map(_occurred, events) if t is not None])
        batch.writes = self.store.writer.enqueue_many(ops, then=lambda: self._committed(batch))
        metrics.EVENTS_IN.labels("transaction.status").inc(
            sum(e["type"] == "transaction.status" for e in events)
        )
        metrics.EVENTS_IN.labels("security.alert").inc(
            sum(e["type"] == "security.alert" for e in events)
        )
        return batch

    def _committed(self, batch: _Staged) -> None:
        """Called by the writer task right after a COMMIT of this batch. When stage 2 is
        waiting for it and all of it is stored, this node's users get it in the writer's
        loop turn (the next batches are not pushed before stage 2 has finished this one);
        stage 2 then publishes it for the other nodes. Otherwise stage 2 pushes it all."""
        if batch is not self._pushing or batch.sent_here is not None:
            return
        results = batch.writes.settled()
        if results is None or any(isinstance(r, Exception) for r in results):
            return
        stored = [r for r in results if isinstance(r, StoredNotification)]
        if any(map(_unfreezes, stored)):
            return  # marked in the store before anyone hears of it: stage 2 does both
        items = _to_users(stored)
        if self.delivery.here(items):
            batch.sent_here = items

    async def _finish(
        self, batch: _Staged
    ) -> tuple[list[StoredNotification], asyncio.Future | None]:
        """The batch's stored notifications, pushed here, and the publish for the others."""
        results = await batch.writes.results()
        for r in results:
            if isinstance(r, Exception):
                raise r
        stored = [r for r in results if isinstance(r, StoredNotification)]
        if batch.sent_here is not None:
            return stored, self.delivery.for_others(batch.sent_here)
        return stored, await self._push_to_users(stored)

    async def handle(self, events: list[dict]) -> None:
        """Store and push these events through the same ordered pipeline; return when done."""
        self.offer(events)
        await self.flushed()

    async def push(self, stored: list[StoredNotification]) -> None:
        """Publish to every device of each user, and tell the agents serving them."""
        published = await self._push_to_users(stored)
        if published is not None:
            await published
        await self._follow_up(stored)

    async def _push_to_users(self, stored: list[StoredNotification]) -> asyncio.Future | None:
        """Every device of each user, no query first: this node's own sockets at once, the
        other nodes through Redis (the future: once published; None: nothing to push)."""
        if not stored:
            return None
        unfrozen = [n.user_id for n in stored if _unfreezes(n)]
        if unfrozen:  # before anyone hears of it: a console reloading after sees it too
            async with self.store.acquire() as db:
                await incidents.mark_unfrozen(db, unfrozen)
        return self.delivery.here_first(_to_users(stored))

    async def _follow_up(self, stored: list[StoredNotification]) -> None:
        """After the users have them: the agents serving those users, web push to users
        with no socket anywhere, the bot's follow-ups. The write that stored them read the
        users' agents and bot chats in the same statement (`StoredNotification.agents`,
        `.bot_chats`): no query here unless one came from elsewhere without them."""
        if not stored:
            return
        unknown = list({n.user_id for n in stored if n.agents is None})
        agents_of: dict[str, list[str]] = {}
        if unknown:
            async with self.store.acquire() as db:
                agents_of = await notif_store.agents_serving(db, unknown)
        items: list = []
        for n in stored:
            agents = n.agents if n.agents is not None else agents_of.get(n.user_id, ())
            if not agents:
                continue
            frame = {"type": "customer.event", "user_id": n.user_id, "kind": n.kind,
                     "title": n.title, "body": n.body, "data": n.data,
                     "ts": n.ts_text or n.ts.isoformat()}  # fmt: skip
            data = encode_msgpack(frame)
            for agent_id in agents:
                items.append((agent_channel(agent_id), data))
        if items:
            await self.delivery.fan_out(items)
        if self.push_out is not None:
            self.push_out.notifications_stored(stored)  # push: to users with no socket anywhere
        tx = [n for n in stored if n.kind == "transaction.status"]
        if not tx:
            return
        updates = [(n.user_id, n.data) for n in tx]
        if any(n.agents is None for n in tx):  # not read with the write: the bot asks
            await self.reactions.transactions_changed(updates, None)
            return
        chats = {cid: (n.user_id, lang) for n in tx for cid, lang in n.bot_chats}
        if chats:  # only users with a chat where the bot keeps a state
            await self.reactions.transactions_changed(
                updates,
                [{"id": cid, "user_id": uid, "lang": lang} for cid, (uid, lang) in chats.items()],
            )

    async def freeze_incident(self, event: dict, lang: str, tz: str | None = None) -> None:
        """The critical alert and the urgent security chat, in one transaction."""
        rendered = render(event, lang, tz)
        assert rendered is not None  # account_frozen is an alert render knows
        kind, title, body = rendered
        alert = NotificationWrite(
            event["user_id"], kind, title, body, event_data(event), event["event_id"]
        )
        async with self.store.acquire() as db:
            freeze = await incidents.record_freeze(
                db, alert, lang, URGENT_OPENING[lang], dict(URGENT_OPENING)
            )
        self.store.forget_notification_heads([event["user_id"]])  # numbered by the store
        if freeze is None:
            return  # handled before, here or on another node
        conv = freeze.conversation
        await self.push([freeze.notification])
        await self.delivery.to_user(event["user_id"], {"type": "chat.opened", "conversation_id": conv["id"],
                                              "status": "queued", "topic": "security", "priority": "urgent",
                                              "alert": event_data(event)})  # fmt: skip
        await self.delivery.to_conversation(
            {"user_id": conv["user_id"], "agent_id": conv["agent_id"]}, freeze.opening.frame()
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
        unhandled = await not_yet_handled(self.store, [e for _, _, e in due])
        missing = {e["event_id"] for e in unhandled}
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


async def not_yet_handled(store: Store, events: list[dict]) -> list[dict]:
    """The events that made no notification yet. Most events read again (from the outbox,
    or watched for another node) went out long ago: one index lookup skips them instead
    of rendering and writing them again."""
    if not events:
        return events
    async with store.acquire() as db:
        done = await notif_store.handled_events(db, [e["event_id"] for e in events])
    return [e for e in events if e["event_id"] not in done]


class _Staged:
    __slots__ = ("size", "writes", "occurred", "sent_here")

    def __init__(self, size: int, occurred: list[float]):
        self.size, self.occurred = size, occurred
        self.writes: BatchWrite
        self.sent_here: list[tuple] | None = None  # delivered on this node by `_committed`

    def observe_lag(self) -> None:
        now = time.time()
        metrics.OUTBOX_LAG.observe_many([now - at if at < now else 0.0 for at in self.occurred])


def _unfreezes(n: StoredNotification) -> bool:
    return n.data.get("alert") == "account_unfrozen"


def _to_users(stored: list[StoredNotification]) -> list[tuple]:
    """Every device of each user: (channel, frame, type, seq) for the fan-out."""
    return [
        (user_channel(n.user_id), encode_msgpack(n.frame()), "notification", n.seq) for n in stored
    ]


def _occurred(event: dict) -> float | None:
    try:
        return datetime.fromisoformat(event["occurred_at"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def _split_at_freezes(events: list[dict]):
    """(plain events, the freeze that follows them or None), in order."""
    start = 0
    for i, event in enumerate(events):
        if is_freeze(event):
            yield events[start:i], event
            start = i + 1
    if start < len(events) or start == 0:
        yield events[start:], None
