"""Delivery: where a frame goes — a user's devices, an agent's consoles, all staff, both
sides of a conversation — on every node, through the Redis bus. Each frame is encoded
once, whatever the number of listeners."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from hub.cluster.bus import (
    FANOUT_CHANNEL,
    FANOUT_CHUNK,
    NODES_CHANNEL,
    STAFF_CHANNEL,
    Bus,
    agent_channel,
    user_channel,
)
from hub.cluster.fanout_queue import FanoutQueue
from hub.ws.protocol import encode_msgpack


class Parties(Protocol):
    """Who is in a conversation: a stored row or a dict with `user_id` and `agent_id`."""

    def __getitem__(self, key: str, /) -> Any: ...

    def get(self, key: str, /) -> Any: ...


# The first item of a fan-out chunk its own node delivered before publishing it:
# (ORIGIN, node id). That node skips the chunk when it comes back from Redis; the others
# deliver the rest (a node that does not know the marker finds no listener on it).
ORIGIN = "\x00origin"

LocalDelivery = Callable[[list], None]


def origin_marker(node_id: str) -> bytes:
    """The msgpack bytes of the (ORIGIN, node id) item, as they appear in a chunk."""
    return encode_msgpack([ORIGIN, node_id])


# the nodes' frame `{type, users}`: another writer numbered notifications for these users
NUMBERED = "notifications.numbered"


class Delivery:
    def __init__(self, bus: Bus, *, node_id: str = "", local: LocalDelivery | None = None):
        self.bus = bus
        self._node_id = node_id
        self._local = local  # this node's listeners (hub.cluster.node.Node.deliver_items)
        self._queue = FanoutQueue(bus)
        self._others = FanoutQueue(bus, head=((ORIGIN, node_id),))

    async def to_user(self, user_id: str, frame: dict) -> None:
        await self.bus.publish(user_channel(user_id), encode_msgpack(frame))

    async def to_agent(self, agent_id: str, frame: dict) -> None:
        await self.bus.publish(agent_channel(agent_id), encode_msgpack(frame))

    async def to_nodes(self, frame: dict) -> None:
        """A control frame for every node (hub.cluster.node.Node._on_node_frame)."""
        await self.bus.publish(NODES_CHANNEL, encode_msgpack(frame))

    async def to_staff(self, frame: dict) -> None:
        await self.bus.publish(STAFF_CHANNEL, encode_msgpack(frame))

    async def to_conversation(
        self, conv: Parties, frame: dict, *, include_user: bool = True
    ) -> None:
        """A frame for both sides of a conversation, encoded once."""
        packed = encode_msgpack(frame)
        await self.bus.publish_many(_both_sides(conv, packed, include_user))

    def to_conversation_queued(self, conv: Parties, frame: dict) -> asyncio.Future:
        """A frame for both sides of a conversation, queued at once for the node's next
        fan-out publish (hub.cluster.fanout_queue): frames queued one after the other are
        published in that order, and those queued in the same turn of the loop (a group
        commit's messages) in one signed publish. The future resolves once it is out."""
        return self._queue.add(_both_sides(conv, encode_msgpack(frame), True))

    async def fan_out(self, items: list[tuple]) -> None:
        """Many frames for many channels in one signed publish per chunk (every node
        delivers the ones its listeners want)."""
        for i in range(0, len(items), FANOUT_CHUNK):
            await self.bus.publish(FANOUT_CHANNEL, encode_msgpack(items[i : i + FANOUT_CHUNK]))

    def here_first(self, items: list[tuple]) -> asyncio.Future:
        """Sequenced frames (channel, bytes, type, seq) to this node's own listeners at
        once, and queued for the other nodes (`for_others`); the future resolves once they
        are published."""
        if not self.here(items):
            return self._queue.add(items)
        return self.for_others(items)

    def here(self, items: list[tuple]) -> bool:
        """Sequenced frames to this node's own listeners now, without a loop turn; False
        (nothing done) when this node delivers only what comes back from Redis. Then
        `for_others` publishes the same items for the other nodes."""
        if self._local is None:
            return False
        for i in range(0, len(items), FANOUT_CHUNK):
            self._local(items[i : i + FANOUT_CHUNK])
        return True

    def for_others(self, items: list[tuple]) -> asyncio.Future:
        """What `here` delivered, queued for the other nodes, marked so that this node does
        not deliver it again when its publish comes back; the future resolves once it is
        published. Queued, not awaited: the caller goes on with its next frames while
        Redis answers, and one publish carries what several callers queued meanwhile. A
        stream's frames stay in seq order on every node: the queue publishes in the order
        it was given them, one publish at a time, and each node gets a publisher's chunks
        in the order it sent them; this node's own listeners got them in that order before."""
        return self._others.add(items)


def _both_sides(conv: Parties, packed: bytes, include_user: bool) -> list[tuple[str, bytes]]:
    items = []
    if include_user:
        items.append((user_channel(conv["user_id"]), packed))
    if conv.get("agent_id"):
        items.append((agent_channel(conv["agent_id"]), packed))
    return items
