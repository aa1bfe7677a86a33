"""Refresh the README's screenshots (docs/screenshots/*.png) from a seeded demo.

    python -m bench.screenshots                # writes docs/screenshots/*.png
    python -m bench.screenshots --out /tmp/x   # somewhere else, to look first

What `supporthub dev` runs, in a temporary data directory: an embedded PostgreSQL and
Redis, the migrations, the demo agents (alice, bob, sam) and the demo users with their
payment accounts and history (payments/seed.py), the whole app on a free local port.
Then a morning at the help desk: a few chats answered and rated earlier, an hour of queue
history for the supervisor's chart; Alice online with a Chinese chat about a red packet
that has not arrived and an English one about a double charge; a payment made while the
chat is open; the Ctrl+K palette with the team's macros and Alice's own; an account frozen
by the risk team, which opens an urgent security chat and shows the user a critical alert;
Bob, whose browser speaks English, getting Carol's chat from Alice with a handover note; a
user on a phone asking the help bot. The system
Chromium photographs each page. The tests never write here: their screenshots go to a
temporary directory (tests/browser.py).

Needs the test extra (`pip install -e '.[test]'`, for Playwright) and Debian's
`chromium`, `fonts-noto-cjk` and `fonts-noto-color-emoji` (or SUPPORTHUB_CHROMIUM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import itertools
import os
import random
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import uvicorn
import websockets

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("SUPPORTHUB_CHROMIUM", "/usr/bin/chromium")
DESKTOP = {"viewport": {"width": 1440, "height": 900}, "locale": "zh-CN"}
#: an agent whose browser speaks English: the console follows it
DESKTOP_EN = {"viewport": {"width": 1440, "height": 900}, "locale": "en-US"}
WIDGET = {"viewport": {"width": 1280, "height": 800}}
PHONE = {
    "viewport": {"width": 375, "height": 667},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
JSON_PROTOCOL = "supporthub.json.v1"
_ids = itertools.count(1)


# --- the demo ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def demo_hub(data_dir: Path) -> AsyncIterator[tuple[str, str, str]]:
    """`supporthub dev` in this process: (base URL, dsn, secret) while it runs."""
    from hub.app import create_app
    from hub.cli import DEMO_AGENTS
    from hub.runtime import start_runtime
    from hub.store import agents
    from payments.seed import seed_demo_accounts
    from supporthub_core.db import migrate
    from supporthub_core.settings import Settings

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(data_dir=data_dir, host="127.0.0.1", port=port, settlement_delay_s=20)
    rt = start_runtime(settings, dev=True)
    try:
        await migrate(rt.dsn)
        db = await asyncpg.connect(rt.dsn)
        try:
            # no security back-up here: the frozen account's urgent chat waits in the queue
            # for the supervisor's picture (Bob, the security agent, comes online later)
            for username, password, name, skills, capacity, supervisor, *_ in DEMO_AGENTS:
                await agents.upsert(db, username=username, password=password, name=name,
                                    skills=skills, capacity=capacity, supervisor=supervisor,
                                    )  # fmt: skip
        finally:
            await db.close()
        await seed_demo_accounts(rt.dsn)
        app = create_app(settings, dsn=rt.dsn, redis_url=rt.redis_url, secret=rt.secret,
                         events_key=rt.events_key, with_payments=True, dev=True,
                         vapid_private_key=rt.vapid_private_key)  # fmt: skip
        config = uvicorn.Config(app, ws="websockets-sansio", lifespan="on", log_config=None,
                                access_log=False, ws_ping_interval=None)  # fmt: skip
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            await until(lambda: server.started or task.done(), 60)
            if task.done():
                task.result()
            yield f"http://127.0.0.1:{port}", rt.dsn, rt.secret
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 30)
    finally:
        sock.close()
        rt.stop()


async def until(check: Callable[[], Any], timeout: float, what: str = "condition") -> Any:
    """Poll `check` (sync or async) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.1)


