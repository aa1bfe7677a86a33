"""A supervisor schedules a campaign from the console in Chromium: the notice in both
languages, an audience whose size is shown before sending, a send time in a named zone;
the list shows it with its delivered and read counts, and a scheduled one is cancelled
from there."""

from __future__ import annotations

import uuid

from hub.store import agents as agent_store
from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    eventually,
    login_agent,
    new_page,
)


async def test_supervisor_schedules_previews_and_cancels_campaigns(hub, clean, db, browser):  # noqa: F811
    await agent_store.upsert(db, username="chen", password="pw-chen", name="老陈", skills=["payment"],
                             capacity=2, supervisor=True)  # fmt: skip
    en_user = f"u-{uuid.uuid4().hex[:8]}"
    en = await hub.client(en_user, hello_fields={"lang": "en"})
    await (await hub.client(hello_fields={"lang": "zh"})).close()

    ctx, page, problems = await new_page(browser, viewport={"width": 1440, "height": 900})
    await login_agent(page, hub.url, "chen", "pw-chen")
    await page.click("#view-tabs [data-view=supervisor]")
    await page.wait_for_selector("#supervisor-view:not([hidden]) #sv-campaigns")

    async def fill(title: str) -> None:
        await page.click("#campaign-new")
        await page.wait_for_selector("#dlg[open] #cmp-zh-title")
        await page.select_option("#cmp-category", "security")
        await page.fill("#cmp-zh-title", f"{title} 谨防钓鱼")
        await page.fill("#cmp-zh-body", "客服不会索要验证码。")
        await page.fill("#cmp-en-title", f"{title} Beware of phishing")
        await page.fill("#cmp-en-body", "We never ask for codes.")
        await page.fill("#cmp-link", "account-security")
        await page.select_option("#cmp-audience", "lang")
        await page.select_option("#cmp-lang", "en")

    # now, to English readers: one of the two users
    await fill("A")
    await page.click("#cmp-preview")
    await page.wait_for_selector("#cmp-size:has-text('1')")
    await page.click("#cmp-go")
    card = await en.expect("notification", timeout=20)
    assert card["title"] == "A Beware of phishing" and card["data"]["link"] == "account-security"
    await en.request({"type": "notifications.ack", "up_to": card["seq"]})

    # later, in a named zone: then cancelled from the list
    await fill("B")
    await page.fill("#cmp-when", "2099-01-01T09:00")
    await page.fill("#cmp-tz", "Asia/Shanghai")
    await page.click("#cmp-go")
    await page.wait_for_function("() => !document.getElementById('dlg').open")
    await page.click("#view-tabs [data-view=supervisor]")
    row = page.locator("#sv-campaign-table tr[data-status=scheduled]")
    await row.wait_for()
    await row.locator("button").click()
    await page.wait_for_selector("#sv-campaign-table tr[data-status=cancelled]")
    async with hub.http(hub.token("chen", "supervisor")) as http:
        listed = (await http.get("/api/campaigns")).json()["campaigns"]
    later = next(c for c in listed if c["texts"]["en"]["title"].startswith("B"))
    assert later["status"] == "cancelled" and later["send_at"] == "2099-01-01T01:00:00+00:00"

    sent = page.locator("#sv-campaign-table tr[data-status=sent]")

    async def counted() -> bool:  # the list refreshes with the view
        await page.click("#view-tabs [data-view=supervisor]")
        return await sent.locator("[data-count=read]").inner_text() == "1"

    await eventually(counted, timeout=20)
    assert await sent.locator("[data-count=delivered]").inner_text() == "1"
    problems.assert_clean(allow=EXPECTED_NOISE)
    await ctx.close()
    await en.close()
