"""Shared bits of the HTTP edge: who is calling, and a JSON body that fails clearly."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from hub.auth import Claims, bearer, verify_token
from hub.errors import BadFrame, Invalid, TooLarge, Unauthorized

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
