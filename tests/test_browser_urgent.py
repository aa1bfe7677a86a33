"""A frozen customer in the web widget and the staff in the console, in real headless
Chromium against a real hub: with nobody on the urgent ladder the widget says so (never
"you are next"); the console shows the urgent chat with "Take" and, to supervisors,
"Assign to…"; a supervisor assigns it and takes a queued chat for themselves."""

from __future__ import annotations

import uuid

import asyncpg

from hub.store import agents as agent_store
from supporthub_core.db import init_connection
from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    count_is,
    eventually,
    login_agent,
    new_page,
)
from tests.conftest import start_hub
from tests.events import publish_signed


def freeze(user_id: str) -> dict:
    return {
        "event_id": f"ev-{uuid.uuid4().hex}", "type": "security.alert", "user_id": user_id,
        "occurred_at": "2026-11-25T08:00:00+00:00", "alert": "account_frozen",
        "severity": "critical", "details": {"rule": "velocity", "count": 11},
    }  # fmt: skip


async def test_urgent_chat_in_the_widget_and_take_and_assign_in_the_console(isolated, browser):  # noqa: F811
    server = await start_hub(isolated, urgent_answer_s=30.0, routing_sweep_s=0.5)
    db = await asyncpg.connect(isolated.dsn)
    await init_connection(db)
    try:
        await agent_store.upsert(db, username="boss", password="pw-boss", name="Boss 老板",
                                 skills=[], capacity=2, supervisor=True)  # fmt: skip
        await agent_store.upsert(db, username="plain", password="pw", name="Plain 小平",
                                 skills=["payment"], capacity=1)  # fmt: skip

        # --- the customer's widget: frozen, nobody on the ladder online
        user_id = f"u-{uuid.uuid4().hex[:8]}"
        uctx, widget, widget_problems = await new_page(
            browser, viewport={"width": 420, "height": 760}
        )
        await widget.goto(f"{server.url}/widget/?user={user_id}&name=Li")
        await widget.wait_for_selector("#view-home:not([hidden]), #view-chat:not([hidden])")
        await publish_signed(isolated.redis_url, [freeze(user_id)])
        card = widget.locator("#queue-card:not([hidden]) #queue-line", has_text="安全专员")
        await card.wait_for(timeout=15000)
        text = await card.inner_text()
        assert "目前没有安全专员在线" in text and "资金无法转出" in text, text
        assert "下一位" not in text and "分钟" not in text  # no place in line, no wait time
        assert await widget.locator("#queue-card .queue-eta").count() == 0
        await widget.wait_for_selector(".msg.system >> text=目前没有安全专员在线")

        # --- the supervisor's console (away: not on the ladder) shows it with its actions
        actx, console, console_problems = await new_page(
            browser, viewport={"width": 1440, "height": 900}
        )
        await login_agent(console, server.url, "boss", "pw-boss")
        item = console.locator("#queue-list .queue-item.prio-urgent")
        await item.wait_for(timeout=10000)
        assert await item.locator(".qi-take").count() == 1
        assert await item.locator(".qi-assign").count() == 1
        await console.wait_for_selector("#urgent-banner:not([hidden]) #ub-take")

        # a plain agent comes online (no security skill: the ladder does not give it to them)
        plain = await server.client("plain", "agent", name="Plain 小平")
        await plain.request({"type": "agent.status", "status": "online"})
        await item.locator(".qi-assign").click()
        await console.wait_for_selector("#assign-list [data-agent=plain]")
        await console.click("#assign-list [data-agent=plain] input")
        await console.click("#assign-go")
        got = await plain.expect("chat.assigned", timeout=10)
        assert got["priority"] == "urgent" and got["user"]["id"] == user_id
        await eventually(lambda: widget.locator("#hdr-sub").filter(has_text="Plain").count())
        await widget.wait_for_selector(".msg.system >> text=安全专员将在一分钟内与您联系")
        await eventually(lambda: count_is(console.locator("#queue-list .queue-item"), 0))

        # --- a payment chat nobody can take (plain is full): the supervisor takes it
        customer = await server.client(f"u-{uuid.uuid4().hex[:8]}")
        opened = await customer.request(
            {"type": "chat.open", "topic": "payment", "handoff": "agent"}
        )
        cid = opened["conversation_id"]
        take = console.locator(f"#queue-list .queue-item[data-cid='{cid}'] .qi-take")
        await take.wait_for(timeout=10000)
        await console.click("#status-switch [data-status=online]")
        await console.wait_for_selector("#status-switch [data-status=online].on")
        await take.click()
        await console.wait_for_selector(f".chat-item[data-cid='{cid}']", timeout=10000)
        assert (await customer.expect("chat.assigned", conversation_id=cid))["agent"][
            "id"
        ] == "boss"

        # 404s on purpose: no payment account for these customers, push is off
        console_problems.assert_clean(allow=EXPECTED_NOISE)
        widget_problems.assert_clean(allow=EXPECTED_NOISE)
        for c in (plain, customer):
            await c.close()
        await uctx.close()
        await actx.close()
    finally:
        await db.close()
        await server.stop()
