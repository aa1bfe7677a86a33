"""Help search accuracy on labelled questions.

Two labelled sets:

- `tests/data/customer_questions.json`: questions written the way customers type
  (colloquial, typos, mixed Chinese and English), each with the article(s) that answer it,
  split once and for all by a stable hash of the question into a development part (tuned
  on) and a HELD-BACK part (~30 %, only ever measured: its misses are never listed).
- `tests/data/help_questions.json`: the first, smaller set (dev / holdout / fresh batches).

python bench/help_eval.py            # print the figures and update docs/help-search.md
python bench/help_eval.py --misses   # also list the DEV questions whose top-1 is wrong
python bench/help_eval.py --no-write # print only
python bench/help_eval.py --learn    # write the dev part into hub/helpbot/phrasings.json

The search also indexes the dev questions as customer phrasings of their article
(hub/helpbot/phrasings.json). So that the dev figure still says something, it is
cross-validated: the dev part is cut into 5 folds by hash and each fold is searched with
the phrasings of the other four only. The held-back part is searched as shipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.helpbot import text  # noqa: E402
from hub.helpbot.catalog import (  # noqa: E402
    HelpCenter,
    load_help_center,
    read_articles,
    with_phrasings,
)

QUESTIONS = ROOT / "tests" / "data" / "help_questions.json"
CUSTOMER_QUESTIONS = ROOT / "tests" / "data" / "customer_questions.json"
DOC = ROOT / "docs" / "help-search.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
CBEGIN, CEND = "<!-- customer-figures:begin -->", "<!-- customer-figures:end -->"
PHRASINGS = ROOT / "hub" / "helpbot" / "phrasings.json"
HELD_BACK_PERCENT = 30
FOLDS = 5


def part_of(question: str) -> str:
    """'heldback' for ~30 % of questions, by a stable hash of the text; else 'dev'."""
    bucket = int(hashlib.sha256(question.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "heldback" if bucket < HELD_BACK_PERCENT else "dev"


def fold_of(question: str) -> int:
    """The cross-validation fold (0..FOLDS-1) of a dev question, by another stable hash."""
    return int(hashlib.sha256(question.encode("utf-8")).hexdigest()[8:16], 16) % FOLDS


def phrasings_of(questions: list[dict]) -> dict[str, dict[str, list[str]]]:
    """lang -> slug -> questions, for the (dev) questions given; a question naming several
    right articles goes to the first."""
    out: dict[str, dict[str, list[str]]] = {}
    for item in questions:
        slug = item["slugs"][0]
        out.setdefault(item["lang"], {}).setdefault(slug, []).append(item["q"])
    return {lang: dict(sorted(by_slug.items())) for lang, by_slug in sorted(out.items())}


def write_phrasings(questions: list[dict], path: Path = PHRASINGS) -> None:
    """The dev part as hub/helpbot/phrasings.json (never a held-back question)."""
    dev = [q for q in questions if part_of(q["q"]) == "dev"]
    text = json.dumps(phrasings_of(dev), ensure_ascii=False, indent=1)
    path.write_text(text + "\n", encoding="utf-8")


def evaluate_customer(questions: list[dict]) -> tuple[dict[str, Tally], list[str]]:
    """Held-back part as shipped; dev part cross-validated over FOLDS folds."""
    dev = [q for q in questions if q["part"] == "dev"]
    held = [q for q in questions if q["part"] != "dev"]
    tallies, misses = evaluate(held, HelpCenter(read_articles()))
    articles = read_articles(phrasings={})
    for k in range(FOLDS):
        train = [q for q in dev if fold_of(q["q"]) != k]
        test = [q for q in dev if fold_of(q["q"]) == k]
        center = HelpCenter(with_phrasings(articles, phrasings_of(train)))
        fold_tallies, fold_misses = evaluate(test, center)
        for name, t in fold_tallies.items():
            total = tallies.setdefault(name, Tally())
            for attr in vars(t):
                setattr(total, attr, getattr(total, attr) + getattr(t, attr))
        misses += fold_misses
    return tallies, misses


@dataclass
class Tally:
    """Counts of one group of questions."""

    n: int = 0
    top1: int = 0
    top3: int = 0
    confident: int = 0
    confident_right: int = 0
    security: int = 0
    security_confident_wrong: int = 0

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.n if self.n else 0.0

    def row(self, name: str) -> str:
        """One Markdown table row (first set)."""
        precision = self.confident_right / self.confident if self.confident else 0.0
        return (
            f"| {name} | {self.n} | {self.top1 / self.n:.3f} | {self.top3 / self.n:.3f} "
            f"| {self.confident / self.n:.3f} | {precision:.3f} |"
        )

    def customer_row(self, name: str) -> str:
        """One Markdown table row (customer set)."""
        precision = self.confident_right / self.confident if self.confident else 0.0
        return (
            f"| {name} | {self.n} | {self.top1 / self.n:.3f} | {self.top3 / self.n:.3f} "
            f"| {self.confident / self.n:.3f} | {precision:.3f} "
            f"| {self.security_confident_wrong} of {self.security} |"
        )


def load_questions(path: Path = QUESTIONS) -> list[dict[str, str]]:
    """The first labelled set: dicts with q, lang, slug and split."""
    questions: list[dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return questions


def load_customer_questions(path: Path = CUSTOMER_QUESTIONS) -> list[dict]:
    """The customer-style set: dicts with q, lang, slugs (any is right) and part."""
    questions: list[dict] = json.loads(path.read_text(encoding="utf-8"))
    return questions


def _security_slugs(help_center: HelpCenter) -> set[str]:
    return {a.slug for a in help_center.articles("zh") if a.topic == "security"}


def evaluate(
    questions: list[dict], help_center: HelpCenter | None = None
) -> tuple[dict[str, Tally], list[str]]:
    """Tallies per group and the top-1 misses. Groups: all, lang, split or part, both.

    A question may name one right article (`slug`) or several (`slugs`). It is a security
    question when one of its right articles is about security; "confidently wrong" means
    the bot would have answered it, on its own, with an article that is not right.
    """
    help_center = help_center or load_help_center()
    security = _security_slugs(help_center)
    tallies: dict[str, Tally] = {}
    misses = []
    for item in questions:
        wanted = item.get("slugs") or [item["slug"]]
        split = item.get("part") or item.get("split", "all")
        hits = help_center.search(item["q"], item["lang"], limit=3)
        slugs = [h.slug for h in hits]
        _, confident = help_center.best(item["q"], item["lang"])
        right = bool(slugs) and slugs[0] in wanted
        is_security = any(s in security for s in wanted)
        for group in ("all", item["lang"], f"{split} {item['lang']}", split):
            t = tallies.setdefault(group, Tally())
            t.n += 1
            t.top1 += right
            t.top3 += any(s in slugs for s in wanted)
            t.confident += confident
            t.confident_right += confident and right
            t.security += is_security
            t.security_confident_wrong += is_security and confident and not right
        if not right:
            misses.append(f"[{split}] {item['lang']} {item['q']!r}: want {wanted}, got {slugs}")
    return tallies, misses


def table(tallies: dict[str, Tally]) -> str:
    """The figures of the first set as a Markdown table."""
    order = ["zh", "en", "dev", "holdout", "fresh", "fraud", "all"]
    lines = [
        "| questions | n | top-1 | top-3 | confident | top-1 when confident |",
        "|---|---|---|---|---|---|",
    ]
    lines += [tallies[name].row(name) for name in order if name in tallies]
    return "\n".join(lines)


def customer_table(tallies: dict[str, Tally]) -> str:
    """The figures of the customer set as a Markdown table."""
    order = ["dev zh", "dev en", "dev", "heldback zh", "heldback en", "heldback"]
    lines = [
        "| part | n | top-1 | top-3 | confident | top-1 when confident "
        "| confidently wrong on security |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [tallies[name].customer_row(name) for name in order if name in tallies]
    return "\n".join(lines)


def write_doc(text: str, doc: Path = DOC, begin: str = BEGIN, end: str = END) -> None:
    """Replace the figures block of the doc (between the markers) with `text`."""
    block = f"{begin}\n{text}\n{end}"
    old = doc.read_text(encoding="utf-8") if doc.exists() else f"# Help search\n\n{begin}\n{end}\n"
    if begin not in old:
        old = f"{old.rstrip()}\n\n{begin}\n{end}\n"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    doc.write_text(pattern.sub(lambda _: block, old, count=1), encoding="utf-8")


def main() -> None:
    """Run the evaluation, print the figures, update the doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list wrong top-1 (dev only)")
    parser.add_argument("--no-write", action="store_true", help="do not update the doc")
    parser.add_argument("--learn", action="store_true", help="write hub/helpbot/phrasings.json")
    parser.add_argument(
        "--segmenter", choices=text.SEGMENTERS, help="Chinese segmenter (default: the code's)"
    )
    args = parser.parse_args()
    if args.learn:
        write_phrasings(load_customer_questions())
        print(f"written {PHRASINGS.relative_to(ROOT)}")
    if args.segmenter:
        text.set_segmenter(args.segmenter)
        args.no_write = True  # figures in the doc are those of the shipped configuration
    print(f"segmenter: {text.segmenter()}")
    customer, customer_misses = evaluate_customer(load_customer_questions())
    first, first_misses = evaluate(load_questions(), HelpCenter(read_articles()))
    customer_figures, first_figures = customer_table(customer), table(first)
    print("customer-style questions (tests/data/customer_questions.json)")
    print(customer_figures)
    print("\nfirst set (tests/data/help_questions.json)")
    print(first_figures)
    if args.misses:
        dev_misses = [m for m in customer_misses if m.startswith("[dev]")]
        print("\n".join(["", "customer dev misses:", *dev_misses]))
        print("\n".join(["", "first set misses:", *first_misses]))
    if not args.no_write:
        write_doc(customer_figures, begin=CBEGIN, end=CEND)
        write_doc(first_figures)
        print(f"\nwritten to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
