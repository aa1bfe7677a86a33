"""REST routes of the hub: agent login, conversations, stats, broadcasts, the audit log."""

from __future__ import annotations

import csv
import io
import secrets
from typing import TYPE_CHECKING, Annotated, Any, Literal

import asyncpg
from pydantic import BaseModel, Field, StrictStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.rules import access
from hub.rules import alarms as alarm_rules
from hub.rules.mentions import mentions
from hub.services.agent_access import DISABLED_MESSAGE
from hub.services.feedback import tag_answer, tag_entry
from hub.services.sms import DevOutbox
from hub.store import accounts, notes, service_levels
from hub.store import agents as agent_store
from hub.store import conversations as conv_store
from hub.store import feedback as feedback_store
from hub.store import macros as macro_store
from hub.store import search as search_store
from hub.store import stats as stats_mod
from hub.ws.protocol import FeedbackNote
from supporthub_core.audit import AuditEntry
from supporthub_core.auth import issue_token, require_role
from supporthub_core.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    Unauthorized,
)
from supporthub_core.http import caller, json_body, query
from supporthub_core.openapi import Api
from supporthub_core.validation import ASCII_DIGITS

if TYPE_CHECKING:
    from hub.composition import Hub

Status = Literal["bot", "queued", "assigned", "resolved", "closed", "open"]
TOKEN_TTL = 12 * 3600
AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT = 100, 1000


class Login(BaseModel):
    username: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    password: Annotated[StrictStr, Field(min_length=1, max_length=256)]


class Broadcast(BaseModel):
    title: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    body: Annotated[StrictStr, Field(min_length=1, max_length=4000)]
    data: dict | None = None


# --- responses (documented in /openapi.json) -------------------------------------------


class AgentInfo(BaseModel):
    id: str
    name: str
    role: Literal["agent", "supervisor"]
    skills: list[str]
    capacity: int


class LoginOut(BaseModel):
    token: str = Field(description="Bearer token for the console and the socket (12 h).")
    agent: AgentInfo


class Party(BaseModel):
    id: str
    name: str | None


class Participants(BaseModel):
    user_id: str
    agents: list[str]


class ConversationSummary(BaseModel):
    conversation_id: str
    user_id: str
    topic: str
    priority: Literal["urgent", "high", "normal"]
    status: Literal["bot", "queued", "assigned", "resolved", "closed"]
    agent_id: str | None
    last_seq: int
    created_at: str
    lang: str


class ConversationItem(ConversationSummary):
    user: Party
    agent: Party | None
    rating: int | None


class ConversationList(BaseModel):
    conversations: list[ConversationItem]


class Sender(BaseModel):
    role: Literal["user", "agent", "bot", "system"]
    id: str
    name: str


class MessageAttachment(BaseModel):
    attachment_id: str
    content_type: str
    size: int
    name: str
    url: str = Field(description="Signed, short-lived; relative to the hub.")
    thumbnail_url: str | None = None
    width: int | None = None
    height: int | None = None


class SystemInfo(BaseModel):
    kind: str = Field(description="What happened: transferred, requeued, resolved, idle, ...")
    params: dict = Field(description="Its details (who, to whom, the outcome...).")


class MessageOut(BaseModel):
    type: Literal["message"]
    conversation_id: str
    seq: int
    message_id: str
    client_msg_id: str | None = None
    sender: Sender
    text: str
    ts: str
    attachments: list[MessageAttachment] | None = None
    system: SystemInfo | None = Field(
        None, description="A system message's machine-readable kind and params."
    )


class NoteOut(BaseModel):
    note_id: str
    conversation_id: str
    agent: Party
    text: str
    ts: str


class FeedbackTagOut(BaseModel):
    feedback_id: str
    message_id: str | None = Field(description="None: the chat as a whole.")
    tagged_by: str | None
    note: str | None = Field(description="The tagging agent's own words.")


class ConversationDetail(ConversationSummary):
    user: Party
    agent: Party | None
    participants: Participants
    rating: int | None
    rating_comment: str | None
    alert: dict | None
    closed_by: str | None
    resolved_at: str | None
    closed_at: str | None
    user_read_seq: int
    agent_read_seq: int
    messages: list[MessageOut]
    notes: list[NoteOut] | None = Field(None, description="Staff only: private notes.")
    feedback: list[FeedbackTagOut] | None = Field(
        None, description="Staff only: its messages (and the chat) tagged as feedback."
    )


