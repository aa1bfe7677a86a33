"""Campaigns: scheduled, targeted notices, created from the console, REST or the CLI and
sent by whichever hub node takes their lease.

Creating, previewing, editing and cancelling need only the database (the CLI does them
without a running hub); every one is audited in the transaction that does it. Sending is
the `Sender`'s: each node looks for a due campaign every `HUB_CAMPAIGN_POLL_S`, takes
its lease in PostgreSQL, and materialises and pushes it in batches at
`HUB_CAMPAIGN_RATE_PER_S`, so chat and payment notifications keep their latency. A node
that dies mid-campaign leaves its lease to run out (`HUB_CAMPAIGN_LEASE_S`); the next
node carries on from the stored cursor, and nothing is sent twice (the batch and the
cursor commit together; one copy per user and campaign is a unique index).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
from prometheus_client import Counter

from hub.background import Background
from hub.cluster.bus import user_channel
from hub.cluster.delivery import NUMBERED, Delivery
from hub.rules.campaigns import Audience, Pacer, audience_problem, may_change
from hub.store import Store
from hub.store import campaigns as store
from hub.store.notifications import StoredNotification
from hub.ws.protocol import encode_msgpack
from supporthub_core.audit import AuditEntry
from supporthub_core.errors import Conflict, Invalid, NotFound
from supporthub_core.settings import Settings

if TYPE_CHECKING:
    from hub.services.webpush import PushOut

log = logging.getLogger(__name__)
COPIES = Counter("supporthub_campaign_copies_total", "Campaign copies this node stored and pushed")
TAKEN = Counter(
    "supporthub_campaign_leases_total",
    "Campaigns this node took the lease of, and how each turn ended",
    ["outcome"],
)


async def create(
    db: asyncpg.Connection,
    actor: AuditEntry,
    *,
    category: str,
    texts: dict[str, Any],
    link: str | None,
    audience: Audience,
    send_at: datetime,
    user_ids: list[str],
) -> dict[str, Any]:
    problem = audience_problem(audience, len(user_ids))
    if problem:
        raise Invalid(problem)
    entry = AuditEntry(actor.actor_role, actor.actor_id, "campaign.create",
                       details={"audience": audience.as_json(), "send_at": send_at.isoformat(),
                                "category": category, "list_size": len(set(user_ids))},
                       address=actor.address)  # fmt: skip
    return await store.create(db, category=category, texts=texts, link=link,
                              audience=audience, send_at=send_at, created_by=actor.actor_id,
                              user_ids=user_ids, audit=entry)  # fmt: skip


async def preview(db: asyncpg.Connection, audience: Audience, user_ids: list[str]) -> int:
    problem = audience_problem(audience, len(user_ids))
    if problem:
        raise Invalid(problem)
    return await store.audience_size(db, audience, user_ids)


async def edit(
    db: asyncpg.Connection,
    actor: AuditEntry,
    campaign_id: int,
    changes: dict[str, Any],
    user_ids: list[str] | None,
) -> dict[str, Any]:
    """Change a campaign that has not started (texts, link, audience, send time)."""
    current = await _changeable(db, campaign_id)
    if "audience" in changes or user_ids is not None:
        audience = changes.get("audience") or Audience.from_json(current["audience"])
        size = len(user_ids) if user_ids is not None else await store.list_size(db, campaign_id)
        problem = audience_problem(audience, size)
        if problem:
            raise Invalid(problem)
    fields = {k: (v.as_json() if isinstance(v, Audience) else v) for k, v in changes.items()}
    entry = AuditEntry(actor.actor_role, actor.actor_id, "campaign.edit",
                       details={"fields": sorted(fields) + (["user_ids"] if user_ids is not None else [])},
                       address=actor.address)  # fmt: skip
    row = await store.change(db, campaign_id, fields, user_ids, entry)
    if row is None:
        raise Conflict("the campaign has started: it can no longer change")
    return row


async def cancel(db: asyncpg.Connection, actor: AuditEntry, campaign_id: int) -> dict[str, Any]:
    await _changeable(db, campaign_id)
    entry = AuditEntry(actor.actor_role, actor.actor_id, "campaign.cancel", address=actor.address)
    row = await store.change(db, campaign_id, {"status": "cancelled"}, None, entry)
    if row is None:
        raise Conflict("the campaign has started: it can no longer be cancelled")
    return row


async def _changeable(db: asyncpg.Connection, campaign_id: int) -> dict[str, Any]:
    current = await store.get(db, campaign_id)
    if current is None:
        raise NotFound("no such campaign")
    send_at = datetime.fromisoformat(current["send_at"])
    now = await store.now(db)
    if not may_change(current["status"], send_at, now):
        raise Conflict(f"the campaign is {current['status']}: it can no longer change")
    return current


class Sender:
    """The loop on each node that sends due campaigns, one at a time per campaign."""

    def __init__(
        self,
        store_: Store,
        delivery: Delivery,
        node_id: str,
        settings: Settings,
        push_out: PushOut | None = None,
    ) -> None:
        self.store = store_
        self.delivery = delivery
        self.push_out = push_out  # Web Push to the devices of users with no socket
        self.node_id = node_id
        self.poll_s = settings.campaign_poll_s
        self.rate = settings.campaign_rate_per_s
        self.batch = settings.campaign_batch
        self.lease_s = settings.campaign_lease_s
        self.sent = 0  # copies this node stored and pushed (metrics, bench)

    def start(self, tasks: Background) -> None:
        tasks.spawn(self._loop(), "campaigns")

    async def _loop(self) -> None:
        while True:
            try:
                while await self.run_one():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # the store or the bus is away: try again next round
                log.exception("campaign round failed")
            await asyncio.sleep(self.poll_s)

    async def run_one(self) -> bool:
        """Send one due campaign to its end (or until its lease is lost); False when there
        was none to take."""
        async with self.store.acquire() as db:
            campaign = await store.claim(db, self.node_id, self.lease_s)
        if campaign is None:
            return False
        cid = campaign["id"]
        log.info("campaign %s: sending from cursor %r", cid, campaign["cursor"])
        pacer = Pacer(self.rate, self.batch)
        while True:
            n, wait = pacer.take(time.monotonic())
            if n == 0:
                await asyncio.sleep(wait)
                continue
            try:
                async with self.store.acquire() as db:
                    batch = await store.send_batch(db, cid, self.node_id, n, self.lease_s)
            except asyncpg.UniqueViolationError:  # a late copy raced this batch: once more
                continue
            if batch.lost:
                log.info("campaign %s: lease lost or cancelled", cid)
                TAKEN.labels("lost").inc()
                return True
            if batch.done:
                log.info("campaign %s: sent", cid)
                TAKEN.labels("sent").inc()
                return True
            if len(batch.copies) < n:
                pacer.give_back(n - len(batch.copies))
            await self.numbered([uid for uid, _ in batch.copies])
            await self.push(batch.copies)

    async def numbered(self, users: list[str]) -> None:
        """The copies were numbered behind the nodes' heads (hub.rules.notif_heads): this
        node and the others read those users' heads again before their next writes."""
        if not users:
            return
        self.store.forget_notification_heads(users)
        try:
            await self.delivery.to_nodes({"type": NUMBERED, "users": users})
        except Exception as exc:  # a stale head costs a batch written twice, no wrong seq
            log.warning("campaign copies numbered, the other nodes not told: %s", exc)

    async def push(self, copies: list[tuple[str, dict[str, Any]]]) -> None:
        if not copies:
            return
        self.sent += len(copies)
        COPIES.inc(len(copies))
        items: list = [
            (user_channel(uid), encode_msgpack(frame), "notification", frame["seq"])
            for uid, frame in copies
        ]
        try:
            await self.delivery.fan_out(items)
        except Exception as exc:  # stored: the devices get it on resume
            log.warning("campaign push failed (stored, replayed on resume): %s", exc)
        if self.push_out is not None:  # closed apps: it screens out users with a socket
            self.push_out.notifications_stored([_stored(uid, f) for uid, f in copies])


def _stored(user_id: str, frame: dict[str, Any]) -> StoredNotification:
    ts = datetime.fromisoformat(frame["ts"])
    return StoredNotification(frame["notification_id"], user_id, frame["seq"], frame["kind"],
                              frame["title"], frame["body"], frame["data"], ts, frame["ts"])  # fmt: skip
