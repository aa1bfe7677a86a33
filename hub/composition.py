"""The hub process assembled: each part built once, in the app's lifespan, and handed
what it uses — no part looks another up by name.

    Store ─┬─ Languages
           ├─ Chat ── (seats) Bot; (Pager) on-call pages for urgent chats (webhook, mail
           │          through MailOut's relay); Audit
           ├─ Notifier ── reacts through Chat and Bot
           ├─ OutboxPoller ── feeds the Notifier what the live channel missed
           ├─ Sessions ── register, replay, catch up
           ├─ Sweeper
           ├─ Verification ── (SmsSender) step-up codes
           ├─ Audit
           ├─ Attachments ── AttachmentStore (disk or S3), Scanner, AttachmentLinks
           ├─ CampaignSender ── scheduled notices, paced, under a lease
           ├─ AgentAccess ── disabled agents: refused, their sockets closed on every node
           ├─ FeedbackHub ── suggestions, complaints, tags, rating comments -> the webhook
           ├─ Watch ── supervisors following chats read-only (on this node's registry)
           ├─ MailIn ── (SMTP listener) mail to the support address -> Chat, Attachments
           ├─ MailOut ── agents' replies in e-mail chats -> the SMTP relay (outbox, retried)
           └─ PushOut ── (presence on the bus) PushSender ── a PushProvider per kind
    Node (bus, ring, registry) ── Delivery
    SharedLimits (Redis, via `limits`), ClientAddresses (trusted proxies)

AttachmentLinks signs the file links in every `message` frame: Chat (live and history),
Sessions (replay) and the REST conversation detail all get the same one.

Chat and Notifier tell PushOut what they stored (`push_out`, seated after they are built).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.attachments.links import AttachmentLinks
from hub.attachments.scan import Scanner
from hub.attachments.storage import AttachmentStore, store_for
from hub.background import Background
from hub.cluster.delivery import Delivery
from hub.cluster.node import Node
from hub.helpbot import brand
from hub.limits import SharedLimits
from hub.push.config import PushConfig
from hub.push.presence import BusPresence
from hub.push.providers import WebPushProvider
from hub.push.sender import PushSender
from hub.services import broadcasts
from hub.services.agent_access import AgentAccess
from hub.services.attachments import Attachments
from hub.services.audit import Audit
from hub.services.bot import Bot
from hub.services.campaigns import Sender as CampaignSender
from hub.services.chat import Chat
from hub.services.feedback import FeedbackHub
from hub.services.languages import Languages
from hub.services.mail_catcher import DevMailCatcher
from hub.services.mail_in import MailIn
from hub.services.mail_out import MailOut, SmtpRelay
from hub.services.notify import Notifier
from hub.services.outbox_poller import OutboxPoller
from hub.services.pager import Pager, pager_for
from hub.services.sessions import Sessions, registration_slots
from hub.services.sms import SmsSender, UnconfiguredSmsSender
from hub.services.sweeper import Sweeper
from hub.services.verification import Verification
from hub.services.watch import Watch
from hub.services.webpush import PushOut
from hub.store import Store
from hub.store import notifications as notif_store
from hub.ws.keepalive import Keepalive
from supporthub_core.addresses import ClientAddresses
from supporthub_core.settings import Settings

BROADCAST_REPUSH = 32  # notices before an announced one that its pass pushes again


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
    outbox: OutboxPoller
    sessions: Sessions
    sweeper: Sweeper
    sms: SmsSender
    verification: Verification
    audit: Audit
    push_out: PushOut
    pager: Pager
    links: AttachmentLinks
    attachments: Attachments
    agent_access: AgentAccess
    limits: SharedLimits
    addresses: ClientAddresses
    feedback: FeedbackHub
    watch: Watch
    campaigns: CampaignSender
    mail_in: MailIn
    mail_out: MailOut
    keepalive: Keepalive
    mail_catcher: DevMailCatcher | None = None  # dev: the relay that keeps what it gets
    # chunks of notices heard while this node's read of its users' copies runs
    _broadcast_news: list[broadcasts.ChunkNews] = field(default_factory=list)
    _pushing_broadcasts: bool = False

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        dsn: str,
        redis_url: str,
        secret: str,
        events_key: str,
        sms: SmsSender | None = None,
        push: PushConfig | None = None,
        pager: Pager | None = None,
        files: AttachmentStore | None = None,
        scanner: Scanner | None = None,
        mail_catcher: DevMailCatcher | None = None,
    ) -> Hub:
        tasks = Background()
        store = Store(
            dsn,
            pool_min=settings.db_pool_min,
            pool_max=settings.db_pool_max,
            writers=settings.writers,
            max_batch=settings.writer_max_batch,
            write_timeout_s=settings.write_timeout_s,
            acquire_timeout_s=settings.db_acquire_timeout_s,
            statement_cache=settings.db_statement_cache,
        )
        node = Node(settings, redis_url=redis_url, secret=secret, tasks=tasks)
        delivery = node.delivery
        languages = Languages(store, settings.default_tz)
        audit = Audit(store)
        relay = SmtpRelay(settings)  # replies and on-call mail (dev: pointed at the catcher)
        pager = pager or pager_for(settings, secret, relay)
        links = AttachmentLinks(secret, settings.attachment_url_ttl_s)
        chat = Chat(store, delivery, languages, tasks, settings, links, pager, audit)
        brand.configure(brand.Brand.from_settings(settings))
        bot = Bot(store, delivery, chat, settings, secret)
        chat.seat_bot(bot)
        chat.presence = BusPresence(node.bus)
        notifier = Notifier(
            store, delivery, node, languages, _Reactions(chat, bot), tasks, events_key
        )
        outbox = OutboxPoller(store, notifier.handle, settings, secret)
        sessions = Sessions(
            store, node, chat, languages, outbox.catch_up, links, secret,
            registration_slots=registration_slots(settings.db_pool_max, settings.writers),
        )  # fmt: skip

        async def finish_notices() -> None:
            await notice_sender(store, node, secret, settings).finish_stalled(
                settings.broadcast_stall_s
            )

        sweeper = Sweeper(store, chat, settings, finish_notices)
        sms = sms or UnconfiguredSmsSender()
        verification = Verification(store, delivery, languages, sms, settings, secret)
        attachments = Attachments(store, files or store_for(settings), links, settings, scanner)
        push_out = _push_out(settings, push or PushConfig(), store, node, languages, tasks)
        chat.push_out = push_out
        notifier.push_out = push_out
        agent_access = AgentAccess(store, node, chat, secret)
        limits = SharedLimits(redis_url, settings)
        addresses = ClientAddresses(
            settings.trusted_proxies, settings.forwarded_header, settings.address_ipv6_prefix
        )
        feedback = FeedbackHub(store, settings, secret, tasks)
        bot.feedback = feedback
        chat.feedback = feedback
        campaigns = CampaignSender(store, delivery, node.node_id, settings, push_out)
        mail_out = MailOut(store, settings, tasks, attachments.files, relay)
        chat.mail_out = mail_out
        mail_in = MailIn(store, chat, attachments, mail_out, settings)
        return cls(settings, secret, tasks, store, node, delivery, languages, chat, bot,
                   notifier, outbox, sessions, sweeper, sms, verification, audit,
                   push_out, pager, links, attachments, agent_access, limits,
                   addresses, feedback, Watch(store, node, links), campaigns,
                   mail_in, mail_out, Keepalive(settings.ws_ping_s),
                   mail_catcher)  # fmt: skip

    async def start(self) -> None:
        await self.store.start()
        await self.node.start()
        self.node.when_broadcast(self._push_broadcast)
        self.node.when_numbered(self.store.forget_notification_heads)
        self.node.when_reconnected(self.sessions.catch_up_all)
        self.node.when_lost(self.sessions.hold_all)
        self.sessions.start(self.tasks, position_check_s=self.settings.position_check_s)
        self.tasks.spawn(self.keepalive.run(), "keepalive")
        await self.agent_access.start(self.tasks)
        await self.notifier.start()
        self.outbox.start(self.tasks)
        self.sweeper.start(self.tasks)
        self.campaigns.start(self.tasks)
        await self.push_out.start()
        await self.attachments.start()
        self.feedback.start()
        if self.mail_catcher is not None:
            await self.mail_catcher.start()
            self.mail_out.relay.point_at(self.mail_catcher.host, self.mail_catcher.port)
        self.mail_out.start()
        await self.mail_in.start()

    async def stop(self) -> None:
        await self.mail_in.stop()
        if self.mail_catcher is not None:
            await self.mail_catcher.stop()
        await self.node.drain()
        await self.tasks.stop()
        await self.outbox.close()
        await self.push_out.close()  # pushes still queued are dropped: the app replays on open
        await self.attachments.close()
        await self.store.writer.close()  # finishes writes in flight
        await self.node.stop()
        await self.sessions.stop()
        await self.limits.close()
        await self.store.close()

    def notice_sender(self) -> broadcasts.NoticeSender:
        """Sends system notices from this node (its users' copies pushed straight away)."""
        return notice_sender(self.store, self.node, self.secret, self.settings)

    async def _push_broadcast(self, frame: dict) -> None:
        """Push this node's users their copies of a stored chunk of a notice, the recent
        notices before it included: ids commit in order and notices are stored one after
        the other (hub.store.notifications.store_chunk), but announcements may arrive out
        of order, and a copy pushed twice is dropped by the connection (seq). One read at
        a time keeps every user's seq order; the chunks heard while it runs are read
        together next. The node that stored the chunk (`origin`) pushed its users' copies
        already (hub.services.broadcasts.store_chunks). Once the notice is complete, the
        devices of users with no socket get it (Web Push, one node)."""
        # the chunk's users have a copy numbered behind this node's heads
        self.store.forget_notification_heads()
        news = broadcasts.chunk_news(frame)
        if news.done:
            self.push_out.broadcast_stored(news.broadcast_id)
        if news.origin == self.node.node_id:
            return
        self._broadcast_news.append(news)
        if self._pushing_broadcasts:
            return  # the read running takes it next
        self._pushing_broadcasts = True
        try:
            while self._broadcast_news:
                heard, self._broadcast_news = self._broadcast_news, []
                await self._push_broadcast_copies(heard)
        finally:
            self._pushing_broadcasts = False

    async def _push_broadcast_copies(self, heard: list[broadcasts.ChunkNews]) -> None:
        registry = self.node.registry
        users = registry.local_users()
        if not users:
            return
        after, up_to, ranges = broadcasts.one_read(heard, BROADCAST_REPUSH)
        async with self.store.acquire() as db:
            copies = await notif_store.broadcast_copies(db, after, up_to, users, ranges)
        for user_id, notification in copies:
            registry.fan_out(registry.of_user(user_id), notification)


def notice_sender(
    store: Store, node: Node, secret: str, settings: Settings
) -> broadcasts.NoticeSender:
    """A notice sender on this node; made when needed, as the store's pool opens at start."""
    return broadcasts.NoticeSender(
        store.pool,
        node.bus.redis,
        secret,
        node,
        settings.broadcast_chunk,
        numbered=store.forget_notification_heads,
    )


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

    async def transactions_changed(
        self, updates: list[tuple[str, dict]], chats: list[dict] | None
    ) -> None:
        await self._bot.on_transaction_updates(updates, chats)

    async def route(self) -> None:
        await self._chat.route()
