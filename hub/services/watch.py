"""Supervisors following a chat live, read-only (`chat.watch`): the watching socket gets
every frame of that conversation that reaches its customer's devices (messages of both
sides, typing, read marks, the end) as `watch.event {conversation_id, frame}`, after a
`chat.watching` snapshot of the chat so far. A watcher never writes: it is not the chat's
agent, and the chat's customer and agent are not told (the audit log is: `chat.watch`).

The watch lives on the node that holds the socket (hub.ws.registry), subscribed to the
customer's bus channel; it ends with `watch: false` or with the socket.
"""

from __future__ import annotations

from typing import Any

from hub.attachments.links import AttachmentLinks
from hub.cluster.bus import user_channel
from hub.cluster.node import Node
from hub.store import Store, notes
from hub.store import agents as agent_store
from hub.store import conversations as conv_store
from hub.store import feedback as feedback_store
from hub.store import users as user_store
from hub.ws.connection import Connection
from supporthub_core.errors import NotFound

HISTORY_LIMIT = 500


class Watch:
    def __init__(self, store: Store, node: Node, links: AttachmentLinks) -> None:
        self.store = store
        self.node = node
        self.links = links

    async def start(self, conn: Connection, cid: str) -> dict[str, Any]:
        """Follow `cid` on `conn`; the snapshot to send it. Subscribed before the history
        is read, so nothing falls between (a message in both comes twice, same seq)."""
        async with self.store.acquire() as db:
            conv = await conv_store.get(db, cid)
        if conv is None:
            raise NotFound("no such conversation")
        channel = user_channel(conv["user_id"])
        if self.node.registry.watch(conn, channel, cid):
            await self.node.bus.subscribe(channel)
        async with self.store.acquire() as db:
            conv = await conv_store.get(db, cid)
            assert conv is not None
            user = await user_store.brief(db, conv["user_id"])
            agent = await agent_store.brief(db, conv["agent_id"]) if conv["agent_id"] else None
            history = self.links.frames(await conv_store.messages_after(db, cid, 0, HISTORY_LIMIT))
            conv_notes = await notes.listing(db, cid)
            tagged = await feedback_store.tagged_in(db, cid)
        return {
            "type": "chat.watching",
            "conversation_id": cid,
            "status": conv["status"],
            "topic": conv["topic"],
            "priority": conv["priority"],
            "user": {
                "id": conv["user_id"],
                "name": (user["name"] if user else None) or conv["user_id"],
            },
            "agent": None if agent is None else {"id": agent["id"], "name": agent["name"]},
            "history": history,
            "notes": conv_notes,
            "feedback": tagged,
        }

    async def stop(self, conn: Connection, cid: str) -> None:
        async with self.store.acquire() as db:
            conv = await conv_store.get(db, cid)
        if conv is None:
            raise NotFound("no such conversation")
        channel = user_channel(conv["user_id"])
        if self.node.registry.unwatch(conn, channel, cid):
            await self.node.bus.unsubscribe(channel)
