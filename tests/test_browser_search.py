"""Search in the console, in real Chromium: a Chinese phrase and a transaction id find the
chat, the hit is marked, and it opens read-only."""

from __future__ import annotations

import uuid

from hub.store import agents as agent_store
from hub.store.notifications import NotificationWrite
from tests.browser import EXPECTED_NOISE, browser, login_agent, new_page  # noqa: F401


async def test_search_finds_a_chinese_phrase_and_a_transaction_id(hub, clean, db, browser):  # noqa: F811
    await agent_store.upsert(db, username="lin", password="pw-lin", name="小林",
                             skills=["payment"], capacity=3, supervisor=True)  # fmt: skip
    user_id = f"u-{uuid.uuid4().hex[:6]}"
    user = await hub.client(user_id, name="周女士")
    await user.request({"type": "chat.open", "topic": "payment", "handoff": "agent",
                        "text": "我给妈妈的转账一直显示处理中，已经两天了"})  # fmt: skip
    tx = f"tx_{uuid.uuid4().hex[:12]}"
    await hub.hub.store.writer.submit(NotificationWrite(
        user_id, "transaction.status", "t", "b", {"transaction_id": tx, "status": "processing"}
    ))  # fmt: skip

    ctx, page, problems = await new_page(browser, viewport={"width": 1280, "height": 800})
    await login_agent(page, hub.url, "lin", "pw-lin")
    await page.fill("#search-input", "一直显示处理中")
    await page.press("#search-input", "Enter")
    hit = page.locator("#search-list .search-hit").first
    await hit.wait_for()
    assert await hit.locator("mark").inner_text() == "一直显示处理中"
    assert "周女士" in await hit.inner_text()
    await hit.click()
    await page.wait_for_selector("dialog .transcript.readonly >> text=已经两天了")
    await page.keyboard.press("Escape")

    await page.fill("#search-input", tx)
    await page.press("#search-input", "Enter")
    await page.wait_for_selector("#search-list .search-hit >> text=周女士")
    problems.assert_clean(allow=EXPECTED_NOISE)
    await ctx.close()
    await user.close()