class AgentRow(BaseModel):
    id: str
    name: str
    skills: list[str]
    capacity: int
    status: Literal["online", "away", "offline"]
    active: int
    supervisor: bool
    security_backup: bool = Field(
        False, description="Takes urgent security chats when no security agent or supervisor can."
    )
    disabled: bool


class AgentList(BaseModel):
    agents: list[AgentRow]


class QueueStats(BaseModel):
    total: int
    by_priority: dict[str, int]
    oldest_wait_s: float


class AgentStats(BaseModel):
    online: int
    away: int
    busy: int = Field(description="Online agents at full load (no room for another chat).")
    serving: int = Field(description="Online agents with at least one chat.")


class Average(BaseModel):
    avg: float | None


class WaitStats(Average):
    p90: float | None
    max: float | None = None


class Resolution(Average):
    count: int = Field(description="Chats a person handled that ended in the window.")


class Csat(Average):
    count: int


class Share(BaseModel):
    met: int
    counted: int
    share: float | None


class SlaStats(Share):
    """SLA met in the window (against `reply_s`), and the service levels per priority:
    targets, chats at risk or breached now, breaches and what was done about them."""

    reply_s: float = Field(description="The target: first answer within this of queueing.")
    window: str | None = None
    targets: dict[str, Any] | None = Field(
        None, description="first_response_s and resolution_s per priority."
    )
    at_risk: int | None = Field(None, description="Open chats at risk of breaching a target now.")
    breached_open: int | None = Field(None, description="Open chats past a target now.")
    breached: int | None = Field(None, description="Chats that breached a target in the window.")
    breached_by_kind: dict[str, int] | None = None
    rerouted: int | None = Field(None, description="Breached chats moved to another free agent.")
    escalated: int | None = Field(None, description="Breached chats escalated to supervisors.")
    chats: list[dict[str, Any]] | None = Field(
        None,
        description="Open chats at risk or breached, worst first: {conversation_id, topic,"
        " priority, status, agent_id, state, kind, action, enqueued_at}.",
    )


class QueueSample(BaseModel):
    ts: str
    queued: int
    avg_wait_s: float


class HourStats(BaseModel):
    hour: str
    queued: int = Field(description="Chats that entered the queue in this hour.")
    wait_avg_s: float | None
    wait_max_s: float | None
    queue_max: int = Field(description="The longest queue sampled in this hour.")


class TagCount(BaseModel):
    tag: str
    count: int


class Outcomes(BaseModel):
    solved: int
    follow_up: int
    duplicate: int
    spam: int


class TopicStats(BaseModel):
    topic: str
    conversations: int
    csat: Csat
    waiting_time_s: Average


class BotStats(BaseModel):
    involved: int = Field(description="Chats in which the help bot answered.")
    confirmed: int = Field(description="The customer said it helped (and no hand-off).")
    assumed: int = Field(
        description="Answered, then no hand-off and no new question: ended, or quiet for window_s."
    )
    handed_off: int
    unanswered: int = Field(description="Ended or quiet without an answer of the bot.")
    open: int
    window_s: float


class AgentFigures(BaseModel):
    id: str
    name: str
    status: Literal["online", "away", "offline"]
    supervisor: bool
    active: int
    capacity: int
    handled: int = Field(description="Chats this agent ended in the window.")
    first_response_s: float | None
    handle_time_s: float | None
    csat: Csat
    sla_met: Share


class Thresholds(BaseModel):
    wait_warn_s: float
    wait_alarm_s: float
    reply_warn_s: float
    reply_alarm_s: float


class WaitingChat(BaseModel):
    conversation_id: str
    priority: Literal["urgent", "high", "normal"]
    status: Literal["queued", "assigned"]
    waiting_s: float
    unanswered_s: float | None
    wait_level: Literal["ok", "warn", "alarm"]
    reply_level: Literal["ok", "warn", "alarm"]
    breach_soon: bool = Field(
        description="At risk or breached on a service level (hub.rules.sla), first response"
        " or resolution; the levels above only colour the row."
    )
    sla_state: Literal["ok", "at_risk", "breached"] | None = None
    sla_kind: Literal["first_response", "resolution"] | None = None


