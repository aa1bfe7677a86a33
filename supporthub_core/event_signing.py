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

import hashlib
import hmac
from typing import Any

import msgpack

try:  # OpenSSL's HMAC object: copy, update and hexdigest without a Python frame each
    from _hashlib import hmac_new as _openssl_hmac
except ImportError:  # a Python built without OpenSSL
    _openssl_hmac = None  # type: ignore[assignment]

MAX_MESSAGE_BYTES = 1 << 20  # events are a few hundred bytes; refused unread above this
REASONS = (
    "too_large",
    "not_msgpack",
    "not_a_map",
    "bad_envelope",
    "bad_signature",
    "bad_event",
)
_SIG_LEN = 64  # lowercase hex digits of an HMAC-SHA256


class SignedEventError(ValueError):
    """A message that is not a validly signed event; `reason` is one of REASONS."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def signature(event_bytes: bytes, key: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of `event_bytes` keyed with `key`."""
    _check_key(key)
    return hmac.digest(bytes(key), event_bytes, "sha256").hex()


def sign_event(event_bytes: bytes, key: bytes) -> bytes:
    """The message to publish: `{event: event_bytes, sig: hex HMAC}`, msgpack-packed.
    `event_bytes` must already be the msgpack encoding of the event map; it is signed
    and carried as is, never re-encoded."""
    return EventSigner(key).sign(event_bytes)


# The envelope's fixed parts, as msgpack.packb({"event": ..., "sig": ...}) lays them out:
# a map of two, the key "event", (the bin header and the event), the key "sig" and the
# header of a 64-character str.
_ENVELOPE_HEAD = b"\x82\xa5event"
_SIG_HEAD = b"\xa3sig\xd9\x40"


class EventSigner:
    """`sign_event` with its key set up once, for a publisher that signs every event
    with the same key. The envelope is joined from its fixed parts around the event and
    its HMAC, byte for byte what msgpack makes of the map (tests/test_event_signing.py),
    at about a third of the CPU of packing the map and keying an HMAC per event."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes):
        _check_key(key)
        self._keyed = _keyed_state(bytes(key))  # copied per event: the key is set up once

    def sign(self, event_bytes: bytes) -> bytes:
        """The message to publish for these event bytes."""
        if not isinstance(event_bytes, (bytes, bytearray, memoryview)):
            raise TypeError("event_bytes must be bytes")
        event_bytes = bytes(event_bytes)
        mac = self._keyed.copy()
        mac.update(event_bytes)
        return b"".join(
            (_ENVELOPE_HEAD, _bin_header(len(event_bytes)), event_bytes, _SIG_HEAD,
             mac.hexdigest().encode("ascii"))
        )  # fmt: skip


def _bin_header(size: int) -> bytes:
    """msgpack's header of a bin value of `size` bytes."""
    if size < 0x100:
        return b"\xc4" + size.to_bytes(1, "big")
    if size < 0x10000:
        return b"\xc5" + size.to_bytes(2, "big")
    return b"\xc6" + size.to_bytes(4, "big")


def open_signed(message: Any, key: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """The event map of a signed message; `SignedEventError` for anything else."""
    return EventOpener(key, max_bytes=max_bytes).open(message)


class EventOpener:
    """`open_signed` with its key checked once, for a subscriber that opens every message
    of the channel with the same key."""

    __slots__ = ("_keyed", "_max_bytes")

    def __init__(self, key: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES):
        _check_key(key)
        self._keyed = _keyed_state(bytes(key))  # copied per message: the key is set up once
        self._max_bytes = max_bytes

    def open(self, message: Any) -> dict[str, Any]:
        """The event map of a signed message; `SignedEventError` for anything else."""
        if not isinstance(message, (bytes, bytearray, memoryview)):
            raise SignedEventError("not_msgpack")
        if len(message) > self._max_bytes:
            raise SignedEventError("too_large")
        event_bytes, sig = _envelope_parts(message)
        # a str of another length or with non-ASCII characters never matches (and
        # compare_digest refuses non-ASCII str); upper case hex is not the lowercase
        # digest either, so those fail the comparison with the same reason
        if len(sig) != _SIG_LEN or not sig.isascii():
            raise SignedEventError("bad_signature")
        mac = self._keyed.copy()
        mac.update(event_bytes)
        if not hmac.compare_digest(mac.hexdigest(), sig):
            raise SignedEventError("bad_signature")
        event = _unpack(event_bytes, "bad_event")
        if not isinstance(event, dict):
            raise SignedEventError("bad_event")
        return event


def _envelope_parts(message: bytes | bytearray | memoryview) -> tuple[bytes, str]:
    envelope = _unpack(message, "not_msgpack")
    if not isinstance(envelope, dict):
        raise SignedEventError("not_a_map")
    event_bytes, sig = envelope.get("event"), envelope.get("sig")
    if not isinstance(event_bytes, bytes) or not isinstance(sig, str):
        raise SignedEventError("bad_envelope")
    return event_bytes, sig


def _unpack(data: bytes | bytearray | memoryview, reason: str) -> Any:
    try:
        # any map key type, so that a hostile key is a decoding question, not a crash
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        # msgpack raises ValueError subclasses (ExtraData, StackError, FormatError),
        # TypeError (an unhashable map key), UnicodeDecodeError, OverflowError...; all of
        # them mean the same thing here
        raise SignedEventError(reason) from None


def _keyed_state(key: bytes) -> Any:
    if _openssl_hmac is not None:
        return _openssl_hmac(key, digestmod="sha256")
    return hmac.new(key, digestmod=hashlib.sha256)


def _check_key(key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError("the events key must be bytes")
    if not key:
        raise ValueError("the events key must not be empty")
