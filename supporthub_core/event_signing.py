"""The signed envelope of `payments.events` (CONTRACT section 4).

Each Redis message is a msgpack map `{event: <bin>, sig: <str>}`: `event` is the msgpack
encoding of the event map, `sig` the lowercase hex HMAC-SHA256 of exactly those bytes
keyed with `HUB_EVENTS_KEY`. Payments signs the bytes it stored in its outbox; the hub
opens a message only when the signature matches, compared in constant time.

`open_signed` takes anything a Redis client may hand over and either returns the event
map or raises `SignedEventError` with a short, fixed `reason` (a metric label):

  too_large      the message is longer than `MAX_MESSAGE_BYTES` (not even decoded)
  not_msgpack    not one complete msgpack value (garbage, truncated, trailing bytes,
                 nesting beyond the decoder's stack, invalid UTF-8 in a string)
  not_a_map      a msgpack value, but not a map
  bad_envelope   a map without a binary `event` and a string `sig`
  bad_signature  `sig` is not 64 lowercase hex digits, or not the HMAC of `event`
  bad_event      signed correctly, but `event` is not a msgpack map

Nothing else escapes for any input message; only a wrong `key` argument (not bytes,
empty) is a programming error and raises TypeError/ValueError.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from typing import Any

import msgpack

MAX_MESSAGE_BYTES = 1 << 20  # events are a few hundred bytes; refused unread above this
REASONS = (
    "too_large",
    "not_msgpack",
    "not_a_map",
    "bad_envelope",
    "bad_signature",
    "bad_event",
)
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class SignedEventError(ValueError):
    """A message that is not a validly signed event; `reason` is one of REASONS."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def signature(event_bytes: bytes, key: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of `event_bytes` keyed with `key`."""
    _check_key(key)
    return _hmac_hex(key, event_bytes)


def sign_event(event_bytes: bytes, key: bytes) -> bytes:
    """The message to publish: `{event: event_bytes, sig: hex HMAC}`, msgpack-packed.
    `event_bytes` must already be the msgpack encoding of the event map; it is signed
    and carried as is, never re-encoded."""
    if not isinstance(event_bytes, (bytes, bytearray, memoryview)):
        raise TypeError("event_bytes must be bytes")
    event_bytes = bytes(event_bytes)
    return msgpack.packb(
        {"event": event_bytes, "sig": signature(event_bytes, key)}, use_bin_type=True
    )


def open_signed(message: Any, key: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """The event map of a signed message; `SignedEventError` for anything else."""
    _check_key(key)
    if not isinstance(message, (bytes, bytearray, memoryview)):
        raise SignedEventError("not_msgpack")
    if len(message) > max_bytes:
        raise SignedEventError("too_large")
    envelope = _unpack(message, "not_msgpack")
    if not isinstance(envelope, dict):
        raise SignedEventError("not_a_map")
    event_bytes, sig = envelope.get("event"), envelope.get("sig")
    if not isinstance(event_bytes, bytes) or not isinstance(sig, str):
        raise SignedEventError("bad_envelope")
    # the format check first: compare_digest refuses non-ASCII str, and a wrong length
    # says nothing about the key
    if _HEX_SHA256.fullmatch(sig) is None:
        raise SignedEventError("bad_signature")
    if not hmac.compare_digest(_hmac_hex(key, event_bytes), sig):
        raise SignedEventError("bad_signature")
    event = _unpack(event_bytes, "bad_event")
    if not isinstance(event, dict):
        raise SignedEventError("bad_event")
    return event


def _unpack(data: bytes | bytearray | memoryview, reason: str) -> Any:
    try:
        # any map key type, so that a hostile key is a decoding question, not a crash
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        # msgpack raises ValueError subclasses (ExtraData, StackError, FormatError),
        # TypeError (an unhashable map key), UnicodeDecodeError, OverflowError...; all of
        # them mean the same thing here
        raise SignedEventError(reason) from None


def _hmac_hex(key: bytes, data: bytes) -> str:
    mac = _keyed(bytes(key)).copy()  # the keyed state is set up once per key
    mac.update(data)
    return mac.hexdigest()


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod=hashlib.sha256)


def _check_key(key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError("the events key must be bytes")
    if not key:
        raise ValueError("the events key must not be empty")