class Socket:
    """A JSON WebSocket session, for the chats that happened before the pictures."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, base: str, token: str) -> Socket:
        ws = await websockets.connect(
            base.replace("http", "ws", 1) + "/ws", subprotocols=[JSON_PROTOCOL]
        )
        session = cls(ws)
        await session.send({"type": "hello", "token": token})
        await session.expect(lambda f: f["type"] == "welcome")
        return session

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                self.frames.append(orjson.loads(raw))

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(frame).decode())

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        fid = f"s{next(_ids)}"
        await self.send({**frame, "id": fid})
        return await self.expect(lambda f: f.get("id") == fid)

    async def expect(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for i, frame in enumerate(self.frames):
                if match(frame):
                    return self.frames.pop(i)
            return None

        return await until(found, 20, "a frame")

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


async def earlier_today(base: str, token: Callable[..., str], dsn: str) -> None:
    """Chats answered and rated before the pictures, and an hour of queue history: what
    the supervisor's cards and chart are made of."""
    agent = await Socket.open(base, token("alice", "agent", "Alice 王丽"))
    await agent.request({"type": "agent.status", "status": "online"})
    earlier = [
        ("u-bob", "Bob 李", "account", "zh", "换了新手机，怎么把账户迁过去？",
         "您好！在新手机登录后按提示验证短信即可，余额和记录都会保留。", 5),
        ("u-carol", "Carol 王", "payment", "en", "Can I raise my daily transfer limit?",
         "Yes: Me → Security → Limits. Higher limits need a verified ID.", 4),
        ("u-dave", "Dave 赵", "technical", "en", "The app keeps spinning when I open it",
         "Please update to the latest version and clear its cache; our service is up.", 5),
    ]  # fmt: skip
    # when each began (minutes ago), the wait for an agent, the first answer, the end (s)
    timing = [(175, 40, 55, 420), (118, 95, 70, 610), (52, 25, 40, 380)]
    done = []
    for user_id, name, topic, lang, question, answer, score in earlier:
        user = await Socket.open(base, token(user_id, "user", name))
        opened = await user.request(
            {"type": "chat.open", "topic": topic, "text": question, "handoff": "agent",
             "lang": lang}
        )  # fmt: skip
        cid = opened["conversation_id"]
        await agent.expect(lambda f, cid=cid: f["type"] == "chat.assigned"
                           and f["conversation_id"] == cid)  # fmt: skip
        await asyncio.sleep(1.5)  # reading the question
        await agent.request({"type": "chat.send", "conversation_id": cid,
                             "client_msg_id": uuid.uuid4().hex, "text": answer})  # fmt: skip
        await user.request({"type": "chat.send", "conversation_id": cid,
                            "client_msg_id": uuid.uuid4().hex,
                            "text": "好的，谢谢！" if lang == "zh" else "Great, thanks!"})  # fmt: skip
        await agent.request({"type": "chat.resolve", "conversation_id": cid})
        await user.request({"type": "chat.rate", "conversation_id": cid, "score": score})
        await user.close()
        done.append(cid)
    await agent.request({"type": "agent.status", "status": "offline"})
    await agent.close()

    # what customers told the help bot for the product team this week
    said = [
        ("u-erin", "Erin 周", "zh", "建议增加夜间模式，晚上看着太亮了"),
        ("u-frank", "Frank", "en", "please add a dark mode"),
        ("u-gina", "Gina 孙", "zh", "提现手续费好贵啊"),
        ("u-hank", "Hank 吴", "en", "Could you add Face ID login please?"),
    ]  # fmt: skip
    for user_id, name, lang, text in said:
        user = await Socket.open(base, token(user_id, "user", name))
        opened = await user.request({"type": "chat.open", "topic": "feedback", "text": text,
                                     "handoff": "bot", "lang": lang})  # fmt: skip
        cid = opened["conversation_id"]
        await user.expect(lambda f, cid=cid: f["type"] == "message" and f["seq"] >= 3
                          and f["conversation_id"] == cid)  # fmt: skip
        await user.close()

    rng = random.Random(2024)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    db = await asyncpg.connect(dsn)
    try:
        # they happened through the morning, not seconds ago
        for cid, (ago, wait_s, answer_s, end_s) in zip(done, timing, strict=True):
            began = now - timedelta(minutes=ago)
            assigned = began + timedelta(seconds=wait_s)
            answered = assigned + timedelta(seconds=answer_s)
            ended = began + timedelta(seconds=end_s)
            await db.execute(
                "update conversations set created_at = $2, enqueued_at = $2, assigned_at = $3,"
                " first_response_at = $4, resolved_at = $5, last_activity_at = $5 where id = $1",
                cid, began, assigned, answered, ended,
            )  # fmt: skip
            await db.execute(
                "update conversation_agents set assigned_at = $2 where conversation_id = $1",
                cid, assigned,
            )  # fmt: skip
            await db.execute(
                "update messages set created_at = case seq when 1 then $2::timestamptz"
                " when 2 then $3::timestamptz else $4::timestamptz end where conversation_id = $1",
                cid, began, answered, ended - timedelta(seconds=30),
            )  # fmt: skip
        for minute in range(60, 0, -3):
            queued = max(0, round(rng.gauss(1.6, 1.2)))
            wait_s = 25 + 20 * queued + rng.uniform(0, 25)
            await db.execute(
                "insert into queue_samples (ts, queued, avg_wait_s) values ($1, $2, $3)"
                " on conflict do nothing",
                now - timedelta(minutes=minute), queued, wait_s,
            )  # fmt: skip
    finally:
        await db.close()


