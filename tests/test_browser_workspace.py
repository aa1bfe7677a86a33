"""The agents' workspace in real headless Chromium against a real hub: macros in the Ctrl+K
palette (written in the console, their variables filled in with the customer's data), the
handover note on a transferred chat, the resolve dialog, @mention toasts, the customer's
presence in the chat header, browser notifications while the tab is hidden, the customer
drawer at 1024 px, system messages in the agent's own words and language."""

from __future__ import annotations

import uuid

from hub.store import agents as agent_store
from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    count_is,
    eventually,
    login_agent,
    new_page,
    screenshot,
)

ALL_SKILLS = ["payment", "account", "arrival", "security", "technical", "feedback", "other"]


async def _agent(db, username: str, name: str, *, supervisor: bool = False) -> None:
    await agent_store.upsert(db, username=username, password=f"pw-{username}", name=name,
                             skills=ALL_SKILLS, capacity=3, supervisor=supervisor)  # fmt: skip


async def _online(page) -> None:
    await page.click("#status-switch [data-status=online]")
    await page.wait_for_selector("#status-switch [data-status=online].on")


async def _customer_chat(hub, user_id: str, name: str, topic: str = "payment", lang: str = "zh"):
    user = await hub.client(user_id, name=name)
    opened = await user.request({"type": "chat.open", "topic": topic, "handoff": "agent",
                                 "text": "你好，我想问一下我的转账", "lang": lang})  # fmt: skip
    return user, opened["conversation_id"]


async def test_macro_variables_fill_in(hub, clean, db, services, browser):  # noqa: F811
    from payments.seed import add_account

    await _agent(db, "mei", "小美")
    uid, payee = f"u-{uuid.uuid4().hex[:6]}", f"u-{uuid.uuid4().hex[:6]}"
    await add_account(services.dsn, uid, "周女士", "300.00")
    await add_account(services.dsn, payee, "收款人", "0.00")
    async with hub.http(hub.token(uid, name="周女士")) as http:
        paid = await http.post("/api/payments", json={"to_account": payee, "amount": "45.60",
                               "speed": "instant", "idempotency_key": uuid.uuid4().hex})  # fmt: skip
        assert paid.status_code == 202, paid.text
        tx = paid.json()["transaction_id"]

        async def settled() -> bool:
            return (await http.get(f"/api/payments/{tx}")).json()["status"] == "succeeded"

        await eventually(settled, timeout=15)
    # a team-less personal macro for another topic, written over REST: listed after
    async with hub.http(hub.token("mei", "agent", name="小美")) as http:
        other = await http.post("/api/macros", json={"title": "Aaa 安全提示", "body_zh": "请勿泄露验证码",
                                "topics": ["security"]})  # fmt: skip
        assert other.status_code == 201, other.text

    user, cid = await _customer_chat(hub, uid, "周女士")
    ctx, page, problems = await new_page(browser, viewport={"width": 1440, "height": 900})
    await login_agent(page, hub.url, "mei", "pw-mei")
    await _online(page)
    await page.wait_for_selector(f".chat-item[data-cid='{cid}']")
    await page.wait_for_selector("#conv:not([hidden])")

    # --- written in the console: Ctrl+K, manage, new
    await page.keyboard.press("Control+k")
    await page.wait_for_selector("#canned-list .canned")
    await page.click("#btn-macros")
    await page.click("#macro-new")
    await page.fill("#macro-title", "转账已到账")
    await page.fill(
        "#macro-zh", "{customer_name}您好，您最近的一笔交易 {latest_transaction} 已处理完毕。"
    )
    await page.fill(
        "#macro-en",
        "Hello {customer_name}, your latest transaction {latest_transaction} went through.",
    )
    await page.check(".macro-topics input[value=payment]")
    await page.click("#macro-save")
    await page.wait_for_selector("#macro-list .macro-row >> text=转账已到账")
    await page.keyboard.press("Escape")

    # --- the palette: the payment macro first (the chat's topic), articles after the macros
    await page.keyboard.press("Control+k")
    first = page.locator("#canned-list .canned").first
    await first.wait_for()
    assert "转账已到账" in await first.inner_text()
    kinds = await page.eval_on_selector_all(
        "#canned-list .canned",
        "els => els.map(e => e.classList.contains('canned-macro') ? 'm' : 'a')",
    )
    assert kinds[:2] == ["m", "m"] and "a" in kinds and kinds.index("a") == 2, kinds
    await first.click()
    reply = await eventually(lambda: page.input_value("#reply"))
    assert reply == "周女士您好，您最近的一笔交易 ¥45.60（成功） 已处理完毕。", reply

    # --- typing narrows the macros too; the edit changes what is inserted
    await page.fill("#reply", "")
    await page.keyboard.press("Control+k")
    await page.fill("#canned-search", "验证码")
    await eventually(
        lambda: count_is(page.locator("#canned-list .canned-macro >> text=转账已到账"), 0)
    )
    await page.wait_for_selector("#canned-list .canned-macro >> text=Aaa 安全提示")
    await page.click("#btn-macros")
    row = page.locator("#macro-list .macro-row", has_text="Aaa 安全提示")
    await row.locator("[data-action=delete]").click()
    await eventually(
        lambda: count_is(page.locator("#macro-list .macro-row >> text=Aaa 安全提示"), 0)
    )
    await page.wait_for_selector("#macro-list .macro-row >> text=转账已到账")

    # --- changed in the console: the new words are what goes in from then on
    row = page.locator("#macro-list .macro-row", has_text="转账已到账")
    await row.locator("[data-action=edit]").click()
    await page.fill("#macro-zh", "{customer_name}，您的交易 {latest_transaction} 已到账。")
    await page.click("#macro-save")
    await page.wait_for_selector("#macro-list .macro-row >> text=您的交易")
    await page.keyboard.press("Escape")
    await page.fill("#reply", "")
    await page.keyboard.press("Control+k")
    await page.click("#canned-list .canned-macro >> text=转账已到账")
    reply = await eventually(lambda: page.input_value("#reply"))
    assert reply == "周女士，您的交易 ¥45.60（成功） 已到账。", reply
    problems.assert_clean(allow=EXPECTED_NOISE)
    await ctx.close()
    await user.close()


