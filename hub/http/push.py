"""REST of Web Push: the VAPID public key, a user's devices (register, list, unregister),
and the widget's service worker served with the headers it needs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, Field, StrictStr
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from hub.push.subscriptions import PushRegistration
from supporthub_core.auth import require_role
from supporthub_core.errors import NotFound
from supporthub_core.http import caller, json_body
from supporthub_core.openapi import Api

if TYPE_CHECKING:
    from hub.composition import Hub

SERVICE_WORKER = Path(__file__).resolve().parent.parent.parent / "static" / "widget" / "sw.js"
SW_HEADERS = {
    "Cache-Control": "no-cache",  # a new version reaches browsers at their next check
    "Service-Worker-Allowed": "/widget/",
    "Content-Security-Policy": "default-src 'self'",
    "X-Content-Type-Options": "nosniff",
}


class Unregister(BaseModel):
    endpoint: Annotated[StrictStr, Field(min_length=1, max_length=2048)]


class VapidKey(BaseModel):
    key: str


class Subscription(BaseModel):
    subscription_id: str
    kind: str
    endpoint: str
    created_at: str
    updated_at: str


class Subscriptions(BaseModel):
    subscriptions: list[Subscription]


api = Api("push")


@api.route(
    "GET",
    "/api/push/vapid-public-key",
    summary="The VAPID public key browsers subscribe with",
    response=VapidKey,
    auth=False,
    store=False,
    errors=(404,),
)
async def vapid_public_key(request: Request) -> JSONResponse:
    """The `applicationServerKey` browsers subscribe with (public: no token needed)."""
    hub: Hub = request.app.state.hub
    return JSONResponse({"key": hub.push_out.public_key}, headers={"Cache-Control": "no-cache"})


@api.route(
    "POST",
    "/api/push/subscriptions",
    summary="Register this device for Web Push (users)",
    body=PushRegistration,
    response=Subscription,
    status=201,
    errors=(403, 404),
)
async def register(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "user")
    body = await json_body(request, PushRegistration)
    hub: Hub = request.app.state.hub
    return JSONResponse(await hub.push_out.register(claims, body), status_code=201)


@api.route(
    "GET",
    "/api/push/subscriptions",
    summary="This user's devices registered for push",
    response=Subscriptions,
    errors=(403,),
)
async def devices(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "user")
    hub: Hub = request.app.state.hub
    return JSONResponse({"subscriptions": await hub.push_out.devices(claims)})


@api.route(
    "DELETE",
    "/api/push/subscriptions",
    summary="Unregister a device by its endpoint (users)",
    body=Unregister,
    status=204,
    errors=(403, 404),
)
@api.route(
    "DELETE",
    "/api/push/subscriptions/{subscription_id}",
    summary="Unregister a device by its id (users)",
    status=204,
    errors=(403, 404),
)
async def unregister(request: Request) -> Response:
    """By id in the path, or by `{endpoint}` in the body (what a browser knows)."""
    claims = caller(request)
    require_role(claims, "user")
    hub: Hub = request.app.state.hub
    subscription_id = request.path_params.get("subscription_id")
    endpoint = None if subscription_id else (await json_body(request, Unregister)).endpoint
    removed = await hub.push_out.unregister(
        claims, endpoint=endpoint, subscription_id=subscription_id
    )
    if not removed:
        raise NotFound("no such push subscription")
    return Response(status_code=204)


async def service_worker(request: Request) -> Response:
    if not SERVICE_WORKER.is_file():
        raise NotFound("no service worker")
    return FileResponse(SERVICE_WORKER, media_type="text/javascript", headers=SW_HEADERS)


#: the service worker is a page asset, not part of the REST document
asset_routes = [Route("/widget/sw.js", service_worker, methods=["GET"])]
