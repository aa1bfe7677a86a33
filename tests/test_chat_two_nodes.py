"""Chat messages between two nodes: they travel in signed fan-out publishes (one per group
commit), every listener of either node gets each once and in seq order, and a forged
fan-out chunk is dropped."""

from __future__ import annotations

import asyncio
import hmac
import uuid

import msgpack
import pytest
import redis.asyncio as aioredis

from hub import metrics
from hub.cluster.bus import FANOUT_CHANNEL, MAC_LEN, agent_channel, user_channel
from hub.cluster.replay import STAMP
from hub.store import agents
from tests.conftest import SECRET, start_hub

pytestmark = pytest.mark.usefixtures("clean")


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def online_agent(server, db, username: str, *, supervisor: bool = False):
    await agents.upsert(db, username=username, password="pw-" + username, name=username.title(),
                        skills=["other"], capacity=2, supervisor=supervisor)  # fmt: skip
    client = await server.client(username, "supervisor" if supervisor else "agent")
    await client.request({"type": "agent.status", "status": "online"})
    return client


def opened(channel: str, data: bytes) -> bytes | None:
    """The payload of a bus envelope when it is sealed with the hub's secret for `channel`."""
    body, mac = data[:-MAC_LEN], data[-MAC_LEN:]
    good = hmac.digest(SECRET.encode(), channel.encode() + body, "sha256")[:MAC_LEN]
    return body[: -STAMP.size] if hmac.compare_digest(mac, good) else None


async def heard(r: aioredis.Redis, channels: list[str]) -> tuple[aioredis.client.PubSub, list]:
    """A raw subscriber on `channels` and the (channel, data) pairs it hears."""
    sub = r.pubsub()
    await sub.subscribe(*channels)
    got: list = []

    async def listen() -> None:
        async for m in sub.listen():
            if m["type"] == "message":
                got.append((m["channel"].decode(), m["data"]))

    task = asyncio.create_task(listen())
    sub.task = task  # type: ignore[attr-defined]
    return sub, got


async def test_pipelined_sends_both_ways_reach_every_listener_of_both_nodes_in_order(services, db):
    """User on node A (and a second device on B), agent on B, a supervisor watching on A;
    both sides send bursts of pipelined messages at once. Each listener gets every
    message once, in seq order, live (no gap fetched from the store), and the messages
    cross Redis in signed fan-out chunks, not on the user's and agent's own channels."""
    a = await start_hub(services)
    b = await start_hub(services)
    r = aioredis.from_url(services.redis_url)
    user_id = uid()
    sub, got = await heard(r, [FANOUT_CHANNEL, user_channel(user_id), agent_channel("twonode")])
    try:
        agent = await online_agent(b, db, "twonode")
        boss = await online_agent(a, db, "twoboss", supervisor=True)
        user = await a.client(user_id)
        device2 = await b.client(user_id)
        cid = (await user.request({"type": "chat.open", "topic": "other", "handoff": "agent"}))[
            "conversation_id"
        ]
        await agent.expect("chat.assigned", conversation_id=cid)
        await boss.request({"type": "chat.watch", "conversation_id": cid})
        await boss.expect("chat.watching", conversation_id=cid)
        gaps = metrics.STREAM_GAPS.labels("fetched")._value.get()
        n_user, n_agent = 40, 25
        for k in range(max(n_user, n_agent)):
            if k < n_user:
                await user.send({"type": "chat.send", "id": f"u{k}", "conversation_id": cid,
                                 "client_msg_id": f"u{k}", "text": f"user #{k}"})  # fmt: skip
            if k < n_agent:
                await agent.send({"type": "chat.send", "id": f"a{k}", "conversation_id": cid,
                                  "client_msg_id": f"a{k}", "text": f"agent #{k}"})  # fmt: skip
        n = n_user + n_agent
        for who in (agent, user, device2):
            msgs = [await who.expect("message", conversation_id=cid, timeout=20) for _ in range(n)]
            seqs = [m["seq"] for m in msgs]
            assert seqs == sorted(seqs) and len(set(seqs)) == n
            texts = [m["text"] for m in msgs]
            assert [t for t in texts if t.startswith("user")] == [
                f"user #{k}" for k in range(n_user)
            ]
            assert [t for t in texts if t.startswith("agent")] == [
                f"agent #{k}" for k in range(n_agent)
            ]
        watched = [await boss.expect("watch.event", conversation_id=cid, timeout=20)
                   for _ in range(n)]  # fmt: skip
        assert len({w["frame"]["seq"] for w in watched}) == n
        for who in (agent, user, device2):
            await who.quiet("message", 0.3)  # none twice
        assert metrics.STREAM_GAPS.labels("fetched")._value.get() == gaps

        # on Redis: every message in a fan-out chunk signed for that channel
        carried = []
        for channel, data in got:
            payload = opened(channel, data)
            assert payload is not None  # sealed for the channel it came on
            if channel != FANOUT_CHANNEL:
                assert msgpack.unpackb(payload).get("type") != "message", (
                    "a chat message was published on a user's or agent's own channel"
                )
                continue
            for item in msgpack.unpackb(payload):
                if item[0] == agent_channel("twonode"):
                    frame = msgpack.unpackb(item[1])
                    if frame.get("type") == "message" and frame["conversation_id"] == cid:
                        carried.append(frame["seq"])
        assert len(set(carried)) >= n
        for c in (agent, boss, user, device2):
            await c.close()
    finally:
        sub.task.cancel()  # type: ignore[attr-defined]
        await sub.aclose()
        await r.aclose()
        await a.stop()
        await b.stop()


async def test_a_forged_fan_out_chunk_carrying_a_message_is_dropped(hub, services, db):
    agent = await online_agent(hub, db, "forged")
    fake = {"type": "message", "conversation_id": "c-x", "seq": 1, "message_id": "m",
            "sender": {"role": "user", "id": "u", "name": "u"}, "text": "pay here", "ts": "now"}  # fmt: skip
    chunk = msgpack.packb([[agent_channel("forged"), msgpack.packb(fake)]])
    r = aioredis.from_url(services.redis_url)
    await r.publish(FANOUT_CHANNEL, chunk + b"0" * 16)  # not signed
    await r.publish(FANOUT_CHANNEL, hub.node.bus.seal(agent_channel("forged"), chunk))
    await r.aclose()
    await agent.quiet("message", 0.8)
    await agent.close()
