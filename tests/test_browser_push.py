"""The web chat's push path in real headless Chromium, against a push-enabled hub and the
local push service of tests/pushservice.py.

What headless Chromium can and cannot do here: it registers the widget's service worker,
grants the `notifications` permission, shows notifications and delivers a push message
to the worker (through the DevTools protocol). It cannot create a push subscription:
Playwright's contexts are incognito ("Registration failed - permission denied"), and a
persistent profile would need the browser vendor's push service, out of reach of a
test. So the first test lets the real `PushManager.subscribe()` fail and checks that the
widget says so and sends nothing; the second replaces `subscribe()` in the page with one
that returns what a browser would (an endpoint on the local push service and a real
P-256 key pair made by the test), and follows the rest for real: the VAPID key the widget
subscribes with, `push.register` and the stored subscription, an encrypted push the
push service decrypts, the worker showing it once, and the page's copy deduplicated.
"""

from __future__ import annotations

import base64
import contextlib
import uuid

import orjson
import pytest

from payments.seed import add_account
from tests.browser import (  # noqa: F401  (browser is a fixture)
    EXPECTED_NOISE,
    browser,
    eventually,
    new_page,
)
from tests.pushservice import (
    VAPID,
    Device,
    PushEnv,
    push_env,  # noqa: F401  (a fixture)
)

# what Chromium prints when an incognito page asks for a push subscription
INCOGNITO_PUSH = "does not support the Push API in incognito mode"


@pytest.fixture(scope="module")
def env(push_env: PushEnv) -> PushEnv:  # noqa: F811
    return push_env


def fake_subscribe_script(device: Device) -> str:
    """`PushManager.subscribe()` as a browser with a push service would answer it."""
    sub = orjson.dumps(device.subscription()).decode()
    return """
    (() => {
      const json = __SUBSCRIPTION__;
      let current = null;
      const make = (options) => ({
        endpoint: json.endpoint,
        expirationTime: null,
        options,
        getKey: () => null,
        toJSON: () => json,
        unsubscribe: async () => { current = null; return true; },
      });
      PushManager.prototype.subscribe = async function (options) {
        window.__pushKeys = (window.__pushKeys || []).concat([Array.from(new Uint8Array(options.applicationServerKey))]);
        current = make({ userVisibleOnly: options.userVisibleOnly, applicationServerKey: new Uint8Array(options.applicationServerKey).buffer });
        return current;
      };
      PushManager.prototype.getSubscription = async function () { return current; };
    })();
    """.replace("__SUBSCRIPTION__", sub)


async def worker_notifications(page) -> list[dict]:
    return await page.evaluate(
        """async () => {
          const reg = await navigator.serviceWorker.getRegistration("/widget/");
          const list = await reg.getNotifications();
          return list.map((n) => ({ title: n.title, body: n.body, tag: n.tag }));
        }"""
    )


async def deliver_push(context, page, origin: str, payload: dict) -> None:
    """Hand a push message to the widget's service worker, as the browser does when its
    push service delivers one (the encryption was checked by the local push service)."""
    cdp = await context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(e["registrations"]),
    )
    await cdp.send("ServiceWorker.enable")
    await eventually(lambda: [r for r in registrations if r["scopeURL"].endswith("/widget/")])
    [reg] = [r for r in registrations if r["scopeURL"].endswith("/widget/") and not r["isDeleted"]][
        :1
    ]
    await cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": origin,
            "registrationId": reg["registrationId"],
            "data": orjson.dumps(payload).decode(),
        },
    )
    await cdp.detach()


async def test_without_a_push_service_the_switch_says_it_failed(env, browser):  # noqa: F811
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    ctx, page, problems = await new_page(browser, permissions=["notifications"])
    await page.goto(f"{env.hub.url}/widget/?user={user_id}")
    await page.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
    scope = await page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    assert scope == f"{env.hub.url}/widget/"
    await page.click("#btn-bell")
    await page.wait_for_selector("#push-row:not([hidden])")
    assert await page.get_attribute("#push-toggle", "aria-checked") == "false"
    await page.click("#push-toggle")
    await page.wait_for_selector("#push-toggle[data-state=failed]")
    assert "无法开启" in await page.inner_text("#push-note")
    assert await env.subscriptions(user_id) == []
    problems.assert_clean(allow=(*EXPECTED_NOISE, INCOGNITO_PUSH))
    await ctx.close()


