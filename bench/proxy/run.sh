#!/usr/bin/env bash
# Key-auth proxy benchmark: Portcullis (local mode, release build) vs nginx
# (map) vs HAProxy (map file), in front of the same upstream (upstream.c;
# UPSTREAM_SERVER=nginx for nginx, as before 2026-12-06), in one run on one
# machine. Each contestant is pinned to CPU $PROXY_CPU, wrk and
# the upstream to CPU $LOAD_CPU. Functional equivalence is checked first.
#
#   bench/proxy/run.sh [N ...]          credentials per run (default: 10 100000)
#   DURATION=10s ROUNDS=3 CONNS=64 bench/proxy/run.sh 100000
#   CONTESTANTS="nginx portcullis" SCENARIOS="valid open" BIN=/path/to/portcullis bench/proxy/run.sh 10
#   FLOOR_SPIN=1 CONTESTANTS="nginx portcullis floor" bench/proxy/run.sh 100000
#                                       with the kernel floor polling instead of sleeping (floor.c)
#   RATE=50000 bench/proxy/run.sh 100000  the same fixed rate offered to each (h2load, lib.sh)
#
# Needs: nginx, haproxy, wrk, curl, python3 (apt-get install nginx haproxy wrk)
# and a release build (cargo build --release). Prints a Markdown table.
# On a noisy machine bench/proxy/pairs.sh gives the tighter ratio.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/proxy"
bin=${BIN:-$root/target/release/portcullis}
ROUNDS=${ROUNDS:-3}
read -r -a CONTESTANTS <<<"${CONTESTANTS:-nginx haproxy portcullis}"
read -r -a SCENARIOS <<<"${SCENARIOS:-valid invalid open}"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 100000)

# shellcheck source=bench/proxy/lib.sh
. "$here/lib.sh"

results="$work/results.tsv"
echo -e "n\tround\tcontestant\tscenario\trps\tp50_ms\tp99_ms\tcpu_us\tnon2xx\trss_kb\tready_ms\tuser_us\tload_busy" > "$results"
start_upstream

for n in "${sizes[@]}"; do
  generate "$n"
  for round in $(seq 1 "$ROUNDS"); do
    order=("${CONTESTANTS[@]}")
    if [ $((round % 2)) -eq 0 ]; then
      order=(); for ((i = ${#CONTESTANTS[@]} - 1; i >= 0; i--)); do order+=("${CONTESTANTS[$i]}"); done
    fi
    for name in "${order[@]}"; do
      start "$name"
      check "$name"
      for scenario in "${SCENARIOS[@]}"; do
        read -r rps p50 p99 cpu non2xx user load_busy <<<"$(load "$name" "$scenario" "$STARTED_PID")"
        rss=$(rss_kb $(proc_pids "$STARTED_PID"))
        echo -e "$n\t$round\t$name\t$scenario\t$rps\t$p50\t$p99\t$cpu\t$non2xx\t$rss\t$READY_MS\t$user\t$load_busy" | tee -a "$results" >&2
      done
      stop "$STARTED_PID"
    done
  done
done

python3 "$here/report.py" "$results"
echo "raw results: $results" >&2
