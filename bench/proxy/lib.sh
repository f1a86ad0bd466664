# Shared by bench/proxy/run.sh and bench/proxy/pairs.sh (sourced, not run):
# the contestants' ports, starting and stopping them, the functional check
# and one wrk load with the proxy's CPU time over it. Expects `root`, `here`
# and `bin` set by the caller. The contestant `portcullis-b` is a second
# build (BIN_B=/path/to/portcullis) for an A/B of two builds in one run.
# The contestant `floor` (floor.c) is the least a proxy can do per request
# here: its ratio against nginx is the best any proxy could reach.
# RATE=<req/s> offers every contestant the same fixed rate (h2load --rps,
# rounded down to a multiple of CONNS) instead of wrk's as-fast-as-it-goes:
# CPU per request compared at equal work, where neither core is saturated.
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
UPSTREAM=19100
declare -A PORT=([nginx]=19001 [haproxy]=19002 [portcullis]=19003 [portcullis-b]=19004 [floor]=19005)

for tool in nginx haproxy wrk curl python3 taskset ${RATE:+h2load}; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx haproxy wrk nghttp2-client)" >&2; exit 2; }
done
if [ -n "${RATE:-}" ] && ! [ "$RATE" -ge "$CONNS" ] 2>/dev/null; then
  echo "RATE must be a number of requests per second, at least CONNS ($CONNS)" >&2; exit 2
fi
[ -x "$bin" ] || { echo "missing $bin: run cargo build --release" >&2; exit 2; }

work=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

render() { sed -e "s#@DIR@#$work#g" -e "s#@UPSTREAM@#$UPSTREAM#g" -e "s#@PORT@#$2#g" "$here/$1" > "$work/$1"; }
now_ms() { date +%s%3N; }
ticks() { # "utime stime" of processes, all their threads (clock ticks)
  local user=0 sys=0 p u s
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat")
    user=$((user + u)); sys=$((sys + s))
  done
  echo "$user $sys"
}
rss_kb() { local total=0 p; for p in "$@"; do total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo "$total"; }

# Processes that do the work, for CPU and RSS (nginx: master + worker).
proc_pids() { local p=$1; echo "$p $(pgrep -P "$p" | tr '\n' ' ')"; }

start() { # name -> sets STARTED_PID, READY_MS
  local name=$1 port=${PORT[$1]} t0
  # Built once per run, before the clock starts: readiness is the floor's own.
  if [ "$name" = floor ] && [ ! -x "$work/floor" ]; then cc -O2 -o "$work/floor" "$here/floor.c"; fi
  t0=$(now_ms)
  case $name in
    nginx)
      render nginx-proxy.conf "$port"
      taskset -c "$PROXY_CPU" nginx -c "$work/nginx-proxy.conf" -g 'daemon off;' & ;;
    haproxy)
      render haproxy.cfg "$port"
      taskset -c "$PROXY_CPU" haproxy -db -f "$work/haproxy.cfg" & ;;
    portcullis)
      RUST_LOG=warn taskset -c "$PROXY_CPU" "$bin" run --manifests "$work/manifests" \
        --proxy-listen "127.0.0.1:$port" --admin-listen 127.0.0.1:19103 --proxy-tls-listen 127.0.0.1:19443 & ;;
    portcullis-b)
      [ -x "${BIN_B:-}" ] || { echo "portcullis-b needs BIN_B=/path/to/portcullis" >&2; exit 2; }
      RUST_LOG=warn taskset -c "$PROXY_CPU" "$BIN_B" run --manifests "$work/manifests" \
        --proxy-listen "127.0.0.1:$port" --admin-listen 127.0.0.1:19104 --proxy-tls-listen 127.0.0.1:19444 & ;;
    floor)
      local user id cred
      read -r user id cred <<<"$(sed -e 's/user=//' -e 's/ id=/ /' -e 's/ cred=/ /' "$work/identity.txt")"
      taskset -c "$PROXY_CPU" "$work/floor" "$port" "$UPSTREAM" "$(head -1 "$work/keys.txt")" "$user" "$id" "$cred" & ;;
  esac
  STARTED_PID=$!
  pids+=("$STARTED_PID")
  # Ready = the first correct answer (Portcullis: /readyz and then a proxied request).
  until curl -fs -o /dev/null -H "apikey: $(head -1 "$work/keys.txt")" "http://127.0.0.1:$port/"; do
    kill -0 "$STARTED_PID" 2>/dev/null || { echo "$name died" >&2; exit 1; }
    sleep 0.005
  done
  READY_MS=$(( $(now_ms) - t0 ))
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

