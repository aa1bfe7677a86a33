"""What a log line needs to know about the work under way: the request id of the HTTP
request or WebSocket being handled (a context variable, so each task has its own)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

#: an id a client or a proxy sends in X-Request-ID is kept when it looks like an id
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def request_id_from(headers) -> str:
    """The X-Request-ID of these ASGI headers when it is a sensible id, else a new one."""
    for key, value in headers or ():
        if key == b"x-request-id":
            text = value.decode("latin-1").strip()
            if _ACCEPTABLE.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex
