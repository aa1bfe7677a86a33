"""Issue #15, done when: the five problems customers bring (registering, a failed payment,
the account's safety, money not arrived, a forgotten password) asked the way customers
type them, in the web chat in Chromium, in Chinese and then in English, each answered
with the customer's own data in the page's language, with quick replies under it.

One customer is seeded through the real payments API: a standard transfer to 王芳 still
on its way, a payment refused for want of balance, a login from a second phone. The hub
is started with a day's settlement delay so that the transfer stays on its way whatever
the hour the test runs at.
"""

from __future__ import annotations

import uuid

from payments.seed import add_account
from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    new_page,
)
from tests.conftest import start_hub

DAY_S = 24 * 3600.0


async def _pay(hub, payer: str, to: str, amount: str, speed: str) -> dict:
    async with hub.http(hub.token(payer)) as http:
        resp = await http.post(
            "/api/payments",
            json={"to_account": to, "amount": amount, "speed": speed,
                  "idempotency_key": uuid.uuid4().hex},
        )  # fmt: skip
    assert resp.status_code == 202, resp.text
    return resp.json()


async def _login(hub, user: str, device_id: str, device_name: str) -> dict:
    async with hub.http(hub.token(user)) as http:
        resp = await http.post(
            "/api/devices/login", json={"device_id": device_id, "device_name": device_name}
        )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def _seed(hub, dsn: str) -> dict:
    me, fang, shop = (f"u-{uuid.uuid4().hex[:8]}" for _ in range(3))
    await add_account(dsn, me, "林晓雨 Lin", "300.00")
    await add_account(dsn, fang, "王芳 Fang", "0.00")
    await add_account(dsn, shop, "星巴克 Starbucks", "0.00")
    sent = await _pay(hub, me, fang, "260.00", "standard")
    assert sent["status"] == "processing", sent  # balance now ¥40.00
    refused = await _pay(hub, me, shop, "500.00", "instant")
    assert (refused["status"], refused["reason"]) == ("failed", "insufficient_balance")
    await _login(hub, me, "phone-1", "iPhone 13")
    second = await _login(hub, me, "phone-2", "Xiaomi 14")
    assert second["alert"] == "new_device_login", second
    return {"me": me, "fang": fang, "shop": shop, "sent": sent["transaction_id"]}


async def _ask(page, text: str, *, first: bool = False) -> tuple[str, list[str]]:
    """Send `text` as the customer and wait for the bot's answer, which ends with quick
    replies; the answer's text (all bot bubbles after the question, so the greeting too
    for the first one) and the buttons."""
    if first:
        await page.click("[data-topic=other]")
        await page.fill("#first-text", text)
        await page.click("#btn-start")
        await page.wait_for_selector("#view-chat:not([hidden])")
    else:
        await page.fill("#input", text)
        await page.press("#input", "Enter")
    mine = page.locator("#transcript .msg.mine[data-seq]", has_text=text).last
    await mine.wait_for(timeout=15000)
    seq = int(await mine.get_attribute("data-seq") or 0)
    await page.wait_for_function(
        """seq => [...document.querySelectorAll('#transcript .msg.bot[data-seq]')]
            .some(m => Number(m.dataset.seq) > seq && m.querySelector('.choices .choice'))""",
        arg=seq,
        timeout=20000,
    )
    answer = await page.eval_on_selector_all(
        "#transcript .msg.bot[data-seq]",
        """(els, seq) => els.filter(m => Number(m.dataset.seq) > seq)
            .map(m => m.querySelector('.bubble')?.innerText || '').join('\\n')""",
        seq,
    )
    buttons = await page.locator("#transcript .msg.bot .choices .choice").all_inner_texts()
    return answer, buttons


