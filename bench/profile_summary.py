"""Summarise a `py-spy record --format raw` profile (collapsed stacks): the functions
with the most self time, the most inclusive time, and the share under chosen roots.

    bench/.venv-peers/bin/python bench/profile_summary.py bench/profiles/supporthub-*.txt
"""

from __future__ import annotations

import re
import sys
from collections import Counter

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def short(frame: str) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    path = m["file"]
    for cut in ("site-packages/", "lib/python3.11/"):
        if cut in path:
            path = path.split(cut, 1)[1]
    return f"{m['func']} ({path})"


def main(path: str, top: int = 25) -> None:
    self_t: Counter = Counter()
    incl: Counter = Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(n)
            frames = [short(x) for x in stack.split(";")]
            total += n
            self_t[frames[-1]] += n
            for fr in set(frames):
                incl[fr] += n
    print(f"{path}: {total} samples\n")
    print(f"top {top} by self time")
    for fr, n in self_t.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {fr}")
    print(f"\ntop {top} by inclusive time")
    for fr, n in incl.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {fr}")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        main(p, top=int(__import__("os").environ.get("TOP", "30")))
