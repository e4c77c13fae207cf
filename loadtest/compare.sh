#!/usr/bin/env bash
# Side-by-side, in one run on one machine, all on loopback:
#   direct      oha → tollgate mock
#   nginx       oha → nginx (plain reverse proxy, keepalive upstream) → mock
#   plain       oha → examples/plain_proxy.rs (the smallest Pingora proxy: one fixed upstream,
#               Pingora's keep-alive pool, nothing else) → mock: the engine's own floor
#   tollgate    oha → tollgate, full pipeline (auth, filter with the demo rules, token limits,
#               budget, cache key + store, metrics, access log) → mock
#   cache-hit   oha → tollgate answering from its cache
#   translated  oha → tollgate, full pipeline, the OpenAI request translated for a backend that
#               speaks Anthropic's Messages API (the mock's /v1/messages), and its answer back
# each non-streaming and streaming (SSE, 16 events), at 1 connection (added latency) and at 16.
# For every run: requests/s, p50/p99, CPU seconds used by the proxy's processes, requests per proxy
# CPU-second, and the proxy's peak RSS during that run. Then the ratios: Tollgate against nginx
# and against the plain Pingora proxy.
#
#   loadtest/compare.sh                  # 10 s per run, ~3 minutes
#   DURATION=5s loadtest/compare.sh
#   MODES=json CONNS="1 16" TOLLGATE_BIN=/path/to/tollgate loadtest/compare.sh
#                                        # one mode, a given binary (see loadtest/ab.sh)
#
# Needs oha (`cargo install oha --locked`) and nginx (installed through apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNS=${CONNS:-1 16}
MODES=${MODES:-json stream}
THREADS=${THREADS:-2}
MOCK=127.0.0.1:19602; NGX=127.0.0.1:19603; GW=127.0.0.1:19604; ADMIN=127.0.0.1:19605
PLAIN=127.0.0.1:19606
KEY=key-compare; ADMIN_TOKEN=compare-admin-token
. loadtest/lib.sh
tg_setup
chmod 755 "$WORK"
tg_oha
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx-light"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx-light >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -n "${TOLLGATE_BIN:-}" ] || cargo build --release --quiet
# The plain Pingora proxy: PLAIN_BIN, or the example beside the binary under test, built if absent.
PLAIN_BIN=${PLAIN_BIN:-$(dirname "$BIN")/examples/plain_proxy}
if [ ! -x "$PLAIN_BIN" ]; then
  cargo build --release --quiet --example plain_proxy
  PLAIN_BIN=$TARGET_DIR/release/examples/plain_proxy
fi

# --- the servers -------------------------------------------------------------------------------
$BIN mock --listen "$MOCK" --threads "$THREADS" >"$WORK/mock.log" 2>&1 & PIDS+=($!)
"$PLAIN_BIN" "$PLAIN" "$MOCK" "$THREADS" >"$WORK/plain.log" 2>&1 & PLAIN_PID=$!; PIDS+=($PLAIN_PID)
# TG_TRACING=HOST:PORT: Tollgate exports traces to a collector there that discards them (its CPU
# is not the proxy's); TG_LEDGER=false: no ledger row per request (see lib.sh).
if [ -n "${TG_TRACING:-}" ]; then tg_otlp_sink "$TG_TRACING"; fi

mkdir -p "$WORK/nginx"
cat > "$WORK/nginx.conf" <<NGINX
worker_processes $THREADS;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log $WORK/nginx/access.log;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  client_max_body_size 8m;
  upstream mock { server $MOCK; keepalive 64; }
  server {
    listen $NGX;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;   # SSE: pass each event on as it comes, as an AI gateway must
    }
  }
}
NGINX
"$NGINX" -c "$WORK/nginx.conf" -e "$WORK/nginx/error.log" >"$WORK/nginx.out" 2>&1 & NGX_PID=$!; PIDS+=($NGX_PID)

# The full pipeline, with the organisation's content filter exactly as the demo ships it.
tg_pipeline "$GW" "$ADMIN" gw > "$WORK/tollgate.yaml"
$BIN check -c "$WORK/tollgate.yaml" >/dev/null
$BIN run -c "$WORK/tollgate.yaml" >"$WORK/gw.log" 2>&1 & GW_PID=$!; PIDS+=($GW_PID)

for _ in $(seq 1 100); do
  curl -sf "http://$MOCK/health" >/dev/null 2>&1 &&
    curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "http://$ADMIN/ready" >/dev/null 2>&1 &&
    curl -s -o /dev/null "http://$NGX/health" 2>/dev/null &&
    curl -sf -o /dev/null "http://$PLAIN/health" 2>/dev/null && break
  sleep 0.1
done
NGX_PIDS() { echo "$NGX_PID" $(pgrep -P "$NGX_PID" || true); }

# --- measurement -------------------------------------------------------------------------------
TCK=$(getconf CLK_TCK)
reset_peak() { local p; for p in "$@"; do echo 5 > "/proc/$p/clear_refs" 2>/dev/null || true; done; }
peak_kib() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/^VmHWM/ {print $2}' "/proc/$p/status"))); done; echo $t; }

