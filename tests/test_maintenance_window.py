"""A maintenance window on real servers: its notice and the banner's text say what is
paused and the expected end in each device's language and zone; a refused payment says
when it is expected back, and so does the help bot; its end is announced."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from hub.rules.clock import local_time
from payments.seed import add_account

pytestmark = pytest.mark.usefixtures("clean")

END = "2026-12-01T06:00:00+00:00"  # 14:00 in Beijing, 01:00 in New York
NY = "America/New_York"
ZH_END, EN_END = "2026-12-01 14:00（北京时间）", "2026-12-01 01:00 (GMT-5)"


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def pay(hub, payer: str, to: str, speed: str) -> dict:
    async with hub.http(hub.token(payer)) as http:
        resp = await http.post("/api/payments", json={
            "to_account": to, "amount": "5.00", "speed": speed,
            "idempotency_key": uuid.uuid4().hex})  # fmt: skip
    assert resp.status_code == 202, resp.text
    return resp.json()


async def bot_texts(client, cid: str, n: int) -> str:
    got = []
    while len(got) < n:
        m = await client.expect("message", conversation_id=cid, timeout=15)
        if m["sender"]["role"] == "bot":
            got.append(m["text"])
    return "\n".join(got)


async def test_window_notice_refusal_bot_and_end_in_each_language(hub, services):
    payer, payee = uid(), uid()
    await add_account(services.dsn, payer, "Dave", "100.00")
    await add_account(services.dsn, payee, "Erin", "0.00")
    zh = await hub.client(payer, hello_fields={"lang": "zh", "tz": "Asia/Shanghai"})
    en = await hub.client(payer, hello_fields={"lang": "en", "tz": "America/New_York"})
    sup = hub.http(hub.token("sam", "supervisor"))
    try:
        async with sup as http:
            bad = await http.post(
                "/api/maintenance", json={"on": True, "expected_end": "2026-12-01T06:00:00"}
            )
            assert bad.status_code == 422  # an end without a zone is never guessed
            on = await http.post("/api/maintenance", json={"on": True, "expected_end": END,
                                                           "functions": ["standard"]})  # fmt: skip
            assert on.status_code == 200, on.text
            assert on.json()["in_force"] is True and on.json()["functions"] == ["standard"]
            n_zh = await zh.expect("notification", kind="system.notice")
            n_en = await en.expect("notification", kind="system.notice")
            assert n_zh["data"]["window"]["expected_end"] == END
            assert (
                n_zh["title"] == "系统维护通知"
                and ZH_END in n_zh["body"]
                and "普通转账" in n_zh["body"]
            )
            assert n_en["title"] == "Scheduled maintenance"
            assert EN_END in n_en["body"] and "standard transfers" in n_en["body"]

            # a device connecting now gets the banner's text in welcome, in its words
            late = await hub.client(uid(), hello_fields={"lang": "en", "tz": "America/New_York"})
            banner = late.welcome["maintenance"]
            assert banner["active"] is True and EN_END in banner["body"]
            await late.close()

            # standard transfers are refused with the expected end; instant ones go through
            refused = await pay(hub, payer, payee, "standard")
            assert (refused["status"], refused["reason"]) == ("failed", "maintenance")
            assert refused["maintenance_until"] == END
            card = await zh.expect("notification", kind="transaction.status")
            assert f"预计 {ZH_END}恢复" in card["body"]
            card_en = await en.expect("notification", kind="transaction.status")
            assert f"expected back by {EN_END}" in card_en["body"]
            assert (await pay(hub, payer, payee, "instant"))["status"] == "succeeded"

            # the help bot, asked about the failed transfer, says when it is expected back
            cid = (await zh.request({"type": "chat.open", "topic": "payment",
                                     "text": "转账失败了"}))["conversation_id"]  # fmt: skip
            # (in the zone the user's devices said last: New York's)
            text = await bot_texts(zh, cid, 4)  # greeting, article, the window, their payment
            assert f"预计 {local_time(END, NY, 'zh')}恢复" in text, text
            cid_en = (await en.request({"type": "chat.open", "topic": "payment",
                                        "text": "my transfer failed"}))["conversation_id"]  # fmt: skip
            text_en = await bot_texts(en, cid_en, 4)
            assert f"expected to end by {EN_END}" in text_en, text_en

            # someone with no payment at all asks: the window itself
            asker = await hub.client(uid(), hello_fields={"lang": "en", "tz": NY})
            cid_new = (await asker.request({"type": "chat.open", "topic": "payment",
                                            "text": "my transfer failed"}))["conversation_id"]  # fmt: skip
            text_new = await bot_texts(asker, cid_new, 3)
            assert f"standard transfers are paused; expected back by {EN_END}" in text_new, text_new
            await asker.close()

            off = await http.post("/api/maintenance", json={"on": False})
            assert off.json()["active"] is False and off.json()["broadcast_id"]
            over_zh = await zh.expect("notification", kind="system.notice")
            over_en = await en.expect("notification", kind="system.notice")
            assert over_zh["data"]["maintenance"] is False
            assert over_zh["title"] == "维护已结束" and "普通转账已恢复正常" in over_zh["body"]
            assert over_en["title"] == "Maintenance is over"
            after = await hub.client(uid())
            assert "maintenance" not in after.welcome
            await after.close()
    finally:
        async with hub.http(hub.token("sam", "supervisor")) as http:
            await http.post("/api/maintenance", json={"on": False})
        await zh.close()
        await en.close()


async def test_maintenance_command_announces_the_window_and_its_end(hub, services):
    from tests.conftest import SECRET, run_cli

    user = await hub.client(uid(), hello_fields={"lang": "en", "tz": NY})
    env = {"HUB_DATABASE_URL": services.dsn, "HUB_REDIS_URL": services.redis_url,
           "HUB_SECRET": SECRET}  # fmt: skip
    try:
        on = await asyncio.to_thread(run_cli, "maintenance", "on", "--until", "2026-12-01T14:00",
                                     "--tz", "Asia/Shanghai", "--functions", "standard", env=env)  # fmt: skip
        assert on.returncode == 0, on.stderr
        notice = await user.expect("notification", kind="system.notice")
        assert notice["data"]["window"]["expected_end"] == END
        assert f"expected back by {EN_END}" in notice["body"]
        bad = await asyncio.to_thread(run_cli, "maintenance", "on", "--until", "2026-12-01T14:00",
                                      env=env)  # fmt: skip
        assert bad.returncode != 0 and "tz" in bad.stderr  # a time without a zone is refused
    finally:
        off = await asyncio.to_thread(run_cli, "maintenance", "off", env=env)
        assert off.returncode == 0, off.stderr
    over = await user.expect("notification", kind="system.notice")
    assert over["title"] == "Maintenance is over"
    await user.close()
