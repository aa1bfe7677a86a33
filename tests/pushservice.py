"""A push service for tests, on a loopback port: what a browser's push service does with
what the hub sends, checked the way a real one (and the browser behind it) would.

- `Device` is the browser side: a real P-256 key pair and auth secret, as
  `PushManager.subscribe()` makes them, and the RFC 8291 decryption of a push.
- `LocalPushService` receives `POST /push/<device>`, verifies the VAPID `Authorization`
  (RFC 8292: an ES256 JWT for this origin, signed with the hub's key), decrypts the body
  with the device's keys and keeps the result; it answers what a test scripts (201 by
  default; 410, 429, 503... to test the hub's handling).
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
import http_ece
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.embedded import PG_DB, EmbeddedRedis
from hub.push.config import VapidKey
from supporthub_core.db import init_connection, migrate
from tests.conftest import IsolatedServices, start_hub
from tests.receiver import LoopbackReceiver


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Device:
    """A browser's push subscription with its private half."""

    name: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    def subscription(self) -> dict:
        """`PushSubscription.toJSON()`."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> dict:
        plain = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        return orjson.loads(plain)


@dataclass
class Push:
    device: str
    headers: dict[str, str]
    claims: dict
    payload: dict


class LocalPushService:
    def __init__(self, vapid_public_key: str) -> None:
        self.vapid_public_key = vapid_public_key  # what the hub says at /api/push/vapid-public-key
        self.devices: dict[str, Device] = {}
        self.pushes: list[Push] = []
        self.refused: list[str] = []  # why a request was not accepted (bad VAPID, ...)
        self.attempts: dict[str, int] = {}
        self.script: dict[str, list[tuple[int, dict]]] = {}  # device -> answers to give first
        self.url = ""
        self._http = LoopbackReceiver()

    def device(self, name: str) -> Device:
        device = Device(name, f"{self.url}/push/{name}")
        self.devices[name] = device
        return device

    def answer(self, name: str, *answers: int | tuple[int, dict]) -> None:
        """The next requests for that device get these statuses (then 201 again)."""
        self.script[name] = [a if isinstance(a, tuple) else (a, {}) for a in answers]

    def pushes_for(self, name: str) -> list[Push]:
        return [p for p in self.pushes if p.device == name]

    async def next_push(self, name: str, timeout: float = 15) -> Push:
        """Wait for the next push to that device not returned before."""
        seen = getattr(self, "_seen", {})
        self._seen = seen
        await self._http.wait_until(
            lambda: len(self.pushes_for(name)) > seen.get(name, 0),
            timeout,
            lambda: f"no push for {name} within {timeout}s; refused: {self.refused}",
        )
        seen[name] = seen.get(name, 0) + 1
        return self.pushes_for(name)[seen[name] - 1]

    # --- the service ---------------------------------------------------------------------

    async def _receive(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.attempts[name] = self.attempts.get(name, 0) + 1
        script = self.script.get(name)
        if script:
            status, headers = script.pop(0)
            return Response(status_code=status, headers=headers)
        device = self.devices.get(name)
        if device is None:
            return Response(status_code=404)
        body = await request.body()
        try:
            claims = self._verify_vapid(request.headers.get("authorization", ""))
        except Exception as exc:
            self.refused.append(f"vapid: {exc}")
            return Response(status_code=401)
        if request.headers.get("content-encoding") != "aes128gcm":
            self.refused.append(f"encoding: {request.headers.get('content-encoding')}")
            return Response(status_code=415)
        try:
            payload = device.decrypt(body)
        except Exception as exc:
            self.refused.append(f"decrypt: {exc!r}")
            return Response(status_code=400)
        self.pushes.append(Push(name, dict(request.headers), claims, payload))
        self._http.arrived()
        return Response(status_code=201, headers={"Location": f"{self.url}/m/{len(self.pushes)}"})

    def _verify_vapid(self, authorization: str) -> dict:
        """RFC 8292 §3: `vapid t=<JWT>, k=<key>`; the key must be the hub's and sign the JWT."""
        scheme, _, params = authorization.partition(" ")
        assert scheme.lower() == "vapid", f"scheme {scheme!r}"
        parts = dict(p.strip().split("=", 1) for p in params.split(","))
        assert parts["k"] == self.vapid_public_key, "k is not the hub's VAPID key"
        point = b64url_decode(parts["k"])
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        assert jwt.get_unverified_header(parts["t"])["alg"] == "ES256"
        claims = jwt.decode(
            parts["t"], public, algorithms=["ES256"], audience=self.url,
            options={"require": ["exp", "aud", "sub"]},
        )  # fmt: skip
        assert claims["exp"] <= time.time() + 24 * 3600, "a VAPID JWT lives at most 24 h"
        return claims

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> LocalPushService:
        self.url = await self._http.start([Route("/push/{name}", self._receive, methods=["POST"])])
        return self

    async def stop(self) -> None:
        await self._http.stop()


