"""The signed `payments.events` envelope, pure: what signs is exactly what opens; any
change, any other key and any garbage is refused with the module's own error."""

from __future__ import annotations

import hashlib
import hmac

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supporthub_core import event_signing
from supporthub_core.event_signing import (
    MAX_MESSAGE_BYTES,
    REASONS,
    EventOpener,
    EventSigner,
    SignedEventError,
    open_signed,
    sign_event,
)

KEY = b"events-key-for-tests"

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
events = st.fixed_dictionaries(
    {
        "event_id": st.text(min_size=1, max_size=40),
        "type": st.sampled_from(["transaction.status", "security.alert"]),
        "user_id": st.text(min_size=1, max_size=40),
        "occurred_at": st.just("2026-11-25T08:00:00+00:00"),
    },
    optional={
        "amount": st.text(max_size=12),
        "details": st.dictionaries(st.text(max_size=10), values, max_size=4),
    },
)
keys = st.binary(min_size=1, max_size=64)


def pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def refused(message, key: bytes = KEY) -> str:
    with pytest.raises(SignedEventError) as info:
        open_signed(message, key)
    assert info.value.reason in REASONS
    return info.value.reason


@given(event=events, key=keys)
def test_what_is_signed_opens_to_the_same_event(event, key):
    assert open_signed(sign_event(pack(event), key), key) == event


@given(event=events, key=keys)
def test_the_message_is_the_contract_envelope(event, key):
    """A plain msgpack map {event: bin, sig: lowercase hex HMAC-SHA256 of those bytes},
    the event bytes carried exactly as given."""
    event_bytes = pack(event)
    envelope = msgpack.unpackb(sign_event(event_bytes, key), raw=False)
    assert envelope == {
        "event": event_bytes,
        "sig": hmac.new(key, event_bytes, hashlib.sha256).hexdigest(),
    }


# sizes on both sides of msgpack's bin8/bin16/bin32 boundaries, and anything in between
event_sizes = st.sampled_from([0, 1, 255, 256, 65535, 65536, 70000]) | st.integers(0, 600)


@given(size=event_sizes, key=keys, data=st.data())
def test_the_signer_makes_exactly_what_msgpack_makes_of_the_envelope(size, key, data):
    """`EventSigner` joins the envelope from its parts: byte for byte the packed map, for
    events of every length."""
    event_bytes = data.draw(st.binary(min_size=size, max_size=size)) if size < 600 else bytes(size)
    expected = pack(
        {"event": event_bytes, "sig": hmac.new(key, event_bytes, hashlib.sha256).hexdigest()}
    )
    signer = EventSigner(key)
    assert signer.sign(event_bytes) == expected
    assert signer.sign(memoryview(event_bytes)) == expected  # and again: the key state is reused
    assert sign_event(event_bytes, key) == expected


def test_the_signer_refuses_what_is_not_bytes_and_a_bad_key():
    with pytest.raises(TypeError):
        EventSigner(KEY).sign("an event")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EventSigner(b"")


@given(event=events, data=st.data())
def test_any_single_bit_change_of_the_event_is_refused(event, data):
    event_bytes = pack(event)
    sig = event_signing.signature(event_bytes, KEY)
    bit = data.draw(st.integers(0, len(event_bytes) * 8 - 1))
    assert refused(pack({"event": flip(event_bytes, bit), "sig": sig})) == "bad_signature"


@given(event=events, data=st.data())
def test_any_single_bit_change_of_the_signature_is_refused(event, data):
    event_bytes = pack(event)
    sig = event_signing.signature(event_bytes, KEY).encode()
    bit = data.draw(st.integers(0, len(sig) * 8 - 1))
    changed = flip(sig, bit)
    # as a str when it still decodes (it may be another hex digit, or upper case), else
    # as raw bytes inside the str type: both must fail
    try:
        message = pack({"event": event_bytes, "sig": changed.decode()})
    except UnicodeDecodeError:
        message = b"\x82" + pack("event") + pack(event_bytes) + pack("sig") + b"\xd9\x40" + changed
    refused(message)


@given(event=events, data=st.data())
def test_any_single_bit_change_anywhere_in_the_message_is_refused(event, data):
    message = sign_event(pack(event), KEY)
    bit = data.draw(st.integers(0, len(message) * 8 - 1))
    refused(flip(message, bit))


@given(event=events, key=keys, other=keys)
def test_another_key_is_refused(event, key, other):
    if key != other:
        assert refused(sign_event(pack(event), key), other) == "bad_signature"


