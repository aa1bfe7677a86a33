"""One exception tree for the whole hub, with the `error` code and HTTP status of each.

Domain code raises these; the WebSocket edge turns them into `error` frames and the
HTTP edge into `{"error": {code, message}}` bodies. Nothing else maps errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any

import asyncpg
import redis.exceptions
from asyncpg.exceptions import _base as asyncpg_base
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
    """Base of every error a caller may see. `code` is the contract's error code; `details`
    are extra fields of the WebSocket `error` frame (an extension: `reason`, ...)."""

    code = "invalid"
    status = 400

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        status: int | None = None,
        details: Mapping[str, Any] | None = None,
    ):
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.default_message()
        self.details: Mapping[str, Any] = details or {}
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


class Unsupported(HubError):
    """A body (an upload) whose content is of a type the endpoint does not take."""

    code, status = "invalid", 415


class Unavailable(HubError):
    """The store or the bus is down: nothing was done, retry later."""

    code, status = "unavailable", 503


#: Seconds a client is told to wait (`Retry-After`) when the store or the bus is down.
RETRY_AFTER_S = 5

#: What the store (asyncpg) and the bus (redis-py) raise when the server is down,
#: restarting, out of connections or too slow. Each becomes Unavailable at the edge:
#: HTTP 503 `unavailable` with Retry-After, WebSocket `error {code: "unavailable"}`.
OUTAGES: tuple[type[BaseException], ...] = (
    # connection refused, a Unix socket gone (FileNotFoundError), a reset, and timeouts
    # (TimeoutError, which asyncio.TimeoutError is, e.g. on pool acquire)
    OSError,
    asyncpg.InterfaceError,  # "connection is closed", "pool is closing"
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, disk full
    # a pooled connection left mid-operation by a server that went away: returning it to
    # the pool (its reset) fails with "cannot switch to state ...; another operation is in
    # progress". Seen as a payments 500 during a PostgreSQL restart. The work may have
    # committed: the retry the 503 invites is safe because every write is idempotent
    # (idempotency keys, client_msg_id).
    asyncpg_base.InternalClientError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)

#: A value the store refused (a string with NUL, a number out of range). The edges are
#: meant to refuse these first; if one gets through it is the caller's input, not an
#: outage: 422 `invalid`, never a 500.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg_base.DataError,  # client side: a query argument out of range (int64)
    asyncpg.exceptions.DataError,  # SQLSTATE class 22
)


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, OUTAGES) and not isinstance(exc, DATA_ERRORS)


def as_hub_error(exc: BaseException) -> HubError | None:
    """The caller-facing error for an exception from the store or the bus, if it is one."""
    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, DATA_ERRORS):
        return Invalid("a value in the request cannot be stored")
    if isinstance(exc, OUTAGES):
        return Unavailable("the store or the bus is unavailable, retry later")
    return None


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(exc: HubError) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.status == 503 else None
    return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=headers)
