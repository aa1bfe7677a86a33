"""Typed events: each server frame the client hands on, as a dataclass. `raw` keeps the
whole frame (with any extension fields); frames of types not named here arrive as `Frame`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Frame:
    """Any server frame."""

    type: str
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Sender:
    role: str
    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Welcome(Frame):
    role: str = ""
    sub: str = ""
    session_id: str = ""
    conversations: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Message(Frame):
    conversation_id: str = ""
    seq: int = 0
    message_id: str = ""
    sender: Sender = field(default_factory=lambda: Sender("", ""))
    text: str = ""
    ts: str = ""
    client_msg_id: str | None = None
    attachments: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Notification(Frame):
    seq: int = 0
    notification_id: str = ""
    kind: str = ""
    title: str = ""
    body: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    ts: str = ""


@dataclass(frozen=True, slots=True)
class Typing(Frame):
    conversation_id: str = ""
    state: bool = False
    sender: Any = None  # the frame's `from`


@dataclass(frozen=True, slots=True)
class Read(Frame):
    conversation_id: str = ""
    seq: int = 0


@dataclass(frozen=True, slots=True)
class ChatOpened(Frame):
    conversation_id: str = ""
    status: str = ""


@dataclass(frozen=True, slots=True)
class ChatQueued(Frame):
    conversation_id: str = ""
    position: int = 0
    eta_s: int = 0


@dataclass(frozen=True, slots=True)
class ChatAssigned(Frame):
    conversation_id: str = ""
    agent: dict[str, Any] | None = None
    user: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChatClosed(Frame):
    conversation_id: str = ""
    by: str = ""


@dataclass(frozen=True, slots=True)
class Error(Frame):
    code: str = ""
    message: str = ""
    id: str | None = None


@dataclass(frozen=True, slots=True)
class StateChange:
    """Not a frame: the client's connection state changed (`open`, `reconnecting`, ...)."""

    state: str
    detail: str | None = None


Event = Frame | StateChange


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def parse(frame: dict[str, Any]) -> Frame:
    """The typed event for a server frame."""
    t = _str(frame.get("type"))
    g = frame.get
    match t:
        case "welcome":
            return Welcome(t, frame, _str(g("role")), _str(g("sub")), _str(g("session_id")),
                           tuple(g("conversations") or ()))  # fmt: skip
        case "message":
            sender = g("sender")
            s: dict[str, Any] = sender if isinstance(sender, dict) else {}
            return Message(
                t, frame, _str(g("conversation_id")), _int(g("seq")), _str(g("message_id")),
                Sender(_str(s.get("role")), _str(s.get("id")), s.get("name")),
                _str(g("text")), _str(g("ts")), g("client_msg_id"), tuple(g("attachments") or ()),
            )  # fmt: skip
        case "notification":
            return Notification(t, frame, _int(g("seq")), _str(g("notification_id")),
                                _str(g("kind")), _str(g("title")), _str(g("body")),
                                dict(g("data") or {}), _str(g("ts")))  # fmt: skip
        case "typing":
            return Typing(t, frame, _str(g("conversation_id")), bool(g("state")), g("from"))
        case "read":
            return Read(t, frame, _str(g("conversation_id")), _int(g("seq")))
        case "chat.opened":
            return ChatOpened(t, frame, _str(g("conversation_id")), _str(g("status")))
        case "chat.queued":
            return ChatQueued(t, frame, _str(g("conversation_id")), _int(g("position")),
                              _int(g("eta_s")))  # fmt: skip
        case "chat.assigned":
            return ChatAssigned(t, frame, _str(g("conversation_id")), g("agent"), g("user"))
        case "chat.closed":
            return ChatClosed(t, frame, _str(g("conversation_id")), _str(g("by")))
        case "error":
            return Error(t, frame, _str(g("code")), _str(g("message")), g("id"))
        case _:
            return Frame(t, frame)
