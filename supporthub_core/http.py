"""The HTTP edge both services share: who is calling, a JSON body that fails clearly, the
error shape, the metrics page, and the middleware that caps request bodies."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from supporthub_core.auth import Claims, bearer, verify_token
from supporthub_core.context import request_id, request_id_from
from supporthub_core.errors import (
    DATA_ERRORS,
    OUTAGES,
    BadFrame,
    HubError,
    Invalid,
    TooLarge,
    Unauthorized,
    as_hub_error,
    error_body,
    error_response,
)
from supporthub_core.validation import NUL, NUL_MESSAGE, has_nul

log = logging.getLogger(__name__)
access = logging.getLogger("supporthub.access")
M = TypeVar("M", bound=BaseModel)

#: The default cap of a request body, for every HTTP endpoint of hub and payments.
MAX_BODY = 64 * 1024
#: Larger caps by path prefix (the longest matching prefix wins), for endpoints that take
#: more than a JSON document: a multipart upload route adds its prefix here.
BODY_LIMITS: dict[str, int] = {}


def caller(request: Request) -> Claims:
    """The claims of the request's bearer token. An app may set `state.refuses(claims)`
    to refuse good tokens it has revoked (the hub: disabled agents)."""
    token = bearer(request.headers)
    if token is None:
        raise Unauthorized("missing bearer token")
    claims = verify_token(request.app.state.secret, token)
    refuses = getattr(request.app.state, "refuses", None)
    if refuses is not None and refuses(claims):
        raise Unauthorized("this token's holder is disabled")
    return claims


async def json_body(request: Request, model: type[M] | None = None) -> Any:
    """The request's JSON body, validated into `model`: 400 if it is not JSON or holds a
    NUL character anywhere (keys included), 422 (with the field and why) if it does not
    fit the model. Bodies over the cap never get here (RequestGuard)."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise TooLarge("request body too large")
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise BadFrame("the body is not valid JSON", status=400) from None
    # JSON can only carry NUL as the escape \u0000: look deeper only when that is there
    if b"\\u0000" in raw and has_nul(data):
        raise Invalid(f"the body {NUL_MESSAGE}", status=400)
    if model is None:
        return data
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(_explain(exc, "body")) from None


def query(request: Request, model: type[M]) -> M:
    """The query string validated into `model` (the last value of a repeated name; an
    empty value is as good as absent): 422 with the parameter and why. NUL characters
    never get here (RequestGuard answers 400)."""
    data = {k: v for k, v in request.query_params.items() if v != ""}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(_explain(exc, "query")) from None


def _explain(exc: ValidationError, where: str) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or where
    return f"{loc}: {first['msg']}"


HTTP_CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "invalid", 409: "conflict", 413: "invalid", 415: "invalid", 422: "invalid",
              429: "rate_limited", 503: "unavailable"}  # fmt: skip


async def _hub_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HubError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "invalid")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    """The store or the bus is down (503 `unavailable`, Retry-After), or refused a value
    that got past the edge (422 `invalid`)."""
    error = as_hub_error(exc)
    assert error is not None
    if error.status == 503:
        log.warning("%s %s: store or bus unavailable: %r", request.method, request.url.path, exc)
    else:
        log.warning("%s %s: the store refused a value: %r", request.method, request.url.path, exc)
    return error_response(error)


#: Starlette `exception_handlers` for every app: errors as `{"error": {code, message}}`;
#: an outage of PostgreSQL or Redis is 503 `unavailable` with Retry-After, never a 500.
ERROR_HANDLERS: dict[Any, Any] = {
    HubError: _hub_error,
    HTTPException: _http_error,
    **{cls: _store_error for cls in OUTAGES + DATA_ERRORS},
}


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format of this process's default registry."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# --- the guard in front of every route ------------------------------------------------