# What each page's customer types, and what their own data must look like in the answer.
QUESTIONS = {
    "zh": {
        "register": "怎么注册账号啊",
        "failed": "刚才付款失败了 咋回事",
        "arrival": "我给王芳转的钱她说还没收到",
        "password": "密码忘了登不上去了",
        "security": "收到提醒说有新设备登录 不是我本人 是不是被盗号了",
    },
    "en": {
        "register": "how do i sign up for an account",
        "failed": "my payment didn't go through, why?",
        "arrival": "I sent money to Fang but she says she hasn't got it",
        "password": "forgot my password, can't log in",
        "security": "got an alert about a login from a new device, was my account hacked?",
    },
}
EXPECTED = {
    "zh": {
        "register": ["林晓雨 Lin", "已注册，状态正常", "收不到验证码时请逐项检查", "60 秒"],
        "failed": ["¥500.00 给 星巴克 Starbucks", "余额不足", "余额是 ¥40.00", "还差 ¥460.00"],
        "arrival": ["¥260.00 给 王芳 Fang", "处理中", "北京时间"],
        "password": ["林晓雨 Lin", "已注册，状态正常", "收不到验证码时请逐项检查"],
        "security": ["新设备登录（Xiaomi 14）", "没有被冻结", "转人工"],
    },
    "en": {
        "register": ["林晓雨 Lin", "registered and in good standing", "If the code does not come"],
        "failed": [
            "¥500.00 to 星巴克 Starbucks",
            "insufficient balance",
            "balance is now ¥40.00",
            "¥460.00 short",
        ],
        "arrival": ["¥260.00 to 王芳 Fang", "is processing", "Beijing time"],
        "password": ["林晓雨 Lin", "registered and in good standing", "If the code does not come"],
        "security": ["new device login (Xiaomi 14)", "is not frozen", "talk to a person"],
    },
}
# words of the other language's answers that must not show
FOREIGN = {
    "zh": ["insufficient balance", "processing", "Did this help"],
    "en": ["余额不足", "处理中", "这个回答"],
}
BUTTONS = {
    "zh": {"answer": ["有用", "没用", "转人工"], "transfer": ["转人工"]},
    "en": {
        "answer": ["Yes, it helped", "No", "Talk to a person"],
        "transfer": ["Talk to a person"],
    },
}


async def test_the_five_problems_with_the_customers_own_data_in_zh_and_en(
    clean, services, db, browser  # noqa: F811
):  # fmt: skip
    hub = await start_hub(services, settlement_delay_s=DAY_S)
    try:
        seeded = await _seed(hub, services.dsn)
        for lang, locale in (("zh", "zh-CN"), ("en", "en-US")):
            ctx, page, problems = await new_page(
                browser, locale=locale, timezone_id="Asia/Shanghai",
                viewport={"width": 1280, "height": 900},
            )  # fmt: skip
            await page.goto(f"{hub.url}/widget/?user={seeded['me']}&name=Lin")
            await page.wait_for_selector("#topics .topic")
            await page.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
            title = await page.inner_text("#hdr-title")
            assert title == ("在线客服" if lang == "zh" else "Support")
            # security last: its one tap hands the chat to a person, and the bot goes quiet
            for n, problem in enumerate(("register", "failed", "arrival", "password", "security")):
                text, buttons = await _ask(page, QUESTIONS[lang][problem], first=n == 0)
                for wanted in EXPECTED[lang][problem]:
                    assert wanted in text, (lang, problem, wanted, text)
                for foreign in FOREIGN[lang]:
                    assert foreign not in text, (lang, problem, foreign, text)
                for uid in (seeded["fang"], seeded["shop"]):
                    assert uid not in text  # people by name, never by id
                kind = "transfer" if problem == "arrival" else "answer"
                assert buttons == BUTTONS[lang][kind], (lang, problem, buttons)
                if problem == "arrival":
                    assert seeded["sent"] in text

            # one tap on "talk to a person" under the security answer: the security queue
            cid = await page.evaluate("window.__supporthub.state.current")
            await page.locator(
                ".msg.bot .choices .choice", has_text=BUTTONS[lang]["answer"][2]
            ).click()
            await page.wait_for_selector("#queue-card:not([hidden])", timeout=15000)
            row = await db.fetchrow("select topic, status from conversations where id = $1", cid)
            assert (row["topic"], row["status"]) == ("security", "queued"), dict(row)
            # the customer ends that chat: the next page starts from the topics again
            await page.click("#btn-end")
            await page.wait_for_selector("#closed-card:not([hidden])")
            problems.assert_clean(allow=EXPECTED_NOISE)
            await ctx.close()
    finally:
        await hub.stop()