# --- the pictures --------------------------------------------------------------------------


async def new_page(browser: Any, **options: Any) -> tuple[Any, Any]:
    context = await browser.new_context(**options)
    page = await context.new_page()
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.dismiss()))
    return context, page


async def sign_in(page: Any, base: str, username: str, password: str) -> None:
    await page.goto(f"{base}/console/")
    await page.fill("#login-user", username)
    await page.fill("#login-pass", password)
    await page.click("#login-submit")
    await page.wait_for_selector("#app-view:not([hidden])")
    await page.wait_for_selector("#conn-state.st-open")


async def say(page: Any, box: str, text: str) -> None:
    await page.fill(box, text)
    await page.press(box, "Enter")


async def take(page: Any, out: Path, name: str) -> None:
    await page.wait_for_timeout(600)  # let transitions and toasts settle
    path = out / f"{name}.png"
    await page.screenshot(path=str(path))
    print(f"  {path}")


async def photograph(base: str, token: Callable[..., str], out: Path) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            await _photograph(browser, base, token, out)
        finally:
            await browser.close()


async def _photograph(browser: Any, base: str, token: Callable[..., str], out: Path) -> None:
    # Alice goes online; Alice Zhang asks about a red packet that has not arrived
    _, agent = await new_page(browser, **DESKTOP)
    await sign_in(agent, base, "alice", "alice123")
    await agent.click("#status-switch [data-status=online]")
    await agent.wait_for_selector("#status-switch [data-status=online].on")

    _, user = await new_page(browser, **WIDGET)
    await user.goto(f"{base}/widget/?user=u-alice")
    await user.click("[data-topic=arrival]")
    await user.fill("#first-text", "我一小时前给 Carol 发了 88 元红包，她说还没收到")
    await user.click("#btn-start")
    await user.wait_for_selector("#view-chat:not([hidden])")
    await user.wait_for_selector(".msg.bot", timeout=20000)
    await user.wait_for_timeout(1500)
    await user.click("#btn-escalate")
    await agent.wait_for_selector(".chat-item")
    await agent.wait_for_selector("#conv:not([hidden])")
    first = await agent.get_attribute(".chat-item", "data-cid")

    await say(agent, "#reply", "您好，我是 Alice，我来帮您查一下这笔红包。")
    await user.wait_for_selector(".msg.agent")
    await say(user, "#input", "好的，用的是普通到账")
    await agent.wait_for_selector(".msg.user >> text=普通到账")
    await agent.click(".composer-tabs [data-mode=note]")
    await say(agent, "#reply", "普通到账，系统显示已结算：请对方刷新余额")
    await agent.wait_for_selector(".note")
    await agent.click(".composer-tabs [data-mode=reply]")
    await agent.click("#btn-canned")
    await agent.fill("#canned-search", "到账")
    canned = agent.locator("#canned-list .canned[data-slug=arrival-delay]")
    await canned.wait_for()
    await canned.click()
    await agent.press("#reply", "Enter")
    await user.wait_for_selector(".msg.agent .help-link")

    # a payment while the chat is open: it shows up live in the customer panel
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token('u-alice', 'user', 'Alice 张')}"}
    ) as http:
        paid = await http.post("/api/payments", json={
            "to_account": "u-bob", "amount": "45.00", "speed": "instant", "memo": "电影票 movie",
            "idempotency_key": uuid.uuid4().hex,
        })  # fmt: skip
        paid.raise_for_status()
    await say(user, "#input", "另外我刚给 Bob 付了电影票，那笔已经显示成功了")
    await agent.wait_for_selector(".msg.user >> text=电影票")
    await agent.wait_for_selector("#customer [data-tx]")
    await say(
        agent,
        "#reply",
        "两笔都已到账：红包已到 Carol 的账户，请她下拉刷新一下余额；电影票那笔也已实时到账。",
    )
    await user.wait_for_selector(".msg.agent >> text=两笔都已到账")

    # Carol writes in English about a double charge: a second chat in Alice's list
    _, carol = await new_page(browser, **WIDGET)
    await carol.goto(f"{base}/widget/?user=u-carol&lang=en")
    await carol.click("[data-topic=payment]")
    await carol.fill("#first-text", "I was charged twice for the same coffee order this morning")
    await carol.click("#btn-start-agent")
    await agent.wait_for_selector(".chat-item >> nth=1")
    await agent.click(f'.chat-item[data-cid="{first}"]')
    await agent.wait_for_selector(".msg.user >> text=普通到账")
    await user.wait_for_selector(".msg.mine.is-read")
    await agent.wait_for_timeout(4000)  # the new-chat toast fades
    await take(agent, out, "console-agent")
    await take(user, out, "widget-desktop")

    # Ctrl+K: the team's macros and Alice's own, those for the chat's topic first, then
    # help-center articles
    await seed_macros(base, token)
    await agent.keyboard.press("Control+k")
    await agent.wait_for_selector("#canned-list .canned-macro")
    await take(agent, out, "console-macros")
    await agent.keyboard.press("Escape")

    # the risk team freezes Dave's account: a critical alert on his screen, an urgent
    # security chat in the queue (Bob, the security agent, is not online yet)
    _, dave = await new_page(browser, **WIDGET)
    await dave.goto(f"{base}/widget/?user=u-dave&lang=en")
    await dave.wait_for_selector("#topics .topic")
    await dave.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token('bob', 'agent', 'Bob 陈波')}"}
    ) as http:
        frozen = await http.post(
            "/api/accounts/u-dave/freeze",
            json={"reason": "three sign-ins from new devices in ten minutes"},
        )
        frozen.raise_for_status()
    await dave.wait_for_selector("#alert-banner:not([hidden])", timeout=20000)
    await take(dave, out, "widget-security-alert")

    # the supervisor's view: the day's figures, the chart, the queue, Alice's load
    _, sam = await new_page(browser, **DESKTOP)
    await sign_in(sam, base, "sam", "sam123")
    await sam.wait_for_selector("#view-tabs:not([hidden])")
    await sam.click("#view-tabs [data-view=supervisor]")
    await sam.wait_for_selector("#supervisor-view:not([hidden]) #sv-cards")
    await sam.wait_for_selector("#sv-chart svg rect.bar")
    await sam.wait_for_selector("#sv-queue tbody tr, #sv-queue p")
    await sam.wait_for_selector("#sv-agents tr[data-agent=alice]")
    await take(sam, out, "console-supervisor")
    # further down: the chats in progress, each agent's day, topics, the week's feedback
    await sam.wait_for_selector("#sv-themes tbody tr")
    await sam.locator("#sv-active").scroll_into_view_if_needed()
    await sam.evaluate("document.querySelector('#sv-active').closest('.sv-grid').scrollIntoView()")
    await take(sam, out, "console-supervisor-floor")

    # Bob (whose browser speaks English) comes online; Alice hands Carol's chat over to him
    # with a note: he reads it first, above the conversation
    _, bob = await new_page(browser, **DESKTOP_EN)
    await sign_in(bob, base, "bob", "bob123")
    await bob.click("#status-switch [data-status=online]")
    await bob.wait_for_selector("#status-switch [data-status=online].on")
    await agent.click(".chat-item:not([data-cid='" + first + "'])")
    await agent.click("#btn-transfer")
    await agent.click("#dlg [data-agent=bob] input")
    await agent.fill(
        "#transfer-note",
        "Charged twice for one coffee order (08:12, 2 × ¥32). Second charge to be "
        "refunded: please check with the merchant's acquirer.",
    )
    await agent.click("#transfer-go")
    carol_item = bob.locator(".chat-item", has_text="Carol")
    await carol_item.wait_for(timeout=20000)
    await carol_item.click()
    await bob.wait_for_selector("#handover:not([hidden])")
    await say(bob, "#reply", "Hi Carol, I'm Bob and I'm looking at the double charge now.")
    await carol.wait_for_selector(".msg.agent >> text=double charge")
    await bob.wait_for_timeout(4000)  # the new-chat toasts fade
    await take(bob, out, "console-handover")

    # a user on a phone asks the help bot
    _, phone = await new_page(browser, **PHONE)
    await phone.goto(f"{base}/widget/?user=u-bob")
    await phone.click("[data-topic=payment]")
    await phone.fill("#first-text", "付款失败了，钱会退回来吗？")
    await phone.click("#btn-start")
    await phone.wait_for_selector(".msg.bot .help-link", timeout=20000)
    await phone.wait_for_timeout(1500)
    await take(phone, out, "widget-phone")

    # the REST API page, the payment operation open
    _, docs = await new_page(browser, viewport={"width": 1200, "height": 900})
    await docs.goto(f"{base}/api/docs")
    await docs.locator("details#post_api_payments summary").click()
    await take(docs, out, "api-docs")


