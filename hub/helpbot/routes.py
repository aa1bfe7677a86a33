"""Public help-center endpoints: article list, one article, search. No authentication."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, Field, StringConstraints
from starlette.requests import Request
from starlette.responses import JSONResponse

from hub.helpbot.article import LANGS
from hub.helpbot.catalog import DEFAULT_LANG, load_help_center
from hub.helpbot.search import MAX_QUERY_CHARS
from supporthub_core.errors import HubError, NotFound, error_response
from supporthub_core.http import query
from supporthub_core.openapi import Api
from supporthub_core.validation import ASCII_DIGITS

MAX_LIMIT = 20
# Articles change only with a deploy; let browsers and proxies keep them a few minutes.
CACHE_HEADERS = {"Cache-Control": "public, max-age=300"}


Lang = Literal["zh", "en"]
assert get_args(Lang) == LANGS


class LangQuery(BaseModel):
    lang: Lang | None = None


class SearchQuery(LangQuery):
    q: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS, pattern=r"\S"
        ),
    ]
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT), ASCII_DIGITS] = 5


class ArticleListing(BaseModel):
    slug: str
    title: str
    topic: str
    summary: str
    lang: Lang


class ArticleOut(ArticleListing):
    body: str = Field(description="Markdown.")
    other_langs: list[Lang]


class SearchHit(BaseModel):
    slug: str
    title: str
    score: float


api = Api("help")


@api.route(
    "GET",
    "/api/help/articles",
    summary="Help articles",
    query=LangQuery,
    response=list[ArticleListing],
    auth=False,
    store=False,
)
async def list_articles(request: Request) -> JSONResponse:
    """GET /api/help/articles?lang=zh|en -> [{slug, title, topic, summary, lang}]."""
    try:
        lang = query(request, LangQuery).lang
    except HubError as exc:
        return error_response(exc)
    articles = load_help_center().articles(lang or DEFAULT_LANG)
    return JSONResponse([a.listing() for a in articles], headers=CACHE_HEADERS)


@api.route(
    "GET",
    "/api/help/articles/{slug}",
    summary="One help article",
    query=LangQuery,
    response=ArticleOut,
    errors=(404,),
    auth=False,
    store=False,
)
async def get_article(request: Request) -> JSONResponse:
    """GET /api/help/articles/{slug}?lang= -> the article with its body (Markdown)."""
    try:
        lang = query(request, LangQuery).lang or DEFAULT_LANG
        slug = request.path_params["slug"]
        help_center = load_help_center()
        article = help_center.get(slug, lang)
        if article is None:
            raise NotFound(f"no help article {slug!r} in {lang}")
    except HubError as exc:
        return error_response(exc)
    body = {
        **article.listing(),
        "body": article.body,
        "other_langs": [other for other in help_center.langs_of(slug) if other != lang],
    }
    return JSONResponse(body, headers=CACHE_HEADERS)


@api.route(
    "GET",
    "/api/help/search",
    summary="Search the help articles, best first",
    query=SearchQuery,
    response=list[SearchHit],
    auth=False,
    store=False,
)
async def search_articles(request: Request) -> JSONResponse:
    """GET /api/help/search?q=&lang=zh|en[&limit=] -> [{slug, title, score}], best first.

    Without `lang` the language is detected from the question.
    """
    try:
        params = query(request, SearchQuery)
    except HubError as exc:
        return error_response(exc)
    hits = load_help_center().search(params.q, params.lang, params.limit)
    return JSONResponse([h.as_dict() for h in hits])


routes = api.routes()