@given(st.binary(max_size=512))
def test_random_bytes_raise_only_the_module_error(data):
    refused(data)


@given(values)
def test_any_msgpack_value_that_is_not_a_signed_event_is_refused(value):
    refused(pack(value))


@given(
    event=st.one_of(st.binary(max_size=100), values.map(pack)), sig=st.text(max_size=80) | values
)
def test_envelopes_with_anything_in_them_are_refused(event, sig):
    refused(pack({"event": event, "sig": sig}))
    refused(pack({"event": event, "sig": sig, "extra": [1, 2]}))


@given(value=values, key=keys)
def test_a_signed_payload_that_is_not_a_map_is_refused(value, key):
    if not isinstance(value, dict):
        assert refused(sign_event(pack(value), key), key) == "bad_event"


def test_reasons():
    assert refused(b"\xc1garbage") == "not_msgpack"
    assert refused(b"\x92\x01") == "not_msgpack"  # truncated
    assert refused(pack([1, 2])) == "not_a_map"
    assert (
        refused(pack({"event": {"type": "transaction.status"}, "sig": "0" * 64})) == "bad_envelope"
    )
    assert refused(pack({"event": b"\x80", "sig": b"0" * 64})) == "bad_envelope"
    assert refused(pack({"event": b"\x80"})) == "bad_envelope"
    assert refused(pack({"event": b"\x80", "sig": "0" * 64})) == "bad_signature"
    good = event_signing.signature(b"\x80", KEY)
    assert refused(pack({"event": b"\x80", "sig": good.upper()})) == "bad_signature"
    assert refused(pack({"event": b"\x80", "sig": good + "0"})) == "bad_signature"
    assert refused(pack({"event": b"\x80", "sig": "é" * 64})) == "bad_signature"
    assert open_signed(pack({"event": b"\x80", "sig": good}), KEY) == {}
    assert refused(sign_event(b"\x80\x00", KEY)) == "bad_event"  # trailing bytes
    assert refused(sign_event(b"\xc1", KEY)) == "bad_event"
    for not_bytes in (None, "text", 5, [b"\x80"], {"event": b"\x80"}):
        assert refused(not_bytes) == "not_msgpack"


def test_huge_and_deep_input_is_refused_cheaply():
    assert refused(b"\x91" * 200_000 + b"\xc0") == "not_msgpack"  # deep nesting
    assert refused(b"\xdd\xff\xff\xff\xff") == "not_msgpack"  # an array of 4G items, absent
    assert refused(b"\xdf\xff\xff\xff\xff") == "not_msgpack"
    assert refused(b"\xc6\xff\xff\xff\xff") == "not_msgpack"  # a 4 GiB bin, absent
    assert refused(b"\x81\x91\x01\x02") == "not_msgpack"  # a list as a map key
    assert refused(b"\xa2\xff\xfe") == "not_msgpack"  # invalid UTF-8
    assert refused(b"\x90" * (MAX_MESSAGE_BYTES + 1)) == "too_large"
    deep = b"\x91" * 200_000 + b"\xc0"
    assert refused(sign_event(deep, KEY)) == "bad_event"
    wide = {"a": [[[[{"b": [1] * 1000}]]]] * 50}  # big but fine: it opens
    assert open_signed(sign_event(pack(wide), KEY), KEY) == wide


def test_the_comparison_is_constant_time(monkeypatch):
    seen = []
    real = hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(event_signing.hmac, "compare_digest", spy)
    message = sign_event(pack({"k": 1}), KEY)
    open_signed(message, KEY)
    refused(pack({"event": pack({"k": 1}), "sig": "0" * 64}))
    assert len(seen) == 2


def test_an_empty_or_text_key_is_a_programming_error():
    with pytest.raises(ValueError):
        sign_event(b"\x80", b"")
    with pytest.raises(ValueError):
        open_signed(sign_event(b"\x80", KEY), b"")
    with pytest.raises(TypeError):
        sign_event(b"\x80", "text")  # type: ignore[arg-type]


# The opener against the generic reading of the envelope, for every kind of input: the
# same event or the same reason. `generic_open` reads a message the plain way, as the
# contract says: the envelope decoded as a msgpack map, its two fields' types checked,
# the HMAC compared, the event decoded. A shortcut for the bytes `EventSigner.sign` lays
# out must not differ from it for any message, laid out that way or not.


NOT_MSGPACK = object()


def unpacked(data):
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        return NOT_MSGPACK


