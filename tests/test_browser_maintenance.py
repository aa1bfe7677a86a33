"""The maintenance banner in Chromium: a customer in Shanghai reading Chinese and one in
New York reading English each see what is paused and the expected end in their own
language and zone, on opening the widget and when the window is announced; the banner
goes when its end is announced."""

from __future__ import annotations

import uuid

from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    new_page,
)

END = "2026-12-01T06:00:00+00:00"


async def open_widget(hub, browser, locale: str, tz: str, lang: str):  # noqa: F811
    ctx, page, problems = await new_page(
        browser, locale=locale, timezone_id=tz, viewport={"width": 1280, "height": 800}
    )
    await page.goto(f"{hub.url}/widget/?user=u-{uuid.uuid4().hex[:8]}&lang={lang}")
    await page.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
    return ctx, page, problems


async def test_banner_shows_the_expected_end_in_zh_and_en(hub, clean, browser):  # noqa: F811
    zh = await open_widget(hub, browser, "zh-CN", "Asia/Shanghai", "zh")
    try:
        async with hub.http(hub.token("sam", "supervisor")) as http:
            on = await http.post("/api/maintenance", json={"on": True, "expected_end": END,
                                                           "functions": ["standard"]})  # fmt: skip
            assert on.status_code == 200, on.text
            # announced live: the open widget raises the banner
            banner = zh[1].locator("#maintenance-banner:not([hidden])")
            await banner.wait_for()
            text = await banner.inner_text()
            assert "系统维护通知" in text and "普通转账" in text
            assert "预计 2026-12-01 14:00（北京时间）恢复" in text, text

            # opened during the window: the banner is there from the start (welcome)
            en = await open_widget(hub, browser, "en-US", "America/New_York", "en")
            banner_en = en[1].locator("#maintenance-banner:not([hidden])")
            await banner_en.wait_for()
            text_en = await banner_en.inner_text()
            assert "Scheduled maintenance" in text_en and "standard transfers" in text_en
            assert "expected back by 2026-12-01 01:00 (GMT-5)" in text_en, text_en

            off = await http.post("/api/maintenance", json={"on": False})
            assert off.status_code == 200
            for _, page, problems in (zh, en):
                await page.locator("#maintenance-banner").wait_for(state="hidden")
                problems.assert_clean(allow=EXPECTED_NOISE)
            await en[0].close()
    finally:
        async with hub.http(hub.token("sam", "supervisor")) as http:
            await http.post("/api/maintenance", json={"on": False})
        await zh[0].close()