async def test_handover_note_first_and_resolve_outcome_counted(hub, clean, db, browser):  # noqa: F811
    await _agent(db, "ann", "Ann 安")
    await _agent(db, "ben", "Ben 本")
    uid = f"u-{uuid.uuid4().hex[:6]}"
    actx, ann, ann_problems = await new_page(browser, viewport={"width": 1440, "height": 900})
    await login_agent(ann, hub.url, "ann", "pw-ann")
    await _online(ann)
    user, cid = await _customer_chat(hub, uid, "林先生")
    await ann.wait_for_selector(f".chat-item[data-cid='{cid}']")
    await ann.wait_for_selector("#conv:not([hidden])")
    assert cid not in await ann.inner_text("#conv"), "the raw conversation id is not shown"
    assert await ann.inner_text("#conv-channel") == "App"  # a socket without an Origin
    assert await ann.get_attribute("#conv-details", "title") == f"会话 #{cid[:8]} · 客户 {uid}"

    bctx, ben, ben_problems = await new_page(
        browser, viewport={"width": 1440, "height": 900}, locale="en-GB"
    )
    await login_agent(ben, hub.url, "ben", "pw-ben")
    assert await ben.inner_text("#btn-logout") == "Sign out"  # the browser's language
    await _online(ben)

    # --- Ann transfers with a note; Ben sees the note first, on top of the conversation
    await ann.click("#btn-transfer")
    await ann.click("#dlg [data-agent=ben] input")
    await ann.fill("#transfer-note", "客户要退款 120 元，银行处理中，请跟进")
    await ann.click("#transfer-go")
    await ben.wait_for_selector(f".chat-item[data-cid='{cid}']")
    strip = ben.locator("#handover:not([hidden])")
    await strip.wait_for()
    text = await strip.inner_text()
    assert "Handover note from Ann 安" in text and "客户要退款 120 元" in text, text
    box = await strip.bounding_box()
    log = await ben.locator("#transcript").bounding_box()
    assert box and log and box["y"] < log["y"]  # above the transcript
    # and in the transcript, where it was written, marked as the handover note
    await ben.wait_for_selector("#transcript .note.handover-note >> text=Handover note")
    assert await user.expect("chat.assigned", conversation_id=cid, timeout=10)
    # the system message in Ben's words and language, not the customer's
    said = ben.locator("#transcript .msg.system[data-kind=transferred] span")
    await said.wait_for()
    assert await said.inner_text() == "Transferred to Ben 本 by Ann 安"
    assert await said.get_attribute("title") == "The customer saw: 您的对话已转接给 Ben 本。"

    # --- Ben resolves: needs follow-up, two tags; the stats count them
    await ben.click("#btn-resolve")
    await ben.check("#resolve-outcomes input[value=follow_up]")
    await ben.fill("#resolve-tags", "退款, Bank delay，退款")
    await ben.press("#resolve-tags", "Enter")  # Enter resolves, as the button does
    await ben.wait_for_selector("#closed-bar:not([hidden])")
    await ben.wait_for_selector(
        ".msg.system[data-kind=resolved] >> text=Resolved by Ben 本 · Needs follow-up"
    )

    # --- Ben picks Chinese: the console keeps it (over the browser's English) after a reload
    await ben.click("#app-view [data-lang-toggle]")
    await ben.wait_for_selector(
        ".msg.system[data-kind=transferred] >> text=Ann 安 将会话转接给 Ben 本"
    )
    await ben.reload()
    await ben.wait_for_selector("#conn-state.st-open")
    assert await ben.inner_text("#btn-logout") == "退出"
    async with hub.http(hub.token("boss", "supervisor", name="Boss")) as http:
        stats = (await http.get("/api/stats")).json()
    assert stats["outcomes"]["follow_up"] == 1, stats["outcomes"]
    tags = {t["tag"]: t["count"] for t in stats["top_tags"]}
    assert tags == {"退款": 1, "bank-delay": 1}, tags
    ann_problems.assert_clean(allow=EXPECTED_NOISE)
    ben_problems.assert_clean(allow=EXPECTED_NOISE)
    for ctx in (actx, bctx):
        await ctx.close()
    await user.close()


