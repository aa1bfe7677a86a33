"""The web chat tells the hub its device's language and time zone: in Chromium set to
English in New York, a new customer's widget shows English, and a transfer's card says
its expected time in New York time, labelled, once."""

from __future__ import annotations

import uuid

from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    eventually,
    new_page,
)
from tests.events import publish_signed


async def test_widget_in_an_english_browser_in_new_york(hub, clean, db, services, browser):  # noqa: F811
    user = f"u-{uuid.uuid4().hex[:8]}"
    ctx, page, problems = await new_page(
        browser, locale="en-US", timezone_id="America/New_York",
        viewport={"width": 1280, "height": 800},
    )  # fmt: skip
    await page.goto(f"{hub.url}/widget/?user={user}&name=Nora")  # no ?lang: the browser's
    await page.wait_for_selector("#topics .topic")
    assert await page.inner_text("#hdr-title") == "Support"
    await page.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
    row = await eventually(
        lambda: db.fetchrow("select lang, tz from users where id = $1 and tz is not null", user)
    )
    assert (row["lang"], row["tz"]) == ("en", "America/New_York")

    await publish_signed(
        services.redis_url,
        [{"event_id": f"ev-{uuid.uuid4().hex}", "type": "transaction.status", "user_id": user,
          "occurred_at": "2026-11-25T08:00:00+00:00", "transaction_id": "tx_0a1b2c3d4e5f6a7b",
          "status": "processing", "amount": "200.00", "currency": "CNY", "speed": "standard",
          "expected_by": "2026-11-25T13:03:00+00:00"}],
    )  # fmt: skip
    await page.wait_for_selector("#bell-badge:not([hidden]) >> text=1")
    await page.click("#btn-bell")
    item = page.locator("#feed .feed-item.tx")
    await item.wait_for()
    text = await item.inner_text()
    assert "Transfer processing" in text
    assert "expected by 2026-11-25 08:03 (GMT-5)" in text, text
    assert text.count("08:03") == 1 and "21:03" not in text  # one expected time on the card
    problems.assert_clean(allow=EXPECTED_NOISE)
    await ctx.close()
