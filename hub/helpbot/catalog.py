"""The help center: every article in every language, loaded once from package files."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from importlib import resources

from hub.helpbot import brand
from hub.helpbot.article import LANGS, Article, ArticleFormatError, parse_article
from hub.helpbot.search import Hit, SearchIndex
from hub.helpbot.text import detect_lang

DEFAULT_LANG = "zh"


class HelpCenter:
    """Articles by slug and language, with a search index per language."""

    def __init__(self, articles: Iterable[Article]) -> None:
        self._by_key: dict[tuple[str, str], Article] = {}
        for article in articles:
            self._by_key[(article.slug, article.lang)] = article
        self._indexes = {
            lang: SearchIndex(self.articles(lang), lang) for lang in LANGS if self.articles(lang)
        }

    def articles(self, lang: str = DEFAULT_LANG) -> list[Article]:
        """Every article in `lang`, by slug."""
        return sorted((a for a in self._by_key.values() if a.lang == lang), key=lambda a: a.slug)

    def get(self, slug: str, lang: str = DEFAULT_LANG) -> Article | None:
        """One article, or None when that slug does not exist in `lang`."""
        return self._by_key.get((slug, lang))

    def langs_of(self, slug: str) -> list[str]:
        """The languages `slug` is written in."""
        return [lang for lang in LANGS if (slug, lang) in self._by_key]

    def search(self, q: str, lang: str | None = None, limit: int = 5) -> list[Hit]:
        """Articles for the question `q`, best first; `lang` None detects it from `q`."""
        index = self._indexes.get(lang or detect_lang(q, DEFAULT_LANG))
        return index.search(q, limit) if index else []

    def best(
        self, q: str, lang: str | None = None, exclude: Collection[str] = ()
    ) -> tuple[Hit | None, bool]:
        """The best article for `q` (other than those in `exclude`) and whether the match
        is confident."""
        index = self._indexes.get(lang or detect_lang(q, DEFAULT_LANG))
        return index.best(q, exclude) if index else (None, False)


Phrasings = Mapping[str, Mapping[str, Sequence[str]]]  # lang -> slug -> questions


def read_phrasings() -> dict[str, dict[str, list[str]]]:
    """Customer questions per language and article (`hub/helpbot/phrasings.json`): the
    development part of the labelled questions, written there by `bench/help_eval.py --learn`."""
    entry = resources.files("hub.helpbot").joinpath("phrasings.json")
    if not entry.is_file():
        return {}
    data: dict[str, dict[str, list[str]]] = json.loads(entry.read_text(encoding="utf-8"))
    return data


def with_phrasings(articles: Iterable[Article], phrasings: Phrasings) -> list[Article]:
    """The articles, each with the customer questions `phrasings` has for it."""
    return [
        replace(a, phrasings=tuple(phrasings.get(a.lang, {}).get(a.slug, ()))) for a in articles
    ]


def read_articles(phrasings: Phrasings | None = None) -> list[Article]:
    """Parse every `<slug>.<lang>.md` file packaged in `hub.helpbot.articles`, with the
    packaged customer phrasings (or `phrasings` when given)."""
    articles = []
    for entry in resources.files("hub.helpbot.articles").iterdir():
        name = entry.name
        if not name.endswith(".md"):
            continue
        slug, _, lang = name.removesuffix(".md").rpartition(".")
        if lang not in LANGS or not slug:
            raise ArticleFormatError(f"{name}: expected <slug>.<zh|en>.md")
        text = brand.current().render(entry.read_text(encoding="utf-8"), lang)
        articles.append(parse_article(text, slug, lang))
    return with_phrasings(articles, read_phrasings() if phrasings is None else phrasings)


@lru_cache(maxsize=1)
def load_help_center() -> HelpCenter:
    """The packaged help center, read and indexed on first use."""
    return HelpCenter(read_articles())


def search(q: str, lang: str | None = None, limit: int = 5) -> list[Hit]:
    """Search the packaged help center (see `HelpCenter.search`)."""
    return load_help_center().search(q, lang, limit)


def best(q: str, lang: str | None = None) -> tuple[Hit | None, bool]:
    """The best packaged article for `q` and whether it is confident (see `HelpCenter.best`)."""
    return load_help_center().best(q, lang)
