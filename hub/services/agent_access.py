"""Disabling an agent: it is cut off at once on every node and stays out until enabled.

`set_disabled` is what a supervisor (REST) and an operator (`supporthub agent disable`)
both run, from any process that shares the store and Redis: in one transaction the
agent is marked disabled and `offline`, its assigned chats go back to the queue and the
audit entry is written; then one signed control frame on the nodes' channel
(`agent.disabled`) tells every hub node to close that agent's sockets (4001) at once.

Each node (`AgentAccess`) also keeps the set of disabled agents, so that a token issued
before the agent was disabled is refused by REST as well, and re-reads it every few
seconds: a node that missed the control frame (Redis away at that moment) still closes
the agent's sockets within `SWEEP_S`. A hello and an `auth.refresh` read the flag from
the store (hub.services.sessions), and the login refuses it (hub.http.api).
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from redis.exceptions import RedisError

from hub.background import Background
from hub.cluster.bus import NODES_CHANNEL, agent_channel, seal
from hub.cluster.node import Node
from hub.services.chat import Chat
from hub.store import Store
from hub.store import agents as agent_store
from hub.store import conversations as conv_store
from hub.ws.protocol import encode_msgpack, error_frame
from supporthub_core.audit import AuditEntry, append
from supporthub_core.auth import Claims
from supporthub_core.db import acquire
from supporthub_core.errors import CloseCode, NotFound
from supporthub_core.redis_client import RedisClient, publish

log = logging.getLogger(__name__)

DISABLED = "agent.disabled"  # control frames on NODES_CHANNEL
ENABLED = "agent.enabled"
SWEEP_S = 5.0
DISABLED_MESSAGE = "this agent is disabled"


async def set_disabled(
    pool: asyncpg.Pool,
    redis: RedisClient,
    secret: str,
    agent_id: str,
    disabled: bool,
    actor: AuditEntry,
    reason: str | None = None,
) -> dict:
    """Disable or enable `agent_id` (NotFound if there is no such agent) and tell every
    node. `actor` is the audit entry's actor (its action and details are filled in here).
    Returns `{agent_id, disabled, requeued}`: the chats put back in the queue."""
    action = "agent.disable" if disabled else "agent.enable"
    async with acquire(pool) as db, db.transaction():
        row = await agent_store.set_disabled(db, agent_id, disabled)
        if row is None:
            raise NotFound("no such agent")
        requeued = []
        if disabled:
            requeued = [r["id"] for r in await conv_store.release_agent_chats(db, agent_id)]
        details = {"agent_id": agent_id, "requeued": requeued}
        if reason:
            details["reason"] = reason
        await append(db, AuditEntry(actor.actor_role, actor.actor_id, action, details=details,
                                    address=actor.address))  # fmt: skip
    frame = {"type": DISABLED if disabled else ENABLED, "agent_id": agent_id, "requeued": requeued}
    packed = encode_msgpack(frame)
    try:
        await publish(redis, NODES_CHANNEL, seal(secret.encode(), NODES_CHANNEL, packed))
    except (OSError, RedisError) as exc:  # stored: every node finds out within SWEEP_S
        log.warning("%s %s stored, the control frame was not sent: %s", action, agent_id, exc)
    return {"agent_id": agent_id, "disabled": disabled, "requeued": requeued}


class AgentAccess:
    """This node's side: the disabled agents it refuses, and closing their sockets."""

    def __init__(self, store: Store, node: Node, chat: Chat, secret: str) -> None:
        self.store = store
        self.node = node
        self.chat = chat
        self.secret = secret
        self.disabled: frozenset[str] = frozenset()

    async def start(self, tasks: Background) -> None:
        self.node.when_agent_access(self.on_control)
        try:
            await self.sweep()
        except Exception as exc:  # the store is down: the sweep retries
            log.warning("could not read the disabled agents: %s", exc)
        tasks.spawn(self._sweeping(), "disabled-agents")

    def refuses(self, claims: Claims) -> bool:
        """True for a staff token of a disabled agent (the REST edge asks)."""
        return claims.is_staff and claims.sub in self.disabled

    async def disable(self, actor: AuditEntry, agent_id: str, reason: str | None = None) -> dict:
        return await set_disabled(self.store.pool, self.node.bus.redis, self.secret, agent_id,
                                  True, actor, reason)  # fmt: skip

    async def enable(self, actor: AuditEntry, agent_id: str, reason: str | None = None) -> dict:
        return await set_disabled(self.store.pool, self.node.bus.redis, self.secret, agent_id,
                                  False, actor, reason)  # fmt: skip

    # --- what every node does -------------------------------------------------------------

    def on_control(self, frame: dict) -> None:
        agent_id = frame.get("agent_id")
        if not isinstance(agent_id, str):
            return
        if frame.get("type") == ENABLED:
            self.disabled = self.disabled - {agent_id}
            return
        self.disabled = self.disabled | {agent_id}
        self.cut_off(agent_id)
        requeued = [c for c in frame.get("requeued") or () if isinstance(c, str)]
        if self.node.ring.owns(agent_id):  # one node tells the customers and routes
            self.node.tasks.spawn(self._requeued(requeued), "disabled-agent-chats")

    def cut_off(self, agent_id: str) -> int:
        """Close every local socket of the agent with 4001; how many there were."""
        conns = list(self.node.registry.listeners(agent_channel(agent_id)))
        for conn in conns:
            conn.send_frame(error_frame("unauthorized", DISABLED_MESSAGE))
            conn.close(CloseCode.UNAUTHORIZED, "agent disabled")
        if conns:
            log.info("agent %s disabled: %d socket(s) closed", agent_id, len(conns))
        return len(conns)

    async def sweep(self) -> None:
        """Re-read the disabled agents; close sockets of any this node missed."""
        async with self.store.acquire() as db:
            disabled = frozenset(await agent_store.disabled_ids(db))
        self.disabled = disabled
        for agent_id in disabled:
            self.cut_off(agent_id)

    async def _sweeping(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            try:
                await self.sweep()
            except Exception as exc:
                log.warning("disabled agents sweep failed: %s", exc)

    async def _requeued(self, conversation_ids: list[str]) -> None:
        for cid in conversation_ids:
            async with self.store.acquire() as db:
                conv = await conv_store.get(db, cid)
            if conv is not None:
                await self.chat.system_message(
                    conv, "requeued", {"reason": "disabled", "topic": conv["topic"]}
                )
        await self.chat.route()
