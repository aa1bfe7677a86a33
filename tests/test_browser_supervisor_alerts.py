"""The supervisor view in real headless Chromium shows what the hub tells supervisors
live: a chat whose agent did not answer and that nobody else could take (`queue.alert`),
and a chat at risk then breached on its service levels and escalated (`sla.alert`), as
alarm entries, and the service levels of /api/stats as a card and a table. The frames come
from a real server with short settings (as in tests/test_queue_live.py)."""

from __future__ import annotations

import uuid

import asyncpg

from hub.store import agents
from supporthub_core.db import init_connection
from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    eventually,
    login_agent,
    new_page,
)
from tests.conftest import start_hub


async def test_live_queue_and_sla_alerts_reach_the_supervisor_view(isolated, browser):  # noqa: F811
    server = await start_hub(
        isolated, sla_first_response_s="normal=6,high=6", sla_at_risk=0.1,
        assignment_timeout_s=1.0, routing_sweep_s=0.3,
    )  # fmt: skip
    db = await asyncpg.connect(isolated.dsn)
    await init_connection(db)
    clients = []
    try:
        # the supervisor takes no chats (no skill the customers ask for, no room)
        await agents.upsert(db, username="sam", password="sam-pw", name="Sam",
                            skills=["feedback"], capacity=0, supervisor=True)  # fmt: skip
        await agents.upsert(db, username="lone", password="pw", name="Lone",
                            skills=["other"], capacity=1)  # fmt: skip
        ctx, page, problems = await new_page(browser, viewport={"width": 1440, "height": 900})
        await login_agent(page, server.url, "sam", "sam-pw")
        await page.click("#view-tabs [data-view=supervisor]")
        await page.wait_for_selector("#supervisor-view:not([hidden]) [data-stat=stats_sla_live]")
        assert "暂无即将超时或已超时的会话" in await page.inner_text("#sv-sla-panel")

        # a chat nobody can take: at risk, then breached and escalated
        user = await server.client(f"u-{uuid.uuid4().hex[:8]}", "user")
        clients.append(user)
        stuck = (
            await user.request({"type": "chat.open", "topic": "technical", "handoff": "agent"})
        )["conversation_id"]
        at_risk = page.locator(
            f"#sv-alarms [data-live='sla.alert'][data-cid='{stuck}'][data-kind=at_risk]"
        )
        await at_risk.wait_for(timeout=15_000)
        assert "SLA 即将超时" in await at_risk.inner_text()
        breached = page.locator(
            f"#sv-alarms [data-live='sla.alert'][data-cid='{stuck}'][data-kind=breached]"
        )
        await breached.wait_for(timeout=15_000)
        assert "已上报主管" in await breached.inner_text()
        # ... and the figures were refreshed: the table of chats at risk and the card
        row = page.locator(f"#sv-sla tr[data-cid='{stuck}'][data-state=breached]")
        await row.wait_for(timeout=15_000)
        assert await row.locator("td[data-col=action]").inner_text() == "已上报主管"
        await eventually(lambda: page.locator("[data-stat=stats_sla_live].danger").count())

        # an agent who does not answer: the chat keeps its place, nobody else can take it
        lone = await server.client("lone", "agent", name="Lone")
        clients.append(lone)
        await lone.request({"type": "agent.status", "status": "online"})
        other = await server.client(f"u-{uuid.uuid4().hex[:8]}", "user", name="Ming")
        clients.append(other)
        cid = (await other.request({"type": "chat.open", "topic": "other", "handoff": "agent"}))[
            "conversation_id"
        ]
        await lone.expect("chat.assigned", conversation_id=cid)
        alert = page.locator(f"#sv-alarms [data-live='queue.alert'][data-cid='{cid}']")
        await alert.wait_for(timeout=15_000)
        text = await alert.inner_text()
        assert "lone 未回复" in text and "保留排队位置" in text
        problems.assert_clean(allow=EXPECTED_NOISE)
        await ctx.close()
    finally:
        for c in clients:
            await c.close()
        await db.close()
        await server.stop()
