"""A frame lost between Redis and a node is found by the periodic position check: the
socket is caught up from the store without reconnecting."""

from __future__ import annotations

import uuid

import pytest

from hub.store import agents
from hub.store.messages import MessageWrite
from hub.store.notifications import NotificationWrite
from tests.conftest import start_hub

pytestmark = pytest.mark.usefixtures("clean")


async def test_frames_stored_but_never_published_reach_every_socket(services, db):
    await agents.upsert(db, username="pos-agent", password="pw", name="P", skills=["other"],
                        capacity=2)  # fmt: skip
    server = await start_hub(services, position_check_s=0.5)
    try:
        user_id = f"u-{uuid.uuid4().hex[:8]}"
        agent = await server.client("pos-agent", "agent")
        await agent.request({"type": "agent.status", "status": "online"})
        user = await server.client(user_id)
        cid = (await user.request({"type": "chat.open", "topic": "other", "handoff": "agent"}))[
            "conversation_id"
        ]
        await agent.expect("chat.assigned", conversation_id=cid)
        writer = server.hub.store.writer  # stores without publishing: a frame "lost"
        await writer.submit(NotificationWrite(user_id, "system.notice", "lost", "never published"))
        await writer.submit(MessageWrite(cid, "user", user_id, "U", "lost message"))
        note = await user.expect("notification", timeout=10)
        assert note["title"] == "lost"
        for client in (user, agent):
            msg = await client.expect("message", conversation_id=cid, timeout=10)
            assert msg["text"] == "lost message"
        await user.quiet("notification", 1.5)  # caught up once, not again
        for client in (user, agent):
            await client.close()
    finally:
        await server.stop()
