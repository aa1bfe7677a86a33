"""The payments service: pool, Redis and settings in one object, its background workers,
and the two ways to run it (inside a hub node in `dev`, or alone as `supporthub payments`).

HTTP routes reach it as `request.app.state.payments`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import asyncpg

from payments import ledger, outbox
from payments.settlement import SettlementWorker
from supporthub_core import audit
from supporthub_core.cancelling import cancel_and_wait
from supporthub_core.db import acquire, ping
from supporthub_core.errors import Conflict, NotFound

log = logging.getLogger(__name__)


#: Tells every user a system notice (the hub's broadcast): title, body, data -> broadcast id.
Announce = Callable[[str, str, dict], Awaitable[int]]

#: The user's step-up verification passed within the last `window_s` seconds, read in the
#: caller's transaction (the hub's verification store): (db, user_id, window_s) -> the
#: verification ({challenge_id, verified_at, ...}) or None.
VerifiedCheck = Callable[[asyncpg.Connection, str, float], Awaitable[dict | None]]


class PaymentsService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Any,
        settings: Any,
        announce: Announce,
        verified: VerifiedCheck,
        *,
        events_key: str,
    ):
        self.pool = pool
        self.announce = announce
        self.verified = verified
        self.redis = redis
        self.settings = settings
        self.config = ledger.LedgerConfig.from_settings(settings)
        self.relay = outbox.Relay(
            pool, redis, events_key=events_key.encode(), poll_s=settings.outbox_poll_s
        )
        self.settlement = SettlementWorker(pool, on_settled=self.relay.wake)
        self._tasks: list[asyncio.Task] = []

    # --- workers ------------------------------------------------------------------------

    def start(self) -> None:
        self._spawn(self.relay.run(), "payments-outbox-relay")
        self._spawn(self.settlement.run(), "payments-settlement")

    def _spawn(self, coro: Coroutine, name: str) -> None:
        async def guarded() -> None:
            # the loops handle their own errors; this only makes a bug loud
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("payments: background task %s died", name)
                raise

        self._tasks.append(asyncio.create_task(guarded(), name=name))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        # a last attempt so that events of the final requests do not wait for a restart
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.relay.publish_once(), 2)

    # --- use cases (each wakes the relay after its commit) ----------------------------

    async def pay(self, payer: str, req: ledger.PaymentRequest) -> dict:
        async with acquire(self.pool) as conn:
            result = await ledger.pay(conn, self.config, payer, req)
        self.relay.wake()
        return result

    async def unfreeze(
        self, user_id: str, reason: str, by: str, *, by_role: str = "agent",
        address: str | None = None,
    ) -> asyncpg.Record:  # fmt: skip
        """Unfreeze, if the user passed a step-up verification recently (409
        `verification_required` otherwise); audited with the verification used."""
        async with acquire(self.pool) as conn, conn.transaction():
            account = await ledger.get_account(conn, user_id)
            if account is None:
                raise NotFound(f"no account {user_id}")
            verification = await self._recent_verification(conn, user_id)
            row = await ledger.unfreeze(conn, user_id, reason, by)
            details = {"reason": reason, "frozen_reason": account["frozen_reason"],
                       "verification": verification}  # fmt: skip
            entry = audit.AuditEntry(by_role, by, "account.unfreeze", user_id, details=details,
                                     address=address)  # fmt: skip
            await audit.append(conn, entry)
        self.relay.wake()
        return row

    async def _recent_verification(self, conn: asyncpg.Connection, user_id: str) -> dict:
        window_s = self.settings.unfreeze_verification_window_s
        verification = await self.verified(conn, user_id, window_s)
        if verification is None:
            minutes = round(window_s / 60)
            raise Conflict(
                f"unfreezing needs the customer to pass an identity verification first (within"
                f" the last {minutes} minutes): press Verify identity in their chat",
                code="verification_required",
            )
        return verification

    async def freeze(
        self, user_id: str, reason: str, by: str, *, by_role: str = "agent"
    ) -> asyncpg.Record:
        async with acquire(self.pool) as conn:
            row = await ledger.freeze(conn, user_id, reason, by, by_role=by_role)
        self.relay.wake()
        return row

    async def record_login(self, user_id: str, device_id: str, **kw: Any) -> dict:
        async with acquire(self.pool) as conn:
            result = await ledger.record_login(conn, user_id, device_id, **kw)
        self.relay.wake()
        return result


async def start_in_process(
    app: Any,
    pool: asyncpg.Pool,
    redis: Any,
    settings: Any,
    announce: Announce,
    *,
    verified: VerifiedCheck,
    events_key: str,
) -> list[Callable[[], Awaitable[None]]]:
    """Run the payments service inside an app whose lifespan owns `pool` and `redis`;
    `events_key` signs what the outbox relay publishes."""
    service = PaymentsService(pool, redis, settings, announce, verified, events_key=events_key)
    app.state.payments = service
    service.start()
    log.info("payments service started (settlement worker, outbox relay)")
    return [service.stop]


# --- standalone: `supporthub payments` ------------------------------------------------

#: `Announce` before the standalone app's own pool and Redis are bound to it.
AnnounceWith = Callable[[asyncpg.Pool, Any, str, str, dict], Awaitable[int]]


def create_app(
    settings: Any,
    *,
    dsn: str,
    redis_url: str,
    secret: str,
    announce: AnnounceWith,
    verified: VerifiedCheck,
    events_key: str | None = None,
) -> Any:
    """The payments API alone: payments routes, /healthz, /readyz, /metrics, and its own
    /openapi.json and /api/docs. `events_key` None: resolved from settings and secret, as
    the hub does."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from payments.api import api as payments_api
    from supporthub_core import redis_client
    from supporthub_core.db import create_pool
    from supporthub_core.http import ERROR_HANDLERS, edge_middleware, metrics_endpoint
    from supporthub_core.openapi import docs_routes

    events_key = events_key or settings.resolved_events_key(secret)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "payments"})

    async def readyz(request: Request) -> JSONResponse:
        service: PaymentsService = request.app.state.payments
        checks = {"postgres": False, "redis": False}
        with contextlib.suppress(Exception):
            async with acquire(service.pool, timeout=2) as db:
                checks["postgres"] = await ping(db, timeout=2)
        with contextlib.suppress(Exception):
            checks["redis"] = bool(await asyncio.wait_for(service.redis.ping(), 2))
        ok = all(checks.values())
        return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        pool = await create_pool(
            dsn,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            statement_cache=settings.db_statement_cache,
        )
        redis = redis_client.client(
            redis_url, cluster=settings.redis_cluster, socket_connect_timeout=2, socket_timeout=5
        )
        bound = functools.partial(announce, pool, redis)
        stops = await start_in_process(
            app, pool, redis, settings, bound, verified=verified, events_key=events_key
        )
        try:
            yield
        finally:
            for stop in stops:
                await stop()
            await redis.aclose()
            await pool.close()

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            *payments_api.routes(),
            *docs_routes(payments_api.operations, title="supporthub payments"),
        ],
        lifespan=lifespan,
        exception_handlers=ERROR_HANDLERS,
        middleware=edge_middleware(access_log=bool(getattr(settings, "access_log", False))),
    )
    app.state.secret = secret
    app.state.settings = settings
    return app


def serve_standalone(
    settings: Any, rt: Any, announce: AnnounceWith, verified: VerifiedCheck, *, sock: Any = None
) -> None:
    """`supporthub payments`: the API and its workers on settings.host:port (or on `sock`,
    a socket already bound there)."""
    import importlib.util

    import uvicorn

    app = create_app(settings, dsn=rt.dsn, redis_url=rt.redis_url, secret=rt.secret,
                     announce=announce, verified=verified, events_key=rt.events_key)  # fmt: skip
    has = importlib.util.find_spec
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop" if has("uvloop") else "asyncio",
        http="httptools" if has("httptools") else "h11",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        proxy_headers=False,  # read from trusted proxies only (supporthub_core.addresses)
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock] if sock is not None else None)
    if not server.started:
        from supporthub_core.exits import CommandError

        raise CommandError("the payments server did not start (the log above says why)")
