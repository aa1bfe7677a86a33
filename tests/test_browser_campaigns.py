"""A security-education campaign in Chromium: a card in the notification list (not a chat
message) with its help link; dismissed, it is gone for good, on this device and on the
user's next one; the link and the dismissal are counted."""

from __future__ import annotations

import asyncio
import uuid

from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    new_page,
)

TEXTS = {
    "zh": {"title": "谨防钓鱼网站", "body": "客服绝不会索要验证码。"},
    "en": {"title": "Beware of phishing", "body": "We never ask for your codes."},
}


async def test_security_card_is_shown_once_and_dismissed_for_good(hub, clean, browser):  # noqa: F811
    user = f"u-{uuid.uuid4().hex[:8]}"
    ctx, page, problems = await new_page(
        browser, locale="en-US", viewport={"width": 1280, "height": 800}
    )
    await page.goto(f"{hub.url}/widget/?user={user}&lang=en")
    await page.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
    async with hub.http(hub.token("sam", "supervisor")) as http:
        created = await http.post("/api/campaigns", json={
            "category": "security", "texts": TEXTS, "link": "account-security",
            "audience": {"kind": "list"}, "user_ids": [user]})  # fmt: skip
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        await page.wait_for_selector("#bell-badge:not([hidden]) >> text=1", timeout=20_000)
        await page.click("#btn-bell")
        card = page.locator("#feed .feed-item.campaign")
        await card.wait_for()
        assert "Beware of phishing" in await card.inner_text()
        assert await page.locator(".msg >> text=Beware of phishing").count() == 0  # not a chat
        href = await card.locator("a.campaign-link").get_attribute("href")
        assert href == "/widget/help/account-security?lang=en"
        await card.locator("a.campaign-link").click()
        await card.locator("button.campaign-dismiss").click()
        await card.wait_for(state="detached")

        for _ in range(100):  # the marks are sent in the background
            counts = (await http.get(f"/api/campaigns/{cid}")).json()["counts"]
            if counts["dismissed"] and counts["clicked"]:
                break
            await asyncio.sleep(0.1)
        assert counts == {"delivered": 1, "read": 1, "clicked": 1, "dismissed": 1}

    await page.reload()
    await page.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
    await page.click("#btn-bell")
    await page.wait_for_selector("#feed li")
    assert await page.locator("#feed .feed-item.campaign").count() == 0
    problems.assert_clean(allow=EXPECTED_NOISE)
    await ctx.close()

    # the user's other device, with nothing stored: the hub says it was dismissed
    ctx2, other, problems2 = await new_page(
        browser, locale="en-US", viewport={"width": 1280, "height": 800}
    )
    await other.goto(f"{hub.url}/widget/?user={user}&lang=en")
    await other.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
    await other.wait_for_function("() => window.__supporthub.state.feed.length >= 1")
    await other.click("#btn-bell")
    await other.wait_for_selector("#feed li")
    assert await other.locator("#feed .feed-item.campaign").count() == 0
    problems2.assert_clean(allow=EXPECTED_NOISE)
    await ctx2.close()
