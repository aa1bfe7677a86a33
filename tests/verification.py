"""Step-up verification for tests: the real flow over sockets, or, for tests about
something else that only need an unfreeze to be allowed, a passed verification recorded
through the real store functions."""

from __future__ import annotations

import uuid
from dataclasses import replace

import asyncpg

from hub.rules import stepup
from hub.services.verification import new_challenge_id
from hub.store import agents
from hub.store import verification as verify_store
from tests.client import HubClient


async def record_passed_verification(
    db: asyncpg.Connection, user_id: str, agent_id: str = "sec"
) -> str:
    """A verification of `user_id` that passed just now; returns its challenge id."""
    now = await verify_store.now(db)
    key = stepup.derive_key("unused: the code is never checked")
    challenge = stepup.issue(key, new_challenge_id(), user_id, "000000", now, 300)
    await verify_store.insert(
        db, challenge, verify_store.Requested(user_id, None, agent_id, "agent")
    )
    await verify_store.save(db, replace(challenge, status="passed", verified_at=now))
    return challenge.challenge_id


async def dev_code(hub, user_id: str) -> dict:
    """What the user's phone got: the dev outbox's last code for them."""
    async with hub.http() as http:
        resp = await http.get("/api/dev/otp", params={"user_id": user_id})
    assert resp.status_code == 200, resp.text
    return resp.json()


async def pass_verification(hub, agent: HubClient, user: HubClient, cid: str) -> dict:
    """The whole flow: the agent asks, the user's device shows the challenge, the code
    from the phone is submitted, and both sides hear `verify.result ok`."""
    ack = await agent.request({"type": "verify.request", "conversation_id": cid})
    assert ack["type"] == "ack", ack
    challenge = await user.expect("verify.challenge", challenge_id=ack["challenge_id"])
    sent = await dev_code(hub, user.welcome["sub"])
    assert sent["challenge_id"] == challenge["challenge_id"]
    await user.send({"type": "verify.submit", "challenge_id": challenge["challenge_id"],
                     "code": sent["code"]})  # fmt: skip
    result = await user.expect("verify.result", challenge_id=challenge["challenge_id"])
    assert result["ok"] is True, result
    await agent.expect("verify.result", challenge_id=challenge["challenge_id"], ok=True)
    return result


def uid(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def online_agent(hub, db, skills: list[str], *, supervisor: bool = False):
    """A new agent (a fresh id) with these skills, connected and online."""
    agent_id = uid("sec" if "security" in skills else "gen")
    await agents.upsert(db, username=agent_id, password="pw-1234", name=agent_id.title(),
                        skills=skills, capacity=3, supervisor=supervisor)  # fmt: skip
    client = await hub.client(agent_id, "supervisor" if supervisor else "agent", name="Agent")
    await client.request({"type": "agent.status", "status": "online"})
    return client


async def chat_with(hub, agent, topic: str = "security", user_id: str | None = None):
    """A new user in a chat of `topic` assigned to `agent`."""
    user = await hub.client(user_id or uid(), name="Customer")
    opened = await user.request({"type": "chat.open", "topic": topic, "handoff": "agent"})
    cid = opened["conversation_id"]
    await agent.expect("chat.assigned", conversation_id=cid)
    return user, cid
