"""The bus on a Redis Cluster with sharded pub/sub (Redis 7+): SPUBLISH to the master that
owns a channel's slot, SSUBSCRIBE on one connection per master.

Everything else is `hub.cluster.bus.Bus`: reference counting, signed frames, probes,
`on_reconnect` replay. Subscriptions follow the slot map: the listener reads the map,
opens one subscribe connection per master and subscribes each channel on its owner.
When any of them fails (a master died), answers MOVED, or Redis unsubscribes a channel
we still want (its slot moved, or the master was demoted by a failover), the listener
drops them all, reads the map again and resubscribes everything, then calls
`on_reconnect` so the node replays from PostgreSQL what its clients may have missed
meanwhile (the same path as a single Redis restarting).

Limits: the probe channel lives on one shard, so a shard that goes deaf without closing
its connection is noticed only on that shard; a dead master's connection closes, which
is the common case. The `nodes` and `fanout` channels each hash to one slot: their
shard carries every fan-out batch (see docs/operations.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio.cluster import RedisCluster

from hub import metrics
from hub.cluster.bus import Bus, Subscriber

log = logging.getLogger(__name__)


class ClusterBus(Bus):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shards: dict[str, Subscriber] = {}  # master "host:port" -> its connection
        self._leaving: Counter[str] = Counter()  # our own SUNSUBSCRIBEs not yet answered

    def _client(self) -> RedisCluster:
        return RedisCluster.from_url(self._url, socket_connect_timeout=2, socket_timeout=5)

    @property
    def cluster(self) -> RedisCluster:
        redis = self.redis
        assert isinstance(redis, RedisCluster)  # _client made it
        return redis

    def _drop_subscriptions(self) -> None:
        for sub in self._shards.values():
            sub.close()

    def _node_url(self, host: str, port: int) -> str:
        parts = urlsplit(self._url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@{host}:{port}" if auth else f"{host}:{port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def _owner(self, channel: str) -> Subscriber | None:
        node = self.cluster.nodes_manager.get_node_from_slot(self.cluster.keyslot(channel))
        return self._shards.get(node.name)

    async def numsub(self, channels: list[str]) -> list[int]:
        rc = self.cluster
        by_node: dict[str, list[str]] = {}
        nodes = {}
        for ch in channels:
            node = rc.get_node_from_key(ch)
            if node is None:
                raise ConnectionError(f"no master owns the slot of {ch}")
            nodes[node.name] = node
            by_node.setdefault(node.name, []).append(ch)
        counts: dict[str, int] = {}
        for name, chs in by_node.items():
            for ch in chs:  # one slot per command: channels of a node may differ in slot
                reply = await rc.execute_command("PUBSUB SHARDNUMSUB", ch, target_nodes=nodes[name])
                counts[ch] = _count(reply, ch)
        return [counts.get(ch, 0) for ch in channels]

    # --- subscribe ---------------------------------------------------------------------

    async def unsubscribe(self, channel: str) -> None:
        count = self._refs.get(channel, 0)
        if count <= 1:
            self._refs.pop(channel, None)
            if count == 1 and self.healthy:
                sub = self._owner(channel)
                if sub is not None:
                    try:
                        sub.send_command("SUNSUBSCRIBE", channel)
                        self._leaving[channel] += 1
                    except (OSError, ConnectionError):
                        pass
        else:
            self._refs[channel] = count - 1

    async def _subscribe_now(self, channels: list[str]) -> None:
        if not self._shards or not self._connected.is_set():
            return
        loop = asyncio.get_running_loop()
        waits = []
        try:
            for ch in channels:
                sub = self._owner(ch)
                if sub is None:  # the slot map changed under us: start over
                    log.warning("bus: no subscriber for the owner of %s; resubscribing", ch)
                    self._drop_subscriptions()
                    return
                fut = loop.create_future()
                self._confirm.setdefault(ch, []).append(fut)
                waits.append((ch, fut))
                sub.send_command("SSUBSCRIBE", ch)
            await asyncio.wait_for(asyncio.gather(*(f for _, f in waits)), 5.0)
        except (OSError, TimeoutError, ConnectionError) as exc:
            log.warning("bus: subscribe failed (%s); will resubscribe after reconnect", exc)
        finally:
            self._forget_confirms(waits)

    # --- listener ----------------------------------------------------------------------

    async def _connect_shards(self) -> None:
        rc = self.cluster
        await rc.initialize()
        await rc.nodes_manager.initialize()  # read the slot map afresh (after a failover)
        shards = {}
        try:
            for node in rc.get_primaries():
                shards[node.name] = await Subscriber.connect(
                    self._node_url(node.host, int(node.port))
                )
        except BaseException:
            for sub in shards.values():
                sub.close()
            raise
        self._shards = shards
        self._leaving.clear()
        for ch in list(self._refs):
            owner = self._owner(ch)
            if owner is None:
                raise ConnectionError(f"no master owns the slot of {ch}")
            owner.send_command("SSUBSCRIBE", ch)

    async def _listen_forever(self) -> None:
        backoff = 0.1
        first = True
        while True:
            readers: list[asyncio.Task] = []
            try:
                await self._connect_shards()
                self._connected.set()
                self._last_probe_heard = time.monotonic()
                self.healthy = True
                metrics.BUS_HEALTHY.set(1)
                if not first:
                    log.info(
                        "bus: reconnected to %d shards, %d channels resubscribed",
                        len(self._shards),
                        len(self._refs),
                    )
                    self._came_back()
                first = False
                backoff = 0.1
                readers = [
                    asyncio.create_task(sub.read_forever(self._on_reply), name=f"bus-shard-{name}")
                    for name, sub in self._shards.items()
                ]
                done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
                raise ConnectionError("a shard connection ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.healthy:
                    log.warning("bus: lost a Redis Cluster shard (%s); reconnecting", exc)
                else:
                    log.debug("bus: cluster not reachable yet (%s)", exc)
            finally:
                for task in readers:
                    task.cancel()
                if readers:
                    await asyncio.gather(*readers, return_exceptions=True)
            self._mark_down()
            self._drop_subscriptions()
            self._shards = {}
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _on_reply(self, reply) -> None:
        if type(reply) is not list or len(reply) < 3:
            return
        kind = reply[0]
        if kind == b"smessage":
            self._dispatch(reply[1].decode(), reply[2])
        elif kind == b"ssubscribe":
            for fut in self._confirm.pop(reply[1].decode(), ()):
                if not fut.done():
                    fut.set_result(None)
        elif kind == b"sunsubscribe":
            channel = reply[1].decode()
            if self._leaving[channel] > 0:
                self._leaving[channel] -= 1
                if not self._leaving[channel]:
                    del self._leaving[channel]
            elif channel in self._refs:
                # Redis dropped it: its slot moved or this master became a replica
                raise ConnectionError(f"redis unsubscribed {channel} (slot moved)")


def _count(reply, channel: str) -> int:
    """The count for `channel` out of PUBSUB SHARDNUMSUB's reply, however redis-py parsed
    it (a flat list, pairs, or a dict)."""
    if isinstance(reply, dict):
        items = list(reply.items())
    elif reply and isinstance(reply[0], list | tuple):
        items = [tuple(x) for x in reply]
    else:
        items = list(zip(reply[::2], reply[1::2], strict=False))
    for name, count in items:
        if (name.decode() if isinstance(name, bytes) else name) == channel:
            return int(count)
    return 0
