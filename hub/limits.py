"""Limits shared by every hub node: counted in Redis (the `limits` library), so that N
nodes allow what one allows, and a key is forgotten only when its own window passes.

* Sign-in attempts (hub.http.api): per username and address, and per address. Every
  attempt is counted before the password is checked, so that guesses sent in parallel,
  to one node or to several, cannot slip past the limit; a successful sign-in clears
  its username-and-address count (the agent's own typos do not lock it out later).
* WebSocket opens per address per second (hub.ws.endpoint), in fixed one-second windows:
  the cheapest count (one INCR), and exactly "N a second" as the contract words it.

On a Redis Cluster the same counts live in the cluster (the `limits` library's
`RedisClusterStorage` over redis-py's `RedisCluster`): every limit is one key (a moving
window is one sorted set, a fixed window one counter) and each script touches that key
only, so a key lives on the shard that owns its slot and no hash tags are needed;
different addresses and usernames spread over the shards.

Redis down (or slower than `limits_timeout_s`): the counting falls back to this process
for `FALLBACK_S` before Redis is tried again — limits then hold per node, as they did
before they were shared. Never fail-closed (an outage of Redis must not lock every agent
out or refuse every reconnect: clients resume from PostgreSQL), never unlimited. The
fallback (`LocalCounters`) is bounded and forgets keys one by one as their windows pass,
never all at once: spraying new keys cannot reset a key that is being limited.
"""

from __future__ import annotations

import heapq
import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
)
from limits.errors import StorageError
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from hub import metrics
from hub.cluster.bus import PREFIX
from supporthub_core.redis_client import cluster_url
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = f"{PREFIX}limits"
FALLBACK_S = 2.0  # after a Redis failure, count in this process this long before retrying
OVERFLOW = "\x00overflow"


#: what a failed limit check may raise (redis-py's cluster client raises
#: RedisClusterException, which is not a RedisError, when no node of the cluster answers)
FAILURES = (RedisError, RedisClusterException, StorageError, OSError, TimeoutError)


def storage_uri(redis_url: str, cluster: bool = False) -> str:
    """The `limits` storage URI of a Redis URL: `async+redis://`, `async+rediss://`,
    `async+redis+unix://` for a Unix socket (the embedded Redis), or
    `async+redis+cluster://` for a Redis Cluster (`redis+cluster://`, `rediss+cluster://`,
    or any `redis://` URL with `cluster`; TLS is then the client's `ssl` option)."""
    scheme, sep, rest = redis_url.partition("://")
    if not sep:
        raise ValueError(f"not a Redis URL: {redis_url!r}")
    if scheme in ("redis+cluster", "rediss+cluster") or (cluster and scheme in ("redis", "rediss")):
        # the cluster client takes its nodes from the URI; a database number means nothing
        return f"async+redis+cluster://{rest.split('/', 1)[0]}"
    mapped = {"redis": "async+redis", "rediss": "async+rediss", "unix": "async+redis+unix"}
    if scheme not in mapped:
        raise ValueError(f"unsupported Redis URL scheme {scheme!r}")
    return f"{mapped[scheme]}://{rest}"


@dataclass(frozen=True)
class Rule:
    """One limit: `amount` per `window_s` seconds, over keys of `name`."""

    name: str
    amount: int
    window_s: int
    moving: bool  # an exact moving window (small limits), or a fixed window (one INCR)

    @property
    def item(self) -> RateLimitItem:
        return RateLimitItemPerSecond(self.amount, self.window_s, namespace=self.name)


