#!/usr/bin/env bash
# Start -> "first snapshot live" (ms, from the log line's timestamp) of
# several builds, alternated RUNS times, local mode with N credentials
# (generated as ready.sh does). Less noisy than ready.sh for before/after
# pairs: no client polling, and the builds take turns on the same files.
# CPUS=0,1 lets them use both cores (default: pinned to CPU 0).
#
#   RUNS=5 CPUS=0,1 bash bench/proxy/readyloop.sh 100000 /tmp/base/portcullis target/release/portcullis
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=$1
shift
work=$(mktemp -d /tmp/portcullis-readyloop.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 "$root/bench/proxy/gen.py" "$n" "$work" 19100 >/dev/null
sync
for _ in $(seq 1 "${RUNS:-8}"); do
  for bin in "$@"; do
    t0=$(date +%s%N)
    line=$(RUST_LOG=portcullis::publish=info taskset -c "${CPUS:-0}" timeout 5 "$bin" run --manifests "$work/manifests" \
      --proxy-listen 127.0.0.1:19203 --admin-listen 127.0.0.1:19213 --proxy-tls-listen 127.0.0.1:19243 2>&1 \
      | grep -m1 "first snapshot live" | cut -c1-30 || true)
    if [ -z "$line" ]; then
      echo "$bin no_snapshot"
      continue
    fi
    t1=$(date -d "${line%Z*}Z" +%s%N)
    echo "$bin $(((t1 - t0) / 1000000))"
  done
done | awk '{ms[$1] = ms[$1] " " $2} END {for (b in ms) print b ":" ms[b]}'
