"""The help bot in a real chat: answers from the help center, hands over to a person."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from hub.store import agents

pytestmark = pytest.mark.usefixtures("clean")


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def bot_messages(client, cid: str, n: int) -> list[dict]:
    got = []
    while len(got) < n:
        m = await client.expect("message", conversation_id=cid)
        if m["sender"]["role"] == "bot":
            got.append(m)
    return got


async def test_bot_answers_in_chinese_with_an_article(hub):
    user = await hub.client(uid())
    opened = await user.request(
        {"type": "chat.open", "topic": "account", "text": "收不到验证码怎么办"}
    )
    assert opened["status"] == "bot"
    cid = opened["conversation_id"]
    greeting, answer = await bot_messages(user, cid, 2)
    assert greeting["sender"]["id"] == "helpbot"
    assert "验证码" in answer["text"]
    await user.close()


async def test_bot_answers_in_english(hub):
    user = await hub.client(uid())
    opened = await user.request({"type": "chat.open", "topic": "arrival", "lang": "en"})
    cid = opened["conversation_id"]
    [greeting] = await bot_messages(user, cid, 1)
    await user.request(
        {
            "type": "chat.send",
            "conversation_id": cid,
            "client_msg_id": "q1",
            "text": "my transfer is stuck, money has not arrived",
        }
    )
    [answer] = await bot_messages(user, cid, 1)
    assert "arrival-delay" in answer["text"] or "transfer" in answer["text"].lower()
    assert greeting["text"] != answer["text"]
    await user.close()


async def test_asking_for_a_person_escalates_with_the_history(hub, db):
    await agents.upsert(db, username="alice", password="pw", name="Alice",
                        skills=["payment", "account"], capacity=2)  # fmt: skip
    agent = await hub.client("alice", "agent")
    await agent.request({"type": "agent.status", "status": "online"})
    user = await hub.client(uid())
    cid = (await user.request({"type": "chat.open", "topic": "payment", "text": "付款失败了"}))[
        "conversation_id"
    ]
    await bot_messages(user, cid, 2)
    await user.request(
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": "h", "text": "转人工"}
    )
    assigned = await agent.expect("chat.assigned", conversation_id=cid, timeout=15)
    roles = [m["sender"]["role"] for m in assigned["history"]]
    assert roles[:3] == ["user", "bot", "bot"] and "user" in roles[3:]
    await user.expect("chat.assigned", conversation_id=cid)
    # the bot is quiet once a person has the chat
    await user.request(
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": "after", "text": "你好"}
    )
    await user.quiet(
        lambda f: f.get("type") == "message" and f["sender"]["role"] == "bot" and f["seq"] > 6, 0.8
    )
    for c in (agent, user):
        await c.close()


async def test_escalate_frame_moves_the_chat_to_the_queue(hub):
    user = await hub.client(uid())
    cid = (await user.request({"type": "chat.open", "topic": "technical"}))["conversation_id"]
    ack = await user.request({"type": "chat.escalate", "conversation_id": cid})
    assert ack["type"] == "ack" and ack["status"] == "queued"
    queued = await user.expect("chat.queued", conversation_id=cid)
    assert queued["position"] == 1
    other = await hub.client(uid())
    err = await other.request({"type": "chat.escalate", "conversation_id": cid})
    assert err["code"] == "not_found"
    for c in (user, other):
        await c.close()


@pytest.mark.parametrize("text", ["x", "转人工", "I want to talk to a person"])
async def test_closing_while_the_bot_answers_ends_the_chat_quietly(hub, db, caplog, text):
    user = await hub.client(uid())
    cid = (await user.request({"type": "chat.open", "topic": "other", "text": text}))[
        "conversation_id"
    ]
    await user.send({"type": "chat.close", "conversation_id": cid})
    await user.expect("chat.closed", conversation_id=cid)
    await asyncio.sleep(1.5)  # whatever the bot was doing has finished
    assert await db.fetchval("select status from conversations where id = $1", cid) == "closed"
    assert "died" not in caplog.text and "Traceback" not in caplog.text
    await user.close()


async def test_the_bot_cannot_post_into_a_closed_chat(hub, db):
    user = await hub.client(uid())
    cid = (await user.request({"type": "chat.open", "topic": "other"}))["conversation_id"]
    await user.request({"type": "chat.close", "conversation_id": cid})
    conv = await db.fetchrow("select * from conversations where id = $1", cid)
    before = await db.fetchval("select count(*) from messages where conversation_id = $1", cid)
    assert await hub.hub.bot.say(conv, "too late") is False
    await hub.hub.bot.on_user_message(cid, "转人工")
    assert (
        await db.fetchval("select count(*) from messages where conversation_id = $1", cid) == before
    )
    await user.quiet(lambda f: f.get("text") == "too late", 0.5)
    await user.close()


async def two_agents(hub, db):
    """A general agent and a security one, both online: where a chat lands shows its topic."""
    await agents.upsert(db, username="gen", password="pw", name="Gen",
                        skills=["other", "account", "payment"], capacity=3)  # fmt: skip
    await agents.upsert(db, username="sec", password="pw", name="Sec",
                        skills=["security"], capacity=3)  # fmt: skip
    clients = []
    for username in ("gen", "sec"):
        client = await hub.client(username, "agent")
        await client.request({"type": "agent.status", "status": "online"})
        clients.append(client)
    return clients


async def test_a_fraud_question_gets_the_guidance_and_yes_reaches_security(hub, db):
    general, security = await two_agents(hub, db)
    user = await hub.client(uid())
    opened = await user.request(
        {"type": "chat.open", "topic": "other", "text": "有人打电话让我说验证码 123456"}
    )
    cid = opened["conversation_id"]
    _, guidance, offer = await bot_messages(user, cid, 3)
    assert "/widget/help/anti-fraud?lang=zh" in guidance["text"]
    assert "绝不会索要验证码或密码" in guidance["text"] and "安全专员" in offer["text"]
    await user.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "y",
                        "text": "是"})  # fmt: skip
    assigned = await security.expect("chat.assigned", conversation_id=cid, timeout=15)
    assert assigned["topic"] == "security"
    texts = [m["text"] for m in assigned["history"]]
    assert texts[0] == "有人打电话让我说验证码 ******"  # the bot read, and kept, only this
    assert not any("123456" in t for t in texts)
    await general.quiet(lambda f: f.get("conversation_id") == cid)
    for c in (user, general, security):
        await c.close()


async def test_one_tap_on_talk_to_a_person_after_the_guidance_reaches_security(hub, db):
    general, security = await two_agents(hub, db)
    user = await hub.client(uid())
    opened = await user.request({"type": "chat.open", "topic": "other", "lang": "en"})
    cid = opened["conversation_id"]
    await bot_messages(user, cid, 1)
    await user.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "q",
                        "text": "I got a text with a link asking me to log in"})  # fmt: skip
    guidance, offer = await bot_messages(user, cid, 2)
    assert "never ask for codes or passwords" in guidance["text"]
    ack = await user.request({"type": "chat.escalate", "conversation_id": cid})
    assert ack["status"] == "queued"
    assigned = await security.expect("chat.assigned", conversation_id=cid, timeout=15)
    assert assigned["topic"] == "security"
    for c in (user, general, security):
        await c.close()
