"""One exception tree for the whole hub, with the `error` code and HTTP status of each.

Domain code raises these; the WebSocket edge turns them into `error` frames and the
HTTP edge into `{"error": {code, message}}` bodies. Nothing else maps errors.
"""

from __future__ import annotations

from enum import IntEnum

from starlette.responses import JSONResponse


class CloseCode(IntEnum):
    """WebSocket close codes. 1xxx: the client may reconnect as is; 4xxx: fix something first."""

    NORMAL = 1000
    GOING_AWAY = 1001  # node shutting down: reconnect (to another node) and resume
    POLICY = 1008  # kept misbehaving, too many bad frames, origin refused
    TOO_BIG = 1009
    TRY_AGAIN = 1013  # overloaded or slow consumer: reconnect later and resume
    UNAUTHORIZED = 4001  # bad, missing or expired token: get a new one first


class HubError(Exception):
    """Base of every error a caller may see. `code` is the contract's error code."""

    code = "invalid"
    status = 400

    def __init__(self, message: str = "", *, code: str | None = None, status: int | None = None):
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.default_message()
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def default_message(self) -> str:
        return self.code.replace("_", " ")


class BadFrame(HubError):
    code, status = "bad_frame", 400


class Invalid(HubError):
    code, status = "invalid", 422


class Unauthorized(HubError):
    code, status = "unauthorized", 401


class Forbidden(HubError):
    code, status = "forbidden", 403


class NotFound(HubError):
    code, status = "not_found", 404


class Conflict(HubError):
    code, status = "conflict", 409


class RateLimited(HubError):
    code, status = "rate_limited", 429


class TooLarge(HubError):
    code, status = "invalid", 413


class Unavailable(HubError):
    code, status = "unavailable", 503


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def error_response(exc: HubError) -> JSONResponse:
    return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status)
