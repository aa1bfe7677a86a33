"""The supervisor view in real headless Chromium against a real hub over the scripted day
(tests/scripted_day.py): the exact figures on the cards and per agent, the long wait
highlighted, the alarm, topics, the day's chart, the week's feedback themes; then the
supervisor watches a chat live and takes it over (its agent is told)."""

from __future__ import annotations

import asyncpg

from supporthub_core.db import init_connection
from tests import scripted_day
from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    eventually,
    login_agent,
    new_page,
)
from tests.conftest import start_hub
from tests.test_supervisor import QUIET


async def stat(page, key: str) -> str:
    return await page.inner_text(f"[data-stat={key}] .sv-value")


async def test_the_supervisor_sees_the_day_and_acts(isolated, browser):  # noqa: F811
    server = await start_hub(isolated, **QUIET)
    db = await asyncpg.connect(isolated.dsn)
    await init_connection(db)
    online = []
    try:
        await scripted_day.add_agents(db)
        ids = await scripted_day.script(db)
        await db.execute(
            "insert into feedback (id, kind, source, theme, text) values"
            " ('f1', 'suggestion', 'bot', 'appearance', '建议增加夜间模式'),"
            " ('f2', 'suggestion', 'bot', 'appearance', 'please add a dark mode'),"
            " ('f3', 'complaint', 'bot', 'fees', '手续费太贵了')"
        )
        for name in ("alice", "bob"):
            client = await server.client(name, "agent", name=name.title())
            await client.request({"type": "agent.status", "status": "online"})
            online.append(client)
        alice = online[0]

        ctx, page, problems = await new_page(browser, viewport={"width": 1440, "height": 900})
        await login_agent(page, server.url, "sam", "sam-pw")
        await page.click("#status-switch [data-status=online]")
        await page.wait_for_selector("#status-switch [data-status=online].on")
        await page.click("#view-tabs [data-view=supervisor]")
        await page.wait_for_selector("#supervisor-view:not([hidden]) [data-stat=stats_sla]")
        await eventually(
            lambda: page.locator("[data-stat=stats_sla] .sv-value", has_text="80%").count()
        )

        # the cards: the scripted day's figures, exactly
        assert await stat(page, "stats_wait") == "1:26"  # 86.67 s
        assert await stat(page, "stats_first") == "0:44"
        assert await stat(page, "stats_handle") == "12:52"  # 772.5 s
        assert await stat(page, "stats_resolution") == "15:25"  # 925 s, not the bot's 4 s
        assert await stat(page, "stats_csat") == "4.0 ★"
        assert await stat(page, "stats_agents") == "3"  # Alice, Bob and Sam
        assert "已满 1" in await page.inner_text("[data-stat=stats_agents] .sv-sub")  # only Bob
        assert await stat(page, "stats_bot") == "3"  # 1 confirmed + 2 assumed
        assert "转人工 1" in await page.inner_text("[data-stat=stats_bot] .sv-sub")
        assert await stat(page, "stats_convs") == "12"

        # per agent
        async def cell(agent: str, col: str) -> str:
            return await page.inner_text(f"#sv-agents tr[data-agent={agent}] td[data-col={col}]")

        assert [await cell("alice", c) for c in ("handled", "first", "handle", "csat", "sla")] == [
            "2", "1:00", "13:30", "4.0 ★", "50%",
        ]  # fmt: skip
        assert [await cell("bob", c) for c in ("handled", "first", "handle", "csat", "sla")] == [
            "2", "0:45", "12:15", "4.0 ★", "100%",
        ]  # fmt: skip

        # the 12-minute wait in red, the 3-minute one amber; the alarm says so
        assert (
            await page.get_attribute(f"#sv-queue tr[data-cid={ids['q1']}]", "data-level") == "alarm"
        )
        assert (
            await page.get_attribute(f"#sv-queue tr[data-cid={ids['q2']}]", "data-level") == "warn"
        )
        alarm = page.locator("#sv-alarms [data-alarm=sla_breach_soon]")
        assert "1 个会话即将超出 SLA" in await alarm.inner_text()
        assert "danger" in await page.get_attribute("[data-stat=stats_oldest]", "class")

        # topics, the day by hour, the week's themes
        assert "4" in await page.inner_text("#sv-topics tr[data-topic=payment]")
        assert await page.locator("#sv-day svg rect.bar").count() >= 3
        themes = page.locator("#sv-themes tbody tr")
        assert await themes.count() == 2
        assert await themes.first.get_attribute("data-theme") == "appearance"
        assert "外观与夜间模式" in await themes.first.inner_text()

        # watch a chat live: what the customer writes shows up, read-only
        row = page.locator(f"#sv-active-table tr[data-cid={ids['a1']}]")
        await row.locator(".sv-watch").click()
        await page.wait_for_selector("#sv-watch .sv-watch-head")
        customer = await server.client("u-a1", "user", name="Customer a1")
        await customer.request({"type": "chat.send", "conversation_id": ids["a1"],
                                "client_msg_id": "w1", "text": "are you there?"})  # fmt: skip
        await page.wait_for_selector("#sv-watch-log li >> text=are you there?")
        # ... and one of the customer's messages is tagged as feedback from there
        await customer.request({"type": "chat.send", "conversation_id": ids["a1"],
                                "client_msg_id": "w2", "text": "I wish the app showed fees up front"})  # fmt: skip
        said = page.locator("#sv-watch-log li", has_text="I wish the app showed fees up front")
        await said.locator(".sv-tag").click()
        await said.locator(".sv-tag.on").wait_for()
        # stopped and watched again (a fresh snapshot): the tag is the hub's, still shown
        watch = page.locator(f"#sv-active-table tr[data-cid={ids['a1']}] .sv-watch")
        await watch.click()
        await page.wait_for_selector("#sv-watch .sv-watch-head", state="detached")
        await watch.click()
        await said.locator(".sv-tag.on").wait_for()
        row = await db.fetchrow("select kind, source, tagged_by, theme from feedback"
                                " where conversation_id = $1", ids["a1"])  # fmt: skip
        assert dict(row) == {"kind": "suggestion", "source": "agent", "tagged_by": "sam",
                             "theme": "fees"}  # fmt: skip

        # take it over: Sam becomes its agent, Alice is told
        await page.locator(f"#sv-active-table tr[data-cid={ids['a1']}] .sv-takeover").click()
        moved = await alice.expect("chat.transferred", conversation_id=ids["a1"])
        assert moved["reason"] == "taken_over" and moved["to_agent"] == "sam"
        await page.click("#view-tabs [data-view=work]")
        await page.wait_for_selector(f".chat-item[data-cid='{ids['a1']}']")
        await customer.close()
        problems.assert_clean(allow=EXPECTED_NOISE)
        await ctx.close()
    finally:
        for client in online:
            await client.close()
        await db.close()
        await server.stop()
