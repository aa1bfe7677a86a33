"""Step-up verification in real headless Chromium, console and widget against a real hub:
a frozen account brings the customer to a security agent, whose unfreeze is refused until
the customer is verified; the agent presses Verify identity, the customer's widget shows the
code box, a wrong code and then the code from the (dev) phone are typed, both sides see the
result, and the unfreeze goes through."""

from __future__ import annotations

from hub.store import agents as agent_store
from payments.seed import add_account
from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    eventually,
    login_agent,
    new_page,
)
from tests.verification import dev_code

PHONE = {"viewport": {"width": 375, "height": 667}, "is_mobile": True, "has_touch": True}
USER = "u-vera"


async def test_verify_identity_then_unfreeze(hub, clean, db, services, browser):  # noqa: F811
    await agent_store.upsert(
        db, username="guard", password="pw-guard", name="Guard 安全",
        skills=["security", "account"], capacity=2,
    )  # fmt: skip
    await add_account(services.dsn, USER, "Vera", "80.00")
    actx, agent, agent_problems = await new_page(browser, viewport={"width": 1440, "height": 900})
    await login_agent(agent, hub.url, "guard", "pw-guard")
    await agent.click("#status-switch [data-status=online]")
    await agent.wait_for_selector("#status-switch [data-status=online].on")
    uctx, user, user_problems = await new_page(browser, **PHONE)
    await user.goto(f"{hub.url}/widget/?user={USER}&name=Vera&lang=en")
    await user.wait_for_selector("#topics .topic")
    await eventually(lambda: user.evaluate("window.__supporthub.client.state === 'open'"))

    # the freeze brings the customer's urgent chat to the agent
    async with hub.http(hub.token("guard", "agent")) as http:
        frozen = await http.post(f"/api/accounts/{USER}/freeze", json={"reason": "odd logins"})
        assert frozen.status_code == 200, frozen.text
    item = agent.locator(".chat-item.prio-urgent")
    await item.wait_for(timeout=15000)
    await item.click()
    await agent.wait_for_selector("#cp-frozen")

    # unfreezing first is refused, and the dialog says why
    await agent.click("#btn-unfreeze")
    await agent.fill("#unfreeze-reason", "customer confirmed")
    await agent.click("#unfreeze-go")
    error = agent.locator("#unfreeze-error:not([hidden])")
    await error.wait_for()
    assert "identity verification" in await error.inner_text()
    await agent.click("#dlg-foot >> text=取消")

    # the agent asks; the customer's widget shows the code box (not the composer)
    await agent.click("#btn-verify")
    await agent.wait_for_selector("#verify-pending")
    code_box = user.locator("#verify-box:not([hidden]) #verify-code")
    await code_box.wait_for(timeout=10000)
    assert await code_box.get_attribute("inputmode") == "numeric"
    assert await code_box.get_attribute("autocomplete") == "one-time-code"
    assert await code_box.get_attribute("maxlength") == "8"
    assert "SMS" in await user.inner_text("#verify-box")
    code = (await dev_code(hub, USER))["code"]

    # a wrong code: both sides are told, with the attempts left
    await code_box.fill(str((int(code) + 1) % 10**6).zfill(6))
    await user.click("#verify-submit")
    await user.wait_for_selector("#verify-error:not([hidden]) >> text=4 attempt")
    await agent.wait_for_selector("#verify-attempts")

    # the right code: verified on both sides, with the time on the console
    await code_box.fill(code)
    await user.press("#verify-code", "Enter")
    await user.wait_for_selector("#verify-ok")
    badge = agent.locator("#cp-verified")
    await badge.wait_for(timeout=10000)
    assert ":" in await badge.inner_text()  # the time it passed
    assert await user.locator("#transcript >> text=" + code).count() == 0  # never in the chat

    # now the unfreeze goes through
    await agent.click("#btn-unfreeze")
    await agent.fill("#unfreeze-reason", "verified by SMS code")
    await agent.click("#unfreeze-go")
    await agent.wait_for_selector("#cp-frozen", state="detached", timeout=15000)
    assert await db.fetchval("select frozen from accounts where user_id = $1", USER) is False

    await user.click("#verify-close")
    await user.wait_for_selector("#verify-box", state="hidden")
    agent_problems.assert_clean(allow=EXPECTED_NOISE)
    user_problems.assert_clean(allow=EXPECTED_NOISE)
    await actx.close()
    await uctx.close()
