"""Language and time zone per device, on real servers: each connection of a user reads
notifications in the language and zone its `hello` said, and the bot's answers and the
notification cards show a time the same way (hub.rules.clock)."""

from __future__ import annotations

import re
import uuid

import pytest

from payments.seed import add_account
from tests.client import MSGPACK
from tests.conftest import start_hub
from tests.events import publish_signed

pytestmark = pytest.mark.usefixtures("clean")

EXPECTED_BY = "2026-11-25T13:03:00+00:00"  # 21:03 in Beijing, 08:03 in New York (EST)
LABELLED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d \((GMT[^)]*|Beijing time)\)")


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def processing(user_id: str) -> dict:
    return {
        "event_id": f"ev-{uuid.uuid4().hex}",
        "type": "transaction.status",
        "user_id": user_id,
        "occurred_at": "2026-11-25T08:00:00+00:00",
        "transaction_id": f"tx_{uuid.uuid4().hex[:16]}",
        "status": "processing",
        "amount": "200.00",
        "currency": "CNY",
        "speed": "standard",
        "expected_by": EXPECTED_BY,
    }


def freeze(user_id: str) -> dict:
    return {
        "event_id": f"ev-{uuid.uuid4().hex}",
        "type": "security.alert",
        "user_id": user_id,
        "occurred_at": "2026-11-25T08:00:00+00:00",
        "alert": "account_frozen",
        "severity": "critical",
        "details": {"rule": "velocity", "count": 11, "window_s": 60},
    }


@pytest.fixture
async def slow_hub(services):
    """A hub whose standard transfers stay `processing` for the whole test."""
    server = await start_hub(services, settlement_delay_s=86400.0)
    yield server
    await server.stop()


async def test_two_devices_of_one_user_each_read_their_own_language_and_zone(slow_hub, services):
    user = uid()
    phone = await slow_hub.client(user, hello_fields={"lang": "zh", "tz": "Asia/Shanghai"})
    # the other phone speaks msgpack: the binary fast path must not skip its rendering
    tablet = await slow_hub.client(
        user, proto=MSGPACK, hello_fields={"lang": "en", "tz": "America/New_York"}
    )
    await publish_signed(services.redis_url, [processing(user), freeze(user)])

    zh_tx = await phone.expect("notification", kind="transaction.status")
    en_tx = await tablet.expect("notification", kind="transaction.status")
    assert zh_tx["seq"] == en_tx["seq"] and zh_tx["notification_id"] == en_tx["notification_id"]
    assert zh_tx["title"] == "转账处理中"
    assert "预计 2026-11-25 21:03（北京时间）前到账" in zh_tx["body"]
    assert en_tx["title"] == "Transfer processing"
    assert "expected by 2026-11-25 08:03 (GMT-5)" in en_tx["body"]
    assert zh_tx["data"] == en_tx["data"]  # the event's own fields are the same

    zh_alert = await phone.expect("notification", kind="security.alert")
    en_alert = await tablet.expect("notification", kind="security.alert")
    assert zh_alert["title"] == "账户已临时冻结" and en_alert["title"] == "Account frozen"

    # the urgent security chat's opening system message, each in the device's language
    def opening(f: dict) -> bool:
        return f.get("type") == "message" and f["sender"]["role"] == "system"

    zh_open, en_open = await phone.expect(opening), await tablet.expect(opening)
    assert zh_open["message_id"] == en_open["message_id"] and zh_open["seq"] == en_open["seq"]
    assert zh_open["text"].startswith("安全提醒") and en_open["text"].startswith("Security notice")

    # nobody on the urgent ladder is online: the queue notice, each in its language too
    def urgent(f: dict) -> bool:
        return f.get("type") == "chat.queued" and "notice" in f

    zh_q, en_q = await phone.expect(urgent), await tablet.expect(urgent)
    assert zh_q["notice"].startswith("您的账户已受到保护"), zh_q["notice"]
    assert en_q["notice"].startswith("Your account is protected"), en_q["notice"]

    # a device that comes back later gets the replay in its own language too
    later = await slow_hub.client(
        user, resume={"notifications_after": 0}, hello_fields={"lang": "en", "tz": "Europe/Berlin"}
    )
    replayed = await later.expect("notification", kind="transaction.status")
    assert "expected by 2026-11-25 14:03 (GMT+1)" in replayed["body"]
    replayed_opening = await later.expect(opening)  # the open chat is replayed too
    assert replayed_opening["text"].startswith("Security notice")
    for c in (phone, tablet, later):
        await c.close()


