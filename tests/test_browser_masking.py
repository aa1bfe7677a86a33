"""Secrets typed into chat, in real headless Chromium on both sides: the widget's user types
a verification code, both transcripts show it masked and the widget warns above the
composer; the agent asks for the code and the console refuses, with the reason above the
reply box."""

from __future__ import annotations

from hub.rules.masking import SHARE_WARNINGS, ask_explanation
from hub.store import agents as agent_store
from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    count_is,
    eventually,
    login_agent,
    new_page,
)


async def test_a_code_typed_in_the_widget_is_masked_on_both_sides_and_asking_is_blocked(
    hub,
    clean,
    db,
    browser,  # noqa: F811
):
    await agent_store.upsert(db, username="zhao", password="pw-zhao", name="小赵",
                             skills=["account"], capacity=3)  # fmt: skip
    actx, agent, agent_problems = await new_page(browser, viewport={"width": 1280, "height": 800})
    await login_agent(agent, hub.url, "zhao", "pw-zhao")
    await agent.click("#status-switch [data-status=online]")
    await agent.wait_for_selector("#status-switch [data-status=online].on")

    uctx, user, user_problems = await new_page(browser, viewport={"width": 390, "height": 760})
    await user.goto(f"{hub.url}/widget/?user=u-masked&name=小明")
    await user.click("[data-topic=account]")
    await user.click("#btn-start-agent")
    await user.wait_for_selector("#view-chat:not([hidden])")
    await agent.wait_for_selector("#conv:not([hidden])")

    # --- the user types a code: masked in both transcripts, a warning above the composer
    await user.fill("#input", "我的验证码是 123456")
    await user.press("#input", "Enter")
    await user.wait_for_selector(".msg.mine[data-seq] >> text=我的验证码是 ******")
    await agent.wait_for_selector(".msg.user >> text=我的验证码是 ******")
    notice = user.locator("#secret-notice:not([hidden])")
    await notice.wait_for()
    assert SHARE_WARNINGS["otp"]["zh"] in await notice.inner_text()
    composer = await user.locator("#composer").bounding_box()
    box = await notice.bounding_box()
    assert box and composer and 0 <= composer["y"] - (box["y"] + box["height"]) <= 16
    assert await user.locator("#input").is_enabled()  # non-blocking: the user writes on
    for page in (user, agent):
        assert "123456" not in await page.inner_text("#transcript")

    # --- the agent asks for the code: refused, nothing sent, the reason by the reply box
    await agent.fill("#reply", "请把验证码发给我")
    await agent.press("#reply", "Enter")
    blocked = agent.locator("#composer-notice.blocked:not([hidden])")
    await blocked.wait_for()
    assert ask_explanation("otp", "zh") in await blocked.inner_text()
    assert await agent.input_value("#reply") == "请把验证码发给我"  # back, to be reworded
    await eventually(lambda: count_is(agent.locator("#transcript .pending"), 0))
    await user.wait_for_timeout(500)
    assert "请把验证码发给我" not in await user.inner_text("#transcript")

    # --- rewording clears it and goes through
    await agent.fill("#reply", "请勿向任何人透露验证码，我们不会索要。")
    await agent.press("#reply", "Enter")
    await user.wait_for_selector(".msg.agent >> text=请勿向任何人透露验证码，我们不会索要。")
    assert await agent.locator("#composer-notice").is_hidden()

    # --- the agent's own secrets are masked too, and the console says so
    await agent.fill("#reply", "退款已退回您尾号的卡 4111 1111 1111 1111")
    await agent.press("#reply", "Enter")
    await user.wait_for_selector(".msg.agent >> text=退款已退回您尾号的卡 **** **** **** 1111")
    masked = agent.locator("#composer-notice.masked:not([hidden])")
    await masked.wait_for()
    assert "已自动隐藏" in await masked.inner_text()
    assert "4111 1111 1111 1111" not in await agent.inner_text("#transcript")

    # --- the user dismisses the warning
    await user.click("#secret-notice .sn-close")
    assert await user.locator("#secret-notice").is_hidden()

    user_problems.assert_clean(allow=EXPECTED_NOISE)
    agent_problems.assert_clean(allow=EXPECTED_NOISE)
    await uctx.close()
    await actx.close()
