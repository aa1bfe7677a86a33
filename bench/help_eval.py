"""Help search accuracy on the labelled questions in tests/data/help_questions.json.

python bench/help_eval.py            # print top-1/top-3 and update docs/help-search.md
python bench/help_eval.py --misses   # also list the questions whose top-1 is wrong
python bench/help_eval.py --no-write # print only
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.helpbot.catalog import load_help_center  # noqa: E402

QUESTIONS = ROOT / "tests" / "data" / "help_questions.json"
DOC = ROOT / "docs" / "help-search.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"


@dataclass
class Tally:
    """Counts of one group of questions."""

    n: int = 0
    top1: int = 0
    top3: int = 0
    confident: int = 0
    confident_right: int = 0

    def row(self, name: str) -> str:
        """One Markdown table row."""
        precision = self.confident_right / self.confident if self.confident else 0.0
        return (
            f"| {name} | {self.n} | {self.top1 / self.n:.3f} | {self.top3 / self.n:.3f} "
            f"| {self.confident / self.n:.3f} | {precision:.3f} |"
        )


def load_questions(path: Path = QUESTIONS) -> list[dict[str, str]]:
    """The labelled questions: dicts with q, lang, slug and split."""
    questions: list[dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return questions


def evaluate(questions: list[dict[str, str]]) -> tuple[dict[str, Tally], list[str]]:
    """Tallies per group (overall, per language, per split) and the top-1 misses."""
    help_center = load_help_center()
    tallies: dict[str, Tally] = {}
    misses = []
    for item in questions:
        hits = help_center.search(item["q"], item["lang"], limit=3)
        slugs = [h.slug for h in hits]
        _, confident = help_center.best(item["q"], item["lang"])
        right = bool(slugs) and slugs[0] == item["slug"]
        for group in ("all", item["lang"], f"{item['lang']} {item['split']}", item["split"]):
            t = tallies.setdefault(group, Tally())
            t.n += 1
            t.top1 += right
            t.top3 += item["slug"] in slugs
            t.confident += confident
            t.confident_right += confident and right
        if not right:
            misses.append(f"{item['lang']} {item['q']!r}: want {item['slug']}, got {slugs}")
    return tallies, misses


def table(tallies: dict[str, Tally]) -> str:
    """The figures as a Markdown table."""
    order = ["zh", "en", "dev", "holdout", "fresh", "fraud", "all"]
    lines = [
        "| questions | n | top-1 | top-3 | confident | top-1 when confident |",
        "|---|---|---|---|---|---|",
    ]
    lines += [tallies[name].row(name) for name in order if name in tallies]
    return "\n".join(lines)


def write_doc(text: str, doc: Path = DOC) -> None:
    """Replace the figures block of the doc (between the markers) with `text`."""
    block = f"{BEGIN}\n{text}\n{END}"
    old = doc.read_text(encoding="utf-8") if doc.exists() else f"# Help search\n\n{BEGIN}\n{END}\n"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    doc.write_text(pattern.sub(lambda _: block, old, count=1), encoding="utf-8")


def main() -> None:
    """Run the evaluation, print the figures, update the doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list wrong top-1 answers")
    parser.add_argument("--no-write", action="store_true", help="do not update the doc")
    args = parser.parse_args()
    tallies, misses = evaluate(load_questions())
    figures = table(tallies)
    print(figures)
    if args.misses:
        print("\n".join(["", *misses]))
    if not args.no_write:
        write_doc(figures)
        print(f"\nwritten to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