class AlarmOut(BaseModel):
    kind: Literal["no_agents", "urgent_unanswered", "sla_breach_soon"]
    conversations: list[str]
    waiting: int


class QueueEtaStats(BaseModel):
    window: str
    count: int = Field(description="Chats told a wait and since assigned, in the window.")
    mean_abs_error_s: float | None = Field(description="Mean |actual wait - told wait|.")
    bias_s: float | None = Field(description="Mean (actual - told): > 0, we promised too little.")
    messages_left: int = Field(description="Queued chats whose customer left a message.")


class Stats(BaseModel):
    window: str
    queue: QueueStats
    agents: AgentStats
    waiting_time_s: WaitStats
    first_response_s: Average
    handle_time_s: Average
    resolution_s: Resolution
    csat: Csat
    sla: SlaStats
    conversations: int
    outcomes: Outcomes = Field(description="Chats resolved in the window, by outcome.")
    top_tags: list[TagCount] = Field(description="The most used resolve tags in the window.")
    topics: list[TopicStats] = Field(description="Volume, CSAT and wait by topic.")
    bot: BotStats
    per_agent: list[AgentFigures]
    thresholds: Thresholds
    waiting: list[WaitingChat] = Field(description="Chats waiting for a person now, flagged.")
    alarms: list[AlarmOut]
    history: list[QueueSample]
    by_hour: list[HourStats] = Field(description="The last 24 hours, oldest first.")
    queue_eta: QueueEtaStats | None = Field(None, description="How right the told waits were.")


class AgentAccessIn(BaseModel):
    reason: Annotated[StrictStr, Field(max_length=500)] | None = Field(
        None, description="Why, for the audit log. The body may be empty."
    )


class AgentAccessOut(BaseModel):
    agent_id: str
    disabled: bool
    requeued: list[str] = Field(description="Chats put back in the queue by this change.")


class BroadcastOut(BaseModel):
    broadcast_id: int
    status: Literal["accepted"]


class DevToken(BaseModel):
    token: str
    user_id: str
    name: str


# --- requests ---------------------------------------------------------------------------


class SearchQuery(BaseModel):
    q: Annotated[str, Field(min_length=1, max_length=200)]
    limit: Annotated[int, Field(ge=1, le=100), ASCII_DIGITS] = 30


class SearchHit(BaseModel):
    conversation_id: str
    user: Party
    status: str
    topic: str
    created_at: str
    agent_id: str | None = None
    matched: Literal["message", "customer", "transaction"]
    snippet: str | None = None
    highlight: list[int] | None = None  # [start, end) of the match in `snippet`
    seq: int | None = None


class SearchResults(BaseModel):
    results: list[SearchHit]


class ConversationsQuery(BaseModel):
    status: Status | None = None
    limit: Annotated[int, Field(ge=1, le=500), ASCII_DIGITS] = 50
    user_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class AuditQuery(BaseModel):
    subject_user_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    actor_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    action: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    limit: Annotated[int, Field(ge=1, le=2**63 - 1), ASCII_DIGITS] = (
        AUDIT_DEFAULT_LIMIT  # above AUDIT_MAX_LIMIT: capped
    )


class AuditActor(BaseModel):
    role: str
    id: str


class AuditEntryOut(BaseModel):
    ts: str
    actor: AuditActor
    action: str
    subject_user_id: str | None = None
    conversation_id: str | None = None
    details: dict


class OtpQuery(BaseModel):
    user_id: Annotated[str, Field(min_length=1, max_length=128)]


class OtpOut(BaseModel):
    user_id: str
    challenge_id: str
    code: str
    expires_at: str


class DevTokenQuery(BaseModel):
    user: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class DevAccountIn(BaseModel):
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    balance: Annotated[StrictStr, Field(min_length=1, max_length=20, description="e.g. 100.00")]


class DevAccountOut(BaseModel):
    user_id: str
    name: str
    balance: str
    currency: str
    frozen: bool


api = Api("hub")
dev_api = Api("dev")


