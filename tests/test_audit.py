"""The audit log on a real server: an entry for each audited action, the supervisors' read
endpoint, and a table that refuses to be changed. The log outlives the `clean` fixture
(it refuses TRUNCATE), so every test looks at entries of its own fresh ids only."""

from __future__ import annotations

import asyncpg
import pytest

from payments.seed import add_account
from tests.verification import chat_with, online_agent, pass_verification, uid

pytestmark = pytest.mark.usefixtures("clean")


async def audit(hub, **params) -> list[dict]:
    async with hub.http(hub.token("boss", "supervisor")) as http:
        resp = await http.get("/api/audit", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def actions(entries: list[dict]) -> list[str]:
    return [e["action"] for e in entries]


async def test_only_supervisors_read_the_log(hub):
    for role in ("agent", "user", "service"):
        async with hub.http(hub.token("someone", role)) as http:
            resp = await http.get("/api/audit")
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    async with hub.http() as http:
        assert (await http.get("/api/audit")).status_code == 401
    async with hub.http(hub.token("boss", "supervisor")) as http:
        assert (await http.get("/api/audit", params={"limit": 0})).status_code == 422
        assert (await http.get("/api/audit", params={"limit": "many"})).status_code == 422
        capped = await http.get("/api/audit", params={"limit": 50_000})
        assert capped.status_code == 200 and isinstance(capped.json(), list)


async def test_login_and_status_changes_are_recorded(hub, db):
    agent = await online_agent(hub, db, ["payment"])
    agent_id = agent.welcome["sub"]
    async with hub.http() as http:
        ok = await http.post(
            "/api/agents/login", json={"username": agent_id, "password": "pw-1234"}
        )
        bad = await http.post("/api/agents/login", json={"username": agent_id, "password": "nope"})
    assert ok.status_code == 200 and bad.status_code == 401
    await agent.request({"type": "agent.status", "status": "away"})
    entries = await audit(hub, actor_id=agent_id)
    assert actions(entries) == ["agent.status", "agent.login_failed", "agent.login", "agent.status"]
    status, failed, login, _ = entries
    assert status["actor"] == {"role": "agent", "id": agent_id}
    assert status["details"] == {"status": "away"}
    assert login["address"] == failed["address"] == "127.0.0.1"
    assert "subject_user_id" not in login and "conversation_id" not in login
    assert entries[0]["ts"] > entries[-1]["ts"]  # newest first
    assert actions(await audit(hub, actor_id=agent_id, limit=1)) == ["agent.status"]
    await agent.close()


async def test_transfer_and_resolve_are_recorded(hub, db):
    first = await online_agent(hub, db, ["payment"])
    second = await online_agent(hub, db, ["payment"])
    user, cid = await chat_with_either(hub, first, second)
    holder, other = (first, second) if user["agent"] == first.welcome["sub"] else (second, first)
    to = other.welcome["sub"]
    await holder.request({"type": "chat.transfer", "conversation_id": cid, "to_agent": to})
    await other.expect("chat.assigned", conversation_id=cid)
    await other.request({"type": "chat.resolve", "conversation_id": cid})
    moved = (await audit(hub, actor_id=holder.welcome["sub"], action="chat.transfer"))[0]
    assert moved["conversation_id"] == cid
    assert moved["details"] == {"to_agent": to, "to_topic": None}
    resolved = (await audit(hub, actor_id=to, action="chat.resolve"))[0]
    assert resolved["conversation_id"] == cid and resolved["actor"]["role"] == "agent"
    for c in (first, second, user["client"]):
        await c.close()


async def chat_with_either(hub, *agents_online):
    user = await hub.client(uid())
    opened = await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent"})
    assigned = await user.expect("chat.assigned", conversation_id=opened["conversation_id"])
    return {"client": user, "agent": assigned["agent"]["id"]}, opened["conversation_id"]


async def test_verification_freeze_and_unfreeze_are_recorded(hub, db, services):
    agent = await online_agent(hub, db, ["security"])
    agent_id = agent.welcome["sub"]
    user, cid = await chat_with(hub, agent)
    user_id = user.welcome["sub"]
    await add_account(services.dsn, user_id, "Customer", "50.00")
    async with hub.http(hub.token(agent_id, "agent")) as http:
        frozen = await http.post(f"/api/accounts/{user_id}/freeze", json={"reason": "odd"})
        assert frozen.status_code == 200, frozen.text
        result = await pass_verification(hub, agent, user, cid)
        resp = await http.post(f"/api/accounts/{user_id}/unfreeze", json={"reason": "it is her"})
        assert resp.status_code == 200, resp.text

    entries = await audit(hub, subject_user_id=user_id)
    assert actions(entries) == [
        "account.unfreeze",
        "verify.result",
        "verify.request",
        "account.freeze",
    ]
    unfrozen, answered, asked, froze = entries
    assert froze["actor"] == {"role": "agent", "id": agent_id}
    assert froze["details"]["reason"] == "odd" and froze["details"]["rule"] == "manual"
    assert asked["actor"]["id"] == agent_id and asked["conversation_id"] == cid
    assert asked["details"]["challenge_id"] == result["challenge_id"]
    assert answered["actor"] == {"role": "user", "id": user_id}
    assert answered["details"]["ok"] is True and answered["details"]["requested_by"] == agent_id
    assert unfrozen["actor"] == {"role": "agent", "id": agent_id}
    assert unfrozen["details"]["reason"] == "it is her"
    assert unfrozen["details"]["frozen_reason"] == "odd"
    assert unfrozen["details"]["verification"]["challenge_id"] == result["challenge_id"]
    assert unfrozen["address"] == "127.0.0.1"
    await agent.close()
    await user.close()


async def test_a_risk_freeze_is_recorded_as_the_system(hub, services):
    payer = uid()
    await add_account(services.dsn, payer, "Payer", "100.00")
    await add_account(services.dsn, "shop-audit", "Shop", "0.00")
    async with hub.http(hub.token(payer)) as http:
        for n in range(11):
            body = {"to_account": "shop-audit", "amount": "1.00", "speed": "instant",
                    "idempotency_key": f"k{n}"}  # fmt: skip
            last = await http.post("/api/payments", json=body)
    assert last.json()["reason"] == "account_frozen"
    # (with no security agent online the urgent chat the freeze opens is paged too)
    entries = await audit(hub, subject_user_id=payer)
    [froze] = [e for e in entries if e["action"] != "urgent.page"]
    assert froze["action"] == "account.freeze"
    assert froze["actor"] == {"role": "system", "id": "risk"}
    assert froze["details"]["rule"] == "velocity" and froze["details"]["transaction_ids"]


async def test_the_log_cannot_be_changed(hub, db):
    agent = await online_agent(hub, db, ["payment"])
    await agent.close()
    for statement in (
        "update audit_log set action = 'nothing happened'",
        "delete from audit_log",
        "truncate audit_log",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute(statement)
    assert await db.fetchval("select count(*) from audit_log") > 0
