"""Push providers: one per subscription kind. Web Push (RFC 8030, payload encrypted with
RFC 8291 aes128gcm, VAPID RFC 8292) through `pywebpush`; FCM and APNs can join by
implementing `PushProvider` for their kind."""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
from pywebpush import WebPusher, WebPushException

from hub.push.config import VapidKey
from hub.push.subscriptions import Subscription

log = logging.getLogger(__name__)

VAPID_TTL_S = 12 * 3600  # the JWT's lifetime (RFC 8292 allows at most 24 h)
VAPID_RENEW_S = 3600  # sign a new one this long before the old one expires


class Outcome(enum.Enum):
    SENT = "sent"  # the push service took it
    GONE = "gone"  # 404/410: the subscription expired or was revoked: forget it
    RETRY = "retry"  # 429, 5xx, timeout, network: try again later
    REJECTED = "rejected"  # any other answer: trying again would not help


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    status: int | None = None
    retry_after_s: float | None = None
    detail: str = ""

    @classmethod
    def of_status(cls, status: int, retry_after: str | None = None) -> Result:
        if 200 <= status < 300:
            return cls(Outcome.SENT, status)
        if status in (404, 410):
            return cls(Outcome.GONE, status)
        if status == 429 or status >= 500:
            return cls(Outcome.RETRY, status, _seconds(retry_after))
        return cls(Outcome.REJECTED, status)


@dataclass(frozen=True, slots=True)
class PushMessage:
    payload: bytes  # JSON, encrypted by the provider
    ttl_s: int  # how long the push service may hold it for an unreachable device
    urgency: str = "normal"  # RFC 8030: very-low, low, normal, high
    topic: str | None = None  # RFC 8030: a newer push with the same topic replaces this one


class PushProvider(Protocol):
    """Delivers one message to one subscription of its kind."""

    kind: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, subscription: Subscription, message: PushMessage) -> Result: ...


class WebPushProvider:
    kind = "webpush"

    def __init__(self, vapid: VapidKey, subject: str, *, timeout_s: float = 10.0) -> None:
        self.vapid = vapid
        self.subject = subject
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._http: aiohttp.ClientSession | None = None
        self._signed: dict[str, tuple[float, dict[str, str]]] = {}  # audience -> (exp, headers)

    async def start(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self.timeout)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def vapid_headers(self, endpoint: str) -> dict[str, str]:
        """`Authorization: vapid t=<JWT>, k=<public key>`; one JWT per push service origin,
        reused until shortly before it expires."""
        url = urlsplit(endpoint)
        audience = f"{url.scheme}://{url.netloc}"
        now = time.time()
        cached = self._signed.get(audience)
        if cached is not None and cached[0] - VAPID_RENEW_S > now:
            return cached[1]
        exp = int(now) + VAPID_TTL_S
        headers = self.vapid.vapid.sign({"aud": audience, "exp": exp, "sub": self.subject})
        if len(self._signed) > 1000:
            self._signed.clear()
        self._signed[audience] = (exp, headers)
        return headers

    async def send(self, subscription: Subscription, message: PushMessage) -> Result:
        await self.start()
        headers = {"Urgency": message.urgency, **self.vapid_headers(subscription.endpoint)}
        if message.topic:
            headers["Topic"] = message.topic
        try:
            pusher = WebPusher(
                {"endpoint": subscription.endpoint, "keys": subscription.keys},
                aiohttp_session=self._http,
            )
            resp = await pusher.send_async(
                message.payload,
                headers,
                ttl=message.ttl_s,
                content_encoding="aes128gcm",
                timeout=self.timeout,
            )
        except WebPushException as exc:  # the keys cannot be used to encrypt
            return Result(Outcome.GONE, detail=f"unusable subscription: {exc}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Result(Outcome.RETRY, detail=f"{type(exc).__name__}: {exc}")
        result = Result.of_status(resp.status, resp.headers.get("Retry-After"))
        if result.outcome is Outcome.REJECTED:
            log.warning(
                "push service %s refused a push: %s",
                urlsplit(subscription.endpoint).netloc,
                resp.status,
            )
        return result


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare from push services: ignored)."""
    if not retry_after:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        return None
