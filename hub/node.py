"""A hub node at run time: its store pool, group writer, bus and registry, and the
delivery paths every use case shares (publish to a user/agent/staff, register a socket,
replay what a reconnecting client missed)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import asyncpg

from hub import metrics
from hub.bus import (
    FANOUT_CHANNEL,
    FANOUT_CHUNK,
    NODES_CHANNEL,
    NODES_KEY,
    STAFF_CHANNEL,
    Bus,
    agent_channel,
    user_channel,
)
from hub.connection import NOTIFICATIONS, Connection
from hub.errors import CloseCode
from hub.protocol import Hello, decode_msgpack, encode_msgpack
from hub.registry import Registry
from hub.ring import NODE_BEAT_S, NODE_TTL_S, NodeRing
from hub.settings import Settings
from hub.store import conversations as conv_store
from hub.store import notifications as notif_store
from hub.writer import Writers

log = logging.getLogger(__name__)

REPLAY_LIMIT = 5000
PRESENCE_BEAT_S = 5.0


class Node:
    def __init__(
        self, settings: Settings, *, dsn: str, redis_url: str, secret: str, events_key: str
    ):
        self.settings = settings
        self.dsn = dsn
        self.redis_url = redis_url
        self.secret = secret
        self.events_key = events_key  # verifies payments.events (hub.notify)
        self.node_id = settings.node_id or uuid.uuid4().hex[:12]
        self.pool: asyncpg.Pool | None = None
        self.writer: Writers | None = None
        self.registry = Registry(on_control=self._on_control)
        self.ring = NodeRing(self.node_id)
        self.bus = Bus(
            redis_url,
            secret,
            self.node_id,
            self._on_bus_message,
            on_reconnect=self.catch_up_all,
            probe_interval_s=settings.bus_probe_interval_s,
            probe_timeout_s=settings.bus_probe_timeout_s,
        )
        self.draining = False
        self.services: dict[str, Any] = {"node:nodes.changed": self._on_nodes_changed}
        self._tasks: list[asyncio.Task] = []
        self._left = False

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        self.pool = await _create_pool(self.dsn, s.db_pool_min, s.db_pool_max)
        self.writer = Writers(self.pool, count=s.writers, max_batch=s.writer_max_batch)
        self.writer.start()
        await self.bus.start()
        await self.bus.subscribe(NODES_CHANNEL)
        await self.bus.subscribe(FANOUT_CHANNEL)
        await self._beat_membership()
        await self._announce_membership()
        self.spawn(self._presence_beat(), "presence-beat")
        self.spawn(self._membership_beat(), "membership-beat")

    def spawn(self, coro, name: str) -> asyncio.Task:
        """A background task that lives as long as the node; it logs when it dies."""

        async def guarded():
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s died", name)

        task = asyncio.create_task(guarded(), name=name)
        self._tasks.append(task)
        return task

    async def drain(self) -> None:
        """SIGTERM: refuse new sockets, tell every client to go elsewhere (1001)."""
        self.draining = True
        for conn in list(self.registry.all()):
            conn.close(CloseCode.GOING_AWAY, "node shutting down")
        await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await self.drain()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.writer is not None:
            await self.writer.close()  # finishes writes in flight
        await self._leave_membership()
        await self.bus.close()
        if self.pool is not None:
            async with self.pool.acquire() as db:
                await db.execute("delete from agent_presence where node_id = $1", self.node_id)
            await self.pool.close()

    # --- publishing --------------------------------------------------------------------

    async def to_user(self, user_id: str, frame: dict) -> None:
        await self.bus.publish(user_channel(user_id), encode_msgpack(frame))

    async def to_agent(self, agent_id: str, frame: dict) -> None:
        await self.bus.publish(agent_channel(agent_id), encode_msgpack(frame))

    async def to_staff(self, frame: dict) -> None:
        await self.bus.publish(STAFF_CHANNEL, encode_msgpack(frame))

    async def to_conversation(self, conv: dict, frame: dict, *, include_user: bool = True) -> None:
        """A frame for both sides of a conversation, encoded once."""
        packed = encode_msgpack(frame)
        items = []
        if include_user:
            items.append((user_channel(conv["user_id"]), packed))
        if conv.get("agent_id"):
            items.append((agent_channel(conv["agent_id"]), packed))
        await self.bus.publish_many(items)

    async def fan_out(self, items: list[tuple[str, bytes]]) -> None:
        """Many frames for many channels in one signed publish per chunk (every node
        delivers the ones its listeners want)."""
        for i in range(0, len(items), FANOUT_CHUNK):
            chunk = items[i : i + FANOUT_CHUNK]
            await self.bus.publish(FANOUT_CHANNEL, encode_msgpack(chunk))

    def _on_bus_message(self, channel: str, payload: bytes) -> None:
        if channel == FANOUT_CHANNEL:
            registry = self.registry
            for item in decode_msgpack(payload):
                if len(item) == 4:  # (channel, frame bytes, type, seq): no decode per frame
                    registry.deliver_sequenced(item[0], item[1], item[2], item[3])
                else:
                    registry.deliver(item[0], item[1])
            return
        if channel == NODES_CHANNEL:
            frame = decode_msgpack(payload)
            handler = self.services.get("node:" + str(frame.get("type")))
            if handler is not None:
                self.spawn(handler(frame), "node-control")
            return
        self.registry.deliver(channel, payload)

    def _on_control(self, channel: str, frame: dict, listeners: set[Connection]) -> None:
        handler = self.services.get("control:" + frame["type"])
        if handler is not None:
            handler(channel, frame, listeners)

    # --- sessions ----------------------------------------------------------------------

    async def register(self, conn: Connection, hello: Hello) -> None:
        """Make `conn` reachable, send `welcome`, then replay what `resume` asks for.
        Live frames that arrive meanwhile are held and released after the replay, with
        duplicates dropped by seq."""
        claims = conn.claims
        conn.hold()
        self.registry.add(conn)
        for ch in conn.channels:
            await self.bus.subscribe(ch)
        async with self.pool.acquire() as db:
            if claims.is_staff:
                state = await conv_store.agent_session(db, claims.sub)
                await conv_store.presence_add(db, claims.sub, self.node_id, 1)
            else:
                await notif_store.ensure_user(db, claims.sub, claims.name, hello.lang)
                if hello.lang and "notifier" in self.services:
                    self.services["notifier"].forget_lang(claims.sub)
                await notif_store.materialise_broadcasts(db, claims.sub)
                state = await conv_store.user_session(db, claims.sub)
        conn.send_frame(
            {
                "type": "welcome",
                "role": claims.role,
                "sub": claims.sub,
                "session_id": conn.session_id,
                "node": self.node_id,
                **state,
            }
        )
        try:
            await self.replay(conn, hello, state)
        finally:
            conn.release()
        on_connect = self.services.get("on_connect")
        if on_connect is not None:
            await on_connect(conn)

    async def unregister(self, conn: Connection) -> None:
        channels = conn.channels
        self.registry.remove(conn)
        for ch in channels:
            await self.bus.unsubscribe(ch)
        if conn.claims is not None and conn.claims.is_staff and self.pool is not None:
            try:
                async with self.pool.acquire() as db:
                    await conv_store.presence_add(db, conn.claims.sub, self.node_id, -1)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("presence update failed: %s", exc)

    async def replay(self, conn: Connection, hello: Hello, state: dict) -> None:
        """Set where each stream of this connection starts, then send what `resume` asks
        for: notifications after `notifications_after`, and messages after the given seq of
        each named conversation plus all of every open one the client did not name."""
        resume = hello.resume
        claims = conn.claims
        async with self.pool.acquire() as db:
            if claims.is_staff:
                await self.services["resume_agent"](db, conn, resume)
                return
            open_convs = {c["conversation_id"]: c["last_seq"] for c in state["conversations"]}
            if resume is None:
                conn.set_base(NOTIFICATIONS, state["notifications_seq"])
                for cid, last in open_convs.items():
                    conn.set_base(cid, last)
                return
            after = resume.notifications_after
            conn.set_base(NOTIFICATIONS, state["notifications_seq"] if after is None else after)
            if after is not None:
                for n in await notif_store.after(db, claims.sub, after, REPLAY_LIMIT):
                    conn.push(n, conn.encode(n))
            known = resume.conversations or {}
            for cid, last in await conv_store.resumable(db, claims.sub, known):
                conn.set_base(cid, last)
                for m in await conv_store.messages_after(db, cid, last, REPLAY_LIMIT):
                    conn.push(m, conn.encode(m))

    async def catch_up_all(self) -> None:
        """After a bus outage: send every local client what it may have missed."""
        for conn in list(self.registry.all()):
            if conn.closed or conn.claims is None:
                continue
            try:
                async with self.pool.acquire() as db:
                    if not conn.claims.is_staff:
                        for n in await notif_store.after(
                            db, conn.claims.sub, conn.notif_seq, REPLAY_LIMIT
                        ):
                            conn.push(n, conn.encode(n))
                    for cid, last in list(conn.conv_seq.items()):
                        for m in await conv_store.messages_after(db, cid, last, REPLAY_LIMIT):
                            conn.push(m, conn.encode(m))
            except Exception as exc:
                log.warning("catch-up failed for a connection: %s", exc)
        notifier = self.services.get("notifier")
        if notifier is not None:
            try:
                await notifier.catch_up()
            except Exception as exc:
                log.warning("outbox catch-up after reconnect failed: %s", exc)
        resync = {"type": "session.resync"}
        for conn in list(self.registry.all()):
            conn.send_frame(resync)

    # --- hub membership (who handles which user's payment events: hub.ring) -------------

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

    async def _on_nodes_changed(self, frame: dict) -> None:
        await self._beat_membership()

    async def _presence_beat(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_BEAT_S)
            try:
                async with self.pool.acquire() as db:
                    await db.execute(
                        "update agent_presence set seen_at = now() where node_id = $1", self.node_id
                    )
            except Exception as exc:
                log.warning("presence beat failed: %s", exc)


async def _create_pool(dsn: str, min_size: int, max_size: int) -> asyncpg.Pool:
    from hub.store.db import create_pool

    return await create_pool(dsn, min_size=min_size, max_size=max_size)
