"""Wire frames: a pydantic discriminated union for what clients send, codecs for both
subprotocols, and helpers that build what the server sends.

Client frames are parsed once at the edge; anything that does not parse becomes an
`error` frame there and never reaches a handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

import msgpack
import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as _ValidationError

from hub.push.subscriptions import Kind as PushKind
from hub.push.subscriptions import WebPushSubscription
from hub.rules.clock import MAX_TZ_CHARS, is_zone
from supporthub_core.errors import BadFrame
from supporthub_core.validation import INT64_MAX, Str

MSGPACK = "supporthub.msgpack.v1"
JSON = "supporthub.json.v1"
SUBPROTOCOLS = (MSGPACK, JSON)

TOPICS = ("account", "payment", "arrival", "security", "technical", "feedback", "other")
Topic = Literal["account", "payment", "arrival", "security", "technical", "feedback", "other"]
MAX_TEXT = 4000
FEEDBACK_NOTE_MAX = 2000  # characters of an agent's note on a feedback tag
#: A hard bound on a frame's attachment list; the setting attachment_max_per_message
#: (10 by default) is what the hub accepts.
MAX_ATTACHMENTS = 50

#: Every string field of every client frame is a Str (no NUL character: PostgreSQL text
#: cannot hold it) or a Literal; every integer is bounded, at most INT64_MAX (bigint).
Id = Annotated[Str, Field(min_length=1, max_length=128)]
Text = Annotated[Str, Field(min_length=1, max_length=MAX_TEXT)]
Seq = Annotated[StrictInt, Field(ge=0, le=INT64_MAX)]


def _says_something(note: str) -> str:
    if not note.strip():
        raise ValueError("a note must say something (leave it out for none)")
    return note.strip()


#: An agent's note on a feedback tag (`feedback.tag`, its REST twin): trimmed, not blank.
FeedbackNote = Annotated[
    Str, Field(min_length=1, max_length=FEEDBACK_NOTE_MAX), AfterValidator(_says_something)
]


class Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: Annotated[Str, Field(max_length=128)] | None = None


class Resume(BaseModel):
    model_config = ConfigDict(extra="ignore")
    notifications_after: Seq | None = None
    conversations: dict[Id, Seq] | None = None


class Hello(Frame):
    type: Literal["hello"]
    token: Str
    resume: Resume | None = None
    lang: Literal["zh", "en"] | None = None  # extension: this device's language for texts
    # extension: this device's IANA time zone ("Europe/Berlin"), for times in texts
    tz: Annotated[Str, Field(min_length=1, max_length=MAX_TZ_CHARS)] | None = None

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and not is_zone(value):
            raise ValueError("not an IANA time zone name")
        return value


class Ping(Frame):
    type: Literal["ping"]


class AuthRefresh(Frame):
    """A new token for this session before the current one's `exp` (any role): same
    `sub` and `role`; the session then ends at the new token's `exp`."""

    type: Literal["auth.refresh"]
    token: Annotated[Str, Field(max_length=4096)]


class ChatOpen(Frame):
    type: Literal["chat.open"]
    topic: Topic
    text: Annotated[Str, Field(max_length=MAX_TEXT)] | None = None
    handoff: Literal["bot", "agent"] = "bot"
    lang: Literal["zh", "en"] | None = None


class ConversationFrame(Frame):
    conversation_id: Id


class ChatEscalate(ConversationFrame):
    type: Literal["chat.escalate"]


class ChatSend(ConversationFrame):
    """Text, files (ids from POST /api/attachments), or both; never neither."""

    type: Literal["chat.send"]
    client_msg_id: Id
    text: Annotated[Str, Field(max_length=MAX_TEXT)] = ""
    attachments: Annotated[list[Id], Field(max_length=MAX_ATTACHMENTS)] | None = None

    @model_validator(mode="after")
    def _something(self) -> ChatSend:
        if not self.text and not self.attachments:
            raise ValueError("text: a message needs text or attachments")
        if self.attachments and len(set(self.attachments)) != len(self.attachments):
            raise ValueError("attachments: an attachment is named twice")
        return self


class Typing(ConversationFrame):
    type: Literal["typing"]
    state: StrictBool


class Read(ConversationFrame):
    type: Literal["read"]
    seq: Seq


class ChatClose(ConversationFrame):
    type: Literal["chat.close"]


