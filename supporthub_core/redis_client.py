"""One Redis client factory for the hub and payments: a single Redis, or a Redis Cluster
(Redis 7 or later) when the URL's scheme is `redis+cluster://` (`rediss+cluster://` with
TLS) or `HUB_REDIS_CLUSTER=1`.

On a cluster, pub/sub is sharded: frames go out with SPUBLISH and are read with
SSUBSCRIBE, so each frame crosses only the shard that owns its channel's slot instead of
being broadcast over the whole cluster bus. `publish` picks the command."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster

#: A single Redis or a Redis Cluster: the commands the hub and payments use are on both.
RedisClient = aioredis.Redis | RedisCluster

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def cluster_url(url: str, cluster: bool = False) -> tuple[bool, str]:
    """(whether `url` names a cluster, the URL redis-py understands)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in _CLUSTER_SCHEMES:
        return True, f"{_CLUSTER_SCHEMES[scheme]}://{rest}"
    return cluster, url


def client(url: str, *, cluster: bool = False, **options: Any) -> RedisClient:
    """A client for `url`: `RedisCluster` (any node's address; it discovers the rest)
    or `Redis`."""
    is_cluster, url = cluster_url(url, cluster)
    if is_cluster:
        options.pop("health_check_interval", None)
        return RedisCluster.from_url(url, **options)
    return aioredis.from_url(url, **options)


def sharded(redis: Any) -> bool:
    """Whether pub/sub through `redis` (a client or a pipeline) is sharded."""
    return isinstance(redis, RedisCluster | ClusterPipeline)


def publish(redis: Any, channel: str, data: bytes) -> Any:
    """PUBLISH, or SPUBLISH on a cluster; on a pipeline it queues the command."""
    if sharded(redis):
        return redis.spublish(channel, data)
    return redis.publish(channel, data)
