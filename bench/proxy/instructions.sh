#!/usr/bin/env bash
# User-space instructions per request (valgrind callgrind): Portcullis and
# nginx (same configuration as run.sh) in front of the same upstream.
# Instruction counts do not depend on what else the machine is doing, so
# this is the A/B to use on a busy machine; run.sh gives the wall-clock side.
#
#   bench/proxy/instructions.sh                    scenarios valid invalid open, N = 10
#   SCENARIOS=valid BIN=/path/to/portcullis bench/proxy/instructions.sh
#   N=100000 CONTESTANTS=portcullis bench/proxy/instructions.sh   N credentials (default 10)
#   KEEP=/tmp/dumps bench/proxy/instructions.sh    keeps the callgrind dumps for callgrind_annotate
#
# Caveat: valgrind does not run SHA-NI instructions, so sha2 falls back to
# its portable code under callgrind (~3.5k instructions per digest instead
# of a few hundred on CPUs with SHA-NI): key-auth scenarios read high by
# about that much. Needs: nginx, wrk, valgrind, curl, python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/proxy"
bin=${BIN:-$root/target/release/portcullis}
DURATION=${DURATION:-5s}
read -r -a SCENARIOS <<<"${SCENARIOS:-valid invalid open}"
read -r -a CONTESTANTS <<<"${CONTESTANTS:-portcullis nginx}"
UPSTREAM=29100
PORT=29001
for tool in nginx wrk valgrind callgrind_annotate curl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done

work=$(mktemp -d /tmp/portcullis-instr.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
render() { sed -e "s#@DIR@#$work#g" -e "s#@UPSTREAM@#$UPSTREAM#g" -e "s#@PORT@#$2#g" "$here/$1" > "$work/$1"; }

python3 "$here/gen.py" "${N:-10}" "$work" "$UPSTREAM"
key=$(head -1 "$work/keys.txt")
render upstream.conf "$UPSTREAM"
render nginx-proxy.conf "$PORT"
# One process, so callgrind sees the worker.
sed -i '1i master_process off;' "$work/nginx-proxy.conf"
printf '{\n  "message":"No API key found in request"\n}' > "$work/no-key.json"
printf '{\n  "message":"Invalid authentication credentials"\n}' > "$work/invalid.json"
nginx -c "$work/upstream.conf" -g 'daemon off;' &
pids+=($!)

for name in "${CONTESTANTS[@]}"; do
  out="$work/$name.callgrind"
  case $name in
    portcullis)
      RUST_LOG=error valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$bin" run \
        --manifests "$work/manifests" --proxy-listen "127.0.0.1:$PORT" --admin-listen 127.0.0.1:29101 \
        --proxy-tls-listen 127.0.0.1:29443 2>"$work/$name.log" & ;;
    nginx)
      valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
        nginx -c "$work/nginx-proxy.conf" -g 'daemon off;' 2>"$work/$name.log" & ;;
  esac
  pid=$!
  until curl -fs -o /dev/null -H "apikey: $key" "http://127.0.0.1:$PORT/"; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.log" >&2; exit 1; }
    sleep 1
  done
  for scenario in "${SCENARIOS[@]}"; do
    url="http://127.0.0.1:$PORT/"; header="apikey: $key"
    case $scenario in
      invalid) header="apikey: not-a-key" ;;
      open) url="${url}open"; header="x-open: 1" ;;
    esac
    wrk -t1 -c8 -d2s -H "$header" "$url" >/dev/null # warm: connections and pools
    callgrind_control -z "$pid" >/dev/null 2>&1
    callgrind_control -i on "$pid" >/dev/null 2>&1
    requests=$(wrk -t1 -c8 -d"$DURATION" -H "$header" "$url" | awk '/requests in/ {print $1}')
    callgrind_control -i off "$pid" >/dev/null 2>&1
    callgrind_control -d "$pid" >/dev/null 2>&1
    dump=$(ls -t "$out".* | head -1)
    total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    echo "$name $scenario: $((total / requests)) instructions/request ($requests requests)"
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$dump" "$KEEP/$name-$scenario.callgrind"; fi
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
