"""Sending one-time codes out of band. `SmsSender` is the port the verification service
uses; which sender a process gets:

- `dev` (and the tests): `DevOutbox`, which keeps the last few codes of each user in memory
  so `GET /api/dev/otp?user_id=` can show them. Nothing leaves the process.
- `HUB_SMS_WEBHOOK_URL` set: `WebhookSmsSender` POSTs `{user_id, text, code, expires_at,
  lang}` there, signed (`X-Supporthub-Signature: sha256=<hex HMAC of the body>`, keyed with
  `HUB_SMS_WEBHOOK_KEY`, default `HUB_SECRET`). The receiver (the SMS provider's adapter)
  looks up the phone number of the user id and sends the text.
- otherwise: `UnconfiguredSmsSender` logs "no SMS provider configured" (never the code) and
  the code is lost; agents see the challenge expire.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx
import orjson

from supporthub_core.errors import Unavailable
from supporthub_core.outbound import tls_context
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

TEXTS = {
    "zh": "【支付助手】您的验证码是 {code}，{minutes} 分钟内有效。请只在验证框中输入，不要告诉任何人，包括客服。",
    "en": "Your verification code is {code}. It expires in {minutes} min. Type it into the "
    "verification box only; never tell it to anyone, support staff included.",
}


@dataclass(frozen=True, slots=True)
class OneTimeCode:
    user_id: str
    challenge_id: str
    code: str
    expires_at: datetime
    lang: str = "zh"

    def text(self, ttl_s: float) -> str:
        minutes = max(1, round(ttl_s / 60))
        return TEXTS.get(self.lang, TEXTS["zh"]).format(code=self.code, minutes=minutes)


class SmsSender(Protocol):
    async def send_code(self, message: OneTimeCode, ttl_s: float) -> None:
        """Deliver the code to the user's phone, or raise Unavailable."""
        ...


class DevOutbox:
    """Dev and tests: the last codes per user, in memory, for `GET /api/dev/otp`."""

    def __init__(self, per_user: int = 5, max_users: int = 10_000) -> None:
        self._per_user = per_user
        self._max_users = max_users
        self._codes: OrderedDict[str, deque[OneTimeCode]] = OrderedDict()

    async def send_code(self, message: OneTimeCode, ttl_s: float) -> None:
        codes = self._codes.pop(message.user_id, None) or deque(maxlen=self._per_user)
        codes.append(message)
        self._codes[message.user_id] = codes
        while len(self._codes) > self._max_users:
            self._codes.popitem(last=False)

    def latest(self, user_id: str) -> OneTimeCode | None:
        codes = self._codes.get(user_id)
        return codes[-1] if codes else None


class UnconfiguredSmsSender:
    """Production without a provider: says so in the log (the code never is)."""

    async def send_code(self, message: OneTimeCode, ttl_s: float) -> None:
        log.warning(
            "no SMS provider configured (HUB_SMS_WEBHOOK_URL): the code of challenge %s for"
            " user %s was not sent",
            message.challenge_id,
            message.user_id,
        )


class WebhookSmsSender:
    """POSTs each code to an SMS provider adapter, signed with a shared key."""

    def __init__(self, url: str, key: str, timeout_s: float = 5.0) -> None:
        self._url = url
        self._key = key.encode()
        self._timeout_s = timeout_s

    async def send_code(self, message: OneTimeCode, ttl_s: float) -> None:
        body = orjson.dumps(self._payload(message, ttl_s))
        signature = hmac.new(self._key, body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-Supporthub-Signature": f"sha256={signature}",
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s, verify=tls_context()) as client:
                resp = await client.post(self._url, content=body, headers=headers)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("SMS webhook failed for challenge %s: %s", message.challenge_id, exc)
            raise Unavailable("the verification code could not be sent; try again") from None

    @staticmethod
    def _payload(message: OneTimeCode, ttl_s: float) -> dict:
        return {
            "user_id": message.user_id,
            "challenge_id": message.challenge_id,
            "code": message.code,
            "text": message.text(ttl_s),
            "expires_at": message.expires_at.isoformat(),
            "lang": message.lang,
        }


def sms_sender_for(settings: Settings, secret: str, *, dev: bool) -> SmsSender:
    if dev:
        return DevOutbox()
    if settings.sms_webhook_url:
        return WebhookSmsSender(settings.sms_webhook_url, settings.sms_webhook_key or secret)
    return UnconfiguredSmsSender()
