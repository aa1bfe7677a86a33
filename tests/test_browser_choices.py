"""The help bot's quick replies in the users' web chat (real headless Chromium): topic chips
under the greeting, "helpful / not helpful / a person" under an answer; a tap sends the
choice as the user's message and the buttons go away."""

from __future__ import annotations

from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    new_page,
    screenshot,
)


async def test_choice_buttons_appear_and_send_the_choice(hub, clean, browser):  # noqa: F811
    if hub.hub.bot is None:
        print("help bot not installed: nothing to test")
        return
    ctx, page, problems = await new_page(browser)
    await page.goto(f"{hub.url}/widget/?user=u-chips&name=小红")
    await page.wait_for_selector("#topics .topic")
    await page.click("[data-topic=account]")
    await page.click("#btn-start")
    await page.wait_for_selector("#view-chat:not([hidden])")
    # the greeting offers topics as buttons
    chip = page.locator(".msg.bot .choices .choice", has_text="忘记密码")
    await chip.wait_for(timeout=15000)
    await chip.click()
    await page.wait_for_selector(".msg.mine >> text=忘记密码")
    # the answer asks "did it help?" with buttons; the greeting's chips are gone
    helpful = page.locator(".msg.bot .choices .choice", has_text="有用")
    await helpful.wait_for(timeout=15000)
    labels = await page.locator(".choices .choice").all_inner_texts()
    assert labels == ["有用", "没用", "转人工"], labels
    await screenshot(page, "widget-choices")
    await helpful.click()
    await page.wait_for_selector(".msg.mine >> text=有用")
    await page.wait_for_selector(".msg.bot >> text=很高兴帮到您", timeout=15000)
    assert await page.locator(".choices").count() == 0
    problems.assert_clean(allow=EXPECTED_NOISE)
    await ctx.close()
