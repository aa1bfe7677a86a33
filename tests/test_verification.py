"""Step-up verification over real sockets and HTTP: the agent asks, the user's devices get
the challenge, the code from the (dev) phone is submitted, both sides hear the result, and
only then may the account be unfrozen. Wrong, expired, reused and locked-out codes, someone
else's challenge, and who may ask."""

from __future__ import annotations

import asyncio

import pytest

from payments.seed import add_account
from tests.conftest import start_hub
from tests.verification import chat_with, dev_code, online_agent, pass_verification, uid

pytestmark = pytest.mark.usefixtures("clean")


async def frozen_account(services, db, user_id: str) -> None:
    await add_account(services.dsn, user_id, "Customer", "50.00")
    await db.execute("update accounts set frozen = true where user_id = $1", user_id)


async def unfreeze(hub, agent_id: str, user_id: str):
    async with hub.http(hub.token(agent_id, "agent")) as http:
        return await http.post(f"/api/accounts/{user_id}/unfreeze", json={"reason": "verified"})


async def ask(agent, cid: str) -> dict:
    ack = await agent.request({"type": "verify.request", "conversation_id": cid})
    assert ack["type"] == "ack", ack
    return ack


async def submit(user, challenge_id: str, code: str) -> dict:
    await user.send({"type": "verify.submit", "challenge_id": challenge_id, "code": code})
    return await user.expect("verify.result", challenge_id=challenge_id)


def wrong(code: str) -> str:
    return str((int(code) + 1) % 10**6).zfill(6)


async def close_all(*clients) -> None:
    for c in clients:
        await c.close()


async def test_unfreeze_is_refused_until_the_user_passes_a_verification(hub, db, services):
    agent = await online_agent(hub, db, ["security"])
    agent_id = agent.welcome["sub"]
    phone, cid = await chat_with(hub, agent)
    user_id = phone.welcome["sub"]
    laptop = await hub.client(user_id)
    await frozen_account(services, db, user_id)

    refused = await unfreeze(hub, agent_id, user_id)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "verification_required"
    assert "verification" in refused.json()["error"]["message"]

    ack = await ask(agent, cid)
    assert ack["conversation_id"] == cid and ack["channel"] == "sms"
    for device in (phone, laptop):  # every device of the user shows the code box
        challenge = await device.expect("verify.challenge", challenge_id=ack["challenge_id"])
        assert challenge["conversation_id"] == cid and challenge["channel"] == "sms"
        assert challenge["expires_at"] == ack["expires_at"]
    await pass_verification_with(hub, agent, phone, laptop, ack["challenge_id"])

    resp = await unfreeze(hub, agent_id, user_id)
    assert resp.status_code == 200, resp.text
    assert resp.json()["frozen"] is False
    await close_all(agent, phone, laptop)


async def pass_verification_with(hub, agent, phone, laptop, challenge_id: str) -> None:
    sent = await dev_code(hub, phone.welcome["sub"])
    assert sent["challenge_id"] == challenge_id and len(sent["code"]) == 6
    result = await submit(phone, challenge_id, sent["code"])
    assert result["ok"] is True and "reason" not in result
    assert (await laptop.expect("verify.result", challenge_id=challenge_id))["ok"] is True
    seen = await agent.expect("verify.result", challenge_id=challenge_id)
    assert seen["ok"] is True and seen["user_id"] == phone.welcome["sub"]


async def test_codes_are_kept_as_hashes_only(hub, db):
    agent = await online_agent(hub, db, ["security"])
    user, cid = await chat_with(hub, agent)
    ack = await ask(agent, cid)
    code = (await dev_code(hub, user.welcome["sub"]))["code"]
    row = await db.fetchrow("select * from verify_challenges where id = $1", ack["challenge_id"])
    assert code not in " ".join(str(v) for v in row.values())
    assert len(row["code_hash"]) == 64 and row["status"] == "pending"
    await close_all(agent, user)


async def test_wrong_codes_count_down_and_lock_the_challenge(hub, db, services):
    agent = await online_agent(hub, db, ["security"])
    user, cid = await chat_with(hub, agent)
    user_id = user.welcome["sub"]
    await frozen_account(services, db, user_id)
    ack = await ask(agent, cid)
    code = (await dev_code(hub, user_id))["code"]
    for left in (4, 3, 2, 1):
        result = await submit(user, ack["challenge_id"], wrong(code))
        assert (result["ok"], result["reason"], result["attempts_left"]) == (
            False,
            "wrong_code",
            left,
        )
        seen = await agent.expect("verify.result", challenge_id=ack["challenge_id"])
        assert seen["ok"] is False and seen["attempts_left"] == left
    result = await submit(user, ack["challenge_id"], wrong(code))
    assert (result["ok"], result["reason"], result["attempts_left"]) == (False, "locked", 0)
    # locked out: the right code no longer passes, and the account stays frozen
    result = await submit(user, ack["challenge_id"], code)
    assert (result["ok"], result["reason"]) == (False, "locked")
    assert (await unfreeze(hub, agent.welcome["sub"], user_id)).status_code == 409
    await close_all(agent, user)


