"""An agent tags feedback for the product team from their own chat in real headless
Chromium: the ⚑ on a customer's message and the chat's ⋯ menu send `feedback.tag`, and
both items are in `GET /api/feedback` (tagged by the agent, with the message's text)."""

from __future__ import annotations

import uuid

import asyncpg

from hub.store import agents
from supporthub_core.db import init_connection
from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    eventually,
    login_agent,
    new_page,
)
from tests.conftest import start_hub


async def test_an_agent_tags_a_message_and_the_chat_as_feedback(isolated, browser):  # noqa: F811
    server = await start_hub(isolated, assignment_timeout_s=0)
    db = await asyncpg.connect(isolated.dsn)
    await init_connection(db)
    try:
        await agents.upsert(db, username="mei", password="pw-mei", name="小美",
                            skills=["payment"], capacity=2)  # fmt: skip
        ctx, page, problems = await new_page(browser, viewport={"width": 1440, "height": 900})
        await login_agent(page, server.url, "mei", "pw-mei")
        await page.click("#status-switch [data-status=online]")
        await page.wait_for_selector("#status-switch [data-status=online].on")

        user = await server.client(f"u-{uuid.uuid4().hex[:6]}", "user", name="周女士")
        cid = (
            await user.request(
                {
                    "type": "chat.open",
                    "topic": "payment",
                    "handoff": "agent",
                    "text": "你好，我想问一下我的转账",
                    "lang": "zh",
                }
            )  # fmt: skip
        )["conversation_id"]
        await page.wait_for_selector(f".chat-item[data-cid='{cid}']")
        await page.wait_for_selector("#conv:not([hidden])")
        sent = await user.request({"type": "chat.send", "conversation_id": cid,
                                   "client_msg_id": "fb1", "text": "希望转账页面能先显示手续费"})  # fmt: skip
        said = page.locator("#transcript .msg.user", has_text="希望转账页面能先显示手续费")
        flag = said.locator(".msg-feedback")
        assert await flag.get_attribute("title") == "记为产品反馈"
        await flag.click()
        await page.wait_for_selector("#transcript .msg.user .msg-feedback.on")
        assert await said.locator(".msg-feedback").get_attribute("title") == "已记为产品反馈"

        # the whole chat, from the chat's menu
        await page.click("#conv-menu > summary")
        await page.click("#btn-feedback-chat")
        await page.wait_for_selector("#btn-feedback-chat.on[disabled]", state="attached")
        # in English too: the chat stays tagged, its message too
        await page.click("#app-view [data-lang-toggle]")
        assert await page.inner_text("#conv-menu > summary") == "⋯ More"
        assert await page.text_content("#btn-feedback-chat") == "Sent to the product team"
        assert await said.locator(".msg-feedback").get_attribute("title") == (
            "Sent to the product team"
        )

        async with server.http(server.token("sam", "supervisor")) as http:

            async def items():
                body = (await http.get("/api/feedback", params={"days": 1})).json()
                mine = [i for i in body["items"] if i["conversation_id"] == cid]
                return mine if len(mine) == 2 else None

            tagged = await eventually(items)
        by_message = {i["message_id"]: i for i in tagged}
        message_id = sent.get("message_id") or next(k for k in by_message if k)
        assert "希望转账页面能先显示手续费" in by_message[message_id]["text"]
        assert by_message[message_id]["tagged_by"] == "mei"
        assert by_message[None]["tagged_by"] == "mei" and by_message[None]["source"]
        problems.assert_clean(allow=EXPECTED_NOISE)
        await ctx.close()
        await user.close()
    finally:
        await db.close()
        await server.stop()
