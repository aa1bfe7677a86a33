"""One registry of REST operations: each is declared once, beside its handler, with its
request, query and response models, and both the Starlette routes and the OpenAPI 3.1
document are made from it, so that the document cannot drift from the routes.

    api = Api("payments")

    @api.route("POST", "/api/payments", summary="Pay", body=PaymentIn, response=PaymentOut,
               status=202, errors=(403, 404, 409))
    async def create_payment(request): ...

    routes = api.routes()

An app serves `GET /openapi.json` and the page `GET /api/docs` for the operations it
mounts (`docs_routes`): in `dev` the hub and payments together, `supporthub payments`
alone its own.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from supporthub_core.errors import RETRY_AFTER_S

Endpoint = Callable[[Request], Awaitable[Response]]
REF = "#/components/schemas/{model}"
PAGE_DIR = Path(__file__).resolve().parent / "apidocs"

#: What each error status means on every endpoint; the body is always ErrorBody.
ERROR_STATUSES = {
    400: "Malformed request: the body is not JSON, or a NUL character in the path, query or body.",
    401: "Missing, expired or invalid bearer token.",
    403: "The token's role (or skills) may not do this.",
    404: "No such resource (or not yours to see).",
    409: "The state does not allow it.",
    413: "Request body over the limit; refused without being read.",
    415: "The body's content is not of a type this endpoint takes (judged by the content).",
    422: "A field or query parameter does not validate; the message names it.",
    429: "Too many attempts; try again later.",
    503: "PostgreSQL or Redis is unavailable: nothing was done; retry after Retry-After seconds.",
}

#: Strict like the other pages: no inline script or style, nothing from elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class ErrorDetail(BaseModel):
    code: Literal[
        "bad_frame", "unauthorized", "forbidden", "not_found", "invalid", "rate_limited",
        "conflict", "unavailable", "verification_required",
    ]  # fmt: skip
    message: str


class ErrorBody(BaseModel):
    """Every error of every endpoint: `{"error": {code, message}}`."""

    error: ErrorDetail


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    endpoint: Endpoint
    summary: str
    tag: str
    response: Any = None  # a BaseModel subclass, or list[Model]
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    auth: bool = True  # a bearer token is required
    store: bool = True  # needs PostgreSQL (so 503 when it is down)
    body_media: str = "application/json"  # or multipart/form-data (bytes fields are files)
    media: tuple[str, ...] = ()  # a file response (its content types) instead of `response`

    @property
    def statuses(self) -> list[int]:
        """Every status the operation may answer: its own, then the errors."""
        errors = {400, 413, *self.errors}
        if self.auth:
            errors.add(401)
        if self.body is not None or self.query is not None:
            errors.add(422)
        if self.store:
            errors.add(503)
        return [self.status, *sorted(errors)]


class Api:
    """The operations of one module of routes, in declaration order."""

    def __init__(self, tag: str):
        self.tag = tag
        self.operations: list[Operation] = []

    def route(
        self, method: str, path: str, *, summary: str, **spec: Any
    ) -> Callable[[Endpoint], Endpoint]:
        def register(endpoint: Endpoint) -> Endpoint:
            op = Operation(method.upper(), path, endpoint, summary, self.tag, **spec)
            if any((o.method, o.path) == (op.method, op.path) for o in self.operations):
                raise ValueError(f"{op.method} {op.path} declared twice")
            self.operations.append(op)
            return endpoint

        return register

    def routes(self) -> list[Route]:
        return routes_for(self.operations)


def routes_for(operations: Iterable[Operation]) -> list[Route]:
    """One Starlette route per path (so that a wrong method gets 405 with the right Allow
    header), in the order the paths were first declared."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for op in operations:
        by_path.setdefault(op.path, {})[op.method] = op.endpoint
    routes = []
    for path, endpoints in by_path.items():
        if len(endpoints) == 1:
            endpoint = next(iter(endpoints.values()))
        else:
            endpoint = _by_method(endpoints)
        routes.append(Route(path, endpoint, methods=list(endpoints)))
    return routes


def _by_method(endpoints: dict[str, Endpoint]) -> Endpoint:
    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    return dispatch


# --- the document -----------------------------------------------------------------------

