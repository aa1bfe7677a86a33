"""Push configuration: the VAPID key pair that identifies this hub to push services, the
contact subject, and the policy for subscription endpoints (the hub POSTs to them, so an
endpoint is an outgoing request a user chooses: only push services, over https)."""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from supporthub_core.errors import Invalid
from supporthub_core.settings import Settings

DEV_SUBJECT = "mailto:supporthub@localhost"

# The push services of the browsers people use: Chrome, Edge (Chromium), Opera, Samsung
# (FCM); Firefox (Mozilla autopush); Safari (Apple); legacy Edge (WNS).
DEFAULT_ENDPOINT_HOSTS = (
    "fcm.googleapis.com",
    "android.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.push.services.mozilla.com",
    "web.push.apple.com",
    "*.push.apple.com",
    "*.notify.windows.com",
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_ENDPOINT = 2048


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """URL-safe base64 with or without padding (browsers send it without)."""
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class VapidKey:
    """An ECDSA P-256 key pair. `public_key` is what browsers take as
    `applicationServerKey`: the uncompressed point (65 bytes), URL-safe base64."""

    vapid: Vapid02
    private_key: str  # raw scalar, URL-safe base64: what HUB_VAPID_PRIVATE_KEY holds
    public_key: str

    @classmethod
    def generate(cls) -> VapidKey:
        return cls._of(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def parse(cls, text: str) -> VapidKey:
        """Raw URL-safe base64 (32 bytes), PEM, or base64 DER (PKCS#8 or SEC1)."""
        text = text.strip()
        try:
            if "-----BEGIN" in text:
                key = serialization.load_pem_private_key(text.encode(), password=None)
            else:
                raw = b64url_decode(text.replace("\n", ""))
                if len(raw) == 32:
                    key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
                else:
                    key = serialization.load_der_private_key(raw, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a P-256 private key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("the VAPID key must be an ECDSA P-256 (prime256v1) key")
        return cls._of(key)

    @classmethod
    def _of(cls, key: ec.EllipticCurvePrivateKey) -> VapidKey:
        raw = key.private_numbers().private_value.to_bytes(32, "big")
        point = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return cls(Vapid02(key), b64url(raw), b64url(point))


def valid_subject(subject: str) -> bool:
    """RFC 8292: a `mailto:` address or an `https:` URL push services can reach us at."""
    if subject.startswith("mailto:"):
        return "@" in subject[7:]
    return subject.startswith("https://") and len(subject) > len("https://")


@dataclass(frozen=True)
class EndpointPolicy:
    """Which URLs a Web Push subscription may name. `hosts` None means any https host
    that is not a private, loopback or link-local address."""

    hosts: tuple[str, ...] | None = DEFAULT_ENDPOINT_HOSTS
    allow_loopback: bool = False

    def check(self, endpoint: str) -> None:
        """Raise `Invalid` unless the hub may POST pushes to `endpoint`."""
        if len(endpoint) > MAX_ENDPOINT:
            raise Invalid("subscription.endpoint is too long")
        try:
            url = urlsplit(endpoint)
            host = (url.hostname or "").lower()
            url.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            raise Invalid("subscription.endpoint is not a URL") from None
        if url.username or url.password or not host:
            raise Invalid("subscription.endpoint is not a push service URL")
        if host in LOOPBACK_HOSTS and self.allow_loopback and url.scheme in ("http", "https"):
            return
        if url.scheme != "https":
            raise Invalid("subscription.endpoint must be an https URL")
        if self.hosts is None:
            if _is_internal(host):
                raise Invalid("subscription.endpoint must be a public push service")
            return
        if not any(_host_matches(host, pattern) for pattern in self.hosts):
            raise Invalid("subscription.endpoint is not a known push service")


def _host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def _is_internal(host: str) -> bool:
    if host in LOOPBACK_HOSTS or host.endswith(".localhost") or host.endswith(".internal"):
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not ip.is_global


@dataclass(frozen=True)
class PushConfig:
    """What a hub node needs to push; `vapid` None means Web Push is off."""

    vapid: VapidKey | None = None
    subject: str = DEV_SUBJECT
    policy: EndpointPolicy = field(default_factory=EndpointPolicy)

    @property
    def enabled(self) -> bool:
        return self.vapid is not None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, dev: bool, private_key: str | None = None
    ) -> PushConfig:
        """`private_key` (resolved by hub.runtime, generated in dev) or
        HUB_VAPID_PRIVATE_KEY; neither: push is off."""
        text = private_key or settings.vapid_private_key
        vapid = VapidKey.parse(text) if text else None
        subject = settings.vapid_subject or DEV_SUBJECT
        if not valid_subject(subject):
            raise ValueError("HUB_VAPID_SUBJECT must be mailto:someone@example.com or an https URL")
        return cls(vapid, subject, endpoint_policy(settings, dev=dev))


def endpoint_policy(settings: Settings, *, dev: bool) -> EndpointPolicy:
    hosts: tuple[str, ...] | None = DEFAULT_ENDPOINT_HOSTS
    if settings.push_endpoint_hosts:
        listed = tuple(
            h.strip().lower() for h in settings.push_endpoint_hosts.split(",") if h.strip()
        )
        hosts = None if "*" in listed else listed
    allow = dev if settings.push_allow_loopback is None else settings.push_allow_loopback
    return EndpointPolicy(hosts, allow)


def main() -> None:
    """`python -m hub.push.config`: print a fresh VAPID key pair."""
    key = VapidKey.generate()
    print(f"HUB_VAPID_PRIVATE_KEY={key.private_key}")
    print(f"# public key (applicationServerKey): {key.public_key}")


if __name__ == "__main__":
    main()
