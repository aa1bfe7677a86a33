"""Public help-center endpoints: article list, one article, search. No authentication."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.helpbot.article import LANGS
from hub.helpbot.catalog import DEFAULT_LANG, load_help_center
from hub.helpbot.search import MAX_QUERY_CHARS
from supporthub_core.errors import HubError, Invalid, NotFound, error_response

MAX_LIMIT = 20
# Articles change only with a deploy; let browsers and proxies keep them a few minutes.
CACHE_HEADERS = {"Cache-Control": "public, max-age=300"}


def _lang(request: Request, default: str | None = DEFAULT_LANG) -> str | None:
    lang = request.query_params.get("lang")
    if lang is None or lang == "":
        return default
    if lang not in LANGS:
        raise Invalid(f"lang must be one of {', '.join(LANGS)}")
    return lang


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "5")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise Invalid(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


async def list_articles(request: Request) -> JSONResponse:
    """GET /api/help/articles?lang=zh|en -> [{slug, title, topic, summary, lang}]."""
    try:
        lang = _lang(request)
    except HubError as exc:
        return error_response(exc)
    articles = load_help_center().articles(lang or DEFAULT_LANG)
    return JSONResponse([a.listing() for a in articles], headers=CACHE_HEADERS)


async def get_article(request: Request) -> JSONResponse:
    """GET /api/help/articles/{slug}?lang= -> the article with its body (Markdown)."""
    try:
        lang = _lang(request) or DEFAULT_LANG
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
        lang = _lang(request, default=None)
        q = request.query_params.get("q", "").strip()
        if not q:
            raise Invalid("q is required")
        if len(q) > MAX_QUERY_CHARS:
            raise Invalid(f"q is longer than {MAX_QUERY_CHARS} characters")
        limit = _limit(request)
    except HubError as exc:
        return error_response(exc)
    hits = load_help_center().search(q, lang, limit)
    return JSONResponse([h.as_dict() for h in hits])


routes: list[Route] = [
    Route("/api/help/articles", list_articles, methods=["GET"]),
    Route("/api/help/articles/{slug}", get_article, methods=["GET"]),
    Route("/api/help/search", search_articles, methods=["GET"]),
]
