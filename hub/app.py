"""The Starlette app: routes, error mapping and the lifespan that runs a hub node."""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hub.composition import Hub
from hub.push.config import PushConfig
from hub.services import broadcasts
from hub.ws import handlers
from hub.ws.endpoint import WebSocketEndpoint
from supporthub_core.http import ERROR_HANDLERS, metrics_endpoint
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "node": request.app.state.hub.node.node_id})


async def readyz(request: Request) -> JSONResponse:
    hub: Hub = request.app.state.hub
    checks = {"postgres": False, "redis": False, "bus": hub.node.bus.healthy}
    try:
        async with hub.store.acquire(timeout=2) as db:
            checks["postgres"] = await db.fetchval("select 1", timeout=2) == 1
    except Exception:
        pass
    try:
        checks["redis"] = bool(await hub.node.bus.redis.ping())
    except Exception:
        pass
    ok = all(checks.values())
    return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)


def create_app(
    settings: Settings,
    *,
    dsn: str,
    redis_url: str,
    secret: str,
    with_payments: bool = True,
    dev: bool = False,
    vapid_private_key: str | None = None,
) -> Starlette:
    """`vapid_private_key` as hub.runtime resolved it (else HUB_VAPID_PRIVATE_KEY; neither:
    Web Push is off)."""
    push = PushConfig.from_settings(settings, dev=dev, private_key=vapid_private_key)
    hub = Hub.build(settings, dsn=dsn, redis_url=redis_url, secret=secret, push=push)
    routes: list = [
        Route("/", lambda r: RedirectResponse("/widget/")),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
    ]
    routes += _api_routes(dev=dev)
    if with_payments:
        routes += _payments_routes()
    routes += _static_routes()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await hub.start()
        extra = []
        if with_payments:
            extra = await _start_payments(app, hub, settings, secret)
        try:
            yield
        finally:
            for stop in extra:
                await stop()
            await hub.stop()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=ERROR_HANDLERS,
    )
    app.state.hub = hub
    app.state.secret = secret
    app.state.settings = settings
    app.state.dev = dev
    return HubApp(app, WebSocketEndpoint(hub, handlers.TABLE))


class HubApp:
    """`/ws` straight to the WebSocket endpoint, everything else to Starlette.

    The socket path skips the middleware stack: nothing there is needed per frame, and
    the endpoint gets the server's own `send` (it must be able to cut off a slow client).
    """

    def __init__(self, app: Starlette, websocket_endpoint: WebSocketEndpoint):
        self.app = app
        self.websocket_endpoint = websocket_endpoint

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            await self.websocket_endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def __getattr__(self, name: str):
        return getattr(self.app, name)


def _api_routes(*, dev: bool) -> list:
    from hub.http import api, push

    routes = list(api.routes) + push.routes
    try:
        from hub.helpbot.routes import routes as help_routes

        routes += help_routes
    except ImportError:
        log.warning("help center not available")
    if dev:
        routes += api.dev_routes
    return routes


def _payments_routes() -> list:
    try:
        from payments.api import routes
    except ImportError:
        return []
    return list(routes)


async def _start_payments(app: Starlette, hub: Hub, settings: Settings, secret: str) -> list:
    from payments.service import start_in_process

    pool, redis = hub.store.pool, hub.node.bus.redis
    announce = functools.partial(broadcasts.announce, pool, redis, secret)
    return await start_in_process(app, pool, redis, settings, announce)


def _static_routes() -> list:
    routes = []
    console = ROOT / "agents_console"
    widget = ROOT / "static"
    if console.is_dir():
        routes.append(Mount("/console", StaticFiles(directory=console, html=True), name="console"))
    if widget.is_dir():
        routes.append(
            Mount(
                "/widget",
                StaticFiles(
                    directory=widget / "widget" if (widget / "widget").is_dir() else widget,
                    html=True,
                ),
                name="widget",
            )
        )
        routes.append(Mount("/static", StaticFiles(directory=widget), name="static"))
    return routes