def generic_open(message, key: bytes = KEY) -> tuple[str, str]:
    """("opened", repr of the event) or ("refused", reason), by decoding the envelope."""
    if not isinstance(message, (bytes, bytearray, memoryview)):
        return "refused", "not_msgpack"
    if len(message) > MAX_MESSAGE_BYTES:
        return "refused", "too_large"
    envelope = unpacked(message)
    if envelope is NOT_MSGPACK:
        return "refused", "not_msgpack"
    if not isinstance(envelope, dict):
        return "refused", "not_a_map"
    event_bytes, sig = envelope.get("event"), envelope.get("sig")
    if not isinstance(event_bytes, bytes) or not isinstance(sig, str):
        return "refused", "bad_envelope"
    if sig != hmac.new(key, event_bytes, hashlib.sha256).hexdigest():
        return "refused", "bad_signature"
    event = unpacked(event_bytes)
    if not isinstance(event, dict):  # NOT_MSGPACK included
        return "refused", "bad_event"
    return "opened", repr(event)  # repr: a NaN in the event equals itself


def opened(message, key: bytes = KEY) -> tuple[str, str]:
    try:
        return "opened", repr(EventOpener(key).open(message))
    except SignedEventError as exc:
        return "refused", exc.reason


def assert_opens_as_generic(message, key: bytes = KEY) -> None:
    assert opened(message, key) == generic_open(message, key)
    if isinstance(message, bytes):  # the other buffer types the opener takes, too
        assert opened(bytearray(message), key) == generic_open(bytearray(message), key)
        assert opened(memoryview(message), key) == generic_open(memoryview(message), key)


def bin_headed(data: bytes, tag: int) -> bytes:
    """`data` as msgpack bin with this header (c4, c5, c6), even where msgpack would
    choose a shorter one (still valid msgpack)."""
    return bytes([tag]) + len(data).to_bytes({0xC4: 1, 0xC5: 2, 0xC6: 4}[tag], "big") + data


def laid_out(event_bytes: bytes, sig: bytes, tag: int | None = None) -> bytes:
    """The signer's layout around any event bytes and any 64 signature bytes."""
    body = pack(event_bytes) if tag is None else bin_headed(event_bytes, tag)
    return b"\x82\xa5event" + body + b"\xa3sig\xd9\x40" + sig


# sizes on both sides of msgpack's bin8/bin16/bin32 boundaries (the event's own header
# is 3 bytes here), and anything in between, up to ~70 KB
padding_sizes = st.sampled_from([0, 250, 251, 252, 253, 65528, 65529, 65530, 65531, 70000]) | (
    st.integers(0, 70_000)
)


@st.composite
def event_bytes_of_any_size(draw) -> bytes:
    """A packed event map, or (to be refused as bad_event) another value or garbage."""
    event = draw(events)
    event["pad"] = bytes(draw(padding_sizes))
    return draw(
        st.just(pack(event))
        | values.map(pack)
        | st.binary(max_size=300)
        | st.just(pack(event) + b"\xc0")  # trailing bytes
    )


@st.composite
def signed_messages(draw) -> bytes:
    """What the signer makes; now and then with a longer bin header than msgpack's own."""
    event_bytes = draw(event_bytes_of_any_size())
    message = sign_event(event_bytes, KEY)
    fits = [0xC5, 0xC6] if len(event_bytes) < 0x10000 else [0xC6]
    tag = draw(st.none() | st.sampled_from(fits))
    if tag is not None:
        message = laid_out(event_bytes, message[-64:], tag)
    return message


@settings(max_examples=200)
@given(message=signed_messages())
def test_signed_events_of_any_size_open_as_the_generic_reading_does(message):
    assert_opens_as_generic(message)


@st.composite
def changed_messages(draw) -> bytes:
    """A signed message with one byte changed (to any value), or cut, or extended; the
    byte is often one of the envelope's own (head, bin header, tail)."""
    message = draw(signed_messages())
    head = st.integers(0, 12)  # the head and the bin header
    tail = st.integers(len(message) - 70, len(message) - 64)  # the sig's key and header
    at = draw(head | tail | st.integers(0, len(message) - 1))
    change = draw(st.sampled_from(["byte", "cut", "extend"]))
    if change == "byte":
        return message[:at] + bytes([draw(st.integers(0, 255))]) + message[at + 1 :]
    if change == "cut":
        return message[:at]
    return message + draw(st.binary(min_size=1, max_size=80))


