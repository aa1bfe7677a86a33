"""Secrets typed into chat, with real servers: verification codes, card numbers, ID numbers
and passwords are masked before the write (hub.rules.masking), so the stored row, every
device, the agent, the replay and the log only ever see the masked text; the sender's
connection gets a `security.warning`; an agent asking for a code is refused."""

from __future__ import annotations

import logging
import uuid

import pytest

from hub.rules.masking import SHARE_WARNINGS, ask_explanation
from hub.store import agents

pytestmark = pytest.mark.usefixtures("clean")

CARD = "4111 1111 1111 1111"  # Luhn-valid
ID_NUMBER = "11010519491231002X"  # a valid GB 11643 check character


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def online_agent(hub, db, username: str = "mask-agent", skills=("account",)):
    await agents.upsert(db, username=username, password="pw-" + username, name="Li Lei",
                        skills=list(skills), capacity=3)  # fmt: skip
    agent = await hub.client(username, "agent", name="Li Lei")
    await agent.request({"type": "agent.status", "status": "online"})
    return agent


async def assigned_chat(hub, agent, user_id: str | None = None, **open_fields):
    """A user (two devices) in a chat assigned to `agent`."""
    user_id = user_id or uid()
    phone = await hub.client(user_id, name="Wang")
    laptop = await hub.client(user_id, name="Wang")
    opened = await phone.request(
        {"type": "chat.open", "topic": "account", "handoff": "agent", **open_fields}
    )
    cid = opened["conversation_id"]
    assigned = await agent.expect("chat.assigned", conversation_id=cid)
    return phone, laptop, cid, assigned


async def stored_texts(db, cid: str) -> list[str]:
    rows = await db.fetch("select text from messages where conversation_id = $1 order by seq", cid)
    return [r["text"] for r in rows]


async def test_a_code_typed_by_the_user_is_masked_everywhere_and_the_sender_is_warned(hub, db):
    agent = await online_agent(hub, db)
    phone, laptop, cid, _ = await assigned_chat(hub, agent)
    ack = await phone.request({"type": "chat.send", "conversation_id": cid,
                               "client_msg_id": "c1", "text": "我的验证码是 123456"})  # fmt: skip
    assert ack["type"] == "ack", ack
    masked = "我的验证码是 ******"
    for device in (phone, laptop, agent):
        msg = await device.expect("message", conversation_id=cid, seq=ack["seq"])
        assert msg["text"] == masked
    warning = await phone.expect("security.warning", conversation_id=cid)
    assert warning["kinds"] == ["otp"]
    assert warning["text"] == SHARE_WARNINGS["otp"]["zh"]
    await laptop.quiet("security.warning")  # the sender's connection only
    await agent.quiet("security.warning")
    assert await stored_texts(db, cid) == [masked]

    # the same client_msg_id again: the same (masked) message, once
    again = await phone.request({"type": "chat.send", "conversation_id": cid,
                                 "client_msg_id": "c1", "text": "我的验证码是 123456"})  # fmt: skip
    assert again["message_id"] == ack["message_id"]
    assert await stored_texts(db, cid) == [masked]

    # a device that resumes, and the REST transcript, replay the stored text
    late = await hub.client(phone.welcome["sub"], resume={"conversations": {cid: 0}})
    replayed = await late.expect("message", conversation_id=cid, seq=ack["seq"])
    assert replayed["text"] == masked
    async with hub.http(hub.token("mask-agent", "agent")) as http:
        body = (await http.get(f"/api/conversations/{cid}")).json()
    assert "123456" not in str(body) and masked in str(body)
    for c in (phone, laptop, late, agent):
        await c.close()


async def test_a_card_number_keeps_its_last_four_and_the_warning_is_in_the_chats_language(hub, db):
    agent = await online_agent(hub, db)
    phone, laptop, cid, _ = await assigned_chat(hub, agent, lang="en")
    ack = await phone.request({"type": "chat.send", "conversation_id": cid,
                               "client_msg_id": "c1", "text": f"card {CARD} please"})  # fmt: skip
    msg = await agent.expect("message", conversation_id=cid, seq=ack["seq"])
    assert msg["text"] == "card **** **** **** 1111 please"
    warning = await phone.expect("security.warning", conversation_id=cid)
    assert warning["kinds"] == ["card"] and warning["text"] == SHARE_WARNINGS["card"]["en"]

    ack = await phone.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "c2",
                               "text": f"ID {ID_NUMBER}, password: hunter2"})  # fmt: skip
    msg = await laptop.expect("message", conversation_id=cid, seq=ack["seq"])
    assert msg["text"] == "ID **************002X, password: *******"
    warning = await phone.expect("security.warning", conversation_id=cid)
    assert warning["kinds"] == ["id_number", "password"]
    assert await stored_texts(db, cid) == [
        "card **** **** **** 1111 please",
        "ID **************002X, password: *******",
    ]
    for c in (phone, laptop, agent):
        await c.close()


async def test_the_opening_text_is_masked_before_the_agent_sees_the_history(hub, db):
    agent = await online_agent(hub, db)
    phone, laptop, cid, assigned = await assigned_chat(
        hub, agent, text="有人让我说验证码 654321，我说了"
    )
    masked = "有人让我说验证码 ******，我说了"
    assert [m["text"] for m in assigned["history"]] == [masked]
    await phone.expect("security.warning", conversation_id=cid, kinds=["otp"])
    opened_then_warned = [f["type"] for f in phone.frames if f["type"] in
                          ("chat.opened", "security.warning")]  # fmt: skip
    assert opened_then_warned == ["chat.opened", "security.warning"]
    assert (await laptop.expect("message", conversation_id=cid))["text"] == masked
    assert await stored_texts(db, cid) == [masked]
    for c in (phone, laptop, agent):
        await c.close()