# --- a hub with push on, for test modules ------------------------------------------------

VAPID = VapidKey.generate()
SUBJECT = "mailto:ops@example.com"


class PushEnv:
    """A push-enabled hub, its own database and Redis, and a local push service."""

    def __init__(self, hub, push: LocalPushService, iso: IsolatedServices):
        self.hub, self.push, self.iso = hub, push, iso

    async def db(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self.iso.dsn)
        await init_connection(conn)
        return conn

    async def register(self, user_id: str, device: Device) -> dict:
        async with self.hub.http(self.hub.token(user_id)) as http:
            r = await http.post(
                "/api/push/subscriptions",
                json={"kind": "webpush", "subscription": device.subscription()},
            )
        assert r.status_code == 201, r.text
        return r.json()

    async def subscriptions(self, user_id: str) -> list[dict]:
        async with self.hub.http(self.hub.token(user_id)) as http:
            r = await http.get("/api/push/subscriptions")
        assert r.status_code == 200, r.text
        return r.json()["subscriptions"]

    async def offline(self, user_id: str) -> bool:
        """No hub node holds a socket of this user (what decides a push)."""
        return user_id not in await self.hub.hub.push_out.presence.online([user_id])

    async def pay(self, payer: str, payee: str, amount: str) -> dict:
        async with self.hub.http(self.hub.token(payer)) as http:
            r = await http.post("/api/payments", json={"to_account": payee, "amount": amount,
                                                       "speed": "instant", "idempotency_key": uuid.uuid4().hex})  # fmt: skip
        assert r.status_code == 202, r.text
        return r.json()


@pytest.fixture(scope="module")
async def push_env(services):
    """A database and Redis of the module's own (no other hub of the session may take its
    users' payment events, and its one hub has push on), and a push service."""
    name = "push_" + uuid.uuid4().hex[:10]
    admin = await asyncpg.connect(services.dsn)
    try:
        await admin.execute(f"create database {name}")
    finally:
        await admin.close()
    dsn = services.dsn.replace(f"/{PG_DB}?", f"/{name}?")
    await migrate(dsn)
    redis = EmbeddedRedis(services.root / name)
    redis.start()
    iso = IsolatedServices(dsn, redis, services.root / name)
    server = push = None
    try:
        server = await start_hub(
            iso, vapid_private_key=VAPID.private_key, vapid_subject=SUBJECT,
            push_backoff_s=0.05, push_backoff_max_s=0.5,
        )  # fmt: skip
        push = await LocalPushService(VAPID.public_key).start()
        yield PushEnv(server, push, iso)
    finally:
        if push is not None:
            await push.stop()
        if server is not None:
            await server.stop()
        redis.destroy()
        admin = await asyncpg.connect(services.dsn)
        try:
            await admin.execute(f"drop database {name} with (force)")
        finally:
            await admin.close()
