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
import hmac
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.exceptions import RedisError

from hub import metrics
from hub.cluster.replay import STAMP, ReplayWindow, Stamper
from supporthub_core.redis_client import RedisClient, publish

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


_STAMPER = Stamper()  # this process's stamps (hub.cluster.replay)


def seal(key: bytes, channel: str, payload: bytes) -> bytes:
    """`payload || stamp || HMAC(key, channel || payload || stamp)[:16]`: only holders of
    HUB_SECRET can write frames a node will accept, only for the channel they were sealed
    for, and each only once (the stamp)."""
    body = payload + _STAMPER.stamp(int(time.time() * 1000))
    return body + hmac.digest(key, channel.encode() + body, "sha256")[:MAC_LEN]


STAFF_CHANNEL = f"{PREFIX}staff"  # queue and load changes every agent console shows
NODES_CHANNEL = f"{PREFIX}nodes"  # node-to-node control (broadcasts)
NODES_KEY = f"{PREFIX}nodes:live"  # sorted set: live node -> last beat (ms); see hub.cluster.ring
# batches of (channel, frame) pairs every node receives and delivers to its own listeners:
# one publish, one signature and one Redis hop per batch instead of per frame
FANOUT_CHANNEL = f"{PREFIX}fanout"
FANOUT_CHUNK = 200  # frames per fan-out publish: delivering one holds the loop ~3 ms


# connections of a node's Redis client (publishes, commands; the subscription has its own)
POOL_SIZE = 100
POOL_WAIT_S = 5.0


