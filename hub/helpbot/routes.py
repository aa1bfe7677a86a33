"""Public help-center endpoints: article list, one article, search. No authentication."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, Field, StringConstraints
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.helpbot.article import LANGS
from hub.helpbot.catalog import DEFAULT_LANG, load_help_center
from hub.helpbot.search import MAX_QUERY_CHARS
from supporthub_core.errors import HubError, NotFound, error_response
from supporthub_core.http import query
from supporthub_core.validation import QueryInt

MAX_LIMIT = 20
# Articles change only with a deploy; let browsers and proxies keep them a few minutes.
CACHE_HEADERS = {"Cache-Control": "public, max-age=300"}


Lang = Literal["zh", "en"]
assert get_args(Lang) == LANGS


class LangQuery(BaseModel):
    lang: Lang | None = None


class SearchQuery(LangQuery):
    q: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS)
    ]
    limit: Annotated[QueryInt, Field(ge=1, le=MAX_LIMIT)] = 5


async def list_articles(request: Request) -> JSONResponse:
    """GET /api/help/articles?lang=zh|en -> [{slug, title, topic, summary, lang}]."""
    try:
        lang = query(request, LangQuery).lang
    except HubError as exc:
        return error_response(exc)
    articles = load_help_center().articles(lang or DEFAULT_LANG)
    return JSONResponse([a.listing() for a in articles], headers=CACHE_HEADERS)


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


routes: list[Route] = [
    Route("/api/help/articles", list_articles, methods=["GET"]),
    Route("/api/help/articles/{slug}", get_article, methods=["GET"]),
    Route("/api/help/search", search_articles, methods=["GET"]),
]