async def test_the_widget_subscribes_registers_and_its_worker_shows_a_push_once(env, browser):  # noqa: F811
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    await add_account(env.iso.dsn, user_id, "Chen", "5.00")
    device = env.push.device(f"chromium-{user_id}")
    ctx, page, problems = await new_page(
        browser, permissions=["notifications"], viewport={"width": 1024, "height": 760}
    )
    await ctx.add_init_script(fake_subscribe_script(device))
    await page.goto(f"{env.hub.url}/widget/?user={user_id}&lang=en")
    await page.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
    await page.evaluate("navigator.serviceWorker.ready")

    # asked only after the user turns it on
    assert await page.evaluate("window.__pushKeys || null") is None
    await page.click("#btn-bell")
    await page.wait_for_selector(
        "#push-row:not([hidden]) >> text=Notify me when this page is closed"
    )
    await page.click("#push-toggle")
    await page.wait_for_selector("#push-toggle[aria-checked=true]")
    assert "On:" in await page.inner_text("#push-note")
    [key] = await page.evaluate("window.__pushKeys")
    assert bytes(key) == base64.urlsafe_b64decode(VAPID.public_key + "=")
    [stored] = await env.subscriptions(user_id)
    assert stored["endpoint"] == device.endpoint and stored["kind"] == "webpush"

    # the app is closed; a payment fails: the push service gets it, encrypted for the device
    await page.goto(f"{env.hub.url}/healthz")  # same origin, outside the widget's scope
    await eventually(lambda: env.offline(user_id))
    payment = await env.pay(user_id, "nobody", "50.00")
    assert payment["status"] == "failed"
    push = await env.push.next_push(device.name)
    payload = push.payload
    assert payload["kind"] == "transaction.status" and payload["notification_id"]

    # the worker shows it, once, whatever the number of copies
    # a push handed over while the worker is still waking can go unseen on a busy machine:
    # hand it again (the worker shows an id once, which is what is checked below)
    shown = None
    for _ in range(3):
        await deliver_push(ctx, page, env.hub.url, payload)
        with contextlib.suppress(AssertionError):
            shown = await eventually(lambda: worker_notifications(page), timeout=10)
            break
    assert shown == [
        {"title": payload["title"], "body": payload["body"], "tag": payload["notification_id"]}
    ]
    await deliver_push(ctx, page, env.hub.url, payload)
    await page.wait_for_timeout(300)
    assert len(await worker_notifications(page)) == 1

    # the app opens again: its socket replays the notification, and the page takes over
    # from the system notification
    await page.goto(f"{env.hub.url}/widget/?user={user_id}&lang=en")
    await page.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
    await page.wait_for_function(
        "(id) => window.__supporthub.state.feed.some((n) => n.notification_id === id)",
        arg=payload["notification_id"],
    )
    await eventually(lambda: _none(worker_notifications(page)))
    # a late copy of what the page showed is not shown again
    await page.goto(f"{env.hub.url}/healthz")
    await deliver_push(ctx, page, env.hub.url, payload)
    await page.wait_for_timeout(300)
    assert await worker_notifications(page) == []

    # turned off: the hub forgets this browser
    await page.goto(f"{env.hub.url}/widget/?user={user_id}&lang=en")
    await page.wait_for_function("() => window.__supporthub?.client?.state === 'open'")
    await page.click("#btn-bell")
    await page.wait_for_selector("#push-toggle[aria-checked=true]")
    await page.click("#push-toggle")
    await page.wait_for_selector("#push-toggle[aria-checked=false]")
    await eventually(lambda: _empty(env.subscriptions(user_id)))
    problems.assert_clean(allow=EXPECTED_NOISE)
    await ctx.close()


async def _none(awaitable) -> bool:
    return not await awaitable


async def _empty(awaitable) -> bool:
    return await awaitable == []
