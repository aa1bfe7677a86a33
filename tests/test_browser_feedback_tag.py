"""An agent tags feedback for the product team from their own chat in real headless
Chromium: the ⚑ on a customer's message and the chat's ⋯ menu send `feedback.tag`, and
both items are in `GET /api/feedback` (tagged by the agent, with the message's text); the
marks come back after a reload, and the chat's tag carries the agent's note."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

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


@dataclass
class Console:
    server: Any
    page: Any
    problems: Any
    user: Any
    cid: str


@pytest.fixture
async def console(isolated, browser):  # noqa: F811
    """Agent mei's console, online, with a customer's chat assigned to her and open."""
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
        opened = await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent",
                                     "text": "你好，我想问一下我的转账", "lang": "zh"})  # fmt: skip
        cid = opened["conversation_id"]
        await page.wait_for_selector(f".chat-item[data-cid='{cid}']")
        await page.wait_for_selector("#conv:not([hidden])")
        yield Console(server, page, problems, user, cid)
        problems.assert_clean(allow=EXPECTED_NOISE)
        await ctx.close()
        await user.close()
    finally:
        await db.close()
        await server.stop()


async def test_an_agent_tags_a_message_and_the_chat_as_feedback(console):
    server, page, user, cid = console.server, console.page, console.user, console.cid
    sent = await user.request({"type": "chat.send", "conversation_id": cid,
                               "client_msg_id": "fb1", "text": "希望转账页面能先显示手续费"})  # fmt: skip
    said = page.locator("#transcript .msg.user", has_text="希望转账页面能先显示手续费")
    flag = said.locator(".msg-feedback")
    assert await flag.get_attribute("title") == "记为产品反馈"
    await flag.click()
    await page.wait_for_selector("#transcript .msg.user .msg-feedback.on")
    assert await said.locator(".msg-feedback").get_attribute("title") == "已记为产品反馈"

    # the whole chat, from the chat's menu (its dialog's note is optional)
    await page.click("#conv-menu > summary")
    await page.click("#btn-feedback-chat")
    await page.click("#feedback-go")
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


async def reload_on(page, cid: str) -> None:
    """Reload the console (the session survives) and open that chat again."""
    await page.reload()
    await page.wait_for_selector("#conn-state.st-open")
    await page.click(f".chat-item[data-cid='{cid}']")
    await page.wait_for_selector("#transcript .msg.user")


async def test_tags_come_back_after_a_reload_and_the_chat_carries_a_note(console):
    """The ⚑ of a tagged message and the chat's tag are the hub's, not the page's memory:
    after a reload both show as done (by whom, too); the chat's tag carries the note typed
    in its dialog into `GET /api/feedback` and the CSV."""
    server, page, cid = console.server, console.page, console.cid
    flag = "#transcript .msg.user .msg-feedback"
    await page.click(flag)
    await page.wait_for_selector(f"{flag}.on")
    await reload_on(page, cid)
    await page.wait_for_selector(f"{flag}.on")
    assert await page.get_attribute(flag, "data-tagged-by") == "mei"
    assert await page.get_attribute(flag, "title") == "已记为产品反馈"

    note = "客户希望转账前就能看到手续费"
    await page.click("#conv-menu > summary")
    await page.click("#btn-feedback-chat")
    await page.wait_for_selector("#dlg[open] #feedback-note")
    assert await page.get_attribute("#feedback-note", "maxlength") == "2000"
    await page.fill("#feedback-note", note)
    assert await page.text_content("#feedback-note-count") == f"{len(note)} / 2000"
    await page.click("#feedback-go")
    await page.wait_for_selector("#dlg", state="hidden")
    await page.wait_for_selector("#btn-feedback-chat.on[disabled]", state="attached")
    await reload_on(page, cid)
    await page.wait_for_selector("#btn-feedback-chat.on[disabled]", state="attached")
    await page.wait_for_selector(f"{flag}.on")

    async with server.http(server.token("sam", "supervisor")) as http:
        items = (await http.get("/api/feedback", params={"days": 1})).json()["items"]
        csv_text = (await http.get("/api/feedback/export.csv", params={"days": 1})).text
    mine = {i["message_id"]: i for i in items if i["conversation_id"] == cid}
    assert len(mine) == 2 and mine[None]["note"] == note and mine[None]["tagged_by"] == "mei"
    rows = [r for r in csv.DictReader(io.StringIO(csv_text)) if r["conversation_id"] == cid]
    assert {r["note"] for r in rows} == {note, ""}