_PATH_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def document(operations: Iterable[Operation], *, title: str, version: str = "1") -> dict:
    """The OpenAPI 3.1 document of these operations."""
    operations = list(operations)
    wanted: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (ErrorBody, "serialization")
    ]
    for op in operations:
        if op.body is not None:
            wanted.append((op.body, "validation"))
        for model in _models_of(op.response):
            wanted.append((model, "serialization"))
    wanted = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(wanted, ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))

    def schema_of(annotation: Any, mode: JsonSchemaMode) -> dict[str, Any]:
        if typing.get_origin(annotation) is list:
            (item,) = typing.get_args(annotation)
            return {"type": "array", "items": schema_of(item, mode)}
        return refs[(annotation, mode)]

    paths: dict[str, dict] = {}
    for op in operations:
        item: dict[str, Any] = {
            "operationId": f"{op.method.lower()}_{_slug(op.path)}",
            "summary": op.summary,
            "tags": [op.tag],
        }
        doc = (op.endpoint.__doc__ or "").strip()
        if doc:
            item["description"] = doc
        parameters = [
            {"name": name, "in": "path", "required": True,
             "schema": {"type": "string", "minLength": 1}}
            for name in _PATH_PARAM.findall(op.path)
        ]  # fmt: skip
        if op.query is not None:
            parameters += _query_parameters(op.query, schemas)
        if parameters:
            item["parameters"] = parameters
        if op.body is not None:
            item["requestBody"] = {
                "required": True,
                "content": {op.body_media: {"schema": schema_of(op.body, "validation")}},
            }
        responses: dict[str, Any] = {}
        ok: dict[str, Any] = {"description": op.summary}
        if op.response is not None:
            ok["content"] = {
                "application/json": {"schema": schema_of(op.response, "serialization")}
            }
        elif op.media:
            binary = {"type": "string", "format": "binary"}
            ok["content"] = {media: {"schema": binary} for media in op.media}
        responses[str(op.status)] = ok
        error = {"application/json": {"schema": refs[(ErrorBody, "serialization")]}}
        for status in op.statuses[1:]:
            responses[str(status)] = {"description": ERROR_STATUSES[status], "content": error}
            if status == 503:
                responses["503"]["headers"] = {
                    "Retry-After": {
                        "description": f"Seconds to wait before retrying ({RETRY_AFTER_S}).",
                        "schema": {"type": "integer", "minimum": 1},
                    }
                }
        item["responses"] = responses
        if op.auth:
            item["security"] = [{"bearer": []}]
        paths.setdefault(op.path, {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": 'Errors are `{"error": {code, message}}`. Request bodies are JSON,'
            " at most 64 KiB unless an endpoint says otherwise.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _models_of(annotation: Any) -> list[type[BaseModel]]:
    if annotation is None:
        return []
    if typing.get_origin(annotation) is list:
        return _models_of(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    raise TypeError(f"response must be a pydantic model or a list of one, not {annotation!r}")


def _query_parameters(model: type[BaseModel], schemas: dict) -> list[dict]:
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    schemas.update(schema.get("$defs", {}))
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = _not_null(prop)
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if name not in required:
            param["allowEmptyValue"] = True  # `?limit=` is as good as no limit (query())
        field = model.model_fields[name]
        if field.description:
            param["description"] = field.description
        parameters.append(param)
    return parameters


def _not_null(prop: dict) -> dict:
    """A query parameter is absent or a string: `X | None = None` documents as X."""
    prop = {k: v for k, v in prop.items() if k != "title"}
    branches = prop.get("anyOf")
    if branches and {"type": "null"} in branches:
        rest = [b for b in branches if b != {"type": "null"}]
        prop.pop("anyOf")
        if prop.get("default", 0) is None:
            del prop["default"]
        if len(rest) == 1:
            prop.update(rest[0])
        else:
            prop["anyOf"] = rest
    return prop


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_")


# --- serving it -------------------------------------------------------------------------


def docs_routes(operations: Iterable[Operation], *, title: str) -> list[Route]:
    """`GET /openapi.json` and the page that shows it, `GET /api/docs`."""
    operations = list(operations)
    cached: list[dict] = []

    async def openapi_json(request: Request) -> JSONResponse:
        if not cached:
            cached.append(document(operations, title=title))
        return JSONResponse(cached[0])

    def page(name: str, media_type: str) -> Endpoint:
        async def serve(request: Request) -> Response:
            return FileResponse(PAGE_DIR / name, media_type=media_type, headers=PAGE_HEADERS)

        return serve

    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/api/docs", page("index.html", "text/html; charset=utf-8"), methods=["GET"]),
        Route("/api/docs/docs.js", page("docs.js", "text/javascript"), methods=["GET"]),
        Route("/api/docs/docs.css", page("docs.css", "text/css"), methods=["GET"]),
    ]


#: Paths under /api that are the documentation itself, not REST endpoints.
DOCS_PATHS = frozenset({"/api/docs", "/api/docs/docs.js", "/api/docs/docs.css"})