expect() { # name url header expected-status expected-body-substring
  local out status body
  out=$(curl -s -w '\n%{http_code}' ${3:+-H "$3"} "$2")
  status=${out##*$'\n'}
  body=${out%$'\n'*}
  if [ "$status" != "$4" ] || [[ "$body" != *"$5"* ]]; then
    echo "FUNCTIONAL MISMATCH ($1): $2 [$3] -> $status '$body', want $4 '$5'" >&2
    exit 1
  fi
}

check() { # name: same answers as Kong
  local name=$1 url="http://127.0.0.1:${PORT[$1]}" key
  key=$(head -1 "$work/keys.txt")
  if [ "$name" = floor ]; then # forwards the first key and /open, refuses anything else; nothing more
    expect "$name" "$url/" "apikey: $key" 200 "$(cat "$work/identity.txt")"
    expect "$name" "$url/" "apikey: not-a-key" 401 '"message":"Invalid authentication credentials"'
    expect "$name" "$url/open" "" 200 "user= id= cred="
    return
  fi
  expect "$name" "$url/" "" 401 '{
  "message":"No API key found in request"
}'
  expect "$name" "$url/" "apikey: not-a-key" 401 '"message":"Invalid authentication credentials"'
  # The upstream echoes the identity headers it got: the same for everyone.
  expect "$name" "$url/" "apikey: $key" 200 "$(cat "$work/identity.txt")"
  expect "$name" "$url/?apikey=$key" "" 200 "$(cat "$work/identity.txt")"
  expect "$name" "$url/open" "X-Consumer-ID: forged" 200 "user= id= cred="
  curl -s -D - -o /dev/null "$url/" | grep -qi '^www-authenticate: Key realm="kong"' \
    || { echo "FUNCTIONAL MISMATCH ($name): no WWW-Authenticate" >&2; exit 1; }
  # Headers every proxied response carries.
  local head; head=$(curl -s -D - -o /dev/null -H "apikey: $key" "$url/")
  for field in via x-kong-upstream-latency x-kong-proxy-latency; do
    grep -qi "^$field:" <<<"$head" || { echo "FUNCTIONAL MISMATCH ($name): no $field" >&2; exit 1; }
  done
}

load_core() { # "total idle" jiffies of the load CPU (wrk and the upstream)
  awk -v cpu="cpu$LOAD_CPU" '$1 == cpu { total = 0; for (i = 2; i <= NF; i++) total += $i; print total, $5 + $6 }' /proc/stat
}

# The load CPU's busy share says who set the pace: near 100 %, wrk and the
# upstream could not go faster, and no proxy could have shown more req/s.
load() { # name scenario pid -> prints "rps p50_ms p99_ms cpu_us_per_req non2xx user_us_per_req load_cpu_busy_pct"
  local name=$1 scenario=$2 pid=$3 url="http://127.0.0.1:${PORT[$1]}/" header="" key out before after reqs
  key=$(head -1 "$work/keys.txt")
  case $scenario in
    valid) header="apikey: $key" ;;
    invalid) header="apikey: not-a-key" ;;
    open) url="${url}open" ;;
  esac
  local procs; procs=$(proc_pids "$pid")
  local core_before core_after
  before=$(ticks $procs); core_before=$(load_core)
  if [ -n "${RATE:-}" ]; then
    out=$(taskset -c "$LOAD_CPU" h2load --h1 -t1 -c"$CONNS" --rps=$((RATE / CONNS)) -D"$DURATION" ${header:+-H "$header"} "$url")
    reqs=$(awk '/^requests:/ {print $6}' <<<"$out")
  else
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" --latency ${header:+-H "$header"} "$url")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  fi
  after=$(ticks $procs); core_after=$(load_core)
  python3 - "$out" "$before" "$after" "$reqs" "$(getconf CLK_TCK)" "$core_before" "$core_after" <<'PY'