async def seed_macros(base: str, token: Callable[..., str]) -> None:
    """Two team macros kept by the supervisor and a personal one of Alice's."""
    team = [
        ("到账时间说明 / Arrival times", ["arrival", "payment"],
         "{customer_name}您好，您最近的一笔交易：{latest_transaction}。实时到账一般几秒内完成，"
         "普通到账在 2 小时内完成，请对方下拉刷新余额。",
         "Hello {customer_name}, your latest transaction: {latest_transaction}. Instant "
         "transfers arrive within seconds, standard ones within 2 hours."),
        ("重复扣款 / Double charge", ["payment"],
         "{customer_name}您好，重复扣款会在 1–3 个工作日内自动退回原账户，我已为您登记。",
         "Hello {customer_name}, a double charge is refunded to your account within 1-3 "
         "business days; I have logged it for you."),
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=base) as http:
        sam = {"Authorization": f"Bearer {token('sam', 'supervisor', 'Sam 孙')}"}
        for title, topics, zh, en in team:
            body = {"title": title, "body_zh": zh, "body_en": en, "topics": topics,
                    "scope": "team"}  # fmt: skip
            (await http.post("/api/macros", json=body, headers=sam)).raise_for_status()
        alice = {"Authorization": f"Bearer {token('alice', 'agent', 'Alice 王丽')}"}
        mine = {"title": "结束语 / Closing", "body_zh": "还有其他可以帮您的吗？祝您生活愉快！",
                "body_en": "Is there anything else I can help with? Have a lovely day!"}  # fmt: skip
        (await http.post("/api/macros", json=mine, headers=alice)).raise_for_status()


async def main(out: Path) -> None:
    from supporthub_core.auth import issue_token

    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="sh-shots-"))
    try:
        async with demo_hub(data_dir) as (base, dsn, secret):

            def token(sub: str, role: str, name: str | None = None) -> str:
                return issue_token(secret, sub, role, name=name)

            print(f"demo running at {base}; a morning at the help desk...")
            await earlier_today(base, token, dsn)
            print("photographing:")
            await photograph(base, token, out)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.screenshots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    asyncio.run(main(args.out))


if __name__ == "__main__":
    cli()
