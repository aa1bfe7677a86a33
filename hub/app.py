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

from hub.cluster.node import Node
from hub.services import broadcasts
from hub.ws import handlers
from hub.ws.endpoint import WebSocketEndpoint
from supporthub_core.http import ERROR_HANDLERS, edge_middleware, metrics_endpoint
from supporthub_core.openapi import Operation, docs_routes, routes_for
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "node": request.app.state.node.node_id})


async def readyz(request: Request) -> JSONResponse:
    node: Node = request.app.state.node
    checks = {"postgres": False, "redis": False, "bus": node.bus.healthy}
    try:
        async with node.pool.acquire(timeout=2) as db:
            checks["postgres"] = await db.fetchval("select 1", timeout=2) == 1
    except Exception:
        pass
    try:
        checks["redis"] = bool(await node.bus.redis.ping())
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
) -> Starlette:
    node = Node(settings, dsn=dsn, redis_url=redis_url, secret=secret)
    routes: list = [
        Route("/", lambda r: RedirectResponse("/widget/")),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
    ]
    operations = _operations(dev=dev, with_payments=with_payments)
    routes += routes_for(operations)
    routes += docs_routes(operations, title="supporthub")
    routes += _static_routes()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await node.start()
        await handlers.install(node)
        extra = []
        if with_payments:
            extra = await _start_payments(app, node, settings, secret)
        try:
            yield
        finally:
            for stop in extra:
                await stop()
            await node.stop()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=ERROR_HANDLERS,
        middleware=edge_middleware(),
    )
    app.state.node = node
    app.state.secret = secret
    app.state.settings = settings
    app.state.dev = dev
    return HubApp(app, WebSocketEndpoint(node, handlers.TABLE))


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


def _operations(*, dev: bool, with_payments: bool) -> list[Operation]:
    """The REST operations this process serves: its routes and its /openapi.json."""
    from hub.http import api

    operations = list(api.api.operations)
    try:
        from hub.helpbot.routes import api as help_api

        operations += help_api.operations
    except ImportError:
        log.warning("help center not available")
    if dev:
        operations += api.dev_api.operations
    if with_payments:
        try:
            from payments.api import api as payments_api
        except ImportError:
            return operations
        operations += payments_api.operations
    return operations


async def _start_payments(app: Starlette, node: Node, settings: Settings, secret: str) -> list:
    from payments.service import start_in_process

    announce = functools.partial(broadcasts.announce, node.pool, node.bus.redis, secret)
    return await start_in_process(app, node.pool, node.bus.redis, settings, announce)


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
