"""Summary of a `hub_experiment.py --exp trace` file: per step, how many, p50, p90 and
max of its duration in ms (for `offer-age`: the events' age when the notifier took them; `bcast:request-age`:
a notice's age when the hub began to store it).

    BENCH_TRACE=trace.json .venv/bin/python bench/paced.py --only supporthub --hub-exp trace ...
    .venv/bin/python bench/trace_summary.py trace.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main() -> None:
    with open(sys.argv[1]) as f:
        events = json.load(f)
    by: dict[str, list[float]] = defaultdict(list)
    sizes: dict[str, list[int]] = defaultdict(list)
    for tag, t0, t1, size in events:
        by[tag].append((t1 if tag.endswith("-age") else t1 - t0) * 1000)
        sizes[tag].append(size)
    print(f"{'step':<28} {'n':>7} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8} {'mean size':>10}")
    for tag in sorted(by):
        v = by[tag]
        mean = sum(sizes[tag]) / len(sizes[tag])
        print(f"{tag:<28} {len(v):>7} {pct(v, 50):>8.2f} {pct(v, 90):>8.2f} {max(v):>8.2f}"
              f" {mean:>10.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
