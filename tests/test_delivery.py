"""Delivery guarantees over real servers: notifications from payment events, resume,
duplicates, slow consumers, two nodes, Redis restarts, broadcasts, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import msgpack
import pytest
import redis.asyncio as aioredis

from payments import outbox
from tests.client import MSGPACK, HubClient
from tests.conftest import ROOT, SECRET, free_port, reap, start_hub
from tests.events import publish_raw, publish_signed, signed, tx_event

pytestmark = pytest.mark.usefixtures("clean")


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def publish_events(services, events: list[dict]) -> None:
    await publish_signed(services.redis_url, events)


async def test_payment_event_reaches_every_device_with_per_user_seq(hub, services, db):
    user_id = uid()
    phone = await hub.client(user_id)
    laptop = await hub.client(user_id, proto=MSGPACK)
    await db.execute("update users set lang = 'en' where id = $1", user_id)
    events = [tx_event(user_id, "processing", speed="standard", expected_by="2026-11-25T10:00:00+00:00"),
              tx_event(user_id, "failed")]  # fmt: skip
    await publish_events(services, events)
    for device in (phone, laptop):
        first = await device.expect("notification", seq=1)
        second = await device.expect("notification", seq=2)
        assert first["kind"] == "transaction.status"
        assert first["data"]["status"] == "processing" and first["data"]["expected_by"]
        assert first["title"] == "Transfer processing"
        assert second["data"]["reason"] == "insufficient_balance"
        assert "insufficient balance" in second["body"]
        assert {"transaction_id", "amount", "currency", "speed"} <= set(second["data"])
    for c in (phone, laptop):
        await c.close()


async def test_same_event_twice_is_stored_and_shown_once(hub, services, db):
    user_id = uid()
    client = await hub.client(user_id)
    event = tx_event(user_id)
    await publish_events(services, [event, event])
    await client.expect("notification", seq=1)
    await publish_events(services, [event])
    await client.quiet("notification", 0.6)
    assert await db.fetchval("select count(*) from notifications where user_id = $1", user_id) == 1
    await client.close()


async def test_malformed_events_are_dropped_not_fatal(hub, services):
    user_id = uid()
    client = await hub.client(user_id)
    await publish_raw(
        services.redis_url,
        [b"\xc1garbage", signed({"type": "transaction.status"}), signed({"user_id": user_id})],
    )
    await publish_events(services, [tx_event(user_id)])
    assert (await client.expect("notification"))["seq"] == 1
    await client.close()


async def test_resume_replays_missed_notifications_nothing_lost_or_doubled(hub, services):
    user_id = uid()
    client = await hub.client(user_id)
    await publish_events(services, [tx_event(user_id) for _ in range(3)])
    for seq in (1, 2, 3):
        await client.expect("notification", seq=seq)
    await client.close()
    await publish_events(services, [tx_event(user_id) for _ in range(4)])  # while offline
    await asyncio.sleep(0.5)
    back = await hub.client(user_id, resume={"notifications_after": 3})
    assert back.welcome["notifications_seq"] == 7
    # events arriving during the replay are merged without gaps or doubles
    await publish_events(services, [tx_event(user_id) for _ in range(2)])
    seqs = [(await back.expect("notification"))["seq"] for _ in range(6)]
    assert seqs == [4, 5, 6, 7, 8, 9]
    await back.quiet("notification", 0.5)
    phone = await hub.client(user_id)
    ack = await back.request({"type": "notifications.ack", "up_to": 9})
    assert ack["up_to"] == 9
    # seen on one device, seen on all: the phone clears its unread count too
    assert (await phone.expect("notifications.acked"))["up_to"] == 9
    assert phone.welcome["notifications_acked"] == 0
    for c in (back, phone):
        await c.close()


async def test_unknown_user_events_are_stored_and_delivered_later(hub, services):
    user_id = uid()  # never connected
    await publish_events(services, [tx_event(user_id)])
    await asyncio.sleep(0.5)
    client = await hub.client(user_id, resume={"notifications_after": 0})
    got = await client.expect("notification")
    assert got["seq"] == 1
    await client.close()


def stalled_client(port: int, token: str) -> socket.socket:
    """A WebSocket client that says hello, then never reads again (a phone in a tunnel)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert b" 101 " in head
    payload = json.dumps({"type": "hello", "token": token}).encode()
    assert 126 <= len(payload) < 65536
    frame = b"\x81" + bytes([0x80 | 126]) + len(payload).to_bytes(2, "big") + b"\0\0\0\0" + payload
    sock.sendall(frame)  # masked with a zero key: the payload is unchanged
    return sock