@api.route(
    "POST",
    "/api/agents/login",
    summary="Agent login",
    body=Login,
    response=LoginOut,
    auth=False,
    errors=(401, 403, 429),
)
async def login(request: Request) -> JSONResponse:
    body = await json_body(request, Login)
    hub: Hub = request.app.state.hub
    address = _address(request)
    limits, key = hub.limits, hub.addresses.key(address)
    # every attempt is counted before the password is checked (hub.limits): guesses in
    # parallel, on any node, cannot slip past; per address too, for any username, so
    # that trying many usernames from one place is slowed as well
    attempt = f"{body.username}\0{key}"
    if not (await limits.hit(limits.login_pair, attempt)
            and await limits.hit(limits.login_address, key)):  # fmt: skip
        raise RateLimited("too many failed logins; try again later")
    async with hub.store.acquire() as db:
        agent = await agent_store.authenticate(db, body.username, body.password)
    if agent is None:
        await hub.audit.record(AuditEntry("anonymous", body.username, "agent.login_failed",
                                          address=address))  # fmt: skip
        raise Unauthorized("wrong username or password")
    if agent["disabled"]:
        await hub.audit.record(AuditEntry("anonymous", body.username, "agent.login_failed",
                                          details={"reason": "disabled"}, address=address))  # fmt: skip
        raise Forbidden(DISABLED_MESSAGE)
    await limits.clear(limits.login_pair, attempt)  # the agent's own typos are forgiven
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


@api.route(
    "GET",
    "/api/search",
    summary="Search conversations by text, customer id or name, or transaction id (staff)",
    query=SearchQuery,
    response=SearchResults,
    errors=(403,),
)
async def search(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "agent", "supervisor")
    params = query(request, SearchQuery)
    text = params.q.strip()
    if not text:
        raise Invalid("q: give something to search for")
    hub: Hub = request.app.state.hub
    agent_id = None if claims.role == "supervisor" else claims.sub
    async with hub.store.acquire() as db:
        rows = await search_store.conversations(db, text, agent_id=agent_id, limit=params.limit)
    return JSONResponse({"results": [_search_hit(row, text) for row in rows]})


def _search_hit(row: asyncpg.Record, query_text: str) -> dict:
    hit = {
        "conversation_id": row["conversation_id"],
        "user": {"id": row["user_id"], "name": row["user_name"] or row["user_id"]},
        "status": row["status"],
        "topic": row["topic"],
        "created_at": row["created_at"].isoformat(),
        "agent_id": row["agent_id"],
        "matched": row["matched"],
        "seq": row["seq"],
    }
    if row["text"] is not None:
        hit["snippet"], hit["highlight"] = snippet_around(row["text"], query_text)
    return hit


def snippet_around(text: str, query_text: str, width: int = 60) -> tuple[str, list[int] | None]:
    """Up to `width` characters on each side of the first match (case-insensitive), and
    where the match sits in that snippet."""
    at = text.lower().find(query_text.lower())
    if at < 0:
        return text[: 2 * width], None
    start = max(0, at - width)
    snippet = text[start : at + len(query_text) + width]
    return snippet, [at - start, at - start + len(query_text)]


@api.route(
    "GET",
    "/api/conversations/{conversation_id}",
    summary="A conversation with its messages (participants and supervisors)",
    response=ConversationDetail,
    errors=(403, 404),
)
async def get_conversation(request: Request) -> JSONResponse:
    claims = caller(request)
    cid = request.path_params["conversation_id"]
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        conv = await conv_store.get(db, cid)
        past_agents = await conv_store.agent_ids(db, cid) if conv is not None else []
        serving = (
            claims.role == "agent"
            and conv is not None
            and await conv_store.is_serving(db, claims.sub, conv["user_id"])
        )
        mentioned = False
        if claims.role == "agent" and conv is not None and not serving:
            if claims.sub != conv["agent_id"] and claims.sub not in past_agents:
                mentioned = await _mentioned_in(db, cid, claims.sub)
        access.ensure(
            access.may_read(
                claims.role, claims.sub, conv, past_agents,
                serving_customer=serving, mentioned=mentioned,
            )
        )  # fmt: skip
        assert conv is not None  # may_read refuses a conversation that does not exist
        body = await conv_store.detail(db, conv)
        messages = await conv_store.messages_after(db, cid, 0, 10_000)
        body["messages"] = hub.chat.links.frames(messages)
        if claims.is_staff:  # private notes and feedback tags never reach a user
            body["notes"] = await notes.listing(db, cid)
            body["feedback"] = await feedback_store.tagged_in(db, cid)
    return JSONResponse(body)