class RequestGuard:
    """Pure ASGI middleware in front of every HTTP route of hub and payments.

    A request body over its cap is refused with 413 and the JSON error shape, and the
    connection is closed, without reading the rest. A NUL character in the path or the
    query string (so in any path or query parameter) is refused with 400.

    A `Content-Length` over the cap is refused before a byte of the body is read; a chunked
    (or lying) body is counted as it is received and cut off at the cap: the handler that
    reads it gets TooLarge (mapped to 413 by ERROR_HANDLERS) and the server stops reading.
    Only `http` scopes are looked at; WebSocket scopes pass untouched.
    """

    def __init__(self, app, *, default: int = MAX_BODY, limits: Mapping[str, int] | None = None):
        self.app = app
        self.default = default
        limits = BODY_LIMITS if limits is None else limits
        self.limits = sorted(limits.items(), key=lambda item: -len(item[0]))

    def cap(self, path: str) -> int:
        for prefix, cap in self.limits:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return cap
        return self.default

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _nul_in_target(scope):
            await _refuse(
                scope, receive, send, 400, f"the path or query {NUL_MESSAGE}", close=False
            )
            return
        cap = self.cap(scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            status = 413 if declared.isdigit() else 400
            await _refuse(scope, receive, send, status, "request body too large", close=True)
            return
        received = 0
        over = False

        async def capped_receive():
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    over = True
                    raise TooLarge(f"request body too large (over {cap} bytes)")
            return message

        started = False

        async def closing_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if over:  # the rest of the body is not read: end the connection after this
                    headers = [h for h in message.get("headers", []) if h[0] != b"connection"]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, capped_receive, closing_send)
        except TooLarge:
            if started:
                raise
            await _refuse(scope, receive, send, 413, "request body too large", close=True)


def _nul_in_target(scope) -> bool:
    """A NUL in the path or the query string, raw or percent-encoded: path parameters and
    query parameters come from these, so no handler ever sees one."""
    query = scope.get("query_string") or b""
    raw_path = scope.get("raw_path") or b""
    return (
        NUL in scope["path"]
        or b"%00" in query
        or b"\x00" in query
        or b"%00" in raw_path
        or b"\x00" in raw_path
    )


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1").strip()
    return None


async def _refuse(scope, receive, send, status: int, message: str, *, close: bool) -> None:
    code = HTTP_CODES.get(status, "invalid")
    headers = {"Connection": "close"} if close else None
    response = JSONResponse(error_body(code, message), status_code=status, headers=headers)
    await response(scope, receive, send)


class RequestContext:
    """Pure ASGI middleware, outermost: the request id (the client's or a proxy's
    X-Request-ID when it looks like one, else a new one) for every log line written while
    the request is handled, echoed in the response's X-Request-ID; and, when
    `access_log`, one line a request: client, method, path, status, bytes, duration, id
    (not the successes of our own periodic traffic, a User-Agent `supporthub-...`: the
    outbox poll of every node every few seconds)."""

    def __init__(self, app, *, access_log: bool = False):
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_from(scope.get("headers"))
        token = request_id.set(rid)
        started = time.perf_counter()
        status, size = 0, 0

        async def send_with_id(message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", rid.encode())]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log and not (status < 400 and _internal(scope)):
                client = scope.get("client")
                query = scope.get("query_string") or b""
                target = scope["path"] + ("?" + query.decode("latin-1") if query else "")
                access.info(
                    '%s "%s %s HTTP/%s" %s %dB %.1fms',
                    client[0] if client else "-",
                    scope["method"],
                    target,
                    scope.get("http_version", "1.1"),
                    status or "-",
                    size,
                    (time.perf_counter() - started) * 1000,
                )
            request_id.reset(token)


def _internal(scope) -> bool:
    agent = _header(scope, b"user-agent")
    return agent is not None and agent.startswith("supporthub-")


def edge_middleware(
    limits: Mapping[str, int] | None = None, *, access_log: bool = False
) -> list[Middleware]:
    """The middleware every app of hub and payments runs its HTTP routes behind."""
    return [
        Middleware(RequestContext, access_log=access_log),
        Middleware(RequestGuard, limits=limits),
    ]
