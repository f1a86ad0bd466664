#!/usr/bin/env python3
"""Summarises bench/proxy/run.sh results: medians over rounds, the spread
between rounds (noise), and every ratio against nginx in the same run."""
import csv
import statistics
import sys
from collections import defaultdict


def main():
    rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
    groups = defaultdict(list)
    for r in rows:
        groups[(int(r["n"]), r["scenario"], r["contestant"])].append(r)

    def values(key, field):
        # Rounds whose load could not be measured (nan) are left out.
        vals = [float(r[field]) for r in groups[key] if r[field] not in ("", "nan")]
        return vals or [float("nan")]

    def med(key, field):
        return statistics.median(values(key, field))

    def spread(key, field):
        vals = values(key, field)
        m = statistics.median(vals)
        return 100 * (max(vals) - min(vals)) / m if m else 0

    print("| N | scenario | contestant | req/s | vs nginx | p50 ms | p99 ms | p99 vs nginx | CPU µs/req | vs nginx | of it user | RSS MB | ready ms | non-2xx | round spread |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(groups, key=lambda k: (k[0], ["valid", "invalid", "open"].index(k[1]), k[2])):
        n, scenario, who = key
        ref = (n, scenario, "nginx")
        ratio = lambda f: med(key, f) / med(ref, f) if ref in groups and med(ref, f) else float("nan")
        print(
            f"| {n} | {scenario} | {who} | {med(key, 'rps'):.0f} | {ratio('rps'):.2f}x | {med(key, 'p50_ms'):.3f} | "
            f"{med(key, 'p99_ms'):.3f} | {ratio('p99_ms'):.2f}x | {med(key, 'cpu_us'):.1f} | {ratio('cpu_us'):.2f}x | {med(key, 'user_us'):.1f} | "
            f"{med(key, 'rss_kb') / 1024:.1f} | {med(key, 'ready_ms'):.0f} | {med(key, 'non2xx'):.0f} | ±{spread(key, 'rps') / 2:.1f}% |"
        )


if __name__ == "__main__":
    main()
