"""Sessions over real sockets: a token that expires while connected closes the socket
with 4001 unless `auth.refresh` gave it a new one first."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.client import MSGPACK

pytestmark = pytest.mark.usefixtures("clean")


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def test_a_token_expiring_mid_session_closes_with_4001(hub):
    user_id = uid()
    client = await hub.client(user_id, hello=False)
    await client.send({"type": "hello", "token": hub.token(user_id, ttl=2)})
    await client.expect("welcome")
    assert (await client.request({"type": "ping"}))["type"] == "pong"
    started = time.monotonic()
    assert await client.wait_closed(timeout=6) == 4001
    assert time.monotonic() - started < 4
    told = [f for f in client.frames if f.get("type") == "error"]
    assert told and told[-1]["code"] == "unauthorized" and "expired" in told[-1]["message"]


@pytest.mark.parametrize("proto", [None, MSGPACK])
async def test_a_refreshed_session_stays_open_past_the_old_expiry(hub, proto):
    user_id = uid()
    client = await hub.client(user_id, hello=False, proto=proto or "supporthub.json.v1")
    await client.send({"type": "hello", "token": hub.token(user_id, ttl=2)})
    await client.expect("welcome")
    fresh = hub.token(user_id, ttl=60)
    ack = await client.request({"type": "auth.refresh", "token": fresh})
    assert ack["type"] == "ack", ack
    assert abs(ack["exp"] - (time.time() + 60)) < 3
    await asyncio.sleep(3)  # past the first token's exp
    assert (await client.request({"type": "ping"}))["type"] == "pong"
    assert client.close_code is None
    await client.close()


async def test_a_refresh_must_be_a_valid_token_of_the_same_sub_and_role(hub):
    user_id = uid()
    client = await hub.client(user_id, hello=False)
    await client.send({"type": "hello", "token": hub.token(user_id, ttl=3)})
    await client.expect("welcome")
    cases = [
        (hub.token(uid(), ttl=60), "forbidden"),  # someone else
        (hub.token(user_id, "agent", ttl=60), "forbidden"),  # another role
        (hub.token(user_id, ttl=-5), "unauthorized"),  # expired
        (hub.token(user_id, ttl=60)[:-3] + "AAA", "unauthorized"),  # bad signature
        ("", "unauthorized"),
    ]
    for token, code in cases:
        answer = await client.request({"type": "auth.refresh", "token": token})
        assert (answer["type"], answer["code"]) == ("error", code), (token, answer)
    # refused refreshes leave the session as it was: it still ends at the first exp
    assert await client.wait_closed(timeout=6) == 4001


async def test_staff_refresh_their_sessions_too(hub, db):
    from tests.test_chat_flow import add_agent

    await add_agent(db, "alice", ["account"])
    agent = await hub.client("alice", "agent", hello=False)
    await agent.send({"type": "hello", "token": hub.token("alice", "agent", ttl=2)})
    await agent.expect("welcome")
    ack = await agent.request(
        {"type": "auth.refresh", "token": hub.token("alice", "agent", ttl=60)}
    )
    assert ack["type"] == "ack"
    await asyncio.sleep(2.5)
    assert (await agent.request({"type": "ping"}))["type"] == "pong"
    await agent.close()