async def test_a_bad_time_zone_in_hello_is_a_bad_frame_and_the_hello_may_be_sent_again(slow_hub):
    from tests.client import HubClient

    user = uid()
    client = await HubClient.connect(slow_hub.ws_url, slow_hub.token(user), hello=False)
    await client.send({"type": "hello", "token": slow_hub.token(user), "tz": "Mars/Olympus"})
    error = await client.expect("error")
    assert error["code"] == "bad_frame" and "tz" in error["message"]
    await client.send({"type": "hello", "token": slow_hub.token(user), "tz": "Asia/Tokyo"})
    await client.expect("welcome")
    await client.close()


async def test_the_bot_and_the_card_show_the_same_expected_time_in_the_devices_zone(
    slow_hub, services
):
    payer, payee = uid(), uid()
    await add_account(services.dsn, payer, "Erin 周", "1000.00")
    await add_account(services.dsn, payee, "Frank 吴", "0.00")
    device = await slow_hub.client(payer, hello_fields={"lang": "en", "tz": "America/New_York"})
    async with slow_hub.http(slow_hub.token(payer)) as http:
        resp = await http.post(
            "/api/payments",
            json={"to_account": payee, "amount": "66.00", "speed": "standard",
                  "idempotency_key": uuid.uuid4().hex},
        )  # fmt: skip
    assert resp.status_code == 202, resp.text
    tx_id = resp.json()["transaction_id"]

    card = await device.expect("notification", kind="transaction.status")
    assert card["data"]["transaction_id"] == tx_id and card["data"]["status"] == "processing"
    on_card = LABELLED.findall(card["body"])
    when_card = LABELLED.search(card["body"])
    assert when_card and on_card[0].startswith("GMT-"), card["body"]  # New York, said so

    cid = (
        await device.request(
            {
                "type": "chat.open",
                "topic": "arrival",
                "lang": "en",
                "text": f"where is my transfer {tx_id}",
            }
        )  # fmt: skip
    )["conversation_id"]
    answer = None
    while answer is None:
        m = await device.expect("message", conversation_id=cid)
        if m["sender"]["role"] == "bot" and tx_id in m["text"]:
            answer = m
    when_bot = LABELLED.search(answer["text"])
    assert when_bot, answer["text"]
    assert when_bot.group(0) == when_card.group(0)  # one time, one label, on both
    await device.close()


async def test_the_agent_sees_the_language_of_the_chat_not_of_the_last_device(slow_hub, db):
    from hub.store import agents

    await agents.upsert(db, username="lina", password="pw", name="Lina",
                        skills=["payment"], capacity=2)  # fmt: skip
    user = uid()
    phone = await slow_hub.client(user, hello_fields={"lang": "zh", "tz": "Asia/Shanghai"})
    cid = (
        await phone.request(
            {"type": "chat.open", "topic": "payment", "text": "付款失败了", "handoff": "agent"}
        )
    )["conversation_id"]
    # an English laptop of the same customer connects afterwards
    laptop = await slow_hub.client(user, hello_fields={"lang": "en", "tz": "Europe/London"})
    assert await db.fetchval("select lang from users where id = $1", user) == "en"
    agent = await slow_hub.client("lina", "agent")
    await agent.request({"type": "agent.status", "status": "online"})
    assigned = await agent.expect("chat.assigned", conversation_id=cid, timeout=15)
    assert assigned["user"]["lang"] == "zh"  # the chat is in Chinese
    for c in (agent, phone, laptop):
        await c.close()