@settings(max_examples=500)
@given(message=changed_messages())
def test_changed_signed_messages_are_refused_as_the_generic_reading_does(message):
    assert_opens_as_generic(message)


hex_sigs = st.text("0123456789abcdefABCDEF", min_size=64, max_size=64)


@st.composite
def signer_shaped_binary(draw) -> bytes:
    """The signer's head and tail around arbitrary bytes: a size field that is the
    body's length, near it or anything, any body, signature bytes of 64 or not."""
    tag = draw(st.sampled_from([0xC4, 0xC5, 0xC6]))
    width = {0xC4: 1, 0xC5: 2, 0xC6: 4}[tag]
    body = draw(st.binary(max_size=300))
    near = st.integers(max(0, len(body) - 3), len(body) + 3)
    size = draw(near.map(lambda n: n.to_bytes(width, "big")) | st.binary(max_size=width))
    sig = draw(st.binary(min_size=64, max_size=64) | hex_sigs.map(str.encode) | st.binary())
    return b"\x82\xa5event" + bytes([tag]) + size + body + b"\xa3sig\xd9\x40" + sig


@settings(max_examples=500)
@given(message=st.binary(max_size=600) | signer_shaped_binary())
def test_arbitrary_bytes_are_refused_as_the_generic_reading_does(message):
    assert_opens_as_generic(message)


sixty_four_bytes = (
    st.binary(min_size=64, max_size=64)  # mostly invalid UTF-8: not_msgpack
    | st.text(min_size=16, max_size=64)  # non-ASCII UTF-8 cut to 64 bytes, when it fits
    .map(lambda text: text.encode()[:64])
    .filter(lambda raw: len(raw) == 64)
)


@st.composite
def envelopes_off_the_layout(draw) -> bytes:
    """Envelopes that msgpack reads as the signer's map, or almost, but laid out another
    way; and the signer's layout with signature bytes other than the lowercase digest."""
    event_bytes = pack(draw(events))
    good = hmac.new(KEY, event_bytes, hashlib.sha256).hexdigest()
    sig = draw(
        st.just(good)
        | st.just(good.upper())
        | hex_sigs
        | st.integers(0, 63).map(lambda n: good[:n])
        | st.text(max_size=3).map(lambda extra: good + extra)
        | st.text(min_size=64, max_size=64)
    )
    kind = draw(st.sampled_from(["other order", "extra key", "sig as bin", "raw sig bytes"]))
    if kind == "other order":
        return pack({"sig": sig, "event": event_bytes})
    if kind == "extra key":
        extra = draw(st.sampled_from(["x", "event", "sig", ""]))
        at_end = draw(st.booleans())
        pairs = [("event", event_bytes), ("sig", sig)]
        pairs.insert(2 if at_end else 0, (extra, draw(values)))
        # a packed map with these pairs in this order, a repeated key included
        return b"\x83" + b"".join(pack(k) + pack(v) for k, v in pairs)
    if kind == "sig as bin":
        return pack({"event": event_bytes, "sig": sig.encode()})
    return laid_out(event_bytes, draw(sixty_four_bytes | hex_sigs.map(str.encode)))


@settings(max_examples=500)
@given(message=envelopes_off_the_layout())
def test_envelopes_off_the_layout_open_as_the_generic_reading_does(message):
    assert_opens_as_generic(message)


def test_the_generic_reading_agrees_on_the_fixed_examples():
    """The reference itself, against the reasons the module documents."""
    event_bytes = pack({"k": 1})
    good = hmac.new(KEY, event_bytes, hashlib.sha256).hexdigest()
    assert generic_open(sign_event(event_bytes, KEY)) == ("opened", repr({"k": 1}))
    assert generic_open(laid_out(event_bytes, good.encode(), 0xC6)) == ("opened", "{'k': 1}")
    assert generic_open(laid_out(event_bytes, good.upper().encode())) == (
        "refused",
        "bad_signature",
    )
    assert generic_open(laid_out(event_bytes, "é".encode() * 32)) == ("refused", "bad_signature")
    assert generic_open(laid_out(event_bytes, b"\xff" * 64)) == ("refused", "not_msgpack")
    assert generic_open(sign_event(event_bytes, KEY)[:-1]) == ("refused", "not_msgpack")
    assert generic_open(sign_event(b"\x91\x01", KEY)) == ("refused", "bad_event")
    for message in (
        sign_event(event_bytes, KEY),
        laid_out(event_bytes, "é".encode() * 32),
        laid_out(event_bytes, b"\xff" * 64),
    ):
        assert_opens_as_generic(message)