async def test_a_code_passes_once(hub, db):
    agent = await online_agent(hub, db, ["security"])
    user, cid = await chat_with(hub, agent)
    await pass_verification(hub, agent, user, cid)
    sent = await dev_code(hub, user.welcome["sub"])
    again = await submit(user, sent["challenge_id"], sent["code"])
    assert (again["ok"], again["reason"]) == (False, "used")
    await close_all(agent, user)


async def test_a_new_challenge_replaces_the_pending_one(hub, db):
    agent = await online_agent(hub, db, ["security"])
    user, cid = await chat_with(hub, agent)
    first = await ask(agent, cid)
    first_code = (await dev_code(hub, user.welcome["sub"]))["code"]
    second = await ask(agent, cid)
    assert second["challenge_id"] != first["challenge_id"]
    old = await submit(user, first["challenge_id"], first_code)
    assert (old["ok"], old["reason"]) == (False, "superseded")
    code = (await dev_code(hub, user.welcome["sub"]))["code"]
    assert (await submit(user, second["challenge_id"], code))["ok"] is True
    await close_all(agent, user)


async def test_an_expired_code_is_refused(services, db):
    short = await start_hub(services, verify_code_ttl_s=0.5)
    try:
        agent = await online_agent(short, db, ["security"])
        user, cid = await chat_with(short, agent)
        ack = await ask(agent, cid)
        code = (await dev_code(short, user.welcome["sub"]))["code"]
        await asyncio.sleep(0.8)
        result = await submit(user, ack["challenge_id"], code)
        assert (result["ok"], result["reason"], result["attempts_left"]) == (False, "expired", 5)
        await close_all(agent, user)
    finally:
        await short.stop()


async def test_a_user_cannot_answer_another_users_challenge(hub, db):
    agent = await online_agent(hub, db, ["security"])
    victim, cid = await chat_with(hub, agent)
    ack = await ask(agent, cid)
    code = (await dev_code(hub, victim.welcome["sub"]))["code"]
    intruder = await hub.client(uid())
    for guess in (code, wrong(code)):
        answer = await intruder.request(
            {"type": "verify.submit", "challenge_id": ack["challenge_id"], "code": guess}
        )
        assert answer["type"] == "error" and answer["code"] == "not_found"
    await victim.quiet("verify.result")
    attempts = await db.fetchval(
        "select attempts from verify_challenges where id = $1", ack["challenge_id"]
    )
    assert attempts == 0  # the owner lost nothing
    assert (await submit(victim, ack["challenge_id"], code))["ok"] is True
    await close_all(agent, victim, intruder)


async def test_only_security_staff_may_ask(hub, db):
    general = await online_agent(hub, db, ["payment"])
    user, cid = await chat_with(hub, general, topic="payment")
    denied = await general.request({"type": "verify.request", "conversation_id": cid})
    assert denied["type"] == "error" and denied["code"] == "forbidden"
    # a user may not ask at all; a security agent not holding the chat may not either
    by_user = await user.request({"type": "verify.request", "conversation_id": cid})
    assert by_user["code"] == "forbidden"
    other = await online_agent(hub, db, ["security"])
    not_theirs = await other.request({"type": "verify.request", "conversation_id": cid})
    assert not_theirs["code"] == "forbidden"
    # a supervisor with the security skill may verify in any chat
    boss = await online_agent(hub, db, ["security"], supervisor=True)
    ack = await ask(boss, cid)
    await user.expect("verify.challenge", challenge_id=ack["challenge_id"])
    missing = await boss.request({"type": "verify.request", "conversation_id": "nope"})
    assert missing["code"] == "not_found"
    await close_all(general, user, other, boss)


async def test_the_dev_code_page_is_dev_only(services, hub):
    async with hub.http() as http:
        assert (await http.get("/api/dev/otp", params={"user_id": uid()})).status_code == 404
        assert (await http.get("/api/dev/otp")).status_code == 422
    prod = await start_hub(services, dev=False)
    try:
        async with prod.http() as http:  # no such page: 404 where dev said 422
            assert (await http.get("/api/dev/otp")).status_code == 404
    finally:
        await prod.stop()
