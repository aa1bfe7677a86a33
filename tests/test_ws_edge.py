"""What the WebSocket edge refuses before any handler or the store sees it: integers the
database cannot hold and NUL characters, in both codecs, with the connection kept."""

from __future__ import annotations

import json
import uuid

import msgpack
import pytest
import websockets

from hub.store import agents
from tests.client import JSON, MSGPACK

INT64_MAX = 2**63 - 1
TOO_BIG = [2**63, 2**64 - 1]


async def _still_open(client) -> None:
    pong = await client.request({"type": "ping"})
    assert pong["type"] == "pong"


@pytest.mark.parametrize("proto", [JSON, MSGPACK])
@pytest.mark.parametrize("value", TOO_BIG)
async def test_integers_past_int64_are_bad_frames(hub, proto, value):
    user = await hub.client(proto=proto)
    opened = await user.request({"type": "chat.open", "topic": "other", "handoff": "agent"})
    cid = opened["conversation_id"]
    for frame in [
        {"type": "notifications.ack", "up_to": value},
        {"type": "read", "conversation_id": cid, "seq": value},
    ]:
        err = await user.request(frame)
        assert err["type"] == "error" and err["code"] == "bad_frame", err
        await _still_open(user)
    # the largest value the store holds is fine
    ack = await user.request({"type": "notifications.ack", "up_to": INT64_MAX})
    assert ack["type"] == "ack", ack
    await user.close()


@pytest.mark.parametrize("proto", [JSON, MSGPACK])
async def test_a_resume_past_int64_is_a_bad_hello_and_the_client_may_retry(hub, proto):
    binary = proto == MSGPACK
    ws = await websockets.connect(hub.ws_url, subprotocols=[proto])

    def pack(frame: dict):
        return msgpack.packb(frame) if binary else json.dumps(frame)

    def unpack(data) -> dict:
        return msgpack.unpackb(data) if binary else json.loads(data)

    token = hub.token(f"u-{uuid.uuid4().hex[:8]}")
    for resume in [
        {"notifications_after": 2**63},
        {"conversations": {"c-1": 2**64 - 1}},
    ]:
        await ws.send(pack({"type": "hello", "id": "h", "token": token, "resume": resume}))
        err = unpack(await ws.recv())
        assert err["type"] == "error" and err["code"] == "bad_frame", err
        assert "resume" in err["message"]
    await ws.send(pack({"type": "hello", "token": token, "resume": {"notifications_after": 0}}))
    welcome = unpack(await ws.recv())
    assert welcome["type"] == "welcome", welcome
    await ws.close()


@pytest.mark.parametrize("proto", [JSON, MSGPACK])
async def test_nul_in_any_text_field_is_a_bad_frame(hub, db, proto):
    user = await hub.client(proto=proto)
    err = await user.request({"type": "chat.open", "topic": "other", "text": "hi\x00there"})
    assert err["type"] == "error" and err["code"] == "bad_frame", err
    opened = await user.request({"type": "chat.open", "topic": "other", "handoff": "agent"})
    cid = opened["conversation_id"]
    for frame in [
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": "m1", "text": "a\x00b"},
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": "m\x00", "text": "ab"},
        {"type": "chat.send", "conversation_id": cid + "\x00", "client_msg_id": "m2", "text": "x"},
        {"type": "typing", "conversation_id": "\x00", "state": True},
    ]:
        err = await user.request(frame)
        assert err["type"] == "error" and err["code"] == "bad_frame", (frame, err)
        assert "unavailable" not in err["message"]
        await _still_open(user)
    # nothing was stored: the user's first message of the chat is the one sent now (the
    # hub's own notices, such as "no one who can help is online", come before it)
    assert not await db.fetchval(
        "select count(*) from messages where conversation_id = $1 and sender_role = 'user'", cid
    )
    last = await db.fetchval("select last_seq from conversations where id = $1", cid)
    ack = await user.request(
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": "ok", "text": "fine"}
    )
    assert ack["type"] == "ack" and ack["seq"] == last + 1, ack
    await user.close()


async def test_nul_in_a_staff_note_is_a_bad_frame(hub, db):
    agent_id = f"a-{uuid.uuid4().hex[:6]}"
    await agents.upsert(db, username=agent_id, password="pw", name="A", skills=["other"],
                        capacity=1)  # fmt: skip
    agent = await hub.client(agent_id, "agent")
    err = await agent.request({"type": "chat.note", "conversation_id": "c", "text": "\x00"})
    assert err["code"] == "bad_frame", err
    err = await agent.request({"type": "chat.transfer", "conversation_id": "c", "to_agent": "\x00"})
    assert err["code"] == "bad_frame", err
    await _still_open(agent)
    await agent.close()
