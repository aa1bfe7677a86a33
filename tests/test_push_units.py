"""Push parts on their own: the VAPID key and its settings, the endpoint policy, what a
payload says, and the sender's retries (against a scripted provider)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from hub.background import Background
from hub.push import payloads
from hub.push.config import EndpointPolicy, PushConfig, VapidKey, endpoint_policy
from hub.push.providers import Outcome, PushMessage, Result, WebPushProvider
from hub.push.sender import PushJob, PushSender
from hub.push.subscriptions import Subscription
from hub.runtime import ConfigError, resolve_vapid
from hub.store.messages import StoredMessage
from hub.store.notifications import StoredNotification
from supporthub_core.errors import Invalid
from supporthub_core.settings import Settings

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_a_vapid_key_reads_raw_pem_and_der_alike():
    key = VapidKey.generate()
    private = key.vapid.private_key
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    import base64

    for text in (key.private_key, pem, base64.b64encode(der).decode()):
        assert VapidKey.parse(text).public_key == key.public_key
    for bad in ("", "not a key", "AAAA"):
        with pytest.raises(ValueError):
            VapidKey.parse(bad)


def test_the_dev_vapid_key_is_made_once_and_kept(tmp_path):
    settings = Settings(data_dir=tmp_path)
    first = resolve_vapid(settings, dev=True)
    assert (tmp_path / "vapid_private_key").stat().st_mode & 0o777 == 0o600
    assert resolve_vapid(settings, dev=True) == first
    assert resolve_vapid(Settings(data_dir=tmp_path / "other"), dev=False) is None


def test_serve_wants_a_subject_and_a_good_key(tmp_path):
    key = VapidKey.generate().private_key
    with pytest.raises(ConfigError, match="HUB_VAPID_SUBJECT"):
        resolve_vapid(Settings(vapid_private_key=key), dev=False)
    with pytest.raises(ConfigError, match="HUB_VAPID_PRIVATE_KEY"):
        resolve_vapid(Settings(vapid_private_key="nope", vapid_subject="mailto:a@b.c"), dev=False)
    with pytest.raises(ConfigError, match="mailto"):
        resolve_vapid(Settings(vapid_private_key=key, vapid_subject="ops"), dev=False)
    good = Settings(vapid_private_key=key, vapid_subject="https://pay.example.com")
    assert resolve_vapid(good, dev=False) == key
    assert PushConfig.from_settings(good, dev=False).vapid.private_key == key


def test_endpoints_are_push_services_over_https():
    prod = endpoint_policy(Settings(), dev=False)
    for ok in (
        "https://fcm.googleapis.com/fcm/send/abc:def",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAA",
        "https://web.push.apple.com/QGx",
        "https://wns2-par02p.notify.windows.com/w/?token=x",
    ):
        prod.check(ok)
    for bad in (
        "http://fcm.googleapis.com/fcm/send/x",
        "https://fcm.googleapis.com.evil.example/x",
        "https://user:pw@fcm.googleapis.com/x",
        "http://127.0.0.1:8080/push",
        "https://127.0.0.1/push",
        "https://example.com/push",
        "javascript:alert(1)",
        "https://fcm.googleapis.com:99999/x",
    ):
        with pytest.raises(Invalid):
            prod.check(bad)
    dev = endpoint_policy(Settings(), dev=True)
    dev.check("http://127.0.0.1:8080/push")
    dev.check("http://localhost/push")
    with pytest.raises(Invalid):
        dev.check("http://10.1.2.3/push")
    anywhere = EndpointPolicy(hosts=None)
    anywhere.check("https://push.example.net/x")
    for internal in ("https://10.0.0.8/x", "https://[::1]/x", "https://169.254.169.254/x",
                     "https://metadata.internal/x"):  # fmt: skip
        with pytest.raises(Invalid):
            anywhere.check(internal)
    own = endpoint_policy(
        Settings(push_endpoint_hosts="push.example.com, *.corp.example"), dev=False
    )
    own.check("https://push.example.com/x")
    own.check("https://a.corp.example/x")
    with pytest.raises(Invalid):
        own.check("https://fcm.googleapis.com/x")


def _notification(kind: str, **data) -> StoredNotification:
    return StoredNotification(
        "n1", "u1", 7, kind, "账户异常活动", "我们检测到您的账户存在异常活动。", data, NOW
    )


def test_a_security_alert_payload_is_generic_in_the_users_language():
    n = _notification("security.alert", alert="new_device_login", details={"ip": "203.0.113.9"})
    for lang, body in (("zh", "您的账户有一条安全提醒——请打开应用查看"),
                       ("en", "Security alert on your account — open the app")):  # fmt: skip
        message = payloads.notification(n, lang, 60)
        payload = orjson.loads(message.payload)
        assert payload == {"notification_id": "n1", "kind": "security.alert",
                           "title": payloads.SECURITY_ALERT[lang][0], "body": body,
                           "ts": NOW.isoformat()}  # fmt: skip
        assert message.urgency == "high" and message.ttl_s == 60


def test_transaction_pushes_share_a_topic_per_transfer():
    a = payloads.notification(_notification("transaction.status", transaction_id="tx1"), "zh", 60)
    b = payloads.notification(_notification("transaction.status", transaction_id="tx1"), "zh", 60)
    c = payloads.notification(_notification("transaction.status", transaction_id="tx2"), "zh", 60)
    assert a.topic == b.topic != c.topic and len(a.topic) <= 32
    assert set(a.topic) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_reply_payload_previews_or_not():
    m = StoredMessage("m1", "c1", 3, "agent", "a1", "Alice", "x" * 500, None, NOW, "u1", "a1")
    payload = orjson.loads(payloads.message(m, "en", 60, preview=True).payload)
    assert payload["message_id"] == "m1" and payload["conversation_id"] == "c1"
    assert len(payload["body"]) == payloads.PREVIEW_MAX and payload["body"].endswith("…")
    hidden = orjson.loads(payloads.message(m, "en", 60, preview=False).payload)
    assert hidden["body"] == payloads.REPLY_GENERIC["en"] and "x" not in hidden["body"]


def test_statuses_map_to_outcomes():
    assert Result.of_status(201).outcome is Outcome.SENT
    assert Result.of_status(404).outcome is Outcome.GONE
    assert Result.of_status(410).outcome is Outcome.GONE
    assert Result.of_status(429, "7").retry_after_s == 7.0
    assert Result.of_status(503).outcome is Outcome.RETRY
    assert Result.of_status(413).outcome is Outcome.REJECTED
    assert Result.of_status(403).outcome is Outcome.REJECTED


def test_vapid_headers_are_signed_once_per_push_service():
    provider = WebPushProvider(VapidKey.generate(), "mailto:ops@example.com")
    a = provider.vapid_headers("https://fcm.googleapis.com/fcm/send/1")
    b = provider.vapid_headers("https://fcm.googleapis.com/fcm/send/2")
    c = provider.vapid_headers("https://web.push.apple.com/x")
    assert a is b and a != c and a["Authorization"].startswith("vapid t=")


class ScriptedProvider:
    kind = "webpush"

    def __init__(self, *results: Result | Exception | float):
        self.results = list(results)
        self.calls = 0

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, subscription, message) -> Result:
        self.calls += 1
        r = self.results.pop(0) if self.results else Result(Outcome.SENT, 201)
        if isinstance(r, Exception):
            raise r
        if isinstance(r, float):
            await asyncio.sleep(r)
            return Result(Outcome.SENT, 201)
        return r


class NoStore:
    def acquire(self):
        raise AssertionError("no store access expected")


async def _sent(provider, **kw) -> PushSender:
    tasks = Background()
    sender = PushSender({"webpush": provider}, NoStore(), workers=2, backoff_s=0.01,
                        backoff_max_s=0.05, **kw)  # fmt: skip
    await sender.start(tasks)
    job = PushJob(Subscription("s1", "u1", "webpush", "https://x", {}), PushMessage(b"{}", 60))
    assert sender.submit(job)
    for _ in range(300):
        await asyncio.sleep(0.01)
        if sender.idle:
            break
    await tasks.stop()
    await sender.close()
    return sender


async def test_the_sender_retries_then_gives_up():
    provider = ScriptedProvider(
        Result(Outcome.RETRY, 503), RuntimeError("bug"), Result(Outcome.RETRY, 429, 0.0)
    )
    await _sent(provider, retries=4)
    assert provider.calls == 4  # three failures, then sent
    stubborn = ScriptedProvider(*[Result(Outcome.RETRY, 500)] * 10)
    await _sent(stubborn, retries=2)
    assert stubborn.calls == 3
    refused = ScriptedProvider(Result(Outcome.REJECTED, 400))
    await _sent(refused)
    assert refused.calls == 1


async def test_a_slow_push_service_times_out_and_is_retried():
    provider = ScriptedProvider(5.0)
    await _sent(provider, timeout_s=0.05, retries=1)
    assert provider.calls == 2


async def test_a_full_lane_drops_instead_of_waiting():
    sender = PushSender({"webpush": ScriptedProvider()}, NoStore(), queue_size=2)
    job = PushJob(Subscription("s1", "u1", "webpush", "https://x", {}), PushMessage(b"{}", 60))
    assert sender.submit(job) and sender.submit(job) and not sender.submit(job)