async def test_mention_toast_and_customer_presence(hub, clean, db, browser):  # noqa: F811
    await _agent(db, "ann", "Ann 安")
    await _agent(db, "bob", "Bob 博")
    uid = f"u-{uuid.uuid4().hex[:6]}"
    actx, ann, ann_problems = await new_page(browser, viewport={"width": 1440, "height": 900})
    await login_agent(ann, hub.url, "ann", "pw-ann")
    await _online(ann)
    user, cid = await _customer_chat(hub, uid, "赵女士")
    await ann.wait_for_selector("#conv:not([hidden])")
    await ann.wait_for_selector("#conv-presence.online >> text=在线")

    bctx, bob, bob_problems = await new_page(browser, viewport={"width": 1440, "height": 900})
    await login_agent(bob, hub.url, "bob", "pw-bob")  # away: the chat stays Ann's

    # --- Ann mentions @bob in a note: Bob gets a toast that opens the chat read-only
    await ann.click(".composer-tabs [data-mode=note]")
    await ann.fill("#reply", "@bob 这位客户的登录问题你熟悉，帮忙看一下？")
    await ann.press("#reply", "Enter")
    toast = bob.locator(f".toast.mention[data-cid='{cid}']")
    await toast.wait_for()
    assert "Ann 安 在备注中提到了您" in await toast.inner_text()
    await toast.locator("[data-action=open]").click()
    await bob.wait_for_selector("dialog .transcript.readonly >> text=帮忙看一下")
    await bob.keyboard.press("Escape")
    assert await ann.locator(".toast.mention").count() == 0  # not told of her own note

    # --- the customer goes away: the header says offline, and since when, live
    await user.close()
    await ann.wait_for_selector("#conv-presence.offline >> text=最后在线")
    ann_problems.assert_clean(allow=EXPECTED_NOISE)
    bob_problems.assert_clean(allow=EXPECTED_NOISE)
    for ctx in (actx, bctx):
        await ctx.close()


