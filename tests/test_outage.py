"""PostgreSQL really stopped under a running hub (and a payments service alone): REST
answers 503 `unavailable` with Retry-After and the JSON error shape, never a 500, and the
WebSocket answers `error {code: "unavailable"}` with the connection kept."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import websockets

from hub.embedded import EmbeddedPostgres
from hub.store.notifications import NotificationWrite
from supporthub_core.db import migrate
from tests.conftest import start_hub
from tests.edge import payments_alone


@pytest.fixture
async def own_pg():
    """A PostgreSQL of this test's own, to stop at will."""
    root = Path(tempfile.mkdtemp(prefix="sh-pg-", dir="/tmp"))
    pg = EmbeddedPostgres(root / "pg", durable=False)
    pg.start()
    await migrate(pg.dsn)
    try:
        yield pg
    finally:
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def _unavailable(resp) -> None:
    assert resp.status_code == 503, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    assert int(resp.headers["retry-after"]) > 0
    error = resp.json()["error"]
    assert error["code"] == "unavailable" and error["message"]


PAYMENT = {"to_account": "bob", "amount": "1.00", "speed": "instant", "idempotency_key": "k1"}


async def test_rest_and_ws_answer_unavailable_while_postgres_is_down(own_pg, isolated):
    class Stores:
        dsn = own_pg.dsn
        redis_url = isolated.redis_url
        root = isolated.root

    server = await start_hub(Stores)
    try:
        user = await server.client(f"u-{uuid.uuid4().hex[:8]}")
        own_pg.stop("immediate")
        agent, supervisor = server.token("a1", "agent"), server.token("s1", "supervisor")
        async with server.http(agent) as http:
            _unavailable(await http.get("/api/conversations"))
            _unavailable(await http.get("/api/conversations/c-1"))
            _unavailable(await http.get("/api/accounts/bob"))
            _unavailable(await http.get("/api/payments"))
        async with server.http(server.token("alice")) as http:
            _unavailable(await http.post("/api/payments", json=PAYMENT))
            _unavailable(await http.get("/api/payments/tx_0000000000000000"))
        async with server.http(supervisor) as http:
            _unavailable(await http.get("/api/stats"))
            _unavailable(await http.post("/api/broadcasts", json={"title": "t", "body": "b"}))
        async with server.http() as http:
            _unavailable(
                await http.post("/api/agents/login", json={"username": "u", "password": "p"})
            )
        for frame in [
            {"type": "notifications.ack", "up_to": 1},
            {"type": "chat.open", "topic": "other", "handoff": "agent"},
            {"type": "user.lang", "lang": "en"},
        ]:
            err = await user.request(frame)
            assert err["type"] == "error" and err["code"] == "unavailable", (frame, err)
            assert (await user.request({"type": "ping"}))["type"] == "pong"
        own_pg.start()
        await user.close()
    finally:
        await server.stop()


async def test_sessions_opened_while_postgres_is_down_are_refused_before_welcome(own_pg, isolated):
    """Sockets that say hello while PostgreSQL is stopped get `unavailable` and 1013, never
    a `welcome` (a welcome promises a registered session); once it is back, they are welcomed."""

    class Stores:
        dsn = own_pg.dsn
        redis_url = isolated.redis_url
        root = isolated.root

    server = await start_hub(Stores, db_pool_max=4)
    try:
        own_pg.stop("immediate")
        hello = {"type": "hello", "resume": {"notifications_after": 0}}
        outcomes = await asyncio.gather(
            *(_refused(server, {**hello, "token": server.token(f"u-{n}")}) for n in range(8))
        )
        for frames, code in outcomes:
            assert [f["type"] for f in frames] == ["error"] and code == 1013, (frames, code)
            assert frames[0]["code"] == "unavailable"
        own_pg.start()
        user = await server.client("u-0", resume={"notifications_after": 0})
        assert user.welcome["sub"] == "u-0"
        await user.close()
    finally:
        await server.stop()


