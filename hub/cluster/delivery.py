"""Delivery: where a frame goes — a user's devices, an agent's consoles, all staff, both
sides of a conversation — on every node, through the Redis bus. Each frame is encoded
once, whatever the number of listeners."""

from __future__ import annotations

from typing import Any, Protocol

from hub.cluster.bus import (
    FANOUT_CHANNEL,
    FANOUT_CHUNK,
    STAFF_CHANNEL,
    Bus,
    agent_channel,
    user_channel,
)
from hub.ws.protocol import encode_msgpack


class Parties(Protocol):
    """Who is in a conversation: a stored row or a dict with `user_id` and `agent_id`."""

    def __getitem__(self, key: str, /) -> Any: ...

    def get(self, key: str, /) -> Any: ...


class Delivery:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def to_user(self, user_id: str, frame: dict) -> None:
        await self.bus.publish(user_channel(user_id), encode_msgpack(frame))

    async def to_agent(self, agent_id: str, frame: dict) -> None:
        await self.bus.publish(agent_channel(agent_id), encode_msgpack(frame))

    async def to_staff(self, frame: dict) -> None:
        await self.bus.publish(STAFF_CHANNEL, encode_msgpack(frame))

    async def to_conversation(
        self, conv: Parties, frame: dict, *, include_user: bool = True
    ) -> None:
        """A frame for both sides of a conversation, encoded once."""
        packed = encode_msgpack(frame)
        items = []
        if include_user:
            items.append((user_channel(conv["user_id"]), packed))
        if conv.get("agent_id"):
            items.append((agent_channel(conv["agent_id"]), packed))
        await self.bus.publish_many(items)

    async def fan_out(self, items: list[tuple]) -> None:
        """Many frames for many channels in one signed publish per chunk (every node
        delivers the ones its listeners want)."""
        for i in range(0, len(items), FANOUT_CHUNK):
            await self.bus.publish(FANOUT_CHANNEL, encode_msgpack(items[i : i + FANOUT_CHUNK]))
