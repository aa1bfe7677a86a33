"""Hypothesis over both WebSocket codecs at the decoding edge: whatever bytes arrive, the
edge gives either a valid frame, fit for the store (no NUL, integers within int64), or
BadFrame; never another exception."""

from __future__ import annotations

import math

import msgpack
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from hub.ws import protocol
from supporthub_core.errors import BadFrame

INT64_MAX = 2**63 - 1
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def decode(data: bytes | str, binary: bool):
    """What the endpoint does with a frame off the socket, minus the rate limiter."""
    try:
        return protocol.parse_frame(protocol.decode_raw(data, binary))
    except BadFrame as exc:
        assert exc.code == "bad_frame" and exc.message
        return exc


def _walk(value, path="frame"):
    """Every leaf of a parsed frame, with where it is."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(k, f"{path}[key]")
            yield from _walk(v, f"{path}[{k!r}]")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, value


def check(result) -> None:
    if isinstance(result, BadFrame):
        return
    assert isinstance(result, protocol.Frame), result
    assert result.type in protocol.CLIENT_TYPES
    for where, leaf in _walk(result):
        if isinstance(leaf, str):
            assert "\x00" not in leaf, where
            leaf.encode("utf-8")  # no lone surrogates: PostgreSQL and orjson take it
        elif isinstance(leaf, bool) or leaf is None:
            pass
        elif isinstance(leaf, int):
            assert 0 <= leaf <= INT64_MAX, (where, leaf)
        elif isinstance(leaf, float):
            assert math.isfinite(leaf), where


def both(obj) -> None:
    """The same map through both codecs (when it can be encoded in each)."""
    try:
        packed = msgpack.packb(obj, use_bin_type=True)
    except (OverflowError, ValueError, TypeError):
        packed = None
    if packed is not None:
        check(decode(packed, True))
    try:
        text = orjson.dumps(obj).decode()
    except (orjson.JSONEncodeError, TypeError):
        text = None
    if text is not None:
        check(decode(text, False))
        check(decode(text.encode(), True))  # JSON sent as a binary frame


# --- building blocks ------------------------------------------------------------------

TYPES = sorted(protocol.CLIENT_TYPES) + ["nope", "", "\x00", "hello\x00", "ping "]
FIELDS = [
    "id", "token", "resume", "notifications_after", "conversations", "lang", "topic", "text",
    "handoff", "conversation_id", "client_msg_id", "state", "seq", "score", "comment", "up_to",
    "status", "to_agent", "to_topic",
]  # fmt: skip
BIG_INTS = st.sampled_from(
    [0, 1, -1, 5, 6, INT64_MAX, INT64_MAX + 1, 2**64 - 1, -(2**63), -(2**63) - 1, 2**64, 10**30]
)
TEXTS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "\ud800",
            "x\udfff",
            "\ufeff",
            "\u202e",
            "🙂",
            "é",
            "ｘ" * 5,
            "a" * 5000,
            "online",
            "other",
            "bot",
            "agent",
            "zh",
            "en",
            "account",
            "c-1",
        ]  # fmt: skip
    ),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), BIG_INTS, st.integers(), st.floats(allow_nan=True), TEXTS,
    st.binary(max_size=20),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(TEXTS, st.sampled_from(FIELDS)), inner, max_size=4),
    ),
    max_leaves=12,
)


@st.composite
def frames(draw):
    """Maps shaped like client frames: a known (or nearly known) type and fields from
    every model, with values of every kind."""
    frame = {"type": draw(st.sampled_from(TYPES))}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        frame[name] = draw(VALUES)
    return frame


@st.composite
def plausible_frames(draw):
    """Valid frames with one field swapped for something hostile."""
    cid = draw(st.sampled_from(["c-1", "c\x00", "", "x" * 200]))
    base = draw(
        st.sampled_from(
            [
                {"type": "notifications.ack", "up_to": 1},
                {"type": "read", "conversation_id": cid, "seq": 1},
                {"type": "chat.send", "conversation_id": cid, "client_msg_id": "m", "text": "t"},
                {"type": "chat.rate", "conversation_id": cid, "score": 5, "comment": "ok"},
                {"type": "chat.open", "topic": "other", "text": "hi", "lang": "zh"},
                {"type": "chat.note", "conversation_id": cid, "text": "n"},
                {"type": "chat.transfer", "conversation_id": cid, "to_agent": "a"},
                {
                    "type": "hello",
                    "token": "t",
                    "resume": {"notifications_after": 1, "conversations": {"c-1": 2}},
                },
                {"type": "typing", "conversation_id": cid, "state": True},
            ]  # fmt: skip
        )
    )
    frame = dict(base)
    key = draw(st.sampled_from(sorted(frame)))
    frame[key] = draw(st.one_of(VALUES, BIG_INTS, TEXTS))
    if "resume" in frame and draw(st.booleans()):
        frame["resume"] = {
            "notifications_after": draw(BIG_INTS),
            "conversations": draw(st.dictionaries(TEXTS, BIG_INTS, max_size=3)),
        }
    return frame


# --- properties -----------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=256), st.booleans())
@example(b"\xc1", True)
@example(b"\x00", False)
@example(b"\xff\xfe{}", False)
def test_random_bytes(data, binary):
    check(decode(data, binary))


@FUZZ
@given(st.text(max_size=200))
def test_random_text_frames(text):
    check(decode(text, False))


@FUZZ
@given(frames())
def test_frame_shaped_maps_in_both_codecs(frame):
    both(frame)


@FUZZ
@given(plausible_frames())
@example({"type": "notifications.ack", "up_to": 2**63})
@example({"type": "read", "conversation_id": "c", "seq": 2**64 - 1})
@example({"type": "hello", "token": "t", "resume": {"notifications_after": 2**63}})
@example({"type": "hello", "token": "t", "resume": {"conversations": {"c": 2**63}}})
@example({"type": "hello", "token": "t", "resume": {"conversations": {"c\x00": 1}}})
@example({"type": "chat.send", "conversation_id": "c", "client_msg_id": "m", "text": "a\x00"})
@example({"type": "chat.open", "topic": "other", "text": "\x00"})
@example({"type": "ping", "id": "\x00"})
def test_valid_frames_with_one_hostile_field(frame):
    both(frame)


@FUZZ
@given(frames(), st.data())
def test_truncated_msgpack(frame, data):
    packed = msgpack.packb(frame, use_bin_type=True) if _packable(frame) else b"\x81"
    cut = data.draw(st.integers(min_value=0, max_value=max(len(packed) - 1, 0)))
    check(decode(packed[:cut], True))
    check(decode(packed + b"\x00", True))  # trailing garbage


def _packable(frame) -> bool:
    try:
        msgpack.packb(frame, use_bin_type=True)
    except (OverflowError, ValueError, TypeError):
        return False
    return True


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=200_000), st.sampled_from(["list", "map"]))
def test_deep_nesting(depth, kind):
    # built by hand: the libraries refuse to encode what we want to send
    if kind == "list":
        packed = b"\x82\xa4type\xa4ping\xa2id" + b"\x91" * depth + b"\xc0"
        text = '{"type": "ping", "id": ' + "[" * depth + "]" * depth + "}"
    else:
        packed = b"\x82\xa4type\xa4ping\xa2id" + b"\x81\xa1k" * depth + b"\xc0"
        text = '{"type": "ping", "id": ' + '{"k": ' * depth + "null" + "}" * depth + "}"
    check(decode(packed, True))
    check(decode(text, False))


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([0xDE, 0xDF, 0xDC, 0xDD, 0xDB, 0xC6]), st.integers(0, 2**32 - 1))
def test_huge_declared_lengths(header, n):
    """A map, array, str or bin header that claims billions of entries and has none."""
    size = 2 if header in (0xDE, 0xDC) else 4
    n &= (1 << (8 * size)) - 1
    check(decode(bytes([header]) + n.to_bytes(size, "big"), True))
    check(decode(b"\x81\xa4type" + bytes([header]) + n.to_bytes(size, "big"), True))


def test_a_real_huge_map_is_only_a_bad_or_valid_frame():
    frame = {"type": "ping", **{f"k{i}": i for i in range(50_000)}}
    check(decode(msgpack.packb(frame), True))
    check(decode(orjson.dumps(frame).decode(), False))
    resume = {"conversations": {f"c{i}": i for i in range(20_000)}}
    check(decode(msgpack.packb({"type": "hello", "token": "t", "resume": resume}), True))


@FUZZ
@given(st.sampled_from(sorted(protocol.CLIENT_TYPES)), st.integers(min_value=-1, max_value=0xFF))
def test_msgpack_ext_and_odd_keys(kind, code):
    ext = msgpack.ExtType(code & 0x7F, b"\x00" * 4)
    for extra in [{"id": ext}, {"seq": ext}, {1: "x"}, {b"id": "x"}, {None: 1}]:
        packed = msgpack.packb({"type": kind, **extra}, use_bin_type=True)
        check(decode(packed, True))
    # non-str and unhashable-looking keys made by hand: fixmap with an array key
    check(decode(b"\x82\xa4type" + msgpack.packb(kind) + b"\x91\x01\x01", True))
    check(decode(b"\x82\xa4type" + msgpack.packb(kind) + b"\x81\x01\x01\x01", True))
    # a timestamp (ext -1) where an int belongs
    check(decode(msgpack.packb({"type": kind, "up_to": msgpack.Timestamp(1, 0)}), True))


def test_surrogates_and_nul_as_raw_bytes():
    # msgpack str with a CESU-encoded surrogate and with a NUL
    check(decode(b"\x82\xa4type\xa4ping\xa2id\xa3\xed\xa0\x80", True))
    check(decode(b"\x82\xa4type\xa4ping\xa2id\xa1\x00", True))
    # JSON escapes of a lone surrogate and of NUL
    check(decode('{"type": "ping", "id": "\\ud800"}', False))
    check(decode('{"type": "ping", "id": "\\u0000"}', False))
    check(decode('{"type": "chat.open", "topic": "other", "text": "\\u0000"}', False))
    assert isinstance(
        decode('{"type": "chat.open", "topic": "other", "text": "\\u0000"}', False), BadFrame
    )


# --- every field of every frame model -------------------------------------------------


#: A valid example of every client frame, with every optional field set.
def _p256_public_key() -> str:
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_P256_PUBLIC = _p256_public_key()

EXAMPLES = {
    "hello": {"token": "t", "lang": "zh", "tz": "Asia/Shanghai",
              "resume": {"notifications_after": 3, "conversations": {"c-1": 4}}},
    "ping": {},
    "auth.refresh": {"token": "t"},
    "chat.open": {"topic": "other", "text": "hi", "handoff": "agent", "lang": "en"},
    "chat.escalate": {"conversation_id": "c-1"},
    "chat.send": {"conversation_id": "c-1", "client_msg_id": "m-1", "text": "hi",
                  "attachments": ["a-1"]},
    "typing": {"conversation_id": "c-1", "state": True},
    "read": {"conversation_id": "c-1", "seq": 3},
    "chat.close": {"conversation_id": "c-1"},
    "chat.rate": {"conversation_id": "c-1", "score": 5, "comment": "good"},
    "chat.leave_message": {"conversation_id": "c-1", "via": "email"},
    "notifications.ack": {"up_to": 7},
    "user.lang": {"lang": "zh"},
    "agent.status": {"status": "online"},
    "chat.note": {"conversation_id": "c-1", "text": "note"},
    "chat.transfer": {"conversation_id": "c-1", "to_agent": "a-1", "to_topic": "payment",
                      "note": "refund requested"},
    "chat.resolve": {"conversation_id": "c-1", "outcome": "follow_up", "tags": ["refund"]},
    "chat.take": {"conversation_id": "c-1"},
    "chat.assign": {"conversation_id": "c-1", "agent_id": "a-1"},
    "chat.takeover": {"conversation_id": "c-1"},
    "chat.watch": {"conversation_id": "c-1", "watch": True},
    "feedback.tag": {"conversation_id": "c-1", "message_id": "m-1", "note": "wants dark mode"},
    "queue.get": {},
    "verify.request": {"conversation_id": "c-1"},
    "verify.submit": {"challenge_id": "ch-1", "code": "123456"},
    "push.register": {"kind": "webpush", "subscription": {
        "endpoint": "https://push.example/abc",
        "keys": {"p256dh": _P256_PUBLIC, "auth": "A" * 22}}},
    "push.unregister": {"endpoint": "https://push.example/abc"},
}  # fmt: skip


def _example(kind: str) -> dict:
    return {"type": kind, "id": "f-1", **EXAMPLES[kind]}


#: Maps whose keys are the client's data (not field names).
FREE_MAPS = {("resume", "conversations")}


def _leaves(obj, path=()):
    """(path, value) of every scalar in a plain frame map, and the keys of free maps."""
    for key, value in obj.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*path, key))
            if (*path, key) in FREE_MAPS:
                for inner in value:
                    yield (*path, key, ("key", inner)), inner
        else:
            yield (*path, key), value


def _replace(obj: dict, path: tuple, new) -> dict:
    out = dict(obj)
    head, *rest = path
    if rest and isinstance(rest[0], tuple) and rest[0][0] == "key":  # rename a map key
        inner = dict(out[head])
        inner[new] = inner.pop(rest[0][1])
        out[head] = inner
    elif rest:
        out[head] = _replace(out[head], tuple(rest), new)
    else:
        out[head] = new
    return out


def test_the_examples_cover_every_frame_and_field():
    assert set(EXAMPLES) == set(protocol.CLIENT_TYPES)
    for kind, model in protocol.CLIENT_MODELS.items():
        example = _example(kind)
        frame = protocol.parse_frame(example)
        assert isinstance(frame, model)
        assert set(model.model_fields) <= set(example), (
            kind,
            set(model.model_fields) - set(example),
        )


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_every_string_refuses_nul_and_every_integer_is_within_int64(kind):
    example = _example(kind)
    for path, value in _leaves(example):
        if path == ("type",):
            continue
        if isinstance(value, str) and not isinstance(value, bool):
            for bad in ("\x00", value + "\x00", "\x00" + value):
                with pytest.raises(BadFrame):
                    protocol.parse_frame(_replace(example, path, bad))
        if isinstance(value, int) and not isinstance(value, bool):
            for bad in (2**63, 2**64 - 1, -1, 10**30):
                with pytest.raises(BadFrame):
                    protocol.parse_frame(_replace(example, path, bad))
            check(protocol.parse_frame(_replace(example, path, min(INT64_MAX, value))))