async def test_a_replay_the_store_cuts_short_after_welcome_keeps_the_session(
    own_pg, isolated, monkeypatch
):
    """PostgreSQL stops after a session's `welcome`, before its replay: the session stays
    open (it was promised delivery) and gets what it asked for once the store is back."""

    class Stores:
        dsn = own_pg.dsn
        redis_url = isolated.redis_url
        root = isolated.root

    server = await start_hub(Stores)
    user = None
    try:
        user_id = f"u-{uuid.uuid4().hex[:8]}"
        await (await server.client(user_id)).close()
        await server.hub.store.writer.submit(NotificationWrite(user_id, "system.notice", "t", "b"))
        sessions, gate = server.hub.sessions, asyncio.Event()
        replay = sessions.replay

        async def replay_after_the_gate(*args):
            await gate.wait()
            await replay(*args)

        monkeypatch.setattr(sessions, "replay", replay_after_the_gate)
        user = await server.client(user_id, resume={"notifications_after": 0})
        own_pg.stop()  # fast: it keeps what was committed (this PostgreSQL does not fsync)
        gate.set()
        assert (await user.request({"type": "ping"}))["type"] == "pong"
        own_pg.start()
        got = await user.expect("notification", timeout=30)
        assert got["seq"] == 1 and got["title"] == "t"
        assert (await user.request({"type": "ping"}))["type"] == "pong"
    finally:
        monkeypatch.undo()
        if user is not None:
            await user.close()
        await server.stop()


async def _refused(server, hello: dict) -> tuple[list[dict], int | None]:
    """Every frame a socket gets after `hello`, and its close code."""
    async with websockets.connect(server.ws_url, subprotocols=["supporthub.json.v1"]) as ws:
        await ws.send(json.dumps(hello))
        frames = []
        try:
            while True:
                frames.append(json.loads(await ws.recv()))
        except websockets.ConnectionClosed:
            return frames, ws.close_code


async def test_payments_alone_answers_unavailable_while_postgres_is_down(own_pg, isolated):
    async with payments_alone(own_pg.dsn, isolated.redis_url) as server:
        from supporthub_core.auth import issue_token
        from tests.conftest import SECRET

        own_pg.stop("immediate")
        try:
            async with server.http(issue_token(SECRET, "alice", "user")) as http:
                _unavailable(await http.post("/api/payments", json=PAYMENT))
                _unavailable(await http.get("/api/accounts/alice"))
                _unavailable(await http.get("/api/maintenance"))
        finally:
            own_pg.start()


async def test_a_broadcast_while_redis_is_down_is_stored_and_accepted(isolated, services):
    """Stored first, pushed live when it can be: with Redis down the answer is 202 (the
    users get it when they reconnect), not a 503 that would make the caller send it twice."""
    import asyncpg

    server = await start_hub(isolated)
    try:
        isolated.redis.stop()
        try:
            async with server.http(server.token("s1", "supervisor")) as http:
                resp = await http.post("/api/broadcasts", json={"title": "t", "body": "b"})
            assert resp.status_code == 202, resp.text
        finally:
            isolated.redis.start()
        conn = await asyncpg.connect(isolated.dsn)
        try:
            assert await conn.fetchval("select count(*) from broadcasts") == 1
        finally:
            await conn.close()
    finally:
        await server.stop()


def test_a_connection_left_mid_operation_by_a_restart_is_an_outage():
    """What asyncpg raises when a pool takes back a connection the server dropped
    mid-operation (a payments 500 during a PostgreSQL restart, tests/test_fault_suite.py)."""
    from asyncpg.exceptions import _base

    from supporthub_core.errors import Unavailable, as_hub_error

    exc = _base.InternalClientError(
        "cannot switch to state 15; another operation (2) is in progress"
    )
    assert isinstance(as_hub_error(exc), Unavailable)
