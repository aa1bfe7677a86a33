"""The REST API page in real headless Chromium: it renders every operation of
/openapi.json under its strict CSP (no violation, no script error) and filters."""

from __future__ import annotations

from tests.browser import browser, eventually, new_page, screenshot  # noqa: F401


async def test_api_docs_page_renders_every_operation(hub, browser):  # noqa: F811
    async with hub.http() as http:
        doc = (await http.get("/openapi.json")).json()
    count = sum(len(item) for item in doc["paths"].values())
    ctx, page, problems = await new_page(browser, viewport={"width": 1200, "height": 900})
    try:
        await page.goto(f"{hub.url}/api/docs")
        await page.wait_for_selector("details.op")
        assert await page.locator("details.op").count() == count
        assert "supporthub" in await page.title()
        # open one: its request body schema is there, $refs inlined
        card = page.locator("details#post_api_payments")
        await card.locator("summary").click()
        body = await card.inner_text()
        assert "idempotency_key" in body and "202" in body
        await screenshot(page, "api-docs")
        await page.fill("#filter", "accounts")
        await eventually(lambda: page.locator("details.op:not([hidden])").count(), timeout=5)
        shown = await page.locator("details.op:not([hidden]) .path").all_inner_texts()
        assert shown and all("/api/accounts" in p for p in shown)
        problems.assert_clean()
    finally:
        await ctx.close()
