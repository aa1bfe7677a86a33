"""REST routes of the hub: agent login, conversations, stats, broadcasts, the audit log."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Annotated

import asyncpg
from pydantic import BaseModel, Field, StrictStr
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.services import broadcasts
from hub.services.sms import DevOutbox
from hub.store import agents as agent_store
from hub.store import conversations as conv_store
from hub.store import stats as stats_mod
from supporthub_core.audit import AuditEntry
from supporthub_core.auth import issue_token, require_role
from supporthub_core.errors import Forbidden, Invalid, NotFound, RateLimited, Unauthorized
from supporthub_core.http import caller, json_body

if TYPE_CHECKING:
    from hub.composition import Hub

STATUSES = ("bot", "queued", "assigned", "resolved", "closed", "open")
TOKEN_TTL = 12 * 3600
AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT = 100, 1000


class Login(BaseModel):
    username: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    password: Annotated[StrictStr, Field(min_length=1, max_length=256)]


class Broadcast(BaseModel):
    title: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    body: Annotated[StrictStr, Field(min_length=1, max_length=4000)]
    data: dict | None = None


class LoginGuard:
    """Slows password guessing: after `limit` failures for a username from one address
    within `window_s`, further attempts from there get 429 until the window passes.
    Keyed by address too, so that a stranger's guesses cannot lock the agent out of their
    own console. Successful logins are not counted."""

    def __init__(self, limit: int = 10, window_s: float = 300.0):
        self.limit, self.window_s = limit, window_s
        self.failures: dict[str, list[float]] = {}

    def check(self, username: str) -> None:
        now = time.monotonic()
        recent = [t for t in self.failures.get(username, ()) if now - t < self.window_s]
        self.failures[username] = recent
        if len(recent) >= self.limit:
            raise RateLimited("too many failed logins; try again later")

    def failed(self, username: str) -> None:
        if len(self.failures) > 100_000:
            self.failures.clear()
        self.failures.setdefault(username, []).append(time.monotonic())


login_guard = LoginGuard()


async def login(request: Request) -> JSONResponse:
    body = await json_body(request, Login)
    address = _address(request)
    attempt = f"{body.username}\0{address or ''}"
    login_guard.check(attempt)
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        agent = await agent_store.authenticate(db, body.username, body.password)
    if agent is None:
        login_guard.failed(attempt)
        await hub.audit.record(AuditEntry("anonymous", body.username, "agent.login_failed",
                                          address=address))  # fmt: skip
        raise Unauthorized("wrong username or password")
    role = "supervisor" if agent["supervisor"] else "agent"
    await hub.audit.record(AuditEntry(role, agent["id"], "agent.login", address=address))
    token = issue_token(
        request.app.state.secret, agent["id"], role, name=agent["name"], ttl=TOKEN_TTL
    )
    return JSONResponse(
        {
            "token": token,
            "agent": {
                "id": agent["id"],
                "name": agent["name"],
                "role": role,
                "skills": list(agent["skills"]),
                "capacity": agent["capacity"],
            },
        }  # fmt: skip
    )


async def get_conversation(request: Request) -> JSONResponse:
    claims = caller(request)
    cid = request.path_params["conversation_id"]
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        conv = await conv_store.get(db, cid)
        if conv is None:
            raise NotFound("no such conversation")
        if claims.role == "user":
            if conv["user_id"] != claims.sub:
                raise NotFound("no such conversation")
        elif claims.role == "agent":
            had = await db.fetchval(
                "select 1 from conversation_agents where conversation_id = $1 and agent_id = $2",
                cid,
                claims.sub,
            )
            if not had and conv["agent_id"] != claims.sub:
                raise Forbidden("not your conversation")
        elif claims.role != "supervisor":
            raise Forbidden("not allowed")
        body = await conv_store.detail(db, conv)
        body["messages"] = await conv_store.messages_after(db, cid, 0, 10_000)
        if claims.is_staff:  # private notes never reach a user
            body["notes"] = await conv_store.notes(db, cid)
    return JSONResponse(body)


async def list_conversations(request: Request) -> JSONResponse:
    claims = caller(request)
    status = request.query_params.get("status") or None
    if status is not None and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}")
    try:
        limit = int(request.query_params.get("limit", "50"))
    except ValueError:
        raise Invalid("limit must be a number") from None
    if not 1 <= limit <= 500:
        raise Invalid("limit must be between 1 and 500")
    user_id = request.query_params.get("user_id") or None
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        if claims.role == "user":
            rows = await conv_store.listing(db, status=status, limit=limit, user_id=claims.sub)
        elif claims.role == "agent":
            # an agent serving a customer sees that customer's past chats, whoever had them
            serving = user_id is not None and await db.fetchval(
                "select 1 from conversations where user_id = $1 and agent_id = $2 and status = 'assigned'",
                user_id,
                claims.sub,
            )
            agent_id = None if serving else claims.sub
            rows = await conv_store.listing(
                db, status=status, limit=limit, agent_id=agent_id, user_id=user_id
            )
        elif claims.role == "supervisor":
            rows = await conv_store.listing(db, status=status, limit=limit, user_id=user_id)
        else:
            raise Forbidden("not allowed")
    return JSONResponse({"conversations": rows})


async def list_agents(request: Request) -> JSONResponse:
    claims = caller(request)
    if not claims.is_staff:
        raise Forbidden("agents only")
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        return JSONResponse({"agents": await agent_store.listing(db)})


async def stats(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor")
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        return JSONResponse(await stats_mod.compute(db))


async def broadcast(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor", "service")
    body = await json_body(request, Broadcast)
    hub: Hub = request.app.state.hub
    bid = await send_broadcast(hub, body.title, body.body, body.data or {})
    return JSONResponse({"broadcast_id": bid, "status": "accepted"}, status_code=202)


async def audit_log(request: Request) -> JSONResponse:
    """Supervisors: the audit log, newest first, by subject, actor and action."""
    claims = caller(request)
    require_role(claims, "supervisor")
    params = request.query_params
    hub: Hub = request.app.state.hub
    entries = await hub.audit.recent(
        subject_user_id=params.get("subject_user_id") or None,
        actor_id=params.get("actor_id") or None,
        action=params.get("action") or None,
        limit=_audit_limit(params.get("limit")),
    )
    return JSONResponse(entries)


def _audit_limit(raw: str | None) -> int:
    """Default 100; anything above 1000 is capped to 1000."""
    if raw is None or raw == "":
        return AUDIT_DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise Invalid("limit must be a number") from None
    if limit < 1:
        raise Invalid("limit must be at least 1")
    return min(limit, AUDIT_MAX_LIMIT)


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def send_broadcast(hub: Hub, title: str, body: str, data: dict) -> int:
    return await broadcasts.announce(
        hub.store.pool, hub.node.bus.redis, hub.secret, title, body, data
    )


async def dev_token(request: Request) -> JSONResponse:
    """Dev only: a demo user token for the web chat (absent from `serve`)."""
    user_id = request.query_params.get("user") or f"demo-{secrets.token_hex(3)}"
    if len(user_id) > 64:
        raise Invalid("user id too long")
    name = request.query_params.get("name") or await _account_name(request, user_id) or user_id
    token = issue_token(request.app.state.secret, user_id, "user", name=name, ttl=TOKEN_TTL)
    return JSONResponse({"token": token, "user_id": user_id, "name": name})


async def dev_otp(request: Request) -> JSONResponse:
    """Dev only: the last one-time code sent to a user (what their phone would show)."""
    user_id = request.query_params.get("user_id") or ""
    if not user_id:
        raise Invalid("user_id is required")
    outbox = request.app.state.hub.sms
    sent = outbox.latest(user_id) if isinstance(outbox, DevOutbox) else None
    if sent is None:
        raise NotFound("no code was sent to this user")
    return JSONResponse(
        {
            "user_id": sent.user_id,
            "challenge_id": sent.challenge_id,
            "code": sent.code,
            "expires_at": sent.expires_at.isoformat(),
        }
    )


async def _account_name(request: Request, user_id: str) -> str | None:
    """The demo user's name from their payment account (dev runs payments in this database)."""
    try:
        async with request.app.state.hub.store.acquire() as db:
            return await db.fetchval("select name from accounts where user_id = $1", user_id)
    except asyncpg.PostgresError:
        return None


routes = [
    Route("/api/agents/login", login, methods=["POST"]),
    Route("/api/conversations", list_conversations, methods=["GET"]),
    Route("/api/conversations/{conversation_id}", get_conversation, methods=["GET"]),
    Route("/api/agents", list_agents, methods=["GET"]),
    Route("/api/stats", stats, methods=["GET"]),
    Route("/api/broadcasts", broadcast, methods=["POST"]),
    Route("/api/audit", audit_log, methods=["GET"]),
]
dev_routes = [
    Route("/api/dev/token", dev_token, methods=["GET", "POST"]),
    Route("/api/dev/otp", dev_otp, methods=["GET"]),
]
