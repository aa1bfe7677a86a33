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
from hub.http import attachments as attachments_http
from hub.http import campaigns as campaigns_http
from hub.http import devmail
from hub.http import push as push_http
from hub.push.config import PushConfig
from hub.services import broadcasts
from hub.services.mail_catcher import DevMailCatcher
from hub.services.sms import sms_sender_for
from hub.services.verification import passed_verification
from hub.ws import frame_log, handlers
from hub.ws.endpoint import WebSocketEndpoint
from supporthub_core.http import BODY_LIMITS, ERROR_HANDLERS, edge_middleware, metrics_endpoint
from supporthub_core.openapi import Operation, docs_routes, routes_for
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "node": request.app.state.hub.node.node_id})


async def readyz(request: Request) -> JSONResponse:
    hub: Hub = request.app.state.hub
    checks = {"postgres": False, "redis": False, "bus": hub.node.bus.ready}
    try:
        checks["postgres"] = await hub.store.ping(timeout=2)
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
    events_key: str | None = None,  # None: resolved from settings and secret
    with_payments: bool = True,
    dev: bool = False,
    vapid_private_key: str | None = None,
) -> HubApp:
    frame_log.install()  # before any socket: websockets reads the level when one opens
    events_key = events_key or settings.resolved_events_key(secret)
    sms = sms_sender_for(settings, secret, dev=dev)
    push = PushConfig.from_settings(settings, dev=dev, private_key=vapid_private_key)
    mail_catcher = None
    if dev:  # mail works out of the box: a listener, and a catcher for what goes out
        if not settings.smtp_listen:
            settings = settings.model_copy(update={"smtp_listen": "127.0.0.1:0"})
        if not settings.mail_trusted_authserv:  # no relay in front to vouch for senders
            settings = settings.model_copy(update={"mail_require_auth": False})
        if not settings.smtp_relay_host:
            mail_catcher = DevMailCatcher()
    hub = Hub.build(settings, dsn=dsn, redis_url=redis_url, secret=secret,
                    events_key=events_key, sms=sms, push=push,
                    mail_catcher=mail_catcher)  # fmt: skip
    routes: list = [
        Route("/", lambda r: RedirectResponse("/widget/")),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
    ]
    if dev:
        routes.append(Route("/dev/mail", devmail.dev_mail))
    operations = _operations(dev=dev, with_payments=with_payments)
    routes += routes_for(operations)
    routes += docs_routes(operations, title="supporthub")
    routes += push_http.asset_routes  # before the widget's static mount: its headers
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
        middleware=edge_middleware(
            body_limits(settings),
            access_log=dev if settings.access_log is None else settings.access_log,
        ),
    )
    app.state.hub = hub
    app.state.secret = secret
    app.state.refuses = hub.agent_access.refuses  # tokens of disabled agents
    app.state.settings = settings
    app.state.dev = dev
    return HubApp(app, WebSocketEndpoint(hub, handlers.TABLE, handlers.PIPELINED))


def body_limits(settings: Settings) -> dict[str, int]:
    """Request body caps by path: uploads take a file (`attachment_max_bytes`) and the
    multipart around it; everything else the default (RequestGuard)."""
    upload = settings.attachment_max_bytes + attachments_http.MULTIPART_OVERHEAD
    return {**BODY_LIMITS, "/api/attachments": upload, "/api/campaigns": campaigns_http.BODY_CAP}


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
    from hub.http import api, attachments, campaigns, push

    operations = list(api.api.operations) + list(push.api.operations)
    operations += campaigns.api.operations
    operations += attachments.api.operations
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


async def _start_payments(app: Starlette, hub: Hub, settings: Settings, secret: str) -> list:
    from payments.service import start_in_process

    pool, redis = hub.store.pool, hub.node.bus.redis
    announce = functools.partial(broadcasts.announce, pool, redis, secret)
    return await start_in_process(
        app,
        pool,
        redis,
        settings,
        announce,
        verified=passed_verification,
        events_key=hub.notifier.events_key,
    )


def _static_routes() -> list:
    routes = []
    console = ROOT / "agents_console"
    widget = ROOT / "static"
    js_client = ROOT / "clients" / "js" / "src"  # the JavaScript client's ES modules
    if js_client.is_dir():
        routes.append(Mount("/clients/js", StaticFiles(directory=js_client), name="js-client"))
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