import re, sys
out, reqs, tck = sys.argv[1], int(sys.argv[4] or 0), int(sys.argv[5])
(u0, s0), (u1, s1) = (map(int, sys.argv[i].split()) for i in (2, 3))
(t0, i0), (t1, i1) = (map(int, sys.argv[i].split()) for i in (6, 7))
load_busy = 100 * (1 - (i1 - i0) / (t1 - t0)) if t1 > t0 else float("nan")
def ms(s):
    # wrk prints e.g. "812.00us", "1.02ms", "1.20s"; anything else (it has
    # printed "-nan") is not a number and the round is left out.
    m = re.match(r"[\d.]+", s)
    if not m:
        return float("nan")
    v = float(m.group())
    return v / 1000 if s.endswith("us") else v * 1000 if s.endswith("s") and not s.endswith("ms") else v
per_req = lambda ticks: ticks * 1e6 / tck / max(reqs, 1)
cpu_us, user_us = per_req(u1 - u0 + s1 - s0), per_req(u1 - u0)
h2load = re.search(r"finished in \S+, ([\d.]+) req/s", out)
if h2load:
    # A fixed rate: h2load reports no percentiles, so latency is left out;
    # a reply other than 2xx/3xx, and a request that failed, count as non-2xx.
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    failed = re.search(r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    bad = (int(codes.group(3)) + int(codes.group(4)) if codes else 0) + (int(failed.group(1)) if failed else 0)
    print(f"{float(h2load.group(1)):.0f} nan nan {cpu_us:.1f} {bad} {user_us:.1f} {load_busy:.0f}")
    sys.exit(0)
try:
    re.search(r"50%\s+(\S+)", out).group(1) and re.search(r"Requests/sec:", out).group()
except AttributeError:
    # Keep the run going; the round is left out of the medians.
    print("unparsable wrk output:\n" + out, file=sys.stderr)
    print("nan nan nan nan 0 nan nan")
    sys.exit(0)
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p50 = ms(re.search(r"50%\s+(\S+)", out).group(1))
p99 = ms(re.search(r"99%\s+(\S+)", out).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {cpu_us:.1f} {non2xx.group(1) if non2xx else 0} {user_us:.1f} {load_busy:.0f}")
PY
}

# The shared upstream, on the load CPU: upstream.c by default, or nginx
# (upstream.conf) with UPSTREAM_SERVER=nginx, as every run before 2026-12-06
# (fourteenth session) had it. nginx took about half of the load CPU.
start_upstream() {
  case ${UPSTREAM_SERVER:-c} in
    c)
      cc -O2 -o "$work/upstream" "$here/upstream.c"
      taskset -c "$LOAD_CPU" "$work/upstream" "$UPSTREAM" & ;;
    nginx)
      render upstream.conf "$UPSTREAM"
      taskset -c "$LOAD_CPU" nginx -c "$work/upstream.conf" -g 'daemon off;' & ;;
    *) echo "UPSTREAM_SERVER must be c or nginx" >&2; exit 2 ;;
  esac
  local pid=$!
  pids+=("$pid")
  until curl -fs -m 1 -o /dev/null "http://127.0.0.1:$UPSTREAM/"; do
    kill -0 "$pid" 2>/dev/null || { echo "the upstream died" >&2; exit 1; }
    sleep 0.05
  done
}

generate() { # n: the same n credentials for every contestant, and Kong's 401 bodies
  rm -rf "$work/manifests"
  python3 "$here/gen.py" "$1" "$work" "$UPSTREAM"
  printf '{\n  "message":"No API key found in request"\n}' > "$work/no-key.json"
  printf '{\n  "message":"Invalid authentication credentials"\n}' > "$work/invalid.json"
}
