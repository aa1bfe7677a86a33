"""Push to closed apps: devices register, and what a user would have got on a socket goes
to their devices through a push service when they have no socket open anywhere.

What is pushed: every notification (payment status, security alert, system notice) and
every reply of an agent. When: after it is stored and published, only if no hub node
holds a socket of that user (hub.push.presence). How: off the event path — the event
pipeline and the chat only append to an intake here and return; one task screens the
intake in batches (who is offline, which devices they have, in what language) and hands
jobs to the sender's queue (hub.push.sender).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Protocol

from prometheus_client import Counter

from hub.background import Background
from hub.cluster.bus import PREFIX, Bus
from hub.push import payloads
from hub.push.config import PushConfig
from hub.push.sender import PUSH_DROPS, PushJob, PushSender
from hub.push.subscriptions import PushRegistration, Subscription
from hub.services.languages import Languages
from hub.store import Store
from hub.store import notifications as notif_store
from hub.store import push as push_store
from hub.store.messages import StoredMessage
from hub.store.notifications import StoredNotification
from supporthub_core.auth import Claims
from supporthub_core.errors import Forbidden, NotFound
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

SCREEN_BATCH = 500
BROADCAST_PAGE = 500
BROADCAST_CLAIM_S = 24 * 3600

PUSH_SKIPPED = Counter(
    "supporthub_push_skipped_total", "Pushes not needed: the user had a live socket", ["kind"]
)


class Presence(Protocol):
    async def online(self, user_ids: Iterable[str]) -> set[str]:
        """The users among `user_ids` with a live socket on some hub node."""


class PushOut:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        presence: Presence,
        languages: Languages,
        tasks: Background,
        settings: Settings,
        config: PushConfig,
        sender: PushSender | None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.presence = presence
        self.languages = languages
        self.tasks = tasks
        self.settings = settings
        self.config = config
        self.sender = sender
        self._intake: deque[StoredNotification | StoredMessage | UrgentStaffed] = deque()
        self._wake = asyncio.Event()
        self._screening = False

    @property
    def enabled(self) -> bool:
        return self.sender is not None and self.config.enabled

    @property
    def public_key(self) -> str:
        if not self.enabled or self.config.vapid is None:
            raise NotFound("web push is not enabled on this hub")
        return self.config.vapid.public_key

    async def start(self) -> None:
        if not self.enabled:
            log.warning("HUB_VAPID_PRIVATE_KEY is not set: Web Push to closed apps is off")
            return
        assert self.sender is not None
        await self.sender.start(self.tasks)
        self.tasks.spawn(self._screen_forever(), "push-screen")

    async def close(self) -> None:
        if self.sender is not None:
            await self.sender.close()

    # --- devices -------------------------------------------------------------------------

    async def register(self, claims: Claims, registration: PushRegistration) -> dict:
        """Store (or move to this user, or refresh) a device's subscription."""
        if claims.role != "user":
            raise Forbidden("only users register devices for push")
        self.public_key  # noqa: B018  (NotFound when push is off)
        sub = registration.subscription
        self.config.policy.check(sub.endpoint)
        keys = {"p256dh": sub.keys.p256dh, "auth": sub.keys.auth}
        async with self.store.acquire() as db:
            await notif_store.ensure_user(db, claims.sub, claims.name)
            row = await push_store.save(
                db, claims.sub, registration.kind, sub.endpoint, keys,
                self.settings.push_max_subscriptions_per_user,
            )  # fmt: skip
        return subscription_view(row)

    async def unregister(
        self, claims: Claims, *, endpoint: str | None = None, subscription_id: str | None = None
    ) -> bool:
        async with self.store.acquire() as db:
            return await push_store.remove(
                db, claims.sub, endpoint=endpoint, subscription_id=subscription_id
            )

    async def devices(self, claims: Claims) -> list[dict]:
        async with self.store.acquire() as db:
            return [subscription_view(r) for r in await push_store.of_user(db, claims.sub)]

    # --- what goes out (called on the event path: never waits) -------------------------

    def notifications_stored(self, stored: list[StoredNotification]) -> None:
        """Notifications just stored and published: push those of offline users."""
        if self.enabled and stored:
            self._take(stored)

    def message_posted(self, msg: StoredMessage) -> None:
        """A chat message just stored and published: push an agent's reply to an offline user."""
        if self.enabled and msg.sender_role == "agent" and not msg.duplicate:
            self._take([msg])

    def urgent_staffed(self, msg: StoredMessage) -> None:
        """A person has just got the user's urgent security chat (the system notice that
        says so is `msg`): push it to an offline user, who was told to expect it."""
        if self.enabled and not msg.duplicate:
            self._take([UrgentStaffed(msg)])

    def broadcast_stored(self, broadcast_id: int) -> None:
        """A system notice stored for every user: push the copies of offline users (one
        node does it: the first to claim the broadcast)."""
        if self.enabled:
            self.tasks.spawn(self._push_broadcast(broadcast_id), "push-broadcast")

    async def settled(self) -> None:
        """Wait until everything taken so far is screened and sent or given up (tests)."""
        while self._intake or self._screening or (self.sender and not self.sender.idle):
            await asyncio.sleep(0.02)

    def _take(self, items: list) -> None:
        room = self.settings.push_queue_size - len(self._intake)
        if room < len(items):
            PUSH_DROPS.labels("intake_full").inc(len(items) - max(room, 0))
            items = items[: max(room, 0)]
        self._intake.extend(items)
        self._wake.set()

    # --- screening -----------------------------------------------------------------------

    async def _screen_forever(self) -> None:
        intake = self._intake
        while True:
            await self._wake.wait()
            self._wake.clear()
            while intake:
                batch = [intake.popleft() for _ in range(min(SCREEN_BATCH, len(intake)))]
                self._screening = True
                try:
                    await self._screen(batch)
                except Exception:
                    log.exception("could not screen %d items for push", len(batch))
                finally:
                    self._screening = False

    async def _screen(
        self, batch: list[StoredNotification | StoredMessage | UrgentStaffed]
    ) -> None:
        subs = await self._offline_devices({item.user_id for item in batch}, batch)
        if not subs:
            return
        langs = await self.languages.of(set(subs))
        ttl = self.settings.push_ttl_s
        assert self.sender is not None
        for item in batch:
            devices = subs.get(item.user_id)
            if not devices:
                continue
            lang = langs.get(item.user_id)
            if isinstance(item, StoredNotification):
                message = payloads.notification(item, lang, ttl)
            elif isinstance(item, UrgentStaffed):
                message = payloads.urgent_staffed(item.msg, lang, ttl)
            else:
                preview = self.settings.push_message_preview
                message = payloads.message(item, lang, ttl, preview=preview)
            for sub in devices:
                self.sender.submit(PushJob(sub, message))

    async def _offline_devices(self, users: set[str], batch: list) -> dict[str, list[Subscription]]:
        """The subscriptions of those `users` that have devices and no live socket."""
        async with self.store.acquire() as db:
            rows = await push_store.of_users(db, list(users))
        subs: dict[str, list[Subscription]] = defaultdict(list)
        for row in rows:
            subs[row["user_id"]].append(Subscription.of(row))
        if not subs:
            return {}
        online = await self.presence.online(subs)
        for user_id in online:
            del subs[user_id]
        if online:
            for item in batch:
                if item.user_id in online:
                    kind = item.kind if isinstance(item, StoredNotification) else "message"
                    PUSH_SKIPPED.labels(kind).inc()
        return subs

    async def _push_broadcast(self, broadcast_id: int) -> None:
        claimed = await self.bus.redis.set(
            f"{PREFIX}push:broadcast:{broadcast_id}", b"1", nx=True, ex=BROADCAST_CLAIM_S
        )
        if not claimed:
            return  # another node pushes this one
        assert self.sender is not None
        ttl, after = self.settings.push_ttl_s, ""
        while True:
            async with self.store.acquire() as db:
                rows = await push_store.broadcast_copies_for_push(
                    db, broadcast_id, after, BROADCAST_PAGE
                )
            if not rows:
                return
            after = rows[-1]["user_id"]
            subs = await self._offline_devices({r["user_id"] for r in rows}, [])
            for row in rows:
                for sub in subs.get(row["user_id"], ()):
                    await self.sender.submit_bulk(PushJob(sub, payloads.broadcast_copy(row, ttl)))


class UrgentStaffed:
    """In the intake: the notice that a person has the user's urgent chat."""

    __slots__ = ("msg",)

    def __init__(self, msg: StoredMessage) -> None:
        self.msg = msg

    @property
    def user_id(self) -> str:
        return self.msg.user_id


def subscription_view(row) -> dict:
    return {
        "subscription_id": row["id"],
        "kind": row["kind"],
        "endpoint": row["endpoint"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }
