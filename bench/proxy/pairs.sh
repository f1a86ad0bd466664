#!/usr/bin/env bash
# Key-auth proxy benchmark in interleaved pairs: the same contestants,
# configuration, pinning and functional check as run.sh, but every
# contestant is started once and left running, and for each scenario the
# contestants take turns under load for DURATION each, PAIRS times (the
# order alternating). The two halves of a pair are seconds apart instead of
# a whole round, so a machine that drifts in speed (this one does, by ±15 %
# between runs of the same binary) moves both, and their ratio keeps what is
# left. Prints the medians and each pair's ratio against nginx: median,
# quartiles and range over the pairs.
#
#   bench/proxy/pairs.sh [N]            credentials (default: 100000)
#   PAIRS=15 DURATION=2s CONTESTANTS="nginx portcullis" SCENARIOS="valid invalid" bench/proxy/pairs.sh
#                                       (p99 from 2 s rounds reads a few stalls: DURATION=3s or more for it)
#   CONTESTANTS="nginx portcullis portcullis-b" BIN=/tmp/a BIN_B=/tmp/b bench/proxy/pairs.sh
#                                       two builds, each against nginx and against each other
#   CONTESTANTS="nginx portcullis floor" bench/proxy/pairs.sh
#                                       with the kernel floor (floor.c): the best any proxy could do
#   RATE=50000 DURATION=5s bench/proxy/pairs.sh
#                                       every contestant offered the same 50k req/s (h2load): CPU per
#                                       request at equal work, not at saturation
#
# Needs what run.sh needs. nginx must be a contestant (the ratios' base).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/proxy"
bin=${BIN:-$root/target/release/portcullis}
DURATION=${DURATION:-2s}
PAIRS=${PAIRS:-15}
read -r -a CONTESTANTS <<<"${CONTESTANTS:-nginx portcullis}"
read -r -a SCENARIOS <<<"${SCENARIOS:-valid invalid open}"
n=${1:-100000}
[[ " ${CONTESTANTS[*]} " == *" nginx "* ]] || { echo "CONTESTANTS must include nginx" >&2; exit 2; }
# A polling floor takes its whole core all the time, also while the others
# are measured on it; run.sh starts each contestant only for its own turn.
if [ -n "${FLOOR_SPIN:-}" ] && [[ " ${CONTESTANTS[*]} " == *" floor "* ]]; then
  echo "FLOOR_SPIN with pairs.sh would slow every other contestant: use run.sh" >&2; exit 2
fi

# shellcheck source=bench/proxy/lib.sh
. "$here/lib.sh"

results="$work/results.tsv"
echo -e "n\tround\tcontestant\tscenario\trps\tp50_ms\tp99_ms\tcpu_us\tnon2xx\trss_kb\tready_ms\tuser_us\tload_busy" > "$results"
start_upstream
generate "$n"

declare -A PID READY
for name in "${CONTESTANTS[@]}"; do
  start "$name"
  check "$name"
  PID[$name]=$STARTED_PID
  READY[$name]=$READY_MS
done

for scenario in "${SCENARIOS[@]}"; do
  for pair in $(seq 1 "$PAIRS"); do
    order=("${CONTESTANTS[@]}")
    if [ $((pair % 2)) -eq 0 ]; then
      order=(); for ((i = ${#CONTESTANTS[@]} - 1; i >= 0; i--)); do order+=("${CONTESTANTS[$i]}"); done
    fi
    for name in "${order[@]}"; do
      read -r rps p50 p99 cpu non2xx user load_busy <<<"$(load "$name" "$scenario" "${PID[$name]}")"
      rss=$(rss_kb $(proc_pids "${PID[$name]}"))
      echo -e "$n\t$pair\t$name\t$scenario\t$rps\t$p50\t$p99\t$cpu\t$non2xx\t$rss\t${READY[$name]}\t$user\t$load_busy" | tee -a "$results" >&2
    done
  done
done

[ -z "${RATE:-}" ] || echo "Offered rate: $((RATE / CONNS * CONNS)) req/s (h2load, $CONNS connections); no latency percentiles"
python3 "$here/report.py" "$results"
echo "raw results: $results" >&2