async def test_slow_consumer_is_disconnected_and_others_are_not_slowed(services):
    server = await start_hub(services, send_queue_frames=20)
    try:
        slow_id, fast_id = uid(), uid()
        port = int(server.url.rsplit(":", 1)[1])
        slow = await asyncio.to_thread(stalled_client, port, server.token(slow_id))
        fast = await server.client(fast_id)
        big = "x" * 20_000
        await publish_events(services, [tx_event(slow_id, memo=big) for _ in range(400)])
        await publish_events(services, [tx_event(fast_id)])
        got = await fast.expect("notification", timeout=15)
        assert got["seq"] == 1
        deadline = time.monotonic() + 20
        while server.node.registry.of_user(slow_id) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not server.node.registry.of_user(slow_id), "the slow client is still registered"
        slow.close()
        async with server.http() as http:
            metrics = (await http.get("/metrics")).text
        assert (
            "supporthub_queue_drops_total 1.0" in metrics
            or "supporthub_queue_drops_total 2.0" in metrics
        )
        await fast.close()
    finally:
        await server.stop()


async def test_a_slow_consumer_is_cut_off_by_the_bytes_it_leaves_unsent(services):
    """A client that stops reading is cut off once the bytes waiting for it (our queue and
    the transport's buffer) pass `max_buffered_bytes`, long before the frame count would,
    while another client's deliveries go on."""
    limit = 256 * 1024
    server = await start_hub(services, send_queue_frames=100_000, max_buffered_bytes=limit)
    try:
        slow_id, fast_id = uid(), uid()
        port = int(server.url.rsplit(":", 1)[1])
        slow = await asyncio.to_thread(stalled_client, port, server.token(slow_id))
        fast = await server.client(fast_id)
        before = await _cut_off_stats(server)
        big = "x" * 20_000
        await publish_events(services, [tx_event(slow_id, memo=big) for _ in range(400)])
        await publish_events(services, [tx_event(fast_id) for _ in range(3)])
        for seq in (1, 2, 3):
            assert (await fast.expect("notification", seq=seq, timeout=15))["seq"] == seq
        deadline = time.monotonic() + 20
        while server.node.registry.of_user(slow_id) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not server.node.registry.of_user(slow_id), "the slow client is still registered"
        slow.close()
        after = await _cut_off_stats(server)
        assert after["count"] == before["count"] + 1
        # at most the limit and the one frame that crossed it were waiting when it was cut
        assert after["sum"] - before["sum"] <= limit + 30_000
        # 8 MB were meant for it: it was cut off long before those were all buffered
        await publish_events(services, [tx_event(fast_id)])
        assert (await fast.expect("notification", seq=4, timeout=15))["seq"] == 4
        await fast.close()
    finally:
        await server.stop()


async def _cut_off_stats(server) -> dict:
    async with server.http() as http:
        text = (await http.get("/metrics")).text
    stats = {"count": 0.0, "sum": 0.0}
    for line in text.splitlines():
        for name in stats:
            if line.startswith(f"supporthub_slow_consumer_buffered_bytes_{name} "):
                stats[name] = float(line.split()[-1])
    return stats


async def test_two_nodes_deliver_to_each_other(services):
    a = await start_hub(services)
    b = await start_hub(services)
    try:
        user_id = uid()
        on_a = await a.client(user_id)
        on_b = await b.client(user_id)
        await publish_events(services, [tx_event(user_id)])
        for c in (on_a, on_b):
            assert (await c.expect("notification"))["seq"] == 1
        # a broadcast accepted on one node reaches users connected to the other
        async with a.http(a.token("ops", "service")) as http:
            r = await http.post(
                "/api/broadcasts", json={"title": "维护通知", "body": "今晚 2:00 维护"}
            )
            assert r.status_code == 202
        for c in (on_a, on_b):
            n = await c.expect("notification", kind="system.notice")
            assert n["title"] == "维护通知" and n["seq"] == 2
        for c in (on_a, on_b):
            await c.close()
    finally:
        await a.stop()
        await b.stop()


