"""Agent presence: open console connections per agent and node, with a heartbeat, so a
node that dies stops counting once its rows go stale."""

from __future__ import annotations

import asyncpg


async def presence_add(db: asyncpg.Connection, agent_id: str, node_id: str, delta: int) -> None:
    await db.execute(
        "insert into agent_presence (agent_id, node_id, connections) select $1, $2, greatest($3, 0)"
        " where exists (select 1 from agents where id = $1)"
        " on conflict (agent_id, node_id) do update set"
        " connections = greatest(agent_presence.connections + $3, 0), seen_at = now()",
        agent_id,
        node_id,
        delta,
    )


async def beat(db: asyncpg.Connection, node_id: str) -> None:
    await db.execute("update agent_presence set seen_at = now() where node_id = $1", node_id)


async def forget_node(db: asyncpg.Connection, node_id: str) -> None:
    await db.execute("delete from agent_presence where node_id = $1", node_id)
