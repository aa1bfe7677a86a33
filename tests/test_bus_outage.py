"""A Redis outage under traffic: what the catch-up replays and what arrives live meanwhile
reach every client merged, each once, in seq order; agents miss nothing either."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
from hypothesis import given
from hypothesis import strategies as st

from hub.store import agents
from hub.store import notifications as notif_store
from hub.store.notifications import NotificationWrite
from hub.ws.connection import NOTIFICATIONS, in_seq_order
from tests.conftest import start_hub


def _frame(stream: str, seq: int) -> dict:
    if stream == NOTIFICATIONS:
        return {"type": "notification", "seq": seq}
    return {"type": "message", "conversation_id": stream, "seq": seq}


@given(st.lists(st.tuples(st.sampled_from([NOTIFICATIONS, "c1", "c2", None]), st.integers(1, 50))))
def test_held_frames_come_out_in_seq_order_per_stream_others_in_place(items):
    held = [({"type": "typing", "n": i} if s is None else _frame(s, q), b"") for i, (s, q) in enumerate(items)]  # fmt: skip
    out = in_seq_order(held)
    assert sorted(map(repr, out)) == sorted(map(repr, held))
    for i, (frame, _) in enumerate(held):
        if frame["type"] == "typing":
            assert out[i][0] is frame
    for stream in (NOTIFICATIONS, "c1", "c2"):
        seqs = [f["seq"] for f, _ in out if f.get("conversation_id", NOTIFICATIONS) == stream
                and f["type"] != "typing"]  # fmt: skip
        assert seqs == sorted(seqs)


def _event(user_id: str) -> dict:
    return {
        "event_id": f"ev-{uuid.uuid4().hex}", "type": "transaction.status", "user_id": user_id,
        "occurred_at": "2026-11-25T08:00:00+00:00", "transaction_id": f"tx_{uuid.uuid4().hex[:16]}",
        "status": "succeeded", "amount": "1.00", "currency": "CNY", "speed": "instant",
    }  # fmt: skip


async def _until(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def _running(name: str) -> bool:
    return any(t.get_name() == name for t in asyncio.all_tasks())


async def _send(client, cid: str, n: int) -> int:
    ack = await client.request(
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": f"m{n}", "text": f"m{n}"}
    )
    assert ack["type"] == "ack", ack
    return ack["seq"]


async def test_redis_restart_under_traffic_keeps_every_stream_whole_and_in_order(isolated):
    db = await asyncpg.connect(isolated.dsn)
    try:
        await agents.upsert(db, username="outage-agent", password="pw", name="O",
                            skills=["other"], capacity=3)  # fmt: skip
    finally:
        await db.close()
    server = await start_hub(isolated)
    clients = []
    try:
        user_id = f"u-{uuid.uuid4().hex[:8]}"
        agent = await server.client("outage-agent", "agent")
        await agent.request({"type": "agent.status", "status": "online"})
        user = await server.client(user_id)
        watcher = await server.client(user_id)  # the user's other device: only listens
        clients = [agent, user, watcher]
        opened = await user.request({"type": "chat.open", "topic": "other", "handoff": "agent"})
        cid = opened["conversation_id"]
        await agent.expect("chat.assigned", conversation_id=cid)
        counts = {"sent": 0, "events": 0}
        running = True

        async def chat_traffic() -> None:
            while running:
                counts["sent"] += 1
                await _send(user, cid, counts["sent"])
                await asyncio.sleep(0.05)

        async def event_traffic() -> None:
            while running:
                await server.hub.notifier.handle([_event(user_id) for _ in range(2)])
                counts["events"] += 2
                await asyncio.sleep(0.005)

        traffic = [asyncio.create_task(chat_traffic()), asyncio.create_task(event_traffic())]
        await asyncio.sleep(0.5)
        bus = server.node.bus
        isolated.redis.stop()
        await _until(lambda: not bus.healthy, 15)
        await asyncio.sleep(1.0)  # stored, not pushed
        isolated.redis.start()
        await _until(lambda: bus.healthy, 20)
        await asyncio.sleep(1.5)  # live again, racing the catch-up
        running = False
        await asyncio.gather(*traffic)
        sent, events = counts["sent"], counts["events"]

        async def seqs(client, kind: str) -> list[int]:
            return [f["seq"] for f in client.unread(kind)
                    if kind == "notification" or f["conversation_id"] == cid]  # fmt: skip

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if (len(set(await seqs(agent, "message"))) >= sent
                    and len(set(await seqs(watcher, "message"))) >= sent
                    and len(set(await seqs(watcher, "notification"))) >= events):  # fmt: skip
                break
            await asyncio.sleep(0.1)
        assert await seqs(agent, "message") == list(range(1, sent + 1))
        assert await seqs(watcher, "message") == list(range(1, sent + 1))
        assert await seqs(watcher, "notification") == list(range(1, events + 1))
    finally:
        for c in clients:
            await c.close()
        await server.stop()


async def test_a_bus_catch_up_during_a_resume_sends_nothing_twice(isolated, monkeypatch):
    """A client resuming on a node whose bus is catching up after an outage (the chaos
    test found it: a node started during Redis trouble) got its whole conversation again:
    the catch-up ran before the resume had set the connection's positions."""
    server = await start_hub(isolated)
    clients = []
    try:
        user_id = f"u-{uuid.uuid4().hex[:8]}"
        first = await server.client(user_id)
        clients.append(first)
        cid = (await first.request({"type": "chat.open", "topic": "other", "handoff": "agent"}))[
            "conversation_id"
        ]
        for n in range(3):
            sent = await _send(first, cid, n)
        await first.expect("message", seq=sent)  # the echo may follow the ack
        last = max(f["seq"] for f in first.frames if f.get("type") == "message")
        sessions = server.hub.sessions
        replay, gate = sessions.replay, asyncio.Event()

        async def slow_replay(db, conn, hello, state):
            await gate.wait()
            await replay(db, conn, hello, state)

        monkeypatch.setattr(sessions, "replay", slow_replay)
        second = await server.client(user_id, resume={"conversations": {cid: last}})
        clients.append(second)
        await sessions.catch_up_all()  # the bus came back while `second` is resuming
        gate.set()
        await second.expect("session.resync")
        await second.quiet("message", 1.0)  # it has every message already
        await _send(first, cid, 9)
        got = await second.expect("message", conversation_id=cid)
        assert got["seq"] == last + 1
    finally:
        monkeypatch.undo()
        for c in clients:
            await c.close()
        await server.stop()