class ChatLeaveMessage(ConversationFrame):
    """Extension: nobody who can help is online; the customer leaves a message and will
    hear back in the app (and by push): the queued chat stays open. `via: "email"`: and
    by e-mail too, at their verified address."""

    type: Literal["chat.leave_message"]
    via: Literal["app", "email"] = "app"


class ChatRate(ConversationFrame):
    type: Literal["chat.rate"]
    score: Annotated[StrictInt, Field(ge=1, le=5)]
    comment: Annotated[Str, Field(max_length=2000)] | None = None


class NotificationsAck(Frame):
    type: Literal["notifications.ack"]
    up_to: Seq


class UserLang(Frame):
    """Extension: the user switched language; texts from now on (notifications, system
    messages) and the agent's view follow it."""

    type: Literal["user.lang"]
    lang: Literal["zh", "en"]


class AgentStatus(Frame):
    type: Literal["agent.status"]
    status: Literal["online", "away", "offline"]


class ChatNote(ConversationFrame):
    type: Literal["chat.note"]
    text: Text


class ChatTransfer(ConversationFrame):
    type: Literal["chat.transfer"]
    to_agent: Id | None = None
    to_topic: Topic | None = None
    note: Annotated[Str, Field(max_length=MAX_TEXT)] | None = None  # the handover note


Outcome = Literal["solved", "follow_up", "duplicate", "spam"]
Tag = Annotated[Str, Field(min_length=1, max_length=40)]


class ChatResolve(ConversationFrame):
    type: Literal["chat.resolve"]
    outcome: Outcome = "solved"
    tags: Annotated[list[Tag], Field(max_length=10)] = []


class ChatTake(ConversationFrame):
    """Extension: staff take a queued chat (or an urgent one left unanswered past its
    deadline) themselves; hub.rules.urgent.take_refusal."""

    type: Literal["chat.take"]


class ChatAssign(ConversationFrame):
    """Extension: a supervisor gives a queued chat to an agent who is online with room."""

    type: Literal["chat.assign"]
    agent_id: Id


class ChatTakeover(ConversationFrame):
    """Extension: a supervisor takes over an assigned chat; its agent is told."""

    type: Literal["chat.takeover"]


class ChatWatch(ConversationFrame):
    """Extension: a supervisor follows a chat live, read-only (`watch: false` stops)."""

    type: Literal["chat.watch"]
    watch: StrictBool = True


class FeedbackTag(ConversationFrame):
    """Extension: staff mark a message (or the whole chat) as feedback for the product team."""

    type: Literal["feedback.tag"]
    message_id: Id | None = None
    note: FeedbackNote | None = None


class VerifyRequest(ConversationFrame):
    type: Literal["verify.request"]


class VerifySubmit(Frame):
    type: Literal["verify.submit"]
    challenge_id: Id
    code: Annotated[Str, Field(min_length=1, max_length=32)]


class PushRegister(Frame):
    """Web Push for when no socket is open: the browser's PushSubscription (hub.push)."""

    type: Literal["push.register"]
    kind: PushKind
    subscription: WebPushSubscription


class PushUnregister(Frame):
    """Extension: this device no longer wants pushes."""

    type: Literal["push.unregister"]
    endpoint: Annotated[Str, Field(min_length=1, max_length=2048)]


class QueueWatch(Frame):
    """Extension: an agent asks for the current queue (also pushed when it changes)."""

    type: Literal["queue.get"]


ClientFrame = Annotated[
    Hello
    | Ping
    | AuthRefresh
    | ChatOpen
    | ChatEscalate
    | ChatSend
    | Typing
    | Read
    | ChatClose
    | ChatLeaveMessage
    | ChatRate
    | ChatLeaveMessage
    | NotificationsAck
    | UserLang
    | AgentStatus
    | ChatNote
    | ChatTransfer
    | ChatResolve
    | ChatTake
    | ChatAssign
    | ChatTakeover
    | ChatWatch
    | FeedbackTag
    | VerifyRequest
    | VerifySubmit
    | QueueWatch
    | PushRegister
    | PushUnregister,
    Field(discriminator="type"),
]
_client_frame = TypeAdapter(ClientFrame)
#: type -> model of every frame a client may send
CLIENT_MODELS: dict[str, type[Frame]] = {
    get_args(m.model_fields["type"].annotation)[0]: m
    for m in Frame.__subclasses__() + ConversationFrame.__subclasses__()
    if "type" in m.model_fields
}
CLIENT_TYPES = frozenset(CLIENT_MODELS)


