"""The HTTP edge both services share: who is calling, a JSON body that fails clearly, the
error shape, and the metrics page."""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from supporthub_core.auth import Claims, bearer, verify_token
from supporthub_core.errors import (
    BadFrame,
    HubError,
    Invalid,
    TooLarge,
    Unauthorized,
    error_body,
    error_response,
)

MAX_BODY = 64 * 1024


def caller(request: Request) -> Claims:
    token = bearer(request.headers)
    if token is None:
        raise Unauthorized("missing bearer token")
    return verify_token(request.app.state.secret, token)


async def json_body(request: Request, model: type[BaseModel] | None = None) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise TooLarge("request body too large")
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise BadFrame("the body is not valid JSON", status=400) from None
    if model is None:
        return data
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "body"
        raise Invalid(f"{loc}: {first['msg']}") from None


HTTP_CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "invalid", 409: "conflict", 413: "invalid", 415: "invalid", 422: "invalid",
              429: "rate_limited", 503: "unavailable"}  # fmt: skip


async def _hub_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HubError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "invalid")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)


#: Starlette `exception_handlers` for every app: errors as `{"error": {code, message}}`.
ERROR_HANDLERS: dict[Any, Any] = {HubError: _hub_error, HTTPException: _http_error}


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format of this process's default registry."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