class LocalCounters:
    """Fixed-window counters in this process, for while Redis is away. Bounded to
    `max_keys`: keys leave in the order their windows end; when every slot holds a live
    window, new keys share one overflow counter instead of pushing anyone out."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.counts: dict[str, list] = {}  # key -> [window end, count]
        self._ends: list[tuple[float, str]] = []  # heap of (window end, key)

    def hit(self, rule: Rule, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._expire(now)
        full = f"{rule.name}\x00{key}"
        entry = self.counts.get(full)
        if entry is None:
            if len(self.counts) >= self.max_keys:
                full = f"{rule.name}\x00{OVERFLOW}"
                entry = self.counts.get(full)
            if entry is None:
                entry = self.counts[full] = [now + rule.window_s, 0]
                heapq.heappush(self._ends, (entry[0], full))
        if entry[1] >= rule.amount:
            return False
        entry[1] += 1
        return True

    def clear(self, rule: Rule, key: str) -> None:
        self.counts.pop(f"{rule.name}\x00{key}", None)

    def _expire(self, now: float) -> None:
        ends, counts = self._ends, self.counts
        while ends and ends[0][0] <= now:
            end, key = heapq.heappop(ends)
            entry = counts.get(key)
            if entry is not None and entry[0] <= now:
                del counts[key]


class SharedLimits:
    def __init__(self, redis_url: str, settings: Settings) -> None:
        self.timeout_s = settings.limits_timeout_s
        # no retries: a limit check that fails falls back at once (below) instead of
        # holding a sign-in or a socket open for rounds of backoff
        no_retry = Retry(NoBackoff(), 0)
        self.local = LocalCounters(settings.limits_fallback_keys)
        self._local_until = 0.0
        window = max(1, int(settings.login_window_s))
        self.login_pair = Rule("login", settings.login_failures_per_user_address, window, True)
        self.login_address = Rule("login-addr", settings.login_attempts_per_address, window, True)
        self.ws_opens = Rule("ws-open", max(1, int(settings.connects_per_s_per_address)), 1, False)
        self._pool: aioredis.ConnectionPool | None = None
        self._cluster: RedisClusterStorage | None = None
        storage: RedisStorage
        if cluster_url(redis_url, settings.redis_cluster)[0]:
            # every node's own RedisCluster client (it finds the shards from the URL's
            # node); no retries and short socket timeouts as below, so a shard that is
            # failing over sends the check to the fallback instead of holding it
            storage = self._cluster = RedisClusterStorage(
                storage_uri(redis_url, cluster=True),
                implementation="redispy",
                key_prefix=KEY_PREFIX,
                socket_timeout=settings.limits_timeout_s,
                socket_connect_timeout=settings.limits_timeout_s,
                ssl=redis_url.startswith("rediss"),
                # limits types its storage options as scalars, but hands them to redis-py
                retry=no_retry,  # type: ignore[arg-type]
            )
        else:
            self._pool = aioredis.ConnectionPool.from_url(
                redis_url,
                socket_timeout=settings.limits_timeout_s,
                socket_connect_timeout=settings.limits_timeout_s,
                retry=no_retry,
            )
            storage = RedisStorage(
                storage_uri(redis_url),
                implementation="redispy",
                key_prefix=KEY_PREFIX,
                # limits types its storage options as scalars, but hands them to redis-py
                connection_pool=self._pool,  # type: ignore[arg-type]
                retry=no_retry,  # type: ignore[arg-type]
            )
        self._moving = MovingWindowRateLimiter(storage)
        self._fixed = FixedWindowRateLimiter(storage)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        if self._cluster is not None:
            # the RedisCluster client the storage made (limits has no close of its own);
            # limits types `bridge` as its abstract base, which leaves get_connection out
            client = self._cluster.bridge.get_connection()  # type: ignore[attr-defined]
            assert isinstance(client, RedisCluster)
            await client.aclose()

    def _strategy(self, rule: Rule) -> RateLimiter:
        return self._moving if rule.moving else self._fixed

    async def hit(self, rule: Rule, key: str) -> bool:
        """Count one more for `key`; False when that is over the limit."""
        if time.monotonic() >= self._local_until:
            try:
                # bounded by the pool's socket timeouts (limits_timeout_s)
                return await self._strategy(rule).hit(rule.item, key)
            except FAILURES as exc:
                self._fall_back(exc)
        metrics.LIMITS_LOCAL.inc()
        return self.local.hit(rule, key)

    async def clear(self, rule: Rule, key: str) -> None:
        self.local.clear(rule, key)
        if time.monotonic() < self._local_until:
            return
        try:
            await self._strategy(rule).clear(rule.item, key)
        except FAILURES as exc:
            self._fall_back(exc)

    def _fall_back(self, exc: BaseException) -> None:
        if time.monotonic() >= self._local_until:
            log.warning("limits: Redis unavailable (%r); counting in this process", exc)
        self._local_until = time.monotonic() + FALLBACK_S
