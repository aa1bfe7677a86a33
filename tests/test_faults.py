"""Faults with real servers: PostgreSQL stopped under a running hub; migrations raced."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from hub.store import agents
from supporthub_core.db import migrate, migration_files
from tests.conftest import start_hub

pytestmark = pytest.mark.usefixtures("clean")


async def test_two_processes_migrating_at_once_apply_each_file_once(services):
    name = f"mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(services.dsn)
    await admin.execute(f"create database {name}")
    dsn = services.dsn.replace("/supporthub?", f"/{name}?")
    try:
        first, second = await asyncio.gather(migrate(dsn), migrate(dsn))
        assert sorted(first + second) == sorted(v for v, _ in migration_files())
        assert await migrate(dsn) == []
    finally:
        await admin.execute(f"drop database {name} with (force)")
        await admin.close()


async def test_postgres_down_gives_errors_not_crashes_and_recovers(services, db):
    server = await start_hub(services)
    try:
        await agents.upsert(
            db, username="pgagent", password="pw", name="PG", skills=["other"], capacity=2
        )
        agent = await server.client("pgagent", "agent")
        await agent.request({"type": "agent.status", "status": "online"})
        user = await server.client(f"u-{uuid.uuid4().hex[:8]}")
        cid = (await user.request({"type": "chat.open", "topic": "other", "handoff": "agent"}))[
            "conversation_id"
        ]
        await agent.expect("chat.assigned", conversation_id=cid)
        services.pg.stop("fast")  # a restart, not a crash: the test cluster runs without fsync
        try:
            err = await user.request(
                {"type": "chat.send", "conversation_id": cid, "client_msg_id": "down", "text": "x"}
            )
            assert err["type"] == "error"
            async with server.http() as http:
                assert (await http.get("/readyz")).status_code == 503
            pong = await user.request({"type": "ping"})  # the socket is fine
            assert pong["type"] == "pong"
        finally:
            services.pg.start()
        deadline = time.monotonic() + 30
        while True:
            ack = await user.request(
                {"type": "chat.send", "conversation_id": cid, "client_msg_id": "up", "text": "back"}
            )
            if ack["type"] == "ack" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert ack["type"] == "ack", ack
        got = await agent.expect("message", conversation_id=cid, client_msg_id="up")
        assert got["text"] == "back"
        async with server.http() as http:
            assert (await http.get("/readyz")).status_code == 200
        for c in (agent, user):
            await c.close()
    finally:
        await server.stop()


async def test_a_hung_commit_fails_the_send_in_time_and_the_writer_recovers(services, monkeypatch):
    from hub.store import messages

    server = await start_hub(services, write_timeout_s=1.0)
    try:
        user = await server.client(f"u-{uuid.uuid4().hex[:8]}")
        opened = await user.request({"type": "chat.open", "topic": "other", "handoff": "agent"})
        cid = opened["conversation_id"]
        store_them = messages.write_messages

        async def hang(conn, ops):
            await asyncio.Event().wait()

        monkeypatch.setattr(messages, "write_messages", hang)
        started = time.monotonic()
        err = await user.request(
            {"type": "chat.send", "conversation_id": cid, "client_msg_id": "hung", "text": "x"},
            timeout=8,
        )
        assert err["type"] == "error" and err["code"] == "unavailable", err
        assert time.monotonic() - started < 3
        monkeypatch.setattr(messages, "write_messages", store_them)
        ack = await user.request(
            {"type": "chat.send", "conversation_id": cid, "client_msg_id": "ok", "text": "y"}
        )
        assert ack["type"] == "ack", ack
        await user.close()
    finally:
        monkeypatch.undo()
        await server.stop()


async def test_an_exhausted_pool_answers_unavailable_not_never(services):
    server = await start_hub(services, db_pool_min=1, db_pool_max=2, db_acquire_timeout_s=0.5)
    held = []
    try:
        user = await server.client(f"u-{uuid.uuid4().hex[:8]}")
        pool = server.hub.store.pool
        held = [await pool.acquire() for _ in range(2)]
        started = time.monotonic()
        err = await user.request({"type": "chat.open", "topic": "other", "handoff": "agent"})
        assert err["type"] == "error" and err["code"] == "unavailable", err
        assert time.monotonic() - started < 3
        await user.close()
    finally:
        for conn in held:
            await pool.release(conn)
        await server.stop()