async def test_a_burst_of_publishes_wider_than_the_pool_loses_none(hub, services):
    """More publishes at once than the node's Redis client has connections (a group commit
    of many messages, each published by its sender's task): each waits for a connection,
    none is refused (a refused one was a frame lost on its way to the other node)."""
    import redis.asyncio as aioredis

    from hub.cluster import bus as bus_module

    bus = hub.hub.node.bus
    channel = f"burst-{uuid.uuid4().hex[:8]}"
    listener = aioredis.from_url(services.redis_url)
    sub = listener.pubsub()
    await sub.subscribe(channel)
    await sub.get_message(timeout=5)  # the subscription's confirmation
    n = bus_module.POOL_SIZE * 3
    try:
        await asyncio.gather(*(bus.publish_many([(channel, b"x")]) for _ in range(n)))
        got = 0
        while got < n:
            message = await sub.get_message(ignore_subscribe_messages=True, timeout=10)
            if message is None:
                break
            got += 1
        assert got == n
    finally:
        await sub.aclose()
        await listener.aclose()


async def test_a_gap_repair_overtaken_by_a_bus_outage_loses_nothing(isolated, monkeypatch):
    """A socket held a notification ahead of a gap and asked the store for the missing
    one; Redis went away while the store answered, so the answer was held with the live
    frames until the catch-up. The repair then sent what waited ahead of the gap anyway:
    the held frame that filled the gap came after it and was dropped as seen: one frame
    of one device lost, the rest in order, as the chaos test once showed (seed 7)."""
    server = await start_hub(isolated, position_check_s=0)
    user = None
    try:
        user_id = f"u-{uuid.uuid4().hex[:8]}"
        user = await server.client(user_id)
        (conn,) = server.node.registry.of_user(user_id)
        await _until(lambda: conn.held is None, 10)  # registered and replayed
        writer = server.hub.store.writer  # stored, never published: 1 is the late one
        for title in ("first", "second"):
            await writer.submit(NotificationWrite(user_id, "system.notice", title, "t"))
        db = await asyncpg.connect(isolated.dsn)
        try:
            second = (await notif_store.after(db, user_id, 1, 10))[0]
        finally:
            await db.close()
        sessions = server.hub.sessions
        catch_up, asked, gate = sessions._catch_up, asyncio.Event(), asyncio.Event()

        async def answering_late(c):  # the store answers the repair after Redis went away
            asked.set()
            await gate.wait()
            await catch_up(c)

        monkeypatch.setattr(sessions, "_catch_up", answering_late)
        conn.push(second, conn.encode(second))  # 2 arrives live; 1 is on its way
        await asyncio.wait_for(asked.wait(), 20)  # the gap's wait ran out: the repair asks
        monkeypatch.undo()
        bus = server.node.bus
        isolated.redis.stop()
        await _until(lambda: conn.held is not None, 15)  # the bus lost Redis: frames wait
        gate.set()
        await _until(lambda: not _running("gap-repair"), 15)  # the repair has answered
        isolated.redis.start()
        await _until(lambda: bus.healthy, 20)
        await user.expect("session.resync", timeout=20)  # the catch-up is done
        assert [f["seq"] for f in user.unread("notification")] == [1, 2]
    finally:
        monkeypatch.undo()
        if user is not None:
            await user.close()
        await server.stop()