PROMPT="Summarise the quarterly support tickets about login problems and suggest three improvements to the help-centre articles."
MODEL=gpt-4
body() { printf '{"model":"%s","stream":%s,"max_tokens":64,"messages":[{"role":"user","content":"%s"}]}' "$MODEL" "$1" "$PROMPT"; }

RESULTS=$WORK/results.tsv
OHA_EXTRA=()
run() { # target url stream conns pids... ; extra headers in $HDRS
  local target=$1 url=$2 stream=$3 conns=$4; shift 4
  local pids=("$@") before after
  # warm the connection pools (unless the caller did: SKIP_WARMUP), then measure
  [ -n "${SKIP_WARMUP:-}" ] || "$OHA" --no-tui -z 1s -c "$conns" -m POST -H "Content-Type: application/json" "${HDRS[@]}" \
    -d "$(body "$stream")" "$url" >/dev/null
  reset_peak "${pids[@]}"
  before=$(tg_cpu_ticks "${pids[@]}")
  "$OHA" --no-tui --output-format json -z "$DURATION" -c "$conns" "${OHA_EXTRA[@]}" -m POST -H "Content-Type: application/json" \
    "${HDRS[@]}" -d "$(body "$stream")" "$url" > "$WORK/oha.json"
  after=$(tg_cpu_ticks "${pids[@]}")
  python3 - "$target" "$stream" "$conns" "$((after - before))" "$TCK" "$(peak_kib "${pids[@]}")" "$WORK/oha.json" >>"$RESULTS" <<'PY'
import json, sys
target, stream, conns, ticks, tck, peak, path = sys.argv[1:]
r = json.load(open(path))
s, p = r["summary"], r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
total = sum(codes.values())
ok = codes.get("200", 0)
cpu = int(ticks) / int(tck)
print("\t".join(map(str, [target, "stream" if stream == "true" else "json", conns, f"{s['requestsPerSec']:.0f}",
    f"{p['p50']*1e6:.0f}", f"{p['p99']*1e6:.0f}", f"{cpu:.2f}", f"{ok/cpu:.0f}" if cpu else "-",
    f"{int(peak)/1024:.1f}", f"{ok}/{total}"])))
PY
}

: > "$RESULTS"
for mode in $MODES; do
  stream=$([ "$mode" = stream ] && echo true || echo false)
  for conns in $CONNS; do
    HDRS=(); run direct "http://$MOCK/v1/chat/completions" $stream "$conns" "$(pgrep -n -f "mock --listen $MOCK")"
    HDRS=(); run nginx "http://$NGX/v1/chat/completions" $stream "$conns" $(NGX_PIDS)
    HDRS=(); run plain "http://$PLAIN/v1/chat/completions" $stream "$conns" "$PLAIN_PID"
    HDRS=(-H "Authorization: Bearer $KEY" -H "Cache-Control: no-cache")
    run tollgate "http://$GW/v1/chat/completions" $stream "$conns" "$GW_PID"
    MODEL=claude-sonnet-4 run translated "http://$GW/v1/chat/completions" $stream "$conns" "$GW_PID"
    if [ $stream = false ]; then
      HDRS=(-H "Authorization: Bearer $KEY")
      run cache-hit "http://$GW/v1/chat/completions" $stream "$conns" "$GW_PID"
    fi
  done
done

# --- peers (loadtest/peers.sh) -----------------------------------------------------------------
# PEERS (default: every installed peer; `loadtest/peers.sh install` installs them) adds rows for
# litellm, portkey, grapsus and langdb: the same request to the same mock, with the peer's key
# where it has one. Each peer runs alone after the rows above and is stopped before the next one
# starts; its CPU and RSS are its whole process tree's. oha waits for the requests still in flight
# when a run ends (-w) instead of dropping them, since grapsus's circuit breaker counts a dropped
# client as an upstream failure (5 open it); grapsus is also warmed up with sequential requests.
# Before its rows, one stream through a mock with 20 ms between events says whether the peer
# passes SSE through as it comes (or buffers or breaks it).
. loadtest/peers.sh
PEER_BASE=${PEER_BASE:-19607}  # litellm, portkey, grapsus, langdb; +4 the slow mock; +5 a side port
PEER_SLOW=127.0.0.1:$((PEER_BASE + 4))
PEER_NOTES=$WORK/peer-notes.txt; : > "$PEER_NOTES"
trap 'peers_stop_all; tg_cleanup' EXIT
PEER_LIST=${PEERS-$(peers_installed | tr '\n' ' ')}
[ -n "${PEER_LIST// /}" ] || echo "peers: none installed (loadtest/peers.sh install)" | tee -a "$PEER_NOTES"
[ -z "${PEER_LIST// /}" ] ||
  { $BIN mock --listen "$PEER_SLOW" --threads 1 --chunk-delay-ms 20 >"$WORK/mock-slow.log" 2>&1 & PIDS+=($!); }
