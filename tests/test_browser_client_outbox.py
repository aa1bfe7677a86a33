"""The web chat on the JavaScript client library (real headless Chromium): it speaks
msgpack, and a message typed while the hub cannot be reached waits in the outbox in
localStorage, survives a reload of the page, and is stored and shown once."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    count_is,
    eventually,
    new_page,
)

OUTBOX_KEY = "supporthub.widget.client.outbox"


async def test_a_message_typed_offline_survives_a_reload_and_is_sent_once(
    hub: Any,
    clean: None,
    browser: Any,  # noqa: F811
) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    ctx, page, problems = await new_page(browser)
    await page.goto(f"{hub.url}/widget/?user={user}&name=Lin")
    await page.wait_for_selector("#topics .topic")
    await page.click("[data-topic=payment]")
    await page.fill("#first-text", "第一条")
    await page.click("#btn-start")
    await page.wait_for_selector(".msg.mine[data-seq] >> text=第一条")
    cid = await page.evaluate("window.__supporthub.state.current")
    protocol = await page.evaluate("window.__supporthub.client.ws.protocol")
    assert protocol == "supporthub.msgpack.v1"

    # the hub becomes unreachable: every reconnect fails from now on
    await page.evaluate(
        "(() => { const c = window.__supporthub.client; c.url = 'ws://127.0.0.1:9/ws'; c.ws.close(); })()"
    )
    await page.wait_for_function("() => window.__supporthub.client.state !== 'open'")
    await page.fill("#input", "离线时写的消息")
    await page.press("#input", "Enter")
    stored = json.loads(await page.evaluate(f"localStorage.getItem('{OUTBOX_KEY}')"))
    assert [(f["conversation_id"], f["text"]) for f in stored] == [(cid, "离线时写的消息")]

    await page.reload()  # the new page's client finds it in localStorage and sends it
    await page.wait_for_selector(".msg.mine[data-seq] >> text=离线时写的消息", timeout=15000)
    await eventually(lambda: page.evaluate(f"localStorage.getItem('{OUTBOX_KEY}') === '[]'"))
    assert await page.locator(".bubble", has_text="离线时写的消息").count() == 1

    async with hub.http(hub.token("sup", "supervisor")) as http:
        conv = (await http.get(f"/api/conversations/{cid}")).json()
    assert [m["text"] for m in conv["messages"]].count("离线时写的消息") == 1
    problems.assert_clean(allow=EXPECTED_NOISE)
    await ctx.close()
