#!/usr/bin/env python3
"""Summarises bench/proxy/run.sh and pairs.sh results: medians over rounds,
the spread between rounds (noise), and every ratio against nginx in the same
run; then the ratio against nginx taken within each round (pair) alone, with
its median, quartiles and range: how sure the ratio is. "load CPU busy" is
the core wrk and the upstream share: near 100 % they set the pace, and the
ratio is a ceiling of the harness, not the proxy's."""
import csv
import math
import statistics
import sys
from collections import defaultdict


def main():
    with open(sys.argv[1]) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    groups = defaultdict(list)
    for r in rows:
        groups[(int(r["n"]), r["scenario"], r["contestant"])].append(r)

    def values(key, field):
        # Rounds whose load could not be measured (nan) are left out.
        vals = [float(r[field]) for r in groups[key] if r.get(field) not in (None, "", "nan")]
        return vals or [float("nan")]

    def med(key, field):
        return statistics.median(values(key, field))

    def spread(key, field):
        vals = values(key, field)
        m = statistics.median(vals)
        return 100 * (max(vals) - min(vals)) / m if m else 0

    def show(value, spec, unit=""):
        # A fixed-rate run (RATE=) has no latency percentiles: n/a, not "nan".
        return "n/a" if math.isnan(value) else f"{value:{spec}}{unit}"

    print("| N | scenario | contestant | req/s | vs nginx | p50 ms | p99 ms | p99 vs nginx | CPU µs/req | vs nginx | of it user | RSS MB | ready ms | non-2xx | round spread | load CPU busy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(groups, key=lambda k: (k[0], ["valid", "invalid", "open"].index(k[1]), k[2])):
        n, scenario, who = key
        ref = (n, scenario, "nginx")
        ratio = lambda f: med(key, f) / med(ref, f) if ref in groups and med(ref, f) else float("nan")
        print(
            f"| {n} | {scenario} | {who} | {med(key, 'rps'):.0f} | {ratio('rps'):.2f}x | {show(med(key, 'p50_ms'), '.3f')} | "
            f"{show(med(key, 'p99_ms'), '.3f')} | {show(ratio('p99_ms'), '.2f', 'x')} | {med(key, 'cpu_us'):.1f} | {ratio('cpu_us'):.2f}x | {med(key, 'user_us'):.1f} | "
            f"{med(key, 'rss_kb') / 1024:.1f} | {med(key, 'ready_ms'):.0f} | {med(key, 'non2xx'):.0f} | ±{spread(key, 'rps') / 2:.1f}% | "
            f"{med(key, 'load_busy'):.0f}% |"
        )

    paired(groups)


def paired(groups):
    """Each round's (pair's) own ratio against nginx's same round; with a
    second build (`portcullis-b`), also against the first build's; with the
    kernel floor (`floor`), Portcullis's against the floor's: how close it
    comes to the best any proxy could do in this harness."""

    def by_round(key, field):
        return {r["round"]: float(r[field]) for r in groups.get(key, []) if r[field] not in ("", "nan")}

    def summary(ratios):
        if not ratios:
            return "n/a"
        ratios = sorted(ratios)
        med = statistics.median(ratios)
        if len(ratios) < 4:
            return f"{med:.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})"
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        return f"{med:.2f}x [{q1:.2f}-{q3:.2f}] ({ratios[0]:.2f}-{ratios[-1]:.2f})"

    order = lambda k: (k[0], ["valid", "invalid", "open"].index(k[1]), k[2])
    compared = {"nginx": None, "portcullis": ("portcullis-b",), "floor": ("portcullis", "portcullis-b")}
    for base, who_only in compared.items():
        rows = []
        for key in sorted(groups, key=order):
            n, scenario, who = key
            ref = (n, scenario, base)
            if who == base or ref not in groups or (who_only and who not in who_only):
                continue
            cols = []
            for field in ("rps", "cpu_us", "p99_ms"):
                ours, theirs = by_round(key, field), by_round(ref, field)
                cols.append(summary([ours[r] / theirs[r] for r in ours if r in theirs and theirs[r]]))
            rounds = len(set(by_round(key, "rps")) & set(by_round(ref, "rps")))
            rows.append(f"| {n} | {scenario} | {who} | {rounds} | " + " | ".join(cols) + " |")
        if not rows:
            continue
        print()
        print(f"Per-round ratio against {base}'s same round: median [quartiles] (range)")
        print()
        print(f"| N | scenario | contestant | rounds | req/s vs {base} | CPU µs/req vs {base} | p99 vs {base} |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