#: Test-only: record every Notification the page constructs, and let the test say whether
#: the tab is hidden (a headless tab is always "visible").
NOTIFICATION_SPY = """
(() => {
  window.__notifications = [];
  window.__hidden = false;
  const Real = window.Notification;
  if (Real) {
    window.Notification = class extends Real {
      constructor(title, options) {
        window.__notifications.push({ title, body: (options && options.body) || "" });
        super(title, options);
      }
    };
  }
  Object.defineProperty(document, "visibilityState", { get: () => (window.__hidden ? "hidden" : "visible") });
  Object.defineProperty(document, "hidden", { get: () => window.__hidden });
})();
"""


async def test_browser_notifications_while_the_tab_is_hidden(hub, clean, db, browser):  # noqa: F811
    await _agent(db, "nia", "Nia 妮")
    ctx, page, problems = await new_page(
        browser, viewport={"width": 1440, "height": 900}, permissions=["notifications"]
    )
    await ctx.add_init_script(NOTIFICATION_SPY)
    await login_agent(page, hub.url, "nia", "pw-nia")
    assert await page.evaluate("Notification.permission") == "granted"
    await _online(page)
    hide = "window.__hidden = true; document.dispatchEvent(new Event('visibilitychange'))"
    await page.evaluate(hide)

    user, cid = await _customer_chat(hub, f"u-{uuid.uuid4().hex[:6]}", "钱先生")
    await page.wait_for_selector(f".chat-item[data-cid='{cid}']")
    notes = await eventually(lambda: page.evaluate("window.__notifications"))
    assert notes[0]["title"] == "新会话: 钱先生 · 付款问题", notes
    assert notes[0]["body"] == "你好，我想问一下我的转账"
    await user.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "n-1",
                        "text": "还在吗？"})  # fmt: skip
    await eventually(lambda: page.evaluate("window.__notifications.length === 2"))
    assert (await page.evaluate("window.__notifications"))[1] == {
        "title": "钱先生",
        "body": "还在吗？",
    }

    # --- visible again: a message shows in the open chat, no notification
    await page.evaluate(hide.replace("true", "false"))
    await user.request({"type": "chat.send", "conversation_id": cid, "client_msg_id": "n-2",
                        "text": "我看到了"})  # fmt: skip
    await page.wait_for_selector(".msg.user >> text=我看到了")
    assert await page.evaluate("window.__notifications.length") == 2
    problems.assert_clean(allow=EXPECTED_NOISE)
    await ctx.close()
    await user.close()


async def test_customer_drawer_at_1024_px(hub, clean, db, services, browser):  # noqa: F811
    from payments.seed import add_account

    await _agent(db, "sec", "Sec 安全")
    uid = f"u-{uuid.uuid4().hex[:6]}"
    await add_account(services.dsn, uid, "孙女士", "80.00")
    await db.execute(
        "update accounts set frozen = true, frozen_reason = 'velocity' where user_id = $1", uid
    )
    ctx, page, problems = await new_page(browser, viewport={"width": 1024, "height": 768})
    await login_agent(page, hub.url, "sec", "pw-sec")
    await _online(page)
    user, cid = await _customer_chat(hub, uid, "孙女士", topic="security")
    await page.wait_for_selector("#conv:not([hidden])")
    assert not await page.is_visible("#customer")  # folded away: the chat has the room
    toggle = page.locator("#btn-customer")
    assert await toggle.is_visible()
    await toggle.click()
    unfreeze = page.locator("#customer #btn-unfreeze")
    await unfreeze.wait_for()
    await screenshot(page, "console-1024-drawer")
    box = await unfreeze.bounding_box()
    assert (
        box
        and box["x"] >= 0
        and box["x"] + box["width"] <= 1024
        and box["y"] + box["height"] <= 768
    )
    await unfreeze.click()
    await page.wait_for_selector("#dlg[open]")
    await page.keyboard.press("Escape")
    await page.click("#customer-close")
    await page.wait_for_selector("#customer", state="hidden")
    # the header still holds everything at this width
    for sel in ("#btn-transfer", "#btn-resolve", "#btn-customer", "#conv-name"):
        assert await page.is_visible(sel), sel
    problems.assert_clean(allow=EXPECTED_NOISE)
    await ctx.close()
    await user.close()
