"""Payments and accounts over HTTP (CONTRACT section 5).

Who may do what: a `user` token acts on its own account only; agents, supervisors and
`service` tokens may read any account or payment. Unfreezing needs an agent (or
supervisor) whose skills include `security`, and a step-up verification of the user passed
within `unfreeze_verification_window_s` (the check is injected: see PaymentsService).
Errors are supporthub_core.errors exceptions.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictStr, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from payments import ledger, outbox
from supporthub_core.auth import Claims, require_role
from supporthub_core.errors import Forbidden, Invalid, NotFound
from supporthub_core.http import caller, json_body

log = logging.getLogger(__name__)

READERS = frozenset({"agent", "supervisor", "service"})
Id = Annotated[StrictStr, Field(min_length=1, max_length=128)]
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
MAINTENANCE_TITLE = "系统维护通知 / Scheduled maintenance"
MAINTENANCE_BODY = (
    "支付服务正在维护，暂时无法付款，请稍后再试。"
    " / Payments are under maintenance; please try again later."
)


class PaymentIn(BaseModel):
    to_account: Id
    amount: Any  # a decimal string; checked by ledger.parse_amount
    speed: Literal["instant", "standard"]
    idempotency_key: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    memo: Annotated[StrictStr, Field(max_length=200)] | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: object) -> object:
        if not isinstance(value, str):  # the contract's decimal string; a number is a mistake
            raise ValueError('must be a decimal string such as "12.50"')
        try:
            ledger.parse_amount(value)
        except Invalid as exc:
            raise ValueError(exc.message.removeprefix("amount: ")) from None
        return value


class ReasonIn(BaseModel):
    reason: Annotated[StrictStr, Field(min_length=1, max_length=500)]


class DeviceLoginIn(BaseModel):
    user_id: Id | None = None
    device_id: Id
    device_name: Annotated[StrictStr, Field(max_length=200)] | None = None
    ip: Annotated[StrictStr, Field(max_length=64)] | None = None


class MaintenanceIn(BaseModel):
    on: StrictBool
    message: Annotated[StrictStr, Field(max_length=1000)] | None = None


def _service(request: Request):
    return request.app.state.payments


def _limit(request: Request, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid("limit: must be an integer") from None
    if not 1 <= value <= maximum:
        raise Invalid(f"limit: must be between 1 and {maximum}")
    return value


def _may_read_account(claims: Claims, user_id: str) -> None:
    if claims.role in READERS:
        return
    if claims.role == "user" and claims.sub == user_id:
        return
    raise Forbidden("you may only see your own account")


# --- payments ---------------------------------------------------------------------------


async def create_payment(request: Request) -> JSONResponse:
    claims = caller(request)
    if claims.role != "user":
        raise Forbidden("only a user pays, from their own account")
    body: PaymentIn = await json_body(request, PaymentIn)
    req = ledger.PaymentRequest(
        to_account=body.to_account,
        amount=ledger.parse_amount(body.amount),
        speed=body.speed,
        idempotency_key=body.idempotency_key,
        memo=body.memo,
    )
    payment = await _service(request).pay(claims.sub, req)
    return JSONResponse(payment, status_code=202)


async def get_payment(request: Request) -> JSONResponse:
    claims = caller(request)
    tx_id = request.path_params["transaction_id"]
    async with _service(request).pool.acquire() as conn:
        row = await ledger.get_payment(conn, tx_id)
    if row is None:
        raise NotFound(f"no payment {tx_id}")
    if claims.role not in READERS:
        payer = row["from_user"] == claims.sub
        payee = row["to_user"] == claims.sub and row["status"] != "failed"
        if claims.role != "user" or not (payer or payee):
            raise Forbidden("not your payment")
        return JSONResponse(ledger.payment_view(row, viewer=claims.sub))
    return JSONResponse(ledger.payment_view(row))


async def list_payments(request: Request) -> JSONResponse:
    claims = caller(request)
    limit = _limit(request)
    user_id = request.query_params.get("user_id") or None
    if claims.role == "user":
        if user_id is not None and user_id != claims.sub:
            raise Forbidden("you may only list your own payments")
        user_id = claims.sub
    elif claims.role not in READERS:
        raise Forbidden("not allowed")
    async with _service(request).pool.acquire() as conn:
        payments = await ledger.list_payments(conn, user_id, limit)
    return JSONResponse({"payments": payments, "user_id": user_id})


# --- accounts ---------------------------------------------------------------------------


async def get_account(request: Request) -> JSONResponse:
    claims = caller(request)
    user_id = request.path_params["user_id"]
    _may_read_account(claims, user_id)
    async with _service(request).pool.acquire() as conn:
        row = await ledger.get_account(conn, user_id)
    if row is None:
        raise NotFound(f"no account {user_id}")
    return JSONResponse(ledger.account_view(row))


async def _security_agent(request: Request, claims: Claims) -> None:
    require_role(claims, "agent", "supervisor")
    async with _service(request).pool.acquire() as conn:
        skills = await conn.fetchval("select skills from agents where id = $1", claims.sub)
    if not skills or "security" not in skills:
        raise Forbidden("only agents with the security skill may do this")


async def unfreeze_account(request: Request) -> JSONResponse:
    """409 `verification_required` unless the user passed a step-up verification lately."""
    claims = caller(request)
    await _security_agent(request, claims)
    body: ReasonIn = await json_body(request, ReasonIn)
    address = request.client.host if request.client else None
    row = await _service(request).unfreeze(request.path_params["user_id"], body.reason,
                                           claims.sub, by_role=claims.role, address=address)  # fmt: skip
    return JSONResponse(ledger.account_view(row))


async def freeze_account(request: Request) -> JSONResponse:
    claims = caller(request)
    await _security_agent(request, claims)
    body: ReasonIn = await json_body(request, ReasonIn)
    row = await _service(request).freeze(request.path_params["user_id"], body.reason, claims.sub,
                                         by_role=claims.role)  # fmt: skip
    return JSONResponse(ledger.account_view(row))


async def account_alerts(request: Request) -> JSONResponse:
    claims = caller(request)
    user_id = request.path_params["user_id"]
    _may_read_account(claims, user_id)
    limit = _limit(request)
    async with _service(request).pool.acquire() as conn:
        alerts = await outbox.alerts_for(conn, user_id, limit)
    return JSONResponse({"user_id": user_id, "alerts": alerts})


async def device_login(request: Request) -> JSONResponse:
    claims = caller(request)
    body: DeviceLoginIn = await json_body(request, DeviceLoginIn)
    if claims.role == "user":
        if body.user_id is not None and body.user_id != claims.sub:
            raise Forbidden("a user token reports its own logins only")
        user_id = claims.sub
    elif claims.role == "service":
        if body.user_id is None:
            raise Invalid("user_id: required with a service token")
        user_id = body.user_id
    else:
        raise Forbidden("user or service tokens only")
    result = await _service(request).record_login(
        user_id, body.device_id, device_name=body.device_name, ip=body.ip
    )
    return JSONResponse(result)


# --- operations -------------------------------------------------------------------------


async def events(request: Request) -> JSONResponse:
    """Outbox catch-up for the hub: events with outbox_id > after_id, in commit order."""
    claims = caller(request)
    require_role(claims, "service", "supervisor")
    raw = request.query_params.get("after_id", "0")
    try:
        after_id = int(raw)
    except ValueError:
        raise Invalid("after_id: must be an integer") from None
    limit = _limit(request, default=100, maximum=1000)
    async with _service(request).pool.acquire() as conn:
        items, next_after = await outbox.read_after(conn, max(after_id, 0), limit)
    return JSONResponse({"events": items, "next_after_id": next_after})


async def get_maintenance(request: Request) -> JSONResponse:
    caller(request)
    service = _service(request)
    async with service.pool.acquire() as conn:
        state = await ledger.maintenance_state(conn)
    if service.config.maintenance:
        state = {**state, "active": True, "forced_by_settings": True}
    return JSONResponse(state)


async def set_maintenance(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor", "service")
    body: MaintenanceIn = await json_body(request, MaintenanceIn)
    service = _service(request)
    async with service.pool.acquire() as conn:
        state = await ledger.set_maintenance(conn, body.on, body.message, claims.sub)
    if body.on and state["changed"]:
        state["broadcast_id"] = await _announce(request, body.message)
    return JSONResponse(state)


async def _announce(request: Request, message: str | None) -> int:
    """Tell every user: a system notice through the hub's broadcast."""
    body = message or MAINTENANCE_BODY
    return await _service(request).announce(MAINTENANCE_TITLE, body, {"maintenance": True})


routes = [
    Route("/api/payments", create_payment, methods=["POST"]),
    Route("/api/payments", list_payments, methods=["GET"]),
    Route("/api/payments/{transaction_id}", get_payment, methods=["GET"]),
    Route("/api/accounts/{user_id}", get_account, methods=["GET"]),
    Route("/api/accounts/{user_id}/unfreeze", unfreeze_account, methods=["POST"]),
    Route("/api/accounts/{user_id}/freeze", freeze_account, methods=["POST"]),
    Route("/api/accounts/{user_id}/alerts", account_alerts, methods=["GET"]),
    Route("/api/devices/login", device_login, methods=["POST"]),
    Route("/api/events", events, methods=["GET"]),
    Route("/api/maintenance", get_maintenance, methods=["GET"]),
    Route("/api/maintenance", set_maintenance, methods=["POST"]),
]
