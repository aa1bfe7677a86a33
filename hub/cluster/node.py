"""A hub node in the cluster: its Redis bus, the local registry of sockets, delivery to
any node, membership of the event ring (hub.cluster.ring) and the nodes' control frames."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from hub import metrics
from hub.background import Background
from hub.cluster.bus import (
    FANOUT_CHANNEL,
    NODES_CHANNEL,
    NODES_KEY,
    Bus,
)
from hub.cluster.delivery import NUMBERED, ORIGIN, Delivery, origin_marker
from hub.cluster.ring import NODE_BEAT_S, NODE_TTL_S, NodeRing
from hub.cluster.sharded import ClusterBus
from hub.ws.protocol import decode_msgpack, encode_msgpack
from hub.ws.registry import Registry
from supporthub_core.errors import CloseCode
from supporthub_core.redis_client import cluster_url
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

BroadcastHandler = Callable[[dict], Coroutine[Any, Any, None]]
ReconnectHandler = Callable[[], Coroutine[Any, Any, None]]


class Node:
    def __init__(self, settings: Settings, *, redis_url: str, secret: str, tasks: Background):
        self.settings = settings
        self.secret = secret
        self.tasks = tasks
        self.node_id = settings.node_id or uuid.uuid4().hex[:12]
        self.registry = Registry()
        self.ring = NodeRing(self.node_id)
        is_cluster, redis_url = cluster_url(redis_url, settings.redis_cluster)
        self.bus = (ClusterBus if is_cluster else Bus)(
            redis_url,
            secret,
            self.node_id,
            self._on_bus_message,
            on_reconnect=self._after_reconnect,
            on_lost=self._bus_lost,
            probe_interval_s=settings.bus_probe_interval_s,
            probe_timeout_s=settings.bus_probe_timeout_s,
        )
        self.delivery = Delivery(self.bus, node_id=self.node_id, local=self.deliver_items)
        # the chunks it delivered before publishing them, skipped when they come back
        self.bus.skip_own(FANOUT_CHANNEL, origin_marker(self.node_id))
        self.draining = False
        self._on_broadcast: BroadcastHandler | None = None
        self._on_reconnect: ReconnectHandler | None = None
        self._on_lost: Callable[[], None] | None = None
        self._on_agent_access: Callable[[dict], None] | None = None
        self._on_numbered: Callable[[list[str]], None] | None = None
        self._left = False

    def when_broadcast(self, handler: BroadcastHandler) -> None:
        """`handler(frame)` pushes a stored chunk of a notice to this node's users (the
        frame: hub.services.broadcasts.tell_nodes)."""
        self._on_broadcast = handler

    def when_reconnected(self, handler: ReconnectHandler) -> None:
        """`handler()` runs after a bus outage, to send clients what they may have missed."""
        self._on_reconnect = handler

    def when_agent_access(self, handler: Callable[[dict], None]) -> None:
        """`handler(frame)` for `agent.disabled` / `agent.enabled` (hub.services.agent_access)."""
        self._on_agent_access = handler

    def when_numbered(self, handler: Callable[[list[str]], None]) -> None:
        """`handler(user_ids)` when another writer numbered notifications for these users
        (a campaign's copies): their heads are read again (hub.rules.notif_heads)."""
        self._on_numbered = handler

    def when_lost(self, handler: Callable[[], None]) -> None:
        """`handler()` runs when the bus loses Redis, before it subscribes again."""
        self._on_lost = handler

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start()
        await self.bus.subscribe(NODES_CHANNEL)
        await self.bus.subscribe(FANOUT_CHANNEL)
        await self._beat_membership()
        await self._announce_membership()
        self.tasks.spawn(self._membership_beat(), "membership-beat")

    async def drain(self) -> None:
        """SIGTERM: refuse new sockets, tell every client to go elsewhere (1001)."""
        self.draining = True
        for conn in list(self.registry.all()):
            conn.close(CloseCode.GOING_AWAY, "node shutting down")
        await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await self._leave_membership()
        await self.bus.close()

    # --- what arrives from the bus ------------------------------------------------------

    def _on_bus_message(self, channel: str, payload: bytes) -> None:
        if channel == FANOUT_CHANNEL:  # this node's own chunks were skipped by the bus
            self.deliver_items(decode_msgpack(payload))
            return
        if channel == NODES_CHANNEL:
            self._on_node_frame(decode_msgpack(payload))
            return
        self.registry.deliver(channel, payload)

    def deliver_items(self, items: list) -> None:
        """Fan-out items to this node's listeners: (channel, frame bytes, type, seq), or
        (channel, frame bytes)."""
        registry = self.registry
        for item in items:
            if len(item) == 4:  # (channel, frame bytes, type, seq): no decode per frame
                registry.deliver_sequenced(item[0], item[1], item[2], item[3])
            elif item[0] != ORIGIN:
                registry.deliver(item[0], item[1])

    def _on_node_frame(self, frame: Any) -> None:
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "nodes.changed":
            self.tasks.spawn(self._beat_membership(), "nodes-changed")
        elif kind == "broadcast" and self._on_broadcast is not None:
            self.tasks.spawn(self._on_broadcast(frame), "broadcast")
        elif kind in ("agent.disabled", "agent.enabled") and self._on_agent_access is not None:
            self._on_agent_access(frame)
        elif kind == NUMBERED and self._on_numbered is not None:
            users = frame.get("users")
            if isinstance(users, list):
                self._on_numbered([u for u in users if isinstance(u, str)])

    def _bus_lost(self) -> None:
        if self._on_lost is not None:
            self._on_lost()

    async def _after_reconnect(self) -> None:
        if self._on_reconnect is not None:
            await self._on_reconnect()

    # --- hub membership (who handles which user's payment events: hub.cluster.ring) ---

    async def _membership_beat(self) -> None:
        while True:
            await asyncio.sleep(NODE_BEAT_S)
            await self._beat_membership()

    async def _beat_membership(self) -> None:
        if self._left:
            return
        now_ms = int(time.time() * 1000)
        try:
            async with self.bus.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(NODES_KEY, {self.node_id: now_ms})
                pipe.zremrangebyscore(NODES_KEY, "-inf", now_ms - int(NODE_TTL_S * 1000))
                pipe.zrange(NODES_KEY, 0, -1)
                *_, live = await pipe.execute()
        except Exception as exc:  # Redis away: keep the last view; events wait in the outbox
            log.debug("membership beat failed: %s", exc)
            return
        if self.ring.update(m.decode() if isinstance(m, bytes) else m for m in live):
            log.info("hub nodes: %s", ", ".join(self.ring.nodes))
            metrics.HUB_NODES.set(len(self.ring.nodes))

    async def _announce_membership(self) -> None:
        await self.bus.publish(NODES_CHANNEL, encode_msgpack({"type": "nodes.changed"}))

    async def _leave_membership(self) -> None:
        self._left = True
        try:
            await self.bus.redis.zrem(NODES_KEY, self.node_id)
        except Exception as exc:
            log.debug("could not leave membership: %s", exc)
            return
        await self._announce_membership()
