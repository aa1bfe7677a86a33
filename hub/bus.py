"""Cross-node fan-out over Redis pub/sub.

- Subscriptions are reference-counted per node: a channel is subscribed for the first
  local listener and unsubscribed after the last; after a reconnect every channel still
  referenced is subscribed again.
- Envelopes are `payload || mac` where mac = HMAC-SHA256(secret, channel || payload)[:16]:
  someone who can write to Redis but does not know HUB_SECRET cannot push a frame to a
  user, and a frame cannot be replayed onto another user's channel.
- Pub/sub is at-most-once and a listener can go deaf while publishes still succeed, so
  the bus publishes a probe to itself every few seconds; when probes stop coming back it
  reports unhealthy (/readyz turns 503), reconnects, and calls `on_reconnect` so the node
  can replay from PostgreSQL whatever its clients may have missed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hub import metrics

log = logging.getLogger(__name__)

MAC_LEN = 16
PREFIX = "sh:"
SUBSCRIBE_TIMEOUT_S = 5.0

MessageHandler = Callable[[str, bytes], None]
RawHandler = Callable[[bytes], None]


def user_channel(user_id: str) -> str:
    return f"{PREFIX}u:{user_id}"


def agent_channel(agent_id: str) -> str:
    return f"{PREFIX}a:{agent_id}"


STAFF_CHANNEL = f"{PREFIX}staff"  # queue and load changes every agent console shows
NODES_CHANNEL = f"{PREFIX}nodes"  # node-to-node control (broadcasts)


class Bus:
    def __init__(
        self,
        url: str,
        secret: str,
        node_id: str,
        on_message: MessageHandler,
        *,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
        probe_interval_s: float = 3.0,
        probe_timeout_s: float = 5.0,
    ):
        self._url = url
        self._key = secret.encode()
        self._node_id = node_id
        self._on_message = on_message
        self._on_reconnect = on_reconnect
        self._probe_channel = f"{PREFIX}probe:{node_id}"
        self._probe_interval = probe_interval_s
        self._probe_timeout = probe_timeout_s
        self._refs: dict[str, int] = {}
        self._raw: dict[str, RawHandler] = {}  # unsigned channels (payments.events)
        self._confirm: dict[str, list[asyncio.Future]] = {}
        self._redis: aioredis.Redis | None = None
        self._pubsub = None
        self._tasks: list[asyncio.Task] = []
        self._last_probe_heard = time.monotonic()
        self._connected = asyncio.Event()
        self.healthy = False

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._redis = aioredis.from_url(
            self._url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
        )
        self._refs[self._probe_channel] = 1
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="bus-listener"),
            asyncio.create_task(self._probe_forever(), name="bus-probe"),
        ]
        try:
            await asyncio.wait_for(self._connected.wait(), 10)
        except TimeoutError:
            log.warning("bus: Redis not reachable yet; will keep trying")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def redis(self) -> aioredis.Redis:
        assert self._redis is not None
        return self._redis

    # --- signing -----------------------------------------------------------------------

    def seal(self, channel: str, payload: bytes) -> bytes:
        mac = hmac.new(self._key, channel.encode() + payload, hashlib.sha256).digest()
        return payload + mac[:MAC_LEN]

    def open(self, channel: str, data: bytes) -> bytes | None:
        payload, mac = data[:-MAC_LEN], data[-MAC_LEN:]
        good = hmac.new(self._key, channel.encode() + payload, hashlib.sha256).digest()[:MAC_LEN]
        return payload if hmac.compare_digest(mac, good) else None

    # --- publish -----------------------------------------------------------------------

    async def publish(self, channel: str, payload: bytes) -> None:
        """Best effort: the store already holds what matters; a lost publish is replayed."""
        try:
            await self.redis.publish(channel, self.seal(channel, payload))
        except (RedisError, OSError) as exc:
            log.warning("bus: publish to %s failed: %s", channel, exc)

    async def publish_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        items = list(items)
        if not items:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for channel, payload in items:
                    pipe.publish(channel, self.seal(channel, payload))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("bus: publish of %d frames failed: %s", len(items), exc)

    # --- subscribe ---------------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        """Reference-counted. Returns once Redis confirmed the subscription (or at once
        while Redis is down: the channel is subscribed again after the reconnect)."""
        count = self._refs.get(channel, 0)
        self._refs[channel] = count + 1
        if count == 0:
            await self._subscribe_now([channel])
        elif channel in self._confirm:  # another local listener's subscribe is in flight
            fut = asyncio.get_running_loop().create_future()
            self._confirm[channel].append(fut)
            try:
                await asyncio.wait_for(fut, SUBSCRIBE_TIMEOUT_S)
            except (TimeoutError, asyncio.CancelledError):
                pass

    async def unsubscribe(self, channel: str) -> None:
        count = self._refs.get(channel, 0)
        if count <= 1:
            self._refs.pop(channel, None)
            if count == 1 and self._pubsub is not None and self.healthy:
                try:
                    await self._pubsub.unsubscribe(channel)
                except (RedisError, OSError):
                    pass
        else:
            self._refs[channel] = count - 1

    async def subscribe_raw(self, channel: str, handler: RawHandler) -> None:
        """An unsigned channel written by another program (payments.events)."""
        self._raw[channel] = handler
        await self.subscribe(channel)

    async def _subscribe_now(self, channels: list[str]) -> None:
        if self._pubsub is None or not self._connected.is_set():
            return
        loop = asyncio.get_running_loop()
        waits = []
        for ch in channels:
            fut = loop.create_future()
            self._confirm.setdefault(ch, []).append(fut)
            waits.append(fut)
        try:
            await self._pubsub.subscribe(*channels)
            await asyncio.wait_for(asyncio.gather(*waits), SUBSCRIBE_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("bus: subscribe failed (%s); will resubscribe after reconnect", exc)
        finally:
            for ch, fut in zip(channels, waits, strict=True):
                if not fut.done():
                    fut.cancel()
                lst = self._confirm.get(ch)
                if lst and fut in lst:
                    lst.remove(fut)
                    if not lst:
                        del self._confirm[ch]

    # --- listener ----------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        backoff = 0.1
        first = True
        while True:
            try:
                self._pubsub = self.redis.pubsub()
                channels = list(self._refs)
                for i in range(0, len(channels), 1000):
                    await self._pubsub.subscribe(*channels[i : i + 1000])
                self._connected.set()
                self._last_probe_heard = time.monotonic()
                self.healthy = True
                metrics.BUS_HEALTHY.set(1)
                if not first:
                    metrics.BUS_RECONNECTS.inc()
                    log.info("bus: reconnected, %d channels resubscribed", len(channels))
                    if self._on_reconnect is not None:
                        asyncio.create_task(self._on_reconnect())
                first = False
                backoff = 0.1
                await self._read(self._pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.healthy:
                    log.warning("bus: lost Redis (%s); reconnecting", exc)
            self._mark_down()
            await self._drop_pubsub()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _mark_down(self) -> None:
        self.healthy = False
        self._connected.clear()
        metrics.BUS_HEALTHY.set(0)

    async def _drop_pubsub(self) -> None:
        if self._pubsub is not None:
            try:
                await self._pubsub.aclose()
            except Exception:
                pass
            self._pubsub = None

    async def _read(self, pubsub) -> None:
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
            if msg is None:
                if not self.healthy:
                    return  # the probe found us deaf: reconnect
                continue
            kind = msg["type"]
            channel = (
                msg["channel"].decode() if isinstance(msg["channel"], bytes) else msg["channel"]
            )
            if kind == "message":
                self._dispatch(channel, msg["data"])
            elif kind == "subscribe":
                for fut in self._confirm.pop(channel, ()):
                    if not fut.done():
                        fut.set_result(None)

    def _dispatch(self, channel: str, data: bytes) -> None:
        raw = self._raw.get(channel)
        if raw is not None:
            raw(data)
            return
        payload = self.open(channel, data)
        if payload is None:
            log.warning("bus: dropped a frame with a bad signature on %s", channel)
            return
        if channel == self._probe_channel:
            now = time.monotonic()
            self._last_probe_heard = now
            try:
                metrics.BUS_LAG.observe(max(0.0, time.time() - float(payload)))
            except ValueError:
                pass
            return
        try:
            self._on_message(channel, payload)
        except Exception:
            log.exception("bus: handler failed for %s", channel)

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self._probe_interval)
            if self._connected.is_set():
                await self.publish(self._probe_channel, repr(time.time()).encode())
                if time.monotonic() - self._last_probe_heard > self._probe_timeout:
                    log.warning("bus: probes are not coming back; resubscribing")
                    self._mark_down()  # the reader returns and the listener reconnects