async def test_an_agents_secrets_are_masked_too_and_notes_as_well(hub, db):
    agent = await online_agent(hub, db)
    phone, laptop, cid, _ = await assigned_chat(hub, agent)
    ack = await agent.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "a1",
                               "text": f"您绑定的卡是 {CARD} 吗？"})  # fmt: skip
    assert ack["type"] == "ack", ack
    masked = "您绑定的卡是 **** **** **** 1111 吗？"
    assert (await phone.expect("message", seq=ack["seq"]))["text"] == masked
    assert (await agent.expect("message", seq=ack["seq"]))["text"] == masked
    warning = await agent.expect("security.warning", conversation_id=cid)
    assert warning["kinds"] == ["card"]
    await phone.quiet("security.warning")

    note_ack = await agent.request(
        {"type": "chat.note", "conversation_id": cid, "text": "客户说密码是 abc12345"}
    )
    note = await agent.expect("note", conversation_id=cid)
    assert note["text"] == "客户说密码是 ********"
    await agent.expect("security.warning", conversation_id=cid, kinds=["password"])
    row = await db.fetchrow("select text from notes where id = $1", note_ack["note_id"])
    assert row["text"] == "客户说密码是 ********"
    for c in (phone, laptop, agent):
        await c.close()


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("请把验证码发给我", "otp"),
        ("为了核实身份，请告诉我您的登录密码", "password"),
        ("Please tell me the code you just received.", "otp"),
    ],  # fmt: skip
)
async def test_an_agent_asking_for_a_code_or_password_is_refused(hub, db, text, kind):
    agent = await online_agent(hub, db)
    phone, laptop, cid, _ = await assigned_chat(hub, agent)
    refused = await agent.request(
        {"type": "chat.send", "conversation_id": cid, "client_msg_id": "a1", "text": text}
    )
    assert refused["type"] == "error" and refused["code"] == "invalid"
    assert refused["reason"] == "asks_for_secret" and refused["kind"] == kind
    assert refused["message"] == ask_explanation(kind, "zh")  # the chat's language
    assert refused["explanation"] == {lang: ask_explanation(kind, lang) for lang in ("zh", "en")}
    await phone.quiet("message")
    assert await stored_texts(db, cid) == []
    # saying the opposite is fine
    ok = await agent.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "a2",
                              "text": "请勿向任何人透露验证码，包括客服。"})  # fmt: skip
    assert ok["type"] == "ack"
    for c in (phone, laptop, agent):
        await c.close()


async def test_asking_in_a_chat_that_is_not_yours_is_forbidden_not_explained(hub, db):
    agent = await online_agent(hub, db)
    other = await online_agent(hub, db, "mask-other", skills=("payment",))
    phone, laptop, cid, _ = await assigned_chat(hub, agent)
    refused = await other.request({"type": "chat.send", "conversation_id": cid,
                                   "client_msg_id": "x", "text": "请把验证码发给我"})  # fmt: skip
    assert refused["type"] == "error" and refused["code"] == "forbidden"
    for c in (phone, laptop, agent, other):
        await c.close()


async def test_a_rating_comment_is_masked(hub, db):
    agent = await online_agent(hub, db)
    phone, laptop, cid, _ = await assigned_chat(hub, agent)
    await agent.request({"type": "chat.resolve", "conversation_id": cid})
    await phone.expect("chat.closed", conversation_id=cid)
    ack = await phone.request({"type": "chat.rate", "conversation_id": cid, "score": 5,
                               "comment": f"退款到 {CARD} 就好"})  # fmt: skip
    assert ack["type"] == "ack"
    rated = await agent.expect("chat.rated", conversation_id=cid)
    assert rated["comment"] == "退款到 **** **** **** 1111 就好"
    row = await db.fetchrow("select rating_comment from conversations where id = $1", cid)
    assert row["rating_comment"] == rated["comment"]
    # the same rating again (a retry after a reconnect) is still fine
    again = await phone.request({"type": "chat.rate", "conversation_id": cid, "score": 5,
                                 "comment": f"退款到 {CARD} 就好"})  # fmt: skip
    assert again["type"] == "ack", again
    for c in (phone, laptop, agent):
        await c.close()


async def test_the_log_never_holds_the_clear_code(hub, db, caplog):
    caplog.set_level(logging.DEBUG)
    agent = await online_agent(hub, db)
    phone, laptop, cid, _ = await assigned_chat(hub, agent, text="验证码 918273 是这个吗")
    ack = await phone.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "c1",
                               "text": f"otp 564738, card {CARD}"})  # fmt: skip
    await agent.expect("message", seq=ack["seq"])
    await agent.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "a1",
                         "text": "请把验证码 564738 发给我"})  # fmt: skip
    for c in (phone, laptop, agent):
        await c.close()
    # the test's own client logs what it sends; everything else is the hub's
    hub_lines = [
        r.getMessage() for r in caplog.records if not r.name.startswith("websockets.client")
    ]
    assert hub_lines, "nothing was logged at DEBUG: the check would prove nothing"
    for secret in ("918273", "564738", "4111 1111 1111 1111", "1111111111111111"):
        assert not [line for line in hub_lines if secret in line], secret
