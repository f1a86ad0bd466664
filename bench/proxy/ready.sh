#!/usr/bin/env bash
# Startup-to-ready and RSS of Portcullis (local mode, release build) with N
# credentials: ready = the first request that passes key-auth (502: no
# upstream runs on the generated port; 200 if something else listens there); RSS read one second later. Two runs. cpu_ms is the
# process's user+system CPU time at that point: on a busy machine it varies
# far less than ready_ms. BIN=path runs another build (a before/after pair).
# CPUS=0,1 lets it use both cores (default: pinned to CPU 0, as in run.sh).
#
#   cargo build --release && bash bench/proxy/ready.sh 100000
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-100000}
work=$(mktemp -d /tmp/portcullis-ready.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 "$root/bench/proxy/gen.py" "$n" "$work" 19100
# Written out before timing: run 1 must not share the disk with the
# writeback of the files it reads.
sync
key=$(head -1 "$work/keys.txt")
# Key-auth passed: the request was forwarded (502 with no upstream; 200 when
# another program happens to listen on the upstream port).
passed() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "apikey: $1" "$2")
  [ "$code" = 502 ] || [ "$code" = 200 ]
}
for run in 1 2; do
  t0=$(date +%s%3N)
  RUST_LOG=${RUST_LOG:-error} taskset -c "${CPUS:-0}" "${BIN:-$root/target/release/portcullis}" run --manifests "$work/manifests" \
    --proxy-listen 127.0.0.1:19003 --admin-listen 127.0.0.1:19103 --proxy-tls-listen 127.0.0.1:19443 &
  pid=$!
  until passed "$key" http://127.0.0.1:19003/; do
    kill -0 "$pid" 2>/dev/null || { echo "portcullis exited" >&2; exit 1; }
    sleep 0.01
  done
  t1=$(date +%s%3N)
  sleep 1
  cpu_ms=$(awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$pid/stat")
  echo "run $run: N=$n ready_ms=$((t1 - t0)) cpu_ms=$cpu_ms rss_mb=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