async def test_broadcast_reaches_users_who_connect_later(hub):
    known = uid()
    first = await hub.client(known)
    await first.close()
    async with hub.http(hub.token("sup", "supervisor")) as http:
        r = await http.post(
            "/api/broadcasts", json={"title": "Notice", "body": "Hello all", "data": {"k": 1}}
        )
        assert r.status_code == 202
    async with hub.http(hub.token("someone")) as http:
        assert (
            await http.post("/api/broadcasts", json={"title": "x", "body": "y"})
        ).status_code == 403
    async with hub.http(hub.token("sup", "supervisor")) as http:
        assert (await http.post("/api/broadcasts", json={"title": ""})).status_code == 422
    for user_id in (known, uid()):
        client = await hub.client(user_id, resume={"notifications_after": 0})
        n = await client.expect("notification")
        assert n["kind"] == "system.notice" and n["data"] == {"k": 1}
        await client.close()


async def test_redis_restart_bus_reconnects_and_delivery_resumes(services):
    server = await start_hub(services)
    try:
        user_id = uid()
        client = await server.client(user_id)
        services.redis.stop()
        try:
            deadline = time.monotonic() + 15
            while server.node.bus.healthy and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            async with server.http() as http:
                assert (await http.get("/readyz")).status_code == 503
        finally:
            services.redis.start()
        deadline = time.monotonic() + 20
        while not server.node.bus.healthy and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert server.node.bus.healthy
        await publish_events(services, [tx_event(user_id)])
        assert (await client.expect("notification", timeout=15))["seq"] == 1
        async with server.http() as http:
            assert (await http.get("/readyz")).status_code == 200
        await client.close()
    finally:
        await server.stop()


