#!/usr/bin/env bash
# One-line edit in the big manifest file (local mode, release build): the key
# of the first credential Secret in the N-credential consumers.yaml is
# changed (written beside it, renamed over it, as editors do), and the time
# until the new key passes key-auth is measured (it gets 502: no upstream
# runs here). Three edits; RSS after each. BIN=path runs another build.
#
#   cargo build --release && bash bench/proxy/edit.sh 100000
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-100000}
work=$(mktemp -d /tmp/portcullis-edit.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 "$root/bench/proxy/gen.py" "$n" "$work" 19100
key=$(head -1 "$work/keys.txt")
# Key-auth passed: the request was forwarded (502 with no upstream; 200 when
# another program happens to listen on the upstream port).
passed() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "apikey: $1" "$2")
  [ "$code" = 502 ] || [ "$code" = 200 ]
}
file="$work/manifests/consumers.yaml"
RUST_LOG=${RUST_LOG:-error} taskset -c 0 "${BIN:-$root/target/release/portcullis}" run --manifests "$work/manifests" \
  --proxy-listen 127.0.0.1:19004 --admin-listen 127.0.0.1:19104 --proxy-tls-listen 127.0.0.1:19444 &
pid=$!
until passed "$key" http://127.0.0.1:19004/; do
  kill -0 "$pid" 2>/dev/null || { echo "portcullis exited" >&2; exit 1; }
  sleep 0.05
done
sleep 2
for i in 1 2 3; do
  new="edited-key-$i-$RANDOM"
  python3 - "$file" "$new" <<'PY'
import re, sys
path, new = sys.argv[1], sys.argv[2]
text = open(path).read()
open(path + ".tmp", "w").write(re.sub(r"stringData: \{key: [^}]*\}", "stringData: {key: %s}" % new, text, count=1))
PY
  t0=$(date +%s%3N)
  mv "$file.tmp" "$file"
  until passed "$new" http://127.0.0.1:19004/; do
    sleep 0.01
  done
  t1=$(date +%s%3N)
  echo "edit $i: N=$n propagation_ms=$((t1 - t0)) rss_mb=$(( $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") / 1024 ))"
  sleep 1
done
kill "$pid"; wait "$pid" 2>/dev/null || true
