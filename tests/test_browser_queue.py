"""What a waiting customer sees in the web chat, in real headless Chromium: nobody online
said plainly (no "about 3 minutes"), the choice to leave a message, then a place in one
line and a wait once someone who can help is online."""

from __future__ import annotations

import asyncpg

from hub.store import agents as agent_store
from supporthub_core.db import init_connection
from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    new_page,
    screenshot,
)
from tests.conftest import start_hub


async def test_widget_shows_nobody_online_then_place_and_wait(isolated, browser):  # noqa: F811
    # a store of its own: the session's hub (no opening hours) must not announce these chats
    server = await start_hub(isolated, support_hours="09:00-18:00")
    db = await asyncpg.connect(isolated.dsn)
    await init_connection(db)
    try:
        await agent_store.upsert(
            db, username="pat", password="pw", name="Pat", skills=["account", "other"], capacity=1
        )
        ctx, page, problems = await new_page(browser, viewport={"width": 1280, "height": 800})
        await page.goto(f"{server.url}/widget/?user=u-wait&name=Emma&lang=en")
        await page.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
        await page.click("[data-topic=account]")
        await page.click("#btn-start-agent")
        line = page.locator("#queue-card:not([hidden]) #queue-line:has-text('No one who can help')")
        await line.wait_for()
        text = await line.inner_text()
        assert text.startswith("No one who can help with this is online right now.")
        assert "Opening hours: 09:00-18:00 (Asia/Shanghai)" in text
        assert "min" not in await page.inner_text("#queue-card")  # no made-up waiting time
        await screenshot(page, "widget-queue-unstaffed")
        await page.click("#btn-leave-message")
        await page.wait_for_selector("#queue-left >> text=Message left")
        await page.wait_for_selector(".msg >> text=Your message is saved.")

        # the agent comes online with a chat already: a place in one line, and a wait
        agent = await server.client("pat", "agent")
        await agent.request({"type": "agent.status", "status": "online"})
        await agent.expect("chat.assigned")
        ctx2, other, problems2 = await new_page(browser, viewport={"width": 1280, "height": 800})
        await other.goto(f"{server.url}/widget/?user=u-next&name=Lin")
        await other.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
        await other.click("[data-topic=other]")
        await other.click("#btn-start-agent")
        await other.wait_for_selector("#queue-card:not([hidden]) #queue-line >> text=您是下一位")
        eta = await other.inner_text("#queue-card .queue-eta")
        assert eta.startswith("预计等待")
        # a third customer, on another topic served by the same agent: behind Lin, with a
        # wait from the agent's handle time (the default 180 s while it has no history)
        ctx3, third, problems3 = await new_page(browser, viewport={"width": 1280, "height": 800})
        await third.goto(f"{server.url}/widget/?user=u-third&name=Ann&lang=en")
        await third.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
        await third.click("[data-topic=account]")
        await third.click("#btn-start-agent")
        await third.wait_for_selector("#queue-line >> text=1 person ahead of you")
        assert await third.inner_text("#queue-card .queue-eta") == "Estimated wait about 6 min"
        await screenshot(third, "widget-queue-behind")
        await screenshot(other, "widget-queue-place")
        await agent.close()
        for p in (problems, problems2, problems3):
            p.assert_clean(allow=EXPECTED_NOISE)
        for c in (ctx, ctx2, ctx3):
            await c.close()
    finally:
        await db.close()
        await server.stop()
