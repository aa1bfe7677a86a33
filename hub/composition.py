"""The hub process assembled: each part built once, in the app's lifespan, and handed
what it uses — no part looks another up by name.

    Store ─┬─ Languages
           ├─ Chat ── (seats) Bot
           ├─ Notifier ── reacts through Chat and Bot
           ├─ Sessions ── register, replay, catch up
           ├─ Sweeper
           └─ PushOut ── (presence on the bus) PushSender ── a PushProvider per kind
    Node (bus, ring, registry) ── Delivery

Chat and Notifier tell PushOut what they stored (`push_out`, seated after they are built).
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.background import Background
from hub.cluster.delivery import Delivery
from hub.cluster.node import Node
from hub.push.config import PushConfig
from hub.push.presence import BusPresence
from hub.push.providers import WebPushProvider
from hub.push.sender import PushSender
from hub.services.bot import Bot
from hub.services.chat import Chat
from hub.services.languages import Languages
from hub.services.notify import Notifier
from hub.services.sessions import Sessions
from hub.services.sweeper import Sweeper
from hub.services.webpush import PushOut
from hub.store import Store
from hub.store import notifications as notif_store
from supporthub_core.settings import Settings


@dataclass
class Hub:
    settings: Settings
    secret: str
    tasks: Background
    store: Store
    node: Node
    delivery: Delivery
    languages: Languages
    chat: Chat
    bot: Bot
    notifier: Notifier
    sessions: Sessions
    sweeper: Sweeper
    push_out: PushOut

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        dsn: str,
        redis_url: str,
        secret: str,
        push: PushConfig | None = None,
    ) -> Hub:
        tasks = Background()
        store = Store(
            dsn,
            pool_min=settings.db_pool_min,
            pool_max=settings.db_pool_max,
            writers=settings.writers,
            max_batch=settings.writer_max_batch,
        )
        node = Node(settings, redis_url=redis_url, secret=secret, tasks=tasks)
        delivery = node.delivery
        languages = Languages(store)
        chat = Chat(store, delivery, languages, tasks, settings)
        bot = Bot(store, delivery, chat, settings, secret)
        chat.seat_bot(bot)
        notifier = Notifier(
            store, delivery, node, languages, _Reactions(chat, bot), tasks, settings, secret
        )
        sessions = Sessions(store, node, chat, languages, notifier.catch_up)
        sweeper = Sweeper(store, chat, settings)
        push_out = _push_out(settings, push or PushConfig(), store, node, languages, tasks)
        chat.push_out = push_out  # type: ignore[attr-defined]
        notifier.push_out = push_out  # type: ignore[attr-defined]
        return cls(settings, secret, tasks, store, node, delivery, languages, chat, bot,
                   notifier, sessions, sweeper, push_out)  # fmt: skip

    async def start(self) -> None:
        await self.store.start()
        await self.node.start()
        self.node.when_broadcast(self._push_broadcast)
        self.node.when_reconnected(self.sessions.catch_up_all)
        self.sessions.start(self.tasks)
        await self.notifier.start()
        self.sweeper.start(self.tasks)
        await self.push_out.start()

    async def stop(self) -> None:
        await self.node.drain()
        await self.tasks.stop()
        await self.push_out.close()  # pushes still queued are dropped: the app replays on open
        await self.store.writer.close()  # finishes writes in flight
        await self.node.stop()
        await self.sessions.stop()
        await self.store.close()

    async def _push_broadcast(self, broadcast_id: int) -> None:
        self.push_out.broadcast_stored(broadcast_id)  # devices of users with no socket
        registry = self.node.registry
        users = registry.local_users()
        if not users:
            return
        async with self.store.acquire() as db:
            copies = await notif_store.broadcast_copies(db, broadcast_id, users)
        for user_id, notification in copies:
            registry.fan_out(registry.of_user(user_id), notification)


def _push_out(
    settings: Settings,
    config: PushConfig,
    store: Store,
    node: Node,
    languages: Languages,
    tasks: Background,
) -> PushOut:
    sender = None
    if config.vapid is not None:
        webpush = WebPushProvider(config.vapid, config.subject, timeout_s=settings.push_timeout_s)
        sender = PushSender(
            {webpush.kind: webpush},
            store,
            workers=settings.push_workers,
            queue_size=settings.push_queue_size,
            timeout_s=settings.push_timeout_s,
            retries=settings.push_retries,
            backoff_s=settings.push_backoff_s,
            backoff_max_s=settings.push_backoff_max_s,
        )
    presence = BusPresence(node.bus)
    return PushOut(store, node.bus, presence, languages, tasks, settings, config, sender)


class _Reactions:
    def __init__(self, chat: Chat, bot: Bot) -> None:
        self._chat = chat
        self._bot = bot

    async def transactions_changed(self, updates: list[tuple[str, dict]]) -> None:
        await self._bot.on_transaction_updates(updates)

    async def route(self) -> None:
        await self._chat.route()