for name in $PEER_LIST; do
  if ! peer_is_installed "$name"; then
    echo "$name: not installed, skipped (loadtest/peers.sh install $name)" | tee -a "$PEER_NOTES"; continue
  fi
  port=$((PEER_BASE + $(tr ' ' '\n' <<<"$PEERS_ALL" | grep -nx "$name" | cut -d: -f1) - 1))
  peer_start "$name" "$port" "$MOCK" "$PEER_SLOW" $((PEER_BASE + 5))
  if ! peer_wait "$name"; then
    echo "$name: did not start, skipped" | tee -a "$PEER_NOTES"; peer_stop "$name"; continue
  fi
  peer_features "$name" >> "$PEER_NOTES"
  url=$(peer_url "$name")
  ! grep -qw stream <<<"$MODES" || peer_sse_check "$name" "$PEER_SLOW" | tee -a "$PEER_NOTES"
  OHA_EXTRA=(-w)
  for mode in $MODES; do
    stream=$([ "$mode" = stream ] && echo true || echo false)
    for conns in $CONNS; do
      peer_warmup "$name" "$url" "$(body "$stream")" "$conns"
      peer_headers "$name"; HDRS=("${PEER_HDRS[@]}")
      SKIP_WARMUP=1 run "$name" "$url" $stream "$conns" $(peer_pids "$name")
    done
  done
  OHA_EXTRA=()
  peer_stop "$name"
done
# --- end of peers ------------------------------------------------------------------------------

# --- report ------------------------------------------------------------------------------------
python3 - "$RESULTS" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
head = ["target", "mode", "conns", "req/s", "p50 µs", "p99 µs", "proxy CPU s", "req/CPU-s", "peak RSS MiB", "200s"]
w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
line = lambda cells: "| " + " | ".join(c.rjust(w[i]) if i > 1 else c.ljust(w[i]) for i, c in enumerate(cells)) + " |"
print(line(head)); print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in rows:
    if r[0] == "direct": r = r[:6] + ["(mock)", "-", r[8], r[9]]
    print(line(r))
get = {(r[0], r[1], r[2]): r for r in rows}
print()
# peers present in this run: one column each, Tollgate's requests per CPU-second over the peer's
peers = [p for p in ("litellm", "portkey", "grapsus", "langdb") if any(r[0] == p for r in rows)]
peer_head = "".join(f" tollgate req/CPU-s ÷ {p}'s |" for p in peers)
print("| mode | conns | tollgate/nginx req per CPU-s | cache-hit/nginx | added p50 µs (nginx, tollgate) | added p99 µs (nginx, tollgate) | translated CPU per request / tollgate's |" + peer_head)
print("|---|---|---|---|---|---|---|" + "---|" * len(peers))
for (t, mode, conns), r in get.items():
    if t != "tollgate": continue
    n, d, c = get.get(("nginx", mode, conns)), get.get(("direct", mode, conns)), get.get(("cache-hit", mode, conns))
    ratio = lambda a: f"{float(a[7]) / float(n[7]):.2f}" if a and a[7] != "-" and n[7] != "-" else "-"
    add = lambda a, i: f"{int(a[i]) - int(d[i])}"
    x = get.get(("translated", mode, conns))
    cost = f"{float(r[7]) / float(x[7]):.2f}" if x and x[7] != "-" and r[7] != "-" else "-"
    over = lambda p: f"{float(r[7]) / float(p[7]):.1f}" if p and p[7] != "-" and r[7] != "-" and float(p[7]) else "-"
    peer_cells = "".join(f" {over(get.get((p, mode, conns)))} |" for p in peers)
    print(f"| {mode} | {conns} | {ratio(r)} | {ratio(c)} | {add(n,4)}, {add(r,4)} | {add(n,5)}, {add(r,5)} | {cost} |" + peer_cells)
print()
print("| mode | conns | CPU µs per request (plain, tollgate, cache-hit) | tollgate CPU per request ÷ plain's | cache-hit ÷ plain's | added p50 µs (plain, tollgate) | added p99 µs (plain, tollgate) |")
print("|---|---|---|---|---|---|---|")
us = lambda a: 1e6 / float(a[7]) if a and a[7] not in ("-", "0") else None
for (t, mode, conns), r in get.items():
    if t != "tollgate": continue
    p, d, c = get.get(("plain", mode, conns)), get.get(("direct", mode, conns)), get.get(("cache-hit", mode, conns))
    if not p or not d: continue
    cp, ct, cc = us(p), us(r), us(c)
    f = lambda v: f"{v:.0f}" if v else "-"
    over = lambda v: f"{v / cp:.2f}" if v and cp else "-"
    add = lambda a, i: f"{int(a[i]) - int(d[i])}"
    print(f"| {mode} | {conns} | {f(cp)}, {f(ct)}, {f(cc)} | {over(ct)} | {over(cc)} | {add(p,4)}, {add(r,4)} | {add(p,5)}, {add(r,5)} |")
PY
if grep -q . "$PEER_NOTES"; then echo; echo "peers:"; sed 's/^/  /' "$PEER_NOTES"; fi
if grep -q . "$WORK/nginx/error.log" 2>/dev/null; then echo; echo "nginx error log:"; tail -5 "$WORK/nginx/error.log"; fi
