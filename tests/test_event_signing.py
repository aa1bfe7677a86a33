"""The signed `payments.events` envelope, pure: what signs is exactly what opens; any
change, any other key and any garbage is refused with the module's own error."""

from __future__ import annotations

import hashlib
import hmac

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from supporthub_core import event_signing
from supporthub_core.event_signing import (
    MAX_MESSAGE_BYTES,
    REASONS,
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
