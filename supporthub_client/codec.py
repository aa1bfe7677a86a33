"""The two wire formats of the hub's WebSocket: `supporthub.json.v1` (text frames) and
`supporthub.msgpack.v1` (binary frames), one map per frame."""

from __future__ import annotations

from typing import Any, Literal

import msgpack
import orjson

JSON = "supporthub.json.v1"
MSGPACK = "supporthub.msgpack.v1"
CodecName = Literal["json", "msgpack"]
PROTOCOLS: dict[str, str] = {"json": JSON, "msgpack": MSGPACK}


def protocol_of(codec: str) -> str:
    try:
        return PROTOCOLS[codec]
    except KeyError:
        raise ValueError(f"unknown codec {codec!r}: json or msgpack") from None


def encode(frame: dict[str, Any], binary: bool) -> bytes | str:
    """One frame as the socket carries it: msgpack bytes or JSON text."""
    return msgpack.packb(frame) if binary else orjson.dumps(frame).decode()


def decode(raw: bytes | str) -> Any:
    """A frame off the socket: bytes are msgpack, text is JSON."""
    return msgpack.unpackb(raw) if isinstance(raw, bytes) else orjson.loads(raw)