class Bus:
    def __init__(
        self,
        url: str,
        secret: str,
        node_id: str,
        on_message: MessageHandler,
        *,
        on_reconnect: Callable[[], Coroutine[Any, Any, None]] | None = None,
        on_lost: Callable[[], None] | None = None,
        probe_interval_s: float = 3.0,
        probe_timeout_s: float = 5.0,
    ):
        self._url = url
        self._key = secret.encode()
        self._node_id = node_id
        self._on_message = on_message
        self._on_reconnect = on_reconnect
        self._on_lost = on_lost
        self._replays = ReplayWindow()
        self._probe_channel = f"{PREFIX}probe:{node_id}"
        self._probe_interval = probe_interval_s
        self._probe_timeout = probe_timeout_s
        self._refs: dict[str, int] = {}
        self._raw: dict[str, RawHandler] = {}  # foreign channels (payments.events)
        self._own: dict[str, bytes] = {}  # channel -> the marker of this node's publishes
        self._confirm: dict[str, list[asyncio.Future]] = {}
        self._redis: RedisClient | None = None
        self._sub: Subscriber | None = None
        self._tasks: list[asyncio.Task] = []
        self._last_probe_heard = time.monotonic()
        self._connected = asyncio.Event()
        self.healthy = False
        self._catching_up = 0  # reconnect catch-ups still running
        self._closing = False

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._redis = self._client()
        self._refs[self._probe_channel] = 1
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="bus-listener"),
            asyncio.create_task(self._probe_forever(), name="bus-probe"),
        ]
        try:
            await asyncio.wait_for(self._connected.wait(), 10)
        except TimeoutError:
            log.warning("bus: Redis not reachable yet; will keep trying")

    def _client(self) -> RedisClient:
        # a publish that finds every connection busy waits for one (at most
        # POOL_WAIT_S), it is not refused: under a burst (a group commit of many messages,
        # each published by its sender's task) a refused publish was a frame lost live
        pool = aioredis.BlockingConnectionPool.from_url(
            self._url, max_connections=POOL_SIZE, timeout=POOL_WAIT_S,
            socket_connect_timeout=2, socket_timeout=5, health_check_interval=10,
        )  # fmt: skip
        return aioredis.Redis.from_pool(pool)

    def _drop_subscriptions(self) -> None:
        """Close the subscribe connection: the listener notices and reconnects."""
        if self._sub is not None:
            self._sub.close()

    async def numsub(self, channels: list[str]) -> list[int]:
        """How many subscribers (nodes) each channel has, in order."""
        return [count for _, count in await self.redis.pubsub_numsub(*channels)]

    async def close(self) -> None:
        # the flag too, not only the cancel: Python 3.11's wait_for returns the result and
        # drops a cancel that lands as its wait completes, and a listener reconnecting
        # then would go on to read from Redis for ever (the node's shutdown with it)
        self._closing = True
        pending = set(self._tasks)
        while pending:  # cancelled again until done: a lost cancel must not hang the node
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1)
        self._drop_subscriptions()
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def redis(self) -> RedisClient:
        assert self._redis is not None
        return self._redis

    # --- signing -----------------------------------------------------------------------

    def seal(self, channel: str, payload: bytes) -> bytes:
        return seal(self._key, channel, payload)

    def open(self, channel: str, data: bytes) -> bytes | None:
        """The payload of a frame sealed for `channel`, or None: forged, or replayed."""
        body, mac = data[:-MAC_LEN], data[-MAC_LEN:]
        good = hmac.digest(self._key, channel.encode() + body, "sha256")[:MAC_LEN]
        if not hmac.compare_digest(mac, good):
            return None
        payload, stamp = body[: -STAMP.size], body[-STAMP.size :]
        if not self._replays.accept(stamp, int(time.time() * 1000)):
            return None
        return payload

    # --- publish -----------------------------------------------------------------------

    async def publish(self, channel: str, payload: bytes) -> None:
        """Best effort: the store already holds what matters; a lost publish is replayed.
        PUBLISH, or SPUBLISH on a cluster (`redis_client.publish` picks)."""
        try:
            await publish(self.redis, channel, self.seal(channel, payload))
        except (RedisError, OSError) as exc:
            log.warning("bus: publish to %s failed: %s", channel, exc)

    async def publish_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        items = list(items)
        if not items:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for channel, payload in items:
                    publish(pipe, channel, self.seal(channel, payload))
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
            if count == 1 and self._sub is not None and self.healthy:
                try:
                    self._sub.send_command("UNSUBSCRIBE", channel)
                except (OSError, ConnectionError):
                    pass
        else:
            self._refs[channel] = count - 1

    async def subscribe_raw(self, channel: str, handler: RawHandler) -> None:
        """A channel written by another program, without the bus envelope; its handler
        authenticates what comes (payments.events: hub.services.event_gate)."""
        self._raw[channel] = handler
        await self.subscribe(channel)

    async def _subscribe_now(self, channels: list[str]) -> None:
        sub = self._sub
        if sub is None or not self._connected.is_set():
            return
        loop = asyncio.get_running_loop()
        waits = []
        for ch in channels:
            fut = loop.create_future()
            self._confirm.setdefault(ch, []).append(fut)
            waits.append(fut)
        try:
            sub.send_command("SUBSCRIBE", *channels)
            await asyncio.wait_for(asyncio.gather(*waits), SUBSCRIBE_TIMEOUT_S)
        except (OSError, TimeoutError, ConnectionError) as exc:
            log.warning("bus: subscribe failed (%s); will resubscribe after reconnect", exc)
        finally:
            self._forget_confirms(zip(channels, waits, strict=True))

    def _forget_confirms(self, waits: Iterable[tuple[str, asyncio.Future]]) -> None:
        """Cancel and drop the (channel, future) subscription confirmations still waited on."""
        for ch, fut in waits:
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
                self._sub = await Subscriber.connect(self._url)
                if self._closing:  # a cancel lost in the connect's wait_for
                    self._sub.close()
                    self._sub = None
                    return
                channels = list(self._refs)
                for i in range(0, len(channels), 1000):
                    self._sub.send_command("SUBSCRIBE", *channels[i : i + 1000])
                self._connected.set()
                self._last_probe_heard = time.monotonic()
                self.healthy = True
                metrics.BUS_HEALTHY.set(1)
                if not first:
                    log.info("bus: reconnected, %d channels resubscribed", len(channels))
                    self._came_back()
                first = False
                backoff = 0.1
                await self._sub.read_forever(self._on_reply)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.healthy:
                    log.warning("bus: lost Redis (%s); reconnecting", exc)
            self._mark_down()
            if self._sub is not None:
                self._sub.close()
                self._sub = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    @property
    def ready(self) -> bool:
        """Connected, and what was published while it was not has been caught up."""
        return self.healthy and not self._catching_up

    def _came_back(self) -> None:
        metrics.BUS_RECONNECTS.inc()
        if self._on_reconnect is None:
            return
        self._catching_up += 1
        asyncio.create_task(self._catch_up(self._on_reconnect))

    async def _catch_up(self, on_reconnect: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            await on_reconnect()
        except Exception:
            log.exception("bus: catching up after a reconnect failed")
        finally:
            self._catching_up -= 1

    def _mark_down(self) -> None:
        if self.healthy and self._on_lost is not None:
            self._on_lost()
        self.healthy = False
        self._connected.clear()
        metrics.BUS_HEALTHY.set(0)

    def _on_reply(self, reply) -> None:
        if type(reply) is not list or len(reply) < 3:
            return
        kind = reply[0]
        if kind == b"message":
            self._dispatch(reply[1].decode(), reply[2])
        elif kind == b"subscribe":
            for fut in self._confirm.pop(reply[1].decode(), ()):
                if not fut.done():
                    fut.set_result(None)

    def skip_own(self, channel: str, marker: bytes) -> None:
        """Drop the frames on `channel` whose payload starts with `marker` (the msgpack
        bytes of an array's first item) before verifying them: this node's own publishes,
        which it acted on before sending. A forged frame carrying the marker is dropped
        too, as it would be once verified."""
        self._own[channel] = marker

    def _dispatch(self, channel: str, data: bytes) -> None:
        raw = self._raw.get(channel)
        if raw is not None:
            raw(data)
            return
        own = self._own.get(channel)
        # right after the array's header (1, 3 or 5 bytes): no signature, no decode
        if own is not None and data.find(own, 1, 6 + len(own)) != -1:
            return
        payload = self.open(channel, data)
        if payload is None:
            log.warning("bus: dropped a forged or replayed frame on %s", channel)
            return
        if channel == self._probe_channel:
            self._last_probe_heard = time.monotonic()
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
        while not self._closing:
            before = time.monotonic()
            await asyncio.sleep(self._probe_interval)
            if time.monotonic() - before > self._probe_interval + self._probe_timeout / 2:
                # this process stalled (the loop was blocked or not running): the probes
                # did not fail, we did not listen; give them a fresh window
                self._last_probe_heard = time.monotonic()
            if self._connected.is_set():
                await self.publish(self._probe_channel, repr(time.time()).encode())
                if time.monotonic() - self._last_probe_heard > self._probe_timeout:
                    log.warning("bus: probes are not coming back; reconnecting")
                    self._mark_down()
                    self._drop_subscriptions()  # the reader fails and the listener reconnects


class Subscriber:
    """A bare RESP connection in subscribe mode, parsed with hiredis a chunk at a time.

    redis-py's pub/sub reader parses one message per call with a timeout around each;
    this reads whatever arrived and parses it in one go, several times faster on the
    node's hottest inbound path. Commands are fire-and-forget; replies come back through
    `read_forever` (subscribe confirmations included).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer
        self._parser = hiredis.Reader()

    @classmethod
    async def connect(cls, url: str, timeout: float = 2.0) -> Subscriber:
        params = parse_url(url)
        if "path" in params:
            conn = asyncio.open_unix_connection(params["path"])
        else:
            ssl = None
            if (
                params.get("connection_class") is not None
                and "SSL" in params["connection_class"].__name__
            ):
                import ssl as ssl_module

                ssl = ssl_module.create_default_context()
            conn = asyncio.open_connection(
                params.get("host", "localhost"), params.get("port", 6379), ssl=ssl
            )
        reader, writer = await asyncio.wait_for(conn, timeout)
        sub = cls(reader, writer)
        if params.get("password"):
            auth = (
                [params["username"], params["password"]]
                if params.get("username")
                else [params["password"]]
            )
            sub.send_command("AUTH", *auth)
            reply = await asyncio.wait_for(sub._read_one(), timeout)
            if isinstance(reply, Exception):
                sub.close()
                raise ConnectionError(f"redis AUTH failed: {reply}")
        return sub

    def send_command(self, *args: str) -> None:
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg.encode() if isinstance(arg, str) else arg
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self._writer.write(b"".join(parts))

    async def _read_one(self):
        while True:
            reply = self._parser.gets()
            if reply is not False:
                return reply
            data = await self._reader.read(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self._parser.feed(data)

    async def read_forever(self, on_reply: Callable) -> None:
        parser, reader = self._parser, self._reader
        while True:
            data = await reader.read(262144)
            if not data:
                raise ConnectionError("redis closed the connection")
            parser.feed(data)
            while True:
                reply = parser.gets()
                if reply is False:
                    break
                if isinstance(reply, Exception):
                    raise ConnectionError(str(reply))
                on_reply(reply)

    def close(self) -> None:
        try:
            self._writer.close()
        except Exception:
            pass
