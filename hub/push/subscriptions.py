"""What a device registers: `{kind: "webpush", subscription: {endpoint, keys: {p256dh,
auth}}}`, the JSON of a browser's PushSubscription. The shape and the keys are checked
here (a bad one is a `bad_frame` / 422); which endpoints are allowed is the hub's policy
(hub.push.config.EndpointPolicy: `invalid` / 422)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    field_validator,
)

from hub.push.config import MAX_ENDPOINT, b64url_decode
from supporthub_core.validation import Str

P256DH_BYTES = 65  # an uncompressed P-256 point
AUTH_BYTES = 16  # RFC 8291 authentication secret

Kind = Literal["webpush"]  # "fcm", "apns" later, each with its own subscription shape


class WebPushKeys(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    p256dh: Annotated[Str, Field(min_length=1, max_length=128)]
    auth: Annotated[Str, Field(min_length=1, max_length=64)]

    @field_validator("p256dh")
    @classmethod
    def _p256dh(cls, value: str) -> str:
        raw = _decode(value)
        if len(raw) != P256DH_BYTES or raw[0] != 4:
            raise ValueError(f"must be an uncompressed P-256 point ({P256DH_BYTES} bytes)")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise ValueError("is not a point on P-256") from None
        return _normal(value)

    @field_validator("auth")
    @classmethod
    def _auth(cls, value: str) -> str:
        if len(_decode(value)) != AUTH_BYTES:
            raise ValueError(f"must be {AUTH_BYTES} bytes")
        return _normal(value)


class WebPushSubscription(BaseModel):
    """`PushSubscription.toJSON()` of a browser."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    endpoint: Annotated[Str, Field(min_length=8, max_length=MAX_ENDPOINT)]
    expirationTime: StrictInt | StrictFloat | None = None  # noqa: N815  (the browser's name)
    keys: WebPushKeys


class PushRegistration(BaseModel):
    """The body of `POST /api/push/subscriptions` (and the fields of `push.register`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    kind: Kind
    subscription: WebPushSubscription


def _normal(value: str) -> str:
    """URL-safe base64 without padding (some clients send the standard alphabet)."""
    return value.strip().replace("+", "-").replace("/", "_").rstrip("=")


def _decode(value: str) -> bytes:
    try:
        return b64url_decode(_normal(value))
    except ValueError:
        raise ValueError("must be URL-safe base64") from None


@dataclass(frozen=True, slots=True)
class Subscription:
    """A stored subscription, as the sender uses it."""

    id: str
    user_id: str
    kind: str
    endpoint: str
    keys: dict

    @classmethod
    def of(cls, row) -> Subscription:
        return cls(row["id"], row["user_id"], row["kind"], row["endpoint"], dict(row["keys"]))
