"""Payments and accounts over HTTP (CONTRACT section 5).

Who may do what: a `user` token acts on its own account only; agents, supervisors and
`service` tokens may read any account or payment. Unfreezing needs an agent (or
supervisor) whose skills include `security`, and a step-up verification of the user passed
within `unfreeze_verification_window_s` (the check is injected: see PaymentsService).
Errors are supporthub_core.errors exceptions.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    field_validator,
)
from starlette.requests import Request
from starlette.responses import JSONResponse

from payments import ledger, outbox
from supporthub_core.addresses import ClientAddresses
from supporthub_core.auth import Claims, require_role
from supporthub_core.errors import Forbidden, Invalid, NotFound
from supporthub_core.http import caller, json_body, query
from supporthub_core.openapi import Api
from supporthub_core.validation import ASCII_DIGITS, INT64_MAX

log = logging.getLogger(__name__)

READERS = frozenset({"agent", "supervisor", "service"})
Id = Annotated[StrictStr, Field(min_length=1, max_length=128)]
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
api = Api("payments")
MAINTENANCE_OVER_TITLE = "维护已结束 / Maintenance is over"
MAINTENANCE_OVER_BODY = "转账和付款已恢复正常。 / Payments work again."
MAINTENANCE_TITLE = "系统维护通知 / Scheduled maintenance"
MAINTENANCE_BODY = (
    "支付服务正在维护，暂时无法付款，请稍后再试。"
    " / Payments are under maintenance; please try again later."
)


AMOUNT_SCHEMA = {
    "type": "string",
    "pattern": "^[0-9]{1,16}(\\.[0-9]{1,2})?$",
    "description": 'A decimal string, more than 0 and at most 1000000.00, such as "12.50".',
    "examples": ["12.50"],
}


class PaymentIn(BaseModel):
    to_account: Id = Field(description="The payee's user id (accounts are keyed by user).")
    # a decimal string; checked by ledger.parse_amount
    amount: Annotated[Any, WithJsonSchema(AMOUNT_SCHEMA)]
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
    starts_at: AwareDatetime | None = Field(None, description="When it starts (default: now).")
    expected_end: AwareDatetime | None = Field(
        None, description="When it is expected to end: told to customers in their time zone."
    )
    functions: Annotated[list[Literal["instant", "standard"]], Field(max_length=2)] | None = Field(
        None, description="What it pauses (default: every payment)."
    )


# --- responses (documented in /openapi.json) -------------------------------------------


class PaymentOut(BaseModel):
    transaction_id: str
    status: Literal["processing", "succeeded", "failed"]
    from_account: str
    to_account: str
    amount: str
    currency: str
    speed: Literal["instant", "standard"]
    created_at: str
    reason: str | None = Field(None, description="Why it failed (only when failed).")
    expected_by: str | None = None
    settled_at: str | None = None
    maintenance_until: str | None = Field(
        None, description="Refused for maintenance: when the window is expected to end."
    )
    memo: str | None = None
    direction: Literal["in", "out"] | None = Field(None, description="For a user: in or out.")
    from_name: str | None = Field(None, description="The payer's account name (in lists).")
    to_name: str | None = Field(None, description="The payee's account name (in lists).")


class PaymentList(BaseModel):
    payments: list[PaymentOut]
    user_id: str | None


class AccountOut(BaseModel):
    user_id: str
    name: str
    balance: str
    currency: str
    frozen: bool
    created_at: str | None
    frozen_reason: str | None = None
    frozen_at: str | None = None


class Event(BaseModel):
    """An event as in the payments.events channel, with its outbox id."""

    model_config = ConfigDict(extra="allow")
    event_id: str
    type: Literal["transaction.status", "security.alert"]
    user_id: str
    occurred_at: str
    outbox_id: int


class AlertList(BaseModel):
    user_id: str
    alerts: list[Event]


class DeviceLoginOut(BaseModel):
    user_id: str
    device_id: str
    new_device: bool
    alert: str | None


class EventList(BaseModel):
    events: list[Event]
    next_after_id: int


class MaintenanceOut(BaseModel):
    active: bool
    message: str | None
    in_force: bool | None = None
    starts_at: str | None = None
    expected_end: str | None = None
    functions: list[str] | None = None
    updated_by: str | None = None
    updated_at: str | None = None
    forced_by_settings: bool | None = None
    changed: bool | None = None
    broadcast_id: int | None = None


def _service(request: Request):
    return request.app.state.payments


Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT), ASCII_DIGITS]


class LimitQuery(BaseModel):
    limit: Limit = DEFAULT_LIMIT


class PaymentsQuery(LimitQuery):
    user_id: Id | None = None
    amount: (
        Annotated[
            StrictStr,
            Field(pattern=r"^[0-9]{1,16}(\.[0-9]{1,2})?$", description="Exactly this amount."),
        ]
        | None
    ) = None
    since: Annotated[StrictStr, Field(max_length=40)] | None = Field(
        None, description="Created at or after (ISO 8601 with a UTC offset)."
    )
    until: Annotated[StrictStr, Field(max_length=40)] | None = Field(
        None, description="Created before (ISO 8601 with a UTC offset)."
    )
    counterpart: Id | None = Field(
        None, description="The other side's user id (for staff without user_id: either side)."
    )

    def filters(self) -> ledger.PaymentFilter:
        amount = ledger.parse_amount(self.amount, allow_zero=True) if self.amount else None
        return ledger.PaymentFilter(
            amount, _moment(self.since, "since"), _moment(self.until, "until"), self.counterpart
        )


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Invalid(f"{name}: must be an ISO 8601 time with a UTC offset") from None


class EventsQuery(BaseModel):
    after_id: Annotated[int, Field(ge=0, le=INT64_MAX), ASCII_DIGITS] = 0
    limit: Annotated[int, Field(ge=1, le=1000), ASCII_DIGITS] = 100


def _may_read_account(claims: Claims, user_id: str) -> None:
    if claims.role in READERS:
        return
    if claims.role == "user" and claims.sub == user_id:
        return
    raise Forbidden("you may only see your own account")


# --- payments ---------------------------------------------------------------------------


@api.route(
    "POST",
    "/api/payments",
    summary="Pay from the caller's account (user tokens)",
    body=PaymentIn,
    response=PaymentOut,
    status=202,
    errors=(403, 404, 409),
)
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


@api.route(
    "GET",
    "/api/payments/{transaction_id}",
    summary="A payment (payer, payee or staff)",
    response=PaymentOut,
    errors=(403, 404),
)
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


@api.route(
    "GET",
    "/api/payments",
    summary="Payments, newest first (users: their own), searchable by amount, time, counterpart",
    query=PaymentsQuery,
    response=PaymentList,
    errors=(403,),
)
async def list_payments(request: Request) -> JSONResponse:
    claims = caller(request)
    params = query(request, PaymentsQuery)
    limit, user_id = params.limit, params.user_id
    filters = params.filters()
    if claims.role == "user":
        if user_id is not None and user_id != claims.sub:
            raise Forbidden("you may only list your own payments")
        user_id = claims.sub
    elif claims.role not in READERS:
        raise Forbidden("not allowed")
    async with _service(request).pool.acquire() as conn:
        payments = await ledger.list_payments(conn, user_id, limit, filters)
    return JSONResponse({"payments": payments, "user_id": user_id})


# --- accounts ---------------------------------------------------------------------------


@api.route(
    "GET",
    "/api/accounts/{user_id}",
    summary="An account (its user or staff)",
    response=AccountOut,
    errors=(403, 404),
)
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
        skills = await ledger.agent_skills(conn, claims.sub)
    if not skills or "security" not in skills:
        raise Forbidden("only agents with the security skill may do this")


@api.route(
    "POST",
    "/api/accounts/{user_id}/unfreeze",
    summary="Unfreeze an account (agents with the security skill)",
    body=ReasonIn,
    response=AccountOut,
    errors=(403, 404, 409),
)
async def unfreeze_account(request: Request) -> JSONResponse:
    """409 `verification_required` unless the user passed a step-up verification lately."""
    claims = caller(request)
    await _security_agent(request, claims)
    body: ReasonIn = await json_body(request, ReasonIn)
    address = client_address_of(request)
    row = await _service(request).unfreeze(request.path_params["user_id"], body.reason,
                                           claims.sub, by_role=claims.role, address=address)  # fmt: skip
    return JSONResponse(ledger.account_view(row))


@api.route(
    "POST",
    "/api/accounts/{user_id}/freeze",
    summary="Freeze an account (agents with the security skill)",
    body=ReasonIn,
    response=AccountOut,
    errors=(403, 404, 409),
)
async def freeze_account(request: Request) -> JSONResponse:
    claims = caller(request)
    await _security_agent(request, claims)
    body: ReasonIn = await json_body(request, ReasonIn)
    row = await _service(request).freeze(request.path_params["user_id"], body.reason, claims.sub,
                                         by_role=claims.role)  # fmt: skip
    return JSONResponse(ledger.account_view(row))


@api.route(
    "GET",
    "/api/accounts/{user_id}/alerts",
    summary="A user's security alerts",
    query=LimitQuery,
    response=AlertList,
    errors=(403,),
)
async def account_alerts(request: Request) -> JSONResponse:
    claims = caller(request)
    user_id = request.path_params["user_id"]
    _may_read_account(claims, user_id)
    limit = query(request, LimitQuery).limit
    async with _service(request).pool.acquire() as conn:
        alerts = await outbox.alerts_for(conn, user_id, limit)
    return JSONResponse({"user_id": user_id, "alerts": alerts})


@api.route(
    "POST",
    "/api/devices/login",
    summary="Report a device login (user or service)",
    body=DeviceLoginIn,
    response=DeviceLoginOut,
    errors=(403,),
)
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


@api.route(
    "GET",
    "/api/events",
    summary="Outbox catch-up (service, supervisor)",
    query=EventsQuery,
    response=EventList,
    errors=(403,),
)
async def events(request: Request) -> JSONResponse:
    """Outbox catch-up for the hub: events with outbox_id > after_id, in commit order."""
    claims = caller(request)
    require_role(claims, "service", "supervisor")
    params = query(request, EventsQuery)
    async with _service(request).pool.acquire() as conn:
        items, next_after = await outbox.read_after(conn, params.after_id, params.limit)
    return JSONResponse({"events": items, "next_after_id": next_after})


@api.route("GET", "/api/maintenance", summary="The maintenance switch", response=MaintenanceOut)
async def get_maintenance(request: Request) -> JSONResponse:
    caller(request)
    service = _service(request)
    async with service.pool.acquire() as conn:
        state = await ledger.maintenance_state(conn)
    if service.config.maintenance:
        state = {**state, "active": True, "forced_by_settings": True}
    return JSONResponse(state)


@api.route(
    "POST",
    "/api/maintenance",
    summary="Turn maintenance on or off (supervisor, service)",
    body=MaintenanceIn,
    response=MaintenanceOut,
    errors=(403,),
)
async def set_maintenance(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor", "service")
    body: MaintenanceIn = await json_body(request, MaintenanceIn)
    service = _service(request)
    for moment in (body.starts_at, body.expected_end):
        if moment is not None and not 2000 <= moment.year <= 2200:
            raise Invalid("maintenance times must be between the years 2000 and 2200")
    if body.starts_at and body.expected_end and body.expected_end <= body.starts_at:
        raise Invalid("expected_end must come after starts_at")
    window = bool(body.starts_at or body.expected_end or body.functions)
    async with service.pool.acquire() as conn:
        state = await ledger.set_maintenance(
            conn, body.on, body.message, claims.sub, starts_at=body.starts_at,
            expected_end=body.expected_end, functions=list(body.functions or []),
        )  # fmt: skip
    if state["changed"] or (body.on and window):
        state["broadcast_id"] = await _announce(request, body.message, state)
    return JSONResponse(state)


async def _announce(request: Request, message: str | None, state: dict) -> int | None:
    """Tell every user: a system notice through the hub's broadcast. A window (start,
    expected end, what it pauses) rides in `data.window`, which each device reads in its own
    language and time zone; its end is announced too."""
    title, body, data = maintenance_notice(message, state)
    if not state["active"] and not state.get("expected_end") and not state.get("functions"):
        return None  # a plain switch turned off: as before, nothing to tell
    return await _service(request).announce(title, body, data)


def maintenance_notice(message: str | None, state: dict) -> tuple[str, str, dict]:
    """(title, body, data) of the notice for this state of the switch."""
    windowed = bool(state.get("starts_at") or state.get("expected_end") or state.get("functions"))
    if not state["active"]:
        return MAINTENANCE_OVER_TITLE, message or MAINTENANCE_OVER_BODY, {
            "maintenance": False, "window": ledger.window_of(state)}  # fmt: skip
    data: dict = {"maintenance": True}
    if windowed:
        data["window"] = ledger.window_of(state)
    return MAINTENANCE_TITLE, message or MAINTENANCE_BODY, data


routes = api.routes()


def client_address_of(request: Request) -> str:
    """The client's address for the audit log: the peer, or what a trusted proxy says
    (`trusted_proxies`, supporthub_core.addresses)."""
    s = request.app.state.settings
    return ClientAddresses(s.trusted_proxies, s.forwarded_header).of_scope(request.scope)