def _serve(port: int, services, extra_env: dict | None = None) -> subprocess.Popen:
    env = {
        **os.environ,
        "HUB_DATABASE_URL": services.dsn,
        "HUB_REDIS_URL": services.redis_url,
        "HUB_SECRET": SECRET,
        "HUB_PORT": str(port),
        "HUB_LOG_FORMAT": "json",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


async def _wait_ready(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("serve did not become ready")


async def test_two_serve_processes_chat_across_nodes_and_sigterm_closes_1001(services, db):
    from hub.store import agents
    from supporthub_core.auth import issue_token

    await agents.upsert(db, username="nodeagent", password="pw", name="Node Agent",
                        skills=["payment"], capacity=2)  # fmt: skip
    ports = [free_port(), free_port()]
    procs = [_serve(p, services) for p in ports]
    try:
        for port, proc in zip(ports, procs, strict=True):
            await _wait_ready(port, proc)
        user_id = uid()
        user = await HubClient.connect(
            f"ws://127.0.0.1:{ports[0]}/ws", issue_token(SECRET, user_id, "user")
        )
        agent = await HubClient.connect(f"ws://127.0.0.1:{ports[1]}/ws",
                                        issue_token(SECRET, "nodeagent", "agent", name="Node Agent"))  # fmt: skip
        await agent.request({"type": "agent.status", "status": "online"})
        opened = await user.request(
            {"type": "chat.open", "topic": "payment", "handoff": "agent", "text": "hi"}
        )
        cid = opened["conversation_id"]
        await agent.expect("chat.assigned", conversation_id=cid)
        await agent.request(
            {
                "type": "chat.send",
                "conversation_id": cid,
                "client_msg_id": "x",
                "text": "hello from node 2",
            }
        )
        got = await user.expect("message", conversation_id=cid, seq=2)
        assert got["text"] == "hello from node 2"
        # graceful shutdown: the node closes its sockets with 1001 (go elsewhere)
        procs[0].send_signal(signal.SIGTERM)
        assert await user.wait_closed(15) == 1001
        assert procs[0].wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
        # the user reconnects to the other node and resumes
        back = await HubClient.connect(f"ws://127.0.0.1:{ports[1]}/ws", issue_token(SECRET, user_id, "user"),
                                       resume={"conversations": {cid: 2}})  # fmt: skip
        await agent.request(
            {
                "type": "chat.send",
                "conversation_id": cid,
                "client_msg_id": "y",
                "text": "still here",
            }
        )
        assert (await back.expect("message", conversation_id=cid, seq=3))["text"] == "still here"
        await back.close()
        await agent.close()
        # logs are JSON lines without tokens
        procs[1].send_signal(signal.SIGTERM)
        out = procs[1].communicate(timeout=20)[0].decode()
        assert out.strip() and all(line.startswith("{") for line in out.strip().splitlines())
        assert "eyJ" not in out
    finally:
        for proc in procs:
            reap(proc)


async def test_deaf_listener_is_noticed_by_the_probe_and_healed(services):
    server = await start_hub(services)
    try:
        user_id = uid()
        client = await server.client(user_id)
        # the connection stays up but hears nothing any more
        server.node.bus._sub.send_command("UNSUBSCRIBE")
        deadline = time.monotonic() + 15
        while server.node.bus.healthy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not server.node.bus.healthy, "the probe did not notice"
        deadline = time.monotonic() + 15
        while not server.node.bus.healthy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert server.node.bus.healthy
        await publish_events(services, [tx_event(user_id)])
        assert (await client.expect("notification", timeout=10))["seq"] == 1
        await client.expect("session.resync")
        await client.close()
    finally:
        await server.stop()


async def test_readyz_stays_red_until_the_catch_up_after_a_reconnect_is_done(services):
    """A node that has resubscribed but not yet sent its clients what they missed is not
    ready: a load balancer must not count it as whole."""
    import httpx

    server = await start_hub(services)
    bus = server.node.bus
    catch_up, release = bus._on_reconnect, asyncio.Event()

    async def slow_catch_up() -> None:
        await release.wait()
        await catch_up()

    bus._on_reconnect = slow_catch_up
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/readyz")).status_code == 200
            bus._sub.send_command("UNSUBSCRIBE")
            deadline = time.monotonic() + 15
            while bus.healthy and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            while not bus.healthy and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert bus.healthy, "the bus never reconnected"
            r = await http.get("/readyz")
            assert r.status_code == 503 and r.json()["bus"] is False
            release.set()
            while (await http.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "never ready after the catch-up"
                await asyncio.sleep(0.05)
    finally:
        await server.stop()


async def test_forged_bus_frames_are_dropped(hub, services):
    user_id = uid()
    client = await hub.client(user_id)
    fake = {"type": "notification", "seq": 1, "notification_id": "x", "kind": "security.alert",
            "title": "Account frozen", "body": "send your password to ...", "data": {}, "ts": "now"}  # fmt: skip
    r = aioredis.from_url(services.redis_url)
    await r.publish(f"sh:u:{user_id}", msgpack.packb(fake) + b"0" * 16)
    sealed = hub.node.bus.seal(f"sh:u:{user_id}-other", msgpack.packb(fake))
    await r.publish(f"sh:u:{user_id}", sealed)  # signed for another channel
    await r.aclose()
    await client.quiet("notification", 0.8)
    await client.close()


async def test_two_nodes_split_payment_events_and_each_is_stored_once(isolated):
    a = await start_hub(isolated)
    b = await start_hub(isolated)
    db = await asyncpg.connect(isolated.dsn)
    try:
        deadline = time.monotonic() + 10
        while len(a.node.ring.nodes) < 2 or len(b.node.ring.nodes) < 2:
            assert time.monotonic() < deadline, "the nodes never saw each other"
            await asyncio.sleep(0.05)
        users = [uid() for _ in range(60)]
        on_a, on_b = await a.client(users[0]), await b.client(users[0])
        offered = (a.hub.notifier._offered, b.hub.notifier._offered)
        events = [tx_event(u, amount=f"{i}.00") for u in users for i in (1, 2)]
        await publish_events(isolated, events)
        for c in (on_a, on_b):  # a user on both nodes gets everything, whoever stored it
            assert [(await c.expect("notification"))["seq"] for _ in range(2)] == [1, 2]
        deadline = time.monotonic() + 15
        while await db.fetchval("select count(*) from notifications") < len(events):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        took_a = a.hub.notifier._offered - offered[0]
        took_b = b.hub.notifier._offered - offered[1]
        assert took_a > 0 and took_b > 0 and took_a + took_b == len(events)
        rows = await db.fetch(
            "select user_id, array_agg(seq order by seq) s from notifications group by 1"
        )
        assert len(rows) == len(users) and all(r["s"] == [1, 2] for r in rows)

        # when b leaves, a takes every user at once
        await b.stop()
        deadline = time.monotonic() + 5
        while not a.node.ring.alone:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await publish_events(isolated, [tx_event(u) for u in users])
        deadline = time.monotonic() + 15
        while await db.fetchval("select count(*) from notifications") < 3 * len(users):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert (await on_a.expect("notification"))["seq"] == 3
        for c in (on_a, on_b):
            await c.close()
    finally:
        await db.close()
        await a.stop()
        if not b.task.done():
            await b.stop()


async def test_a_freeze_amid_a_burst_keeps_the_users_seq_in_event_order(hub, services):
    user_id = uid()
    device = await hub.client(user_id)
    freeze = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "security.alert", "user_id": user_id,
              "occurred_at": "2026-11-25T08:00:01+00:00", "alert": "account_frozen",
              "severity": "critical", "details": {"rule": "velocity"}}  # fmt: skip
    events = [tx_event(user_id, amount=f"{i}.00") for i in range(1, 6)]
    events += [freeze, tx_event(user_id, "failed", reason="account_frozen")]
    events += [tx_event(user_id, "failed", reason="account_frozen") for _ in range(3)]
    for _ in range(3):  # several bursts, so the freeze lands at different batch positions
        await publish_events(services, events)
        frames = [await device.expect("notification", timeout=15) for _ in range(len(events))]
        seqs = [f["seq"] for f in frames]
        assert seqs == list(range(seqs[0], seqs[0] + len(events))), seqs
        kinds = [f["data"].get("alert") or f["data"]["status"] for f in frames]
        assert kinds == ["succeeded"] * 5 + ["account_frozen"] + ["failed"] * 4
        events = [dict(e, event_id=f"ev-{uuid.uuid4().hex}") for e in events]
    await device.expect("chat.opened", topic="security")
    await device.close()


async def test_events_of_a_node_killed_mid_stream_are_taken_over(isolated):
    port = free_port()
    doomed = _serve(port, isolated, {"HUB_NODE_ID": "node-doomed"})
    survivor = await start_hub(isolated)
    db = await asyncpg.connect(isolated.dsn)
    try:
        await _wait_ready(port, doomed)
        deadline = time.monotonic() + 10
        while "node-doomed" not in survivor.node.ring.nodes:
            assert time.monotonic() < deadline, "the survivor never saw the other node"
            await asyncio.sleep(0.05)
        ring = survivor.node.ring
        theirs = [u for u in (uid() for _ in range(200)) if ring.owner(u) == "node-doomed"][:20]
        device = await survivor.client(theirs[0])
        doomed.kill()  # no goodbye: the survivor still counts it in for a few seconds
        doomed.wait(10)
        await publish_events(isolated, [tx_event(u) for u in theirs])
        n = await device.expect("notification", timeout=20)
        assert n["seq"] == 1 and n["data"]["status"] == "succeeded"
        deadline = time.monotonic() + 20
        while await db.fetchval("select count(*) from notifications") < len(theirs):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert await db.fetchval("select count(distinct event_id) from notifications") == len(
            theirs
        )
        assert survivor.node.ring.alone
        await device.close()
    finally:
        await db.close()
        reap(doomed)
        await survivor.stop()


async def test_a_stalled_process_is_not_mistaken_for_a_deaf_bus(services):
    server = await start_hub(services)
    try:
        client = await server.client(uid())
        await asyncio.sleep(1.0)  # a few probes go round
        time.sleep(server.node.settings.bus_probe_timeout_s + 1.0)  # the whole loop stalls
        await client.quiet("session.resync", 2.0)  # no reconnect, no resync
        assert server.node.bus.healthy
        await client.close()
    finally:
        await server.stop()


_RELAY_LOCK = 0x5061_7952  # payments.outbox: the relay publishes only while it holds it
_REFUSE_NOTIFICATIONS = """
create function refuse_notification() returns trigger language plpgsql
  as $$ begin raise exception 'notifications refused by the test'; end $$;
create trigger refuse_notification before insert on notifications
  for each row execute function refuse_notification();
"""


async def test_the_outbox_poller_retries_an_event_it_could_not_store(isolated):
    """A poll whose event fails to store leaves the cursor before it; the next poll
    stores it. (The live path is held off: only the poller sees the event.)"""
    server = await start_hub(isolated)
    db = await asyncpg.connect(isolated.dsn)
    try:
        await db.execute("select pg_advisory_lock($1)", _RELAY_LOCK)
        await db.execute(_REFUSE_NOTIFICATIONS)
        user_id = uid()
        alert = outbox.event("security.alert", user_id, datetime.now(UTC),
                             alert="password_changed", severity="warning", details={})  # fmt: skip
        async with db.transaction():
            await outbox.append(db, [alert])
        await server.hub.outbox.catch_up()  # the store refuses it
        assert await db.fetchval("select count(*) from notifications") == 0
        assert not await db.fetchval("select after_id from event_cursor")
        await db.execute("drop trigger refuse_notification on notifications")
        await server.hub.outbox.catch_up()
        stored = await db.fetch("select event_id from notifications where user_id = $1", user_id)
        assert [r["event_id"] for r in stored] == [alert["event_id"]]
    finally:
        await db.close()
        await server.stop()
