#!/usr/bin/env bash
# Regenerates build/symbol-order.txt: the functions Portcullis
# runs, for the linker to place together (build.rs passes the file to lld
# for release builds). The functions that run are ~1.8 MB of the binary's
# 12 MB of code, but in link order they are spread over most of its pages,
# and every page touched stays resident: 7 MB of RSS for 1.8 MB of code.
# Together they take ~4 MB less (docs/benchmarks.md, "Code laid out by
# use").
#
#   bash scripts/symbol-order.sh     (then `cargo build --release` again)
#
# It builds the release binary first (unless BIN names one): `cargo bench`
# writes its own build to target/release/portcullis, and the bench
# profile's function names differ from the release profile's, so a list
# made from it matched half the release build's names (resident code 5.4
# MB instead of 3).
#
# The list is made under valgrind (callgrind, mangled names): a start with
# 5,000 credentials, then requests of every kind the proxy serves (valid
# key, 401, open route, TLS, HTTP/2, admin endpoints, a manifest edit).
# Functions that ran while serving come first, busiest first, then those
# only startup ran, then those only cluster mode ran (a start against the
# test API server with 2,000 credentials, status writes, key rotations). Names that later builds no longer have are ignored by
# the linker; functions missing from the list still link, after the others,
# but each costs up to 64 KB of resident code (the kernel maps the pages
# around a fault): run this again after changing startup or serving code.
# Needs: valgrind, nginx, wrk, curl, python3 (and cargo, for the cluster-mode
# run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BIN:-}" ]; then
  (cd "$root" && cargo build --release --locked)
fi
bin=${BIN:-$root/target/release/portcullis}
out=${OUT:-$root/build/symbol-order.txt}
UPSTREAM=29200
PORT=29201
for tool in valgrind callgrind_control callgrind_annotate nginx wrk curl python3 nm; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done
work=$(mktemp -d /tmp/portcullis-order.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 "$root/bench/proxy/gen.py" 5000 "$work" "$UPSTREAM" >/dev/null
sed -e "s#@DIR@#$work#g" -e "s#@UPSTREAM@#$UPSTREAM#g" "$root/bench/proxy/upstream.conf" >"$work/upstream.conf"
nginx -c "$work/upstream.conf" -g 'daemon off;' &
pids+=($!)
key=$(head -1 "$work/keys.txt")

RUST_LOG=error valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.out" "$bin" run \
  --manifests "$work/manifests" --proxy-listen "127.0.0.1:$PORT" --admin-listen 127.0.0.1:29202 \
  --proxy-tls-listen 127.0.0.1:29203 2>"$work/portcullis.log" &
pid=$!
pids+=($pid)
until curl -fs -o /dev/null -H "apikey: $key" "http://127.0.0.1:$PORT/"; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/portcullis.log" >&2; exit 1; }
  sleep 1
done
# What startup ran, dumped apart from what serving runs.
callgrind_control -d "$pid" >/dev/null

for header in "apikey: $key" "apikey: not-a-key" "x-open: 1"; do
  path=/; [ "$header" = "x-open: 1" ] && path=/open
  wrk -t1 -c8 -d2s -H "$header" "http://127.0.0.1:$PORT$path" >/dev/null
done
curl -fsk -o /dev/null -H "apikey: $key" https://127.0.0.1:29203/ || true
curl -fs -o /dev/null --http2-prior-knowledge -H "apikey: $key" "http://127.0.0.1:$PORT/" || true
for endpoint in healthz readyz metrics; do curl -fs -o /dev/null "http://127.0.0.1:29202/$endpoint" || true; done
# A manifest edit: the folder's reload and an incremental translation.
consumers=$(grep -l "kind: KongConsumer" "$work"/manifests/* | head -1)
echo "# edited" >>"$consumers"
sleep 3
kill -INT "$pid"
wait "$pid" || true

# Cluster mode: the same binary against the test API server (the
# propagation bench's MODE=process), 2,000 credentials with status
# reporting on, then key rotations. Its own code (the Kubernetes client,
# watches, status writes) comes after local mode's. `cargo bench` puts its
# own build in target/release: the copy is what is profiled, and what is
# put back after.
cp "$bin" "$work/portcullis"
(cd "$root" && N=2000 CHANGES=20 MODE=process QUIET_S=1 BIN="$work/portcullis" \
  WRAP="valgrind --tool=callgrind --demangle=no --callgrind-out-file=$work/cluster.out" \
  cargo bench --locked --bench propagation) >"$work/cluster.log" 2>&1 || { cat "$work/cluster.log" >&2; exit 1; }
[ -n "${BIN:-}" ] || cp --remove-destination "$work/portcullis" "$bin"
[ -s "$work/cluster.out" ] || { echo "no cluster-mode profile" >&2; cat "$work/cluster.log" >&2; exit 1; }

# Self cost of each function of the binary in one dump, busiest first.
costs() {
  callgrind_annotate --threshold=100 "$1" 2>/dev/null | python3 -c '
import re, sys, collections
cost = collections.Counter()
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+\S*:(\S+)(\s+\[.*\])?\s*$", line)
    if m:
        cost[m.group(2)] += int(m.group(1).replace(",", ""))
for name, _ in cost.most_common():
    print(name)
'
}
startup=$(ls "$work"/cg.out.* | head -1)
mkdir -p "$(dirname "$out")"
{
  echo "# Functions Portcullis runs (local mode, then what cluster mode adds), for"
  echo "# lld --symbol-ordering-file (see build.rs). Made by scripts/symbol-order.sh; do not edit."
  { costs "$work/cg.out"; costs "$startup"; costs "$work/cluster.out"; } | python3 -c '
import subprocess, sys
defined = set()
for line in subprocess.run(["nm", "--defined-only", sys.argv[1]], capture_output=True, text=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] in "tTwW":
        defined.add(parts[2])
seen = set()
for name in sys.stdin:
    name = name.strip()
    if name in defined and name not in seen:
        seen.add(name)
        print(name)
' "$work/portcullis"
} >"$out"
echo "$(grep -vc '^#' "$out") functions -> $out"
