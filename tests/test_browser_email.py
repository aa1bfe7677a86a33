"""The e-mail channel in real headless Chromium: the customer waiting in the web chat asks
to be answered by mail too; the agent's console shows that, and an e-mail chat as ✉."""

from __future__ import annotations

import asyncpg

from hub.store import agents as agent_store
from hub.store import mail as mail_store
from supporthub_core.db import init_connection
from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    login_agent,
    new_page,
)
from tests.conftest import start_hub
from tests.mailcatcher import deliver
from tests.test_email import SUPPORT, mail

ALL_SKILLS = ["account", "payment", "arrival", "security", "technical", "feedback", "other"]


async def test_leave_a_message_by_mail_and_the_console_shows_email(isolated, browser):  # noqa: F811
    server = await start_hub(isolated, support_email=SUPPORT)  # dev: a listener, a catcher
    db = await asyncpg.connect(isolated.dsn)
    try:
        await init_connection(db)
        await mail_store.add_address(db, "u-web", "wang@customer.test")
        await agent_store.upsert(db, username="ann", password="pw-ann", name="Ann",
                                 skills=ALL_SKILLS, capacity=3)  # fmt: skip

        ctx, page, problems = await new_page(browser, viewport={"width": 1280, "height": 800})
        await page.goto(f"{server.url}/widget/?user=u-web&name=Wang&lang=en")
        await page.wait_for_selector("#topics .topic")
        await page.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
        await page.click("[data-topic=payment]")
        await page.click("#btn-start-agent")
        await page.wait_for_selector("#queue-card:not([hidden]) #btn-mail")
        await page.click("#btn-mail")
        await page.wait_for_selector("#queue-mail >> text=w***@customer.test")
        assert await db.fetchval(
            "select reply_email from conversations where user_id = 'u-web'"
        ) == "wang@customer.test"  # fmt: skip

        actx, console, console_problems = await new_page(
            browser, viewport={"width": 1440, "height": 900}
        )
        await login_agent(console, server.url, "ann", "pw-ann")
        await console.click("#status-switch [data-status=online]")
        await console.wait_for_selector("#conv:not([hidden])")
        await console.wait_for_selector("#conv-reply-email")

        # a mail from a verified address: an e-mail chat, ✉ in the header
        async with server.http() as http:
            listen = (await http.get("/dev/mail", params={"format": "json"})).json()["listen"]
        await deliver(int(listen.rpartition(":")[2]),
                      mail("card charged twice", sender="wang@customer.test", auth=None))  # fmt: skip
        email_cid = await db.fetchval("select id from conversations where channel = 'email'")
        item = console.locator(f".chat-item[data-cid='{email_cid}']")
        await item.wait_for()
        await item.click()
        await console.wait_for_selector("#conv-channel >> text=✉")
        problems.assert_clean(allow=EXPECTED_NOISE)
        console_problems.assert_clean(allow=EXPECTED_NOISE)
        await ctx.close()
        await actx.close()
    finally:
        await db.close()
        await server.stop()