async def _mentioned_in(db: asyncpg.Connection, cid: str, agent_id: str) -> bool:
    """Whether a note of the conversation @mentions that agent (who may then read it)."""
    named = {name for note in await notes.listing(db, cid) for name in mentions(note["text"])}
    return agent_id in await agent_store.usernames_to_ids(db, sorted(named))


@api.route(
    "GET",
    "/api/conversations",
    summary="Conversations (users: their own)",
    query=ConversationsQuery,
    response=ConversationList,
    errors=(403,),
)
async def list_conversations(request: Request) -> JSONResponse:
    claims = caller(request)
    params = query(request, ConversationsQuery)
    status, limit, user_id = params.status, params.limit, params.user_id
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        if claims.role == "user":
            rows = await conv_store.listing(db, status=status, limit=limit, user_id=claims.sub)
        elif claims.role == "agent":
            # an agent serving a customer sees that customer's past chats, whoever had them
            serving = user_id is not None and await conv_store.is_serving(db, claims.sub, user_id)
            agent_id = None if serving else claims.sub
            rows = await conv_store.listing(
                db, status=status, limit=limit, agent_id=agent_id, user_id=user_id
            )
        elif claims.role == "supervisor":
            rows = await conv_store.listing(db, status=status, limit=limit, user_id=user_id)
        else:
            raise Forbidden("not allowed")
    return JSONResponse({"conversations": rows})


@api.route(
    "GET", "/api/agents", summary="Agents and their load (staff)", response=AgentList, errors=(403,)
)
async def list_agents(request: Request) -> JSONResponse:
    claims = caller(request)
    if not claims.is_staff:
        raise Forbidden("agents only")
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        return JSONResponse({"agents": await agent_store.listing(db)})


