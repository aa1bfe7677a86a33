"""One help article: its fields and how it is read from a Markdown file with front matter.

A file is `<slug>.<lang>.md`:

    ---
    title: 转账迟迟未到账
    topic: arrival
    keywords: 没到账, 钱没到, 处理中, ...
    ---
    First paragraph: the short answer (used as the summary and by the bot).

    ## Then sections, steps, ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LANGS = ("zh", "en")
TOPICS = ("account", "payment", "arrival", "security", "technical", "feedback", "other")

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
_LIST_SPLIT = re.compile(r"\s*[,，、;；]\s*")


class ArticleFormatError(ValueError):
    """An article file that cannot be read; raised at load, so a bad file stops the start."""


@dataclass(frozen=True)
class Article:
    """A help article in one language."""

    slug: str
    lang: str
    title: str
    topic: str
    summary: str
    body: str
    keywords: tuple[str, ...] = field(default=())
    # How customers asked for this article (hub/helpbot/phrasings.json): searched, not shown.
    phrasings: tuple[str, ...] = field(default=())

    def listing(self) -> dict[str, str]:
        """The fields shown in an article list."""
        return {
            "slug": self.slug,
            "title": self.title,
            "topic": self.topic,
            "summary": self.summary,
            "lang": self.lang,
        }


def parse_article(text: str, slug: str, lang: str) -> Article:
    """Parse one article file's text; raises ArticleFormatError when a field is missing."""
    match = _FRONT_MATTER.match(text)
    if not match:
        raise ArticleFormatError(f"{slug}.{lang}: missing front matter")
    meta = _parse_meta(match.group(1))
    body = text[match.end() :].strip()
    for key in ("title", "topic"):
        if not meta.get(key):
            raise ArticleFormatError(f"{slug}.{lang}: missing {key}")
    if meta["topic"] not in TOPICS:
        raise ArticleFormatError(f"{slug}.{lang}: unknown topic {meta['topic']!r}")
    keywords = tuple(k for k in _LIST_SPLIT.split(meta.get("keywords", "")) if k)
    return Article(
        slug=slug,
        lang=lang,
        title=meta["title"],
        topic=meta["topic"],
        summary=plain_text(meta.get("summary") or first_paragraph(body)),
        body=body,
        keywords=keywords,
    )


_INLINE_MARKUP = re.compile(r"\*\*([^*]+)\*\*|`([^`]+)`|\[([^\]]+)\]\([^)\s]+\)")


def plain_text(markdown: str) -> str:
    """Inline Markdown (**bold**, `code`, [label](url)) as plain words: the summary goes into
    chat messages, which are shown as text."""
    return _INLINE_MARKUP.sub(lambda m: m.group(1) or m.group(2) or m.group(3), markdown)


def first_paragraph(body: str) -> str:
    """The first paragraph of Markdown text that is not a heading, joined into one line."""
    for block in re.split(r"\n\s*\n", body):
        block = block.strip()
        if block and not block.startswith("#"):
            return " ".join(line.strip() for line in block.splitlines())
    return ""


def _parse_meta(block: str) -> dict[str, str]:
    meta: dict[str, str] = {}
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ArticleFormatError(f"bad front matter line: {line!r}")
        meta[key.strip().lower()] = value.strip()
    return meta
