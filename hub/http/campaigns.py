"""REST of campaigns: preview an audience, create, list, read (with counts), edit and
cancel before the start (supervisors and services), and a user's click or dismissal of
a card."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictStr
from starlette.requests import Request
from starlette.responses import JSONResponse

from hub.rules.campaigns import Audience, link_ok, local_send_at
from hub.services import campaigns as service
from hub.store import campaigns as campaign_store
from supporthub_core.audit import AuditEntry
from supporthub_core.auth import Claims, require_role
from supporthub_core.errors import Invalid, NotFound
from supporthub_core.http import caller, json_body, query
from supporthub_core.openapi import Api

if TYPE_CHECKING:
    from hub.composition import Hub

MAX_LIST = 200_000  # user ids in one uploaded list
BODY_CAP = 16 * 1024 * 1024  # a list of that many ids in JSON
Title = Annotated[StrictStr, Field(min_length=1, max_length=200)]
Body = Annotated[StrictStr, Field(min_length=1, max_length=4000)]
UserId = Annotated[StrictStr, Field(min_length=1, max_length=128)]


class Text(BaseModel):
    title: Title
    body: Body


class Texts(BaseModel):
    zh: Text
    en: Text


class AudienceIn(BaseModel):
    kind: Literal["all", "lang", "active", "alert", "list"]
    lang: Literal["zh", "en"] | None = None
    days: Annotated[int, Field(ge=1, le=365)] | None = None
    alert: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None

    def rule(self) -> Audience:
        return Audience(self.kind, self.lang, self.days, self.alert)


class PreviewIn(BaseModel):
    audience: AudienceIn
    user_ids: Annotated[list[UserId], Field(max_length=MAX_LIST)] | None = None


class CampaignIn(BaseModel):
    category: Literal["notice", "security", "maintenance"] = "notice"
    texts: Texts
    link: Annotated[StrictStr, Field(min_length=1, max_length=2000)] | None = None
    send_at: datetime | None = None  # ISO 8601; without an offset, `tz` says whose clock
    tz: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None
    audience: AudienceIn
    user_ids: Annotated[list[UserId], Field(max_length=MAX_LIST)] | None = None


class CampaignEdit(BaseModel):
    category: Literal["notice", "security", "maintenance"] | None = None
    texts: Texts | None = None
    link: Annotated[StrictStr, Field(min_length=1, max_length=2000)] | None = None
    send_at: datetime | None = None
    tz: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None
    audience: AudienceIn | None = None
    user_ids: Annotated[list[UserId], Field(max_length=MAX_LIST)] | None = None


class MarkIn(BaseModel):
    action: Literal["clicked", "dismissed"]


class ListQuery(BaseModel):
    limit: Annotated[int, Field(ge=1, le=500)] = 50


class AudienceSize(BaseModel):
    size: int


class Counts(BaseModel):
    delivered: int
    read: int
    clicked: int
    dismissed: int


class CampaignOut(BaseModel):
    id: int
    category: str
    texts: dict[str, Any]
    link: str | None
    audience: dict[str, Any]
    send_at: str
    status: Literal["scheduled", "sending", "sent", "cancelled"]
    delivered: int
    created_by: str
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    counts: Counts | None = None


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]


class MarkOut(BaseModel):
    campaign_id: int
    action: str


api = Api("campaigns")


def _actor(request: Request, claims: Claims) -> AuditEntry:
    hub: Hub = request.app.state.hub
    return AuditEntry(
        claims.role, claims.sub, "campaign", address=hub.addresses.of_scope(dict(request.scope))
    )


def _campaign_id(request: Request) -> int:
    raw = request.path_params["campaign_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise NotFound("no such campaign")
    return int(raw)


def _send_at(when: datetime | None, tz: str | None) -> datetime:
    if when is None:
        return datetime.now(UTC)
    try:
        return local_send_at(when, tz)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc


def _link(link: str | None) -> str | None:
    if link is not None and not link_ok(link):
        raise Invalid("link is a help article's slug or an https URL")
    return link


@api.route(
    "POST",
    "/api/campaigns/preview",
    summary="How many users an audience has now (supervisor, service)",
    body=PreviewIn,
    response=AudienceSize,
    errors=(403,),
)
async def preview(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor", "service")
    body = await json_body(request, PreviewIn)
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        size = await service.preview(db, body.audience.rule(), body.user_ids or [])
    return JSONResponse({"size": size})


@api.route(
    "POST",
    "/api/campaigns",
    summary="Schedule a notice to an audience, now or later (supervisor, service)",
    body=CampaignIn,
    response=CampaignOut,
    status=201,
    errors=(403,),
)
async def create(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor", "service")
    body = await json_body(request, CampaignIn)
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        row = await service.create(
            db, _actor(request, claims), category=body.category,
            texts=body.texts.model_dump(), link=_link(body.link),
            audience=body.audience.rule(), send_at=_send_at(body.send_at, body.tz),
            user_ids=list(dict.fromkeys(body.user_ids or [])),
        )  # fmt: skip
    return JSONResponse(row, status_code=201)


@api.route(
    "GET",
    "/api/campaigns",
    summary="Campaigns, newest first, with their counts (supervisor, service)",
    query=ListQuery,
    response=CampaignList,
    errors=(403,),
)
async def list_campaigns(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor", "service")
    params = query(request, ListQuery)
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        return JSONResponse({"campaigns": await campaign_store.recent(db, params.limit)})


@api.route(
    "GET",
    "/api/campaigns/{campaign_id}",
    summary="A campaign with its delivered, read and clicked counts (supervisor, service)",
    response=CampaignOut,
    errors=(403, 404),
)
async def get_campaign(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor", "service")
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        row = await campaign_store.get(db, _campaign_id(request))
    if row is None:
        raise NotFound("no such campaign")
    return JSONResponse(row)


@api.route(
    "PATCH",
    "/api/campaigns/{campaign_id}",
    summary="Change a scheduled campaign before it starts (supervisor, service)",
    body=CampaignEdit,
    response=CampaignOut,
    errors=(403, 404, 409),
)
async def edit(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor", "service")
    cid = _campaign_id(request)
    body = await json_body(request, CampaignEdit)
    changes: dict[str, Any] = {}
    if body.category is not None:
        changes["category"] = body.category
    if body.texts is not None:
        changes["texts"] = body.texts.model_dump()
    if body.link is not None:
        changes["link"] = _link(body.link)
    if body.send_at is not None:
        changes["send_at"] = _send_at(body.send_at, body.tz)
    if body.audience is not None:
        changes["audience"] = body.audience.rule()
    user_ids = None if body.user_ids is None else list(dict.fromkeys(body.user_ids))
    if not changes and user_ids is None:
        raise Invalid("nothing to change")
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        row = await service.edit(db, _actor(request, claims), cid, changes, user_ids)
    return JSONResponse(row)


@api.route(
    "POST",
    "/api/campaigns/{campaign_id}/cancel",
    summary="Cancel a scheduled campaign before it starts: nothing is sent (supervisor, service)",
    response=CampaignOut,
    errors=(403, 404, 409),
)
async def cancel(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor", "service")
    cid = _campaign_id(request)
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        return JSONResponse(await service.cancel(db, _actor(request, claims), cid))


@api.route(
    "POST",
    "/api/campaigns/{campaign_id}/marks",
    summary="The user opened the card's link or dismissed the card (users, once each)",
    body=MarkIn,
    response=MarkOut,
    errors=(403, 404),
)
async def mark(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "user")
    cid = _campaign_id(request)
    body = await json_body(request, MarkIn)
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        if not await campaign_store.mark(db, cid, claims.sub, body.action):
            raise NotFound("no such campaign for this user")
    return JSONResponse({"campaign_id": cid, "action": body.action})