@api.route(
    "POST",
    "/api/agents/{agent_id}/disable",
    summary="Disable an agent: its sockets close on every node, its chats are requeued,"
    " it cannot sign in (supervisors)",
    body=AgentAccessIn,
    response=AgentAccessOut,
    errors=(403, 404, 409),
)
async def disable_agent(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor")
    body = await json_body(request, AgentAccessIn)
    agent_id = request.path_params["agent_id"]
    if agent_id == claims.sub:
        raise Conflict("a supervisor cannot disable themselves")
    hub: Hub = request.app.state.hub
    actor = AuditEntry(claims.role, claims.sub, "agent.disable", address=_address(request))
    return JSONResponse(await hub.agent_access.disable(actor, agent_id, body.reason))


@api.route(
    "POST",
    "/api/agents/{agent_id}/enable",
    summary="Enable a disabled agent again (supervisors)",
    body=AgentAccessIn,
    response=AgentAccessOut,
    errors=(403, 404),
)
async def enable_agent(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor")
    body = await json_body(request, AgentAccessIn)
    hub: Hub = request.app.state.hub
    actor = AuditEntry(claims.role, claims.sub, "agent.enable", address=_address(request))
    agent_id = request.path_params["agent_id"]
    return JSONResponse(await hub.agent_access.enable(actor, agent_id, body.reason))


@api.route(
    "GET",
    "/api/stats",
    summary="Queue, agents, waiting and resolution times, CSAT",
    response=Stats,
    errors=(403,),
)
async def stats(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor")
    hub: Hub = request.app.state.hub
    settings = hub.settings
    async with hub.store.acquire() as db:
        figures = await stats_mod.compute(
            db,
            thresholds(hub),
            sla_reply_s=settings.supervisor_sla_reply_s,
            bot_window_s=settings.bot_assumed_resolved_s,
            targets=hub.chat.sla_targets,
        )
        levels = await service_levels.section(db, hub.chat.sla_targets)
    figures["queue_eta"] = levels["queue_eta"]
    figures["sla"] = {**figures["sla"], **levels["sla"]}
    return JSONResponse(figures)


def thresholds(hub: Hub) -> alarm_rules.Thresholds:
    s = hub.settings
    return alarm_rules.Thresholds(
        s.supervisor_wait_warn_s,
        s.supervisor_wait_alarm_s,
        s.supervisor_reply_warn_s,
        s.supervisor_reply_alarm_s,
    )


@api.route(
    "GET",
    "/api/stats/export.csv",
    summary="Every chat of the day with its times, as CSV (supervisors)",
    media=("text/csv",),
    errors=(403,),
)
async def stats_export(request: Request) -> Response:
    claims = caller(request)
    require_role(claims, "supervisor")
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        rows = await stats_mod.export_rows(
            db,
            sla_reply_s=hub.settings.supervisor_sla_reply_s,
            bot_window_s=hub.settings.bot_assumed_resolved_s,
        )
    await hub.audit.record(
        AuditEntry(claims.role, claims.sub, "stats.export", details={"rows": len(rows)},
                   address=_address(request))
    )  # fmt: skip
    return csv_response(stats_mod.EXPORT_COLUMNS, rows, "supporthub-stats.csv")


def csv_response(columns: tuple[str, ...], rows: list[dict], filename: str) -> Response:
    """RFC 4180 CSV; cells that a spreadsheet would run as a formula are quoted with '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


FeedbackKind = Literal["suggestion", "complaint", "rating", "tagged"]


class FeedbackQuery(BaseModel):
    days: Annotated[int, Field(ge=1, le=366), ASCII_DIGITS] = 7
    kind: FeedbackKind | None = None
    theme: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000), ASCII_DIGITS] = 200


class FeedbackItem(BaseModel):
    feedback_id: str
    created_at: str
    kind: FeedbackKind
    source: Literal["bot", "agent", "rating"]
    theme: str
    lang: str | None
    score: int | None = Field(description="A rating's score.")
    topic: str | None
    conversation_id: str | None
    message_id: str | None
    user_id: str | None
    tagged_by: str | None
    text: str
    delivered: bool = Field(description="The webhook's receiver took it.")
    note: str | None = Field(description="A tagging agent's own words (also in `text`).")


class FeedbackTheme(BaseModel):
    theme: str
    count: int
    suggestions: int
    complaints: int
    example: str = Field(description="The newest item of the theme.")


class FeedbackList(BaseModel):
    days: int
    items: list[FeedbackItem] = Field(description="Newest first.")
    themes: list[FeedbackTheme] = Field(description="The period's themes, most items first.")


@api.route(
    "GET",
    "/api/feedback",
    summary="Suggestions, complaints, tagged messages and rating comments (supervisors)",
    query=FeedbackQuery,
    response=FeedbackList,
    errors=(403,),
)
async def feedback_list(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor")
    params = query(request, FeedbackQuery)
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        items = await feedback_store.recent(
            db, since_days=params.days, kind=params.kind, theme=params.theme, limit=params.limit
        )
        themes = await feedback_store.themes(db, since_days=params.days)
    return JSONResponse({"days": params.days, "items": items, "themes": themes})


class FeedbackTagIn(BaseModel):
    message_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = Field(
        None, description="A message of the chat; absent: the chat as a whole."
    )
    note: FeedbackNote | None = Field(
        None, description="The agent's own words: 1 to 2,000 characters, not blank."
    )


class FeedbackTagged(BaseModel):
    feedback_id: str
    kind: FeedbackKind
    theme: str
    new: bool = Field(description="False: tagged before; this is the item stored first.")
    message_id: str | None
    tagged_by: str | None = Field(description="Who tagged it first.")
    note: str | None


@api.route(
    "POST",
    "/api/conversations/{conversation_id}/feedback",
    summary="Tag a chat, or one of its messages, as feedback for the product team (staff)",
    body=FeedbackTagIn,
    response=FeedbackTagged,
    errors=(403, 404),
)
async def tag_feedback(request: Request) -> JSONResponse:
    claims = caller(request)
    body = await json_body(request, FeedbackTagIn)
    cid = request.path_params["conversation_id"]
    hub: Hub = request.app.state.hub
    item, new = await hub.feedback.tag(claims, cid, body.message_id, body.note)
    await hub.audit.record(tag_entry(claims, cid, item, new))
    return JSONResponse(tag_answer(item, new))


@api.route(
    "GET",
    "/api/feedback/export.csv",
    summary="The feedback of a period as CSV (supervisors)",
    query=FeedbackQuery,
    media=("text/csv",),
    errors=(403,),
)
async def feedback_export(request: Request) -> Response:
    claims = caller(request)
    require_role(claims, "supervisor")
    params = query(request, FeedbackQuery)
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        items = await feedback_store.recent(
            db, since_days=params.days, kind=params.kind, theme=params.theme, limit=params.limit
        )
    await hub.audit.record(
        AuditEntry(claims.role, claims.sub, "feedback.export",
                   details={"rows": len(items), "days": params.days}, address=_address(request))
    )  # fmt: skip
    return csv_response(feedback_store.COLUMNS, items, "supporthub-feedback.csv")


@api.route(
    "POST",
    "/api/broadcasts",
    summary="A system notice to every user",
    body=Broadcast,
    response=BroadcastOut,
    status=202,
    errors=(403,),
)
async def broadcast(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "supervisor", "service")
    body = await json_body(request, Broadcast)
    hub: Hub = request.app.state.hub
    bid = await send_broadcast(hub, body.title, body.body, body.data or {})
    return JSONResponse({"broadcast_id": bid, "status": "accepted"}, status_code=202)


@api.route(
    "GET",
    "/api/audit",
    summary="The audit log, newest first (supervisors)",
    query=AuditQuery,
    response=list[AuditEntryOut],
    errors=(403,),
)
async def audit_log(request: Request) -> JSONResponse:
    """Supervisors: the audit log, newest first, by subject, actor and action."""
    claims = caller(request)
    require_role(claims, "supervisor")
    params = query(request, AuditQuery)
    hub: Hub = request.app.state.hub
    entries = await hub.audit.recent(
        subject_user_id=params.subject_user_id,
        actor_id=params.actor_id,
        action=params.action,
        limit=min(params.limit, AUDIT_MAX_LIMIT),
    )
    return JSONResponse(entries)


MacroTopic = Literal["account", "payment", "arrival", "security", "technical", "feedback", "other"]
MacroBody = Annotated[StrictStr, Field(max_length=4000)]


class MacroIn(BaseModel):
    title: Annotated[StrictStr, Field(min_length=1, max_length=120)]
    body_zh: MacroBody = ""
    body_en: MacroBody = ""
    topics: Annotated[list[MacroTopic], Field(max_length=7)] = []
    scope: Literal["personal", "team"] = "personal"


class MacroOut(BaseModel):
    id: str
    scope: Literal["personal", "team"]
    owner_id: str
    title: str
    body_zh: str
    body_en: str
    topics: list[str]
    updated_at: str


class MacroList(BaseModel):
    macros: list[MacroOut]


def _macro_fields(body: MacroIn) -> dict:
    if not (body.body_zh.strip() or body.body_en.strip()):
        raise Invalid("give body_zh or body_en")
    return {"title": body.title.strip(), "body_zh": body.body_zh, "body_en": body.body_en,
            "topics": list(dict.fromkeys(body.topics))}  # fmt: skip


def _may_edit_macro(claims, macro) -> bool:
    """Personal macros: their owner; team macros: supervisors."""
    if macro["scope"] == "team":
        return claims.role == "supervisor"
    return macro["owner_id"] == claims.sub


@api.route(
    "GET",
    "/api/macros",
    summary="Macros the agent may use: the team's and their own (staff)",
    response=MacroList,
    errors=(403,),
)
async def list_macros(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "agent", "supervisor")
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        return JSONResponse({"macros": await macro_store.visible_to(db, claims.sub)})


@api.route(
    "POST",
    "/api/macros",
    summary="Create a macro: personal (any agent) or team (supervisors)",
    body=MacroIn,
    response=MacroOut,
    status=201,
    errors=(403,),
)
async def create_macro(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "agent", "supervisor")
    body = await json_body(request, MacroIn)
    if body.scope == "team" and claims.role != "supervisor":
        raise Forbidden("only supervisors keep team macros")
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        if not await agent_store.exists(db, claims.sub):
            raise Forbidden("no such agent")
        macro = await macro_store.create(db, body.scope, claims.sub, _macro_fields(body))
    return JSONResponse(macro, status_code=201)


@api.route(
    "PUT",
    "/api/macros/{macro_id}",
    summary="Change a macro (its owner; team macros: supervisors)",
    body=MacroIn,
    response=MacroOut,
    errors=(403, 404),
)
async def update_macro(request: Request) -> JSONResponse:
    claims = caller(request)
    require_role(claims, "agent", "supervisor")
    body = await json_body(request, MacroIn)
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        macro = await _editable_macro(db, claims, request.path_params["macro_id"])
        if body.scope != macro["scope"]:
            raise Invalid("a macro's scope cannot change")
        return JSONResponse(await macro_store.update(db, macro["id"], _macro_fields(body)))


@api.route(
    "DELETE",
    "/api/macros/{macro_id}",
    summary="Delete a macro (its owner; team macros: supervisors)",
    status=204,
    errors=(403, 404),
)
async def delete_macro(request: Request) -> Response:
    claims = caller(request)
    require_role(claims, "agent", "supervisor")
    hub: Hub = request.app.state.hub
    async with hub.store.acquire() as db:
        macro = await _editable_macro(db, claims, request.path_params["macro_id"])
        await macro_store.delete(db, macro["id"])
    return Response(status_code=204)


async def _editable_macro(db, claims, macro_id: str):
    macro = await macro_store.get(db, macro_id)
    if macro is None or (macro["scope"] == "personal" and macro["owner_id"] != claims.sub):
        raise NotFound("no such macro")  # someone else's personal macro is not shown at all
    if not _may_edit_macro(claims, macro):
        raise Forbidden("only supervisors change team macros")
    return macro


def _address(request: Request) -> str:
    """The client's address: the peer, or what a trusted proxy says (ClientAddresses)."""
    return request.app.state.hub.addresses.of_scope(request.scope)


async def send_broadcast(hub: Hub, title: str, body: str, data: dict) -> int:
    """The notice's id once its row is stored; its chunks go on in the hub's background (a
    notice to a million users is a thousand of them), finished by the sweeper if this
    node stops first."""
    sender = hub.notice_sender()
    broadcast_id = await sender.begin(title, body, data)
    hub.tasks.spawn(sender.finish(broadcast_id), f"broadcast-{broadcast_id}")
    return broadcast_id


@dev_api.route(
    "GET",
    "/api/dev/token",
    summary="A demo user token (dev only)",
    query=DevTokenQuery,
    response=DevToken,
    auth=False,
)
@dev_api.route(
    "POST",
    "/api/dev/token",
    summary="A demo user token (dev only)",
    query=DevTokenQuery,
    response=DevToken,
    auth=False,
)
async def dev_token(request: Request) -> JSONResponse:
    """Dev only: a demo user token for the web chat (absent from `serve`)."""
    params = query(request, DevTokenQuery)
    user_id = params.user or f"demo-{secrets.token_hex(3)}"
    name = params.name or await _account_name(request, user_id) or user_id
    token = issue_token(request.app.state.secret, user_id, "user", name=name, ttl=TOKEN_TTL)
    return JSONResponse({"token": token, "user_id": user_id, "name": name})


@dev_api.route(
    "GET",
    "/api/dev/otp",
    summary="The last one-time code sent to a user (dev only)",
    query=OtpQuery,
    response=OtpOut,
    auth=False,
    errors=(404,),
)
async def dev_otp(request: Request) -> JSONResponse:
    """Dev only: the last one-time code sent to a user (what their phone would show)."""
    user_id = query(request, OtpQuery).user_id
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


@dev_api.route(
    "PUT",
    "/api/dev/account/{user_id}",
    summary="Create or refill a payment account, unfrozen (dev only)",
    body=DevAccountIn,
    response=DevAccountOut,
    auth=False,
)
async def dev_account(request: Request) -> JSONResponse:
    """Dev only (`supporthub simulate`): the account with this name and balance, and not
    frozen, as `supporthub account add` makes it, over HTTP."""
    from payments import ledger

    user_id = request.path_params["user_id"]
    if not 1 <= len(user_id) <= 64:
        raise Invalid("user_id: 1 to 64 characters")
    body = await json_body(request, DevAccountIn)
    amount = ledger.parse_amount(body.balance, field="balance", allow_zero=True,
                                 maximum=ledger.MAX_BALANCE)  # fmt: skip
    async with request.app.state.hub.store.acquire() as db:
        row = await ledger.upsert_account(db, user_id, body.name, amount)
        if row["frozen"]:
            row = await ledger.unfreeze(db, user_id, "dev account refilled", "dev")
    view = ledger.account_view(row)
    return JSONResponse({k: view[k] for k in ("user_id", "name", "balance", "currency", "frozen")})


async def _account_name(request: Request, user_id: str) -> str | None:
    """The demo user's name from their payment account (dev runs payments in this database)."""
    try:
        async with request.app.state.hub.store.acquire() as db:
            return await accounts.name(db, user_id)
    except asyncpg.PostgresError:
        return None


routes = api.routes()
dev_routes = dev_api.routes()