# --- codecs ---------------------------------------------------------------------------


# one reused packer: packb() builds a new Packer per call (the event loop is single-threaded)
encode_msgpack = msgpack.Packer(use_bin_type=True).pack


def encode_json(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


def encode_json_bytes(frame: dict[str, Any]) -> bytes:
    """JSON as UTF-8 bytes: what a text frame carries on the wire."""
    return orjson.dumps(frame)


class CopyFrames:
    """The frames of a notice's copies, which differ only in `seq` and `notification_id`
    (the first keys after `type`): the parts every copy shares are encoded once per codec,
    so a copy's bytes are a few joins, the same bytes `encode_msgpack` and
    `encode_json_bytes` give for `frame(seq, notification_id)`."""

    __slots__ = (
        "_kind",
        "_shared",
        "_mp_head",
        "_mp_mid",
        "_mp_tail",
        "_js_head",
        "_js_mid",
        "_js_tail",
    )

    def __init__(self, kind: str, shared: dict[str, Any]) -> None:
        self._shared = shared  # the keys after notification_id, in order
        n = 3 + len(shared)
        if n > 15:
            raise ValueError("a copy frame is a msgpack fixmap: at most 15 keys")
        self._mp_head = (
            bytes((0x80 | n,))
            + encode_msgpack("type")
            + encode_msgpack(kind)
            + encode_msgpack("seq")
        )
        self._mp_mid = encode_msgpack("notification_id")
        self._mp_tail = b"".join(encode_msgpack(k) + encode_msgpack(v) for k, v in shared.items())
        self._js_head = b'{"type":' + orjson.dumps(kind) + b',"seq":'
        self._js_mid = b',"notification_id":'
        self._js_tail = b"," + orjson.dumps(shared)[1:] if shared else b"}"
        self._kind = kind

    def frame(self, seq: int, notification_id: str) -> dict[str, Any]:
        return {"type": self._kind, "seq": seq, "notification_id": notification_id, **self._shared}

    def msgpack(self, seq: int, notification_id: str) -> bytes:
        return (
            self._mp_head + encode_msgpack(seq) + self._mp_mid + encode_msgpack(notification_id)
            + self._mp_tail
        )  # fmt: skip

    def json(self, seq: int, notification_id: str) -> bytes:
        return (
            self._js_head
            + b"%d" % seq
            + self._js_mid
            + orjson.dumps(notification_id)
            + self._js_tail
        )


def decode_msgpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False, max_bin_len=1 << 20)


def decode_raw(data: bytes | str, binary: bool) -> dict[str, Any]:
    """Bytes off the socket -> a dict with a string `type`, or BadFrame."""
    try:
        obj = decode_msgpack(data) if binary and isinstance(data, bytes) else orjson.loads(data)
    except Exception:
        raise BadFrame("frame could not be decoded") from None
    if not isinstance(obj, dict):
        raise BadFrame("a frame must be a map")
    if not isinstance(obj.get("type"), str):
        raise BadFrame("a frame needs a string `type`")
    return obj


def parse_frame(obj: dict[str, Any]) -> Frame:
    """Validate a decoded map into its frame model; BadFrame with a readable reason."""
    if obj["type"] not in CLIENT_TYPES:
        raise BadFrame(f"unknown frame type {obj['type'][:64]!r}")
    try:
        return _client_frame.validate_python(obj)
    except _ValidationError as exc:
        raise BadFrame(_explain(exc)) from None


def _explain(exc: _ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"][1:] if p != "type") or "frame"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def frame_id(obj: object) -> str | None:
    """The client's `id` of a frame that may not have validated, if it is usable."""
    if isinstance(obj, dict):
        fid = obj.get("id")
        if isinstance(fid, str) and len(fid) <= 128:
            return fid
    return None


# --- server frames --------------------------------------------------------------------


def error_frame(
    code: str, message: str, fid: str | None = None, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {**(details or {}), "type": "error", "code": code, "message": message}
    if fid is not None:
        frame["id"] = fid
    return frame


def ack_frame(fid: str | None, **fields: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "ack", **fields}
    if fid is not None:
        frame["id"] = fid
    return frame
