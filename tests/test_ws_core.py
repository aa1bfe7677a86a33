"""The WebSocket core over a real server: negotiation, hello/welcome, auth, errors."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import msgpack
import pytest
import websockets

from tests.client import JSON, MSGPACK, HubClient


@pytest.mark.parametrize("proto", [JSON, MSGPACK])
async def test_hello_welcome_and_ping_in_both_codecs(hub, proto):
    client = await hub.client("u-codec", proto=proto)
    assert client.ws.subprotocol == proto
    assert client.welcome["role"] == "user"
    assert client.welcome["sub"] == "u-codec"
    assert client.welcome["session_id"]
    pong = await client.request({"type": "ping"})
    assert pong["type"] == "pong"
    await client.close()


async def test_first_offered_subprotocol_wins_and_json_is_default(hub):
    ws = await websockets.connect(hub.ws_url, subprotocols=["nope", MSGPACK, JSON])
    assert ws.subprotocol == MSGPACK
    await ws.close()
    client = await HubClient.connect(hub.ws_url, hub.token("u-noproto"), proto=None)
    assert client.ws.subprotocol is None
    assert client.welcome["sub"] == "u-noproto"  # JSON text frames
    await client.close()


def _alg_none(sub: str) -> str:
    return jwt.encode(
        {"sub": sub, "role": "user", "exp": int(time.time()) + 60}, None, algorithm="none"
    )


@pytest.mark.parametrize(
    "make_token",
    [
        lambda hub: None,
        lambda hub: "",
        lambda hub: "not-a-jwt",
        lambda hub: hub.token("u-x", ttl=-10),
        lambda hub: jwt.encode(
            {"sub": "u", "role": "user", "exp": int(time.time()) + 60},
            "wrong-key-wrong-key-wrong-key-wrong-key",
            algorithm="HS256",
        ),
        lambda hub: _alg_none("u"),
        lambda hub: jwt.encode(
            {"sub": "u", "role": "user"}, hub.secret, algorithm="HS256"
        ),  # no exp
        lambda hub: jwt.encode(
            {"sub": "u", "role": "admin", "exp": int(time.time()) + 60},
            hub.secret,
            algorithm="HS256",
        ),
        lambda hub: hub.token("svc", "service"),
        lambda hub: hub.token("nobody-" + uuid.uuid4().hex[:6], "agent"),
        lambda hub: hub.token("nobody-" + uuid.uuid4().hex[:6], "supervisor"),
    ],
    ids=[
        "missing",
        "empty",
        "garbage",
        "expired",
        "bad-signature",
        "alg-none",
        "no-exp",
        "bad-role",
        "service",
        "unknown-agent",
        "unknown-supervisor",
    ],
)
async def test_bad_tokens_close_with_4001(hub, make_token):
    client = await HubClient.connect(hub.ws_url, hello=False)
    frame = {"type": "hello"}
    token = make_token(hub)
    if token is not None:
        frame["token"] = token
    await client.send(frame)
    err = await client.expect("error")
    assert err["code"] == "unauthorized"
    assert await client.wait_closed() == 4001


async def test_first_frame_must_be_hello(hub):
    client = await HubClient.connect(hub.ws_url, hello=False)
    await client.send({"type": "ping"})
    assert await client.wait_closed() == 4001


async def test_hello_timeout_closes(services):
    from tests.conftest import start_hub

    server = await start_hub(services, hello_timeout_s=0.3)
    try:
        client = await HubClient.connect(server.ws_url, hello=False)
        assert await client.wait_closed(5) == 4001
    finally:
        await server.stop()


@pytest.mark.parametrize("proto", [JSON, MSGPACK])
async def test_every_bad_frame_gets_an_error_and_the_connection_stays(hub, proto):
    client = await hub.client(proto=proto)
    binary = proto == MSGPACK
    bad_inputs = [
        (b"\xc1\xff\x00" if binary else "{not json", "bad_frame"),
        (msgpack.packb([1, 2]) if binary else "[1, 2]", "bad_frame"),
        (msgpack.packb({"no": "type"}) if binary else '{"no": "type"}', "bad_frame"),
        (msgpack.packb({"type": 5}) if binary else '{"type": 5}', "bad_frame"),
        (msgpack.packb({"type": "no.such"}) if binary else '{"type": "no.such"}', "bad_frame"),
    ]
    for data, code in bad_inputs:
        await client.send_raw(data)
        err = await client.expect("error")
        assert err["code"] == code, err
    # wrong field types and missing fields, with the client's id echoed
    for frame in [
        {"type": "chat.send", "id": "a1", "conversation_id": 1, "client_msg_id": "x", "text": "hi"},
        {"type": "chat.send", "id": "a2", "conversation_id": "c"},
        {"type": "chat.open", "id": "a3", "topic": "weather"},
        {"type": "typing", "id": "a4", "conversation_id": "c", "state": "maybe"},
    ]:
        err = await client.request({k: v for k, v in frame.items() if k != "id"})
        assert err["type"] == "error" and err["code"] == "bad_frame", err
    # wrong role
    err = await client.request({"type": "agent.status", "status": "online"})
    assert err["code"] == "forbidden"
    # not found / not owned
    err = await client.request(
        {"type": "chat.send", "conversation_id": "nope", "client_msg_id": "m", "text": "x"}
    )
    assert err["code"] == "not_found"
    pong = await client.request({"type": "ping"})
    assert pong["type"] == "pong"
    await client.close()


async def test_too_many_bad_frames_close_with_1008(hub):
    client = await hub.client()
    for _ in range(25):
        await client.send_raw("{nope")
    assert await client.wait_closed() == 1008


async def test_oversized_frame_closes_with_1009(hub):
    client = await hub.client()
    await client.send_raw("x" * (hub.node.settings.max_frame_bytes + 10))
    assert await client.wait_closed() == 1009


async def test_rate_limit_answers_rate_limited(services):
    from tests.conftest import start_hub

    server = await start_hub(services, rate_per_s=1, rate_burst=3, bad_frames_limit=100)
    try:
        client = await server.client()
        for i in range(6):
            await client.send({"type": "ping", "id": f"p{i}"})
        err = await client.expect("error")
        assert err["code"] == "rate_limited" and err["id"] in {f"p{i}" for i in range(3, 6)}
        await client.close()
    finally:
        await server.stop()


async def test_cross_site_origin_is_refused(hub):
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(hub.ws_url, origin="http://evil.example")
    port = hub.url.rsplit(":", 1)[1]
    ws = await websockets.connect(hub.ws_url, origin=f"http://localhost:{port}")
    await ws.close()


async def test_unknown_user_is_welcomed_and_gets_a_row(hub, db):
    client = await hub.client("u-brand-new")
    assert client.welcome["notifications_seq"] == 0
    assert await db.fetchval("select 1 from users where id = 'u-brand-new'") == 1
    await client.close()


async def test_health_ready_metrics(hub):
    async with hub.http() as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"]
        metrics = await http.get("/metrics")
        assert "supporthub_connections" in metrics.text
        assert "supporthub_frames_in_total" in metrics.text
        assert "supporthub_queue_drops_total" in metrics.text


@pytest.mark.parametrize("compression", [False, True], ids=["raw-frames", "per-message-deflate"])
@pytest.mark.parametrize("proto", [JSON, MSGPACK])
async def test_pushes_arrive_intact_with_and_without_compression(services, proto, compression):
    import uuid as _uuid

    import redis.asyncio as aioredis

    from tests.conftest import start_hub
    from tests.events import signed

    server = await start_hub(services, ws_compression=compression)
    try:
        user_id = f"u-{_uuid.uuid4().hex[:8]}"
        client = await server.client(user_id, proto=proto)
        assert bool(client.ws.protocol.extensions) is compression
        r = aioredis.from_url(services.redis_url)
        for size in (10, 200, 70_000):  # 7-bit, 16-bit and 64-bit frame lengths
            event = {"event_id": _uuid.uuid4().hex, "type": "transaction.status", "user_id": user_id,
                     "occurred_at": "2026-11-25T00:00:00+00:00", "transaction_id": "tx_1",
                     "status": "succeeded", "amount": "1.00", "currency": "CNY", "speed": "instant",
                     "memo": "备" * size}  # fmt: skip
            await r.publish("payments.events", signed(event))
            got = await client.expect("notification")
            assert got["data"]["memo"] == "备" * size
        await r.aclose()
        await client.close()
    finally:
        await server.stop()


@pytest.mark.parametrize(
    "resume",
    [{"notifications_after": "x"}, {"conversations": [1, 2]}, "nope", {"notifications_after": -5}],
)
async def test_a_good_token_with_a_malformed_resume_gets_an_error_and_may_retry(hub, resume):
    ws = await websockets.connect(hub.ws_url, subprotocols=[JSON])
    token = hub.token("u-resume")
    await ws.send(json.dumps({"type": "hello", "id": "h1", "token": token, "resume": resume}))
    err = json.loads(await ws.recv())
    assert err["type"] == "error" and err["id"] == "h1"
    assert err["code"] == "bad_frame" and "resume" in err["message"]
    await ws.send(json.dumps({"type": "hello", "token": token}))
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome" and welcome["sub"] == "u-resume"
    await ws.close()
