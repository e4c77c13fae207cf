#!/usr/bin/env bash
# Capacity figures, all on loopback, every run bounded in time:
#   - idle RSS of the gateway;
#   - STREAMS (2,000) concurrent SSE streams (mock: 30 events, 100 ms apart) direct to the mock and
#     through the gateway: completed, time to first event, inter-event gap p50/p99/max, and the
#     gap the gateway adds;
#   - peak RSS with 1,000 streams open;
#   - RSS with 100,000 consumers configured;
#   - a 1 MiB prompt at 1 connection: p50/p99 direct and through the gateway (filter included).
#
#   loadtest/capacity.sh
set -euo pipefail
cd "$(dirname "$0")/.."

STREAMS=${STREAMS:-2000}
MOCK=127.0.0.1:19702; GW=127.0.0.1:19704; ADMIN=127.0.0.1:19705; GW2=127.0.0.1:19706; ADMIN2=127.0.0.1:19707
KEY=key-capacity; ADMIN_TOKEN=capacity-admin-token
. loadtest/lib.sh
tg_setup
TOOL=$TARGET_DIR/release/examples/sse_streams
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
tg_oha
cargo build --release --quiet --bin tollgate --example sse_streams

config() { # listen admin consumers-file
  tg_server "$1" "$2"
  tg_backends "$MOCK" "$1" "max_context_tokens: 4000000"
  echo "cache: {enabled: true, scope: consumer, ttl_seconds: 300, max_entries: 1000, max_bytes: 67108864}"
  tg_demo_filter
  cat "$3"
}
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

cat > "$WORK/one.yaml" <<YAML
consumers:
  - {id: capacity, team: Capacity, role: standard, key_sha256: "$($BIN hash-key $KEY)", daily_budget_usd: 1000000,
     tokens_per_minute: 1000000000, tokens_per_hour: 1000000000, tokens_per_day: 1000000000}
YAML
$BIN mock --listen "$MOCK" --threads 2 --chunks 30 --chunk-delay-ms 100 >"$WORK/mock.log" 2>&1 & PIDS+=($!)
config "$GW" "$ADMIN" "$WORK/one.yaml" > "$WORK/gw.yaml"
$BIN run -c "$WORK/gw.yaml" >"$WORK/gw.log" 2>&1 & GW_PID=$!; PIDS+=($GW_PID)
tg_wait_ready "$ADMIN"
sleep 1
echo "idle RSS: $(rss_mib $GW_PID) MiB"

summary() { python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
t, g = r["ttft_us"], r["gap_us"]
print("%-9s streams %d, completed %d, failed %d %s, peak open %d, events %d; first event p50 %.1f ms p99 %.1f ms; gap p50 %.2f ms p99 %.2f ms max %.2f ms"
      % (sys.argv[1], r["streams"], r["completed"], r["failed"], r["errors"] or "", r["peak_open"], r["events"],
         t["p50"]/1000, t["p99"]/1000, g["p50"]/1000, g["p99"]/1000, g["max"]/1000))
' "$1"; }
echo 5 > "/proc/$GW_PID/clear_refs"
"$TOOL" "http://$GW/v1/chat/completions" 1000 500 "$KEY" > "$WORK/thousand.json"
summary 1000 < "$WORK/thousand.json"
echo "peak RSS with 1000 streams (fresh gateway): $(hwm_mib $GW_PID) MiB"
"$TOOL" "http://$MOCK/v1/chat/completions" "$STREAMS" 1000 > "$WORK/direct.json"
summary direct < "$WORK/direct.json"
echo 5 > "/proc/$GW_PID/clear_refs"
before=$(tg_cpu_ticks "$GW_PID")
"$TOOL" "http://$GW/v1/chat/completions" "$STREAMS" 1000 "$KEY" > "$WORK/gateway.json"
after=$(tg_cpu_ticks "$GW_PID")
summary gateway < "$WORK/gateway.json"
echo "peak RSS with $STREAMS streams: $(hwm_mib $GW_PID) MiB"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); t=int(sys.argv[2])/int(sys.argv[3]); print("gateway CPU for the %d-stream run: %.2f s, %.1f us per event" % (r["streams"], t, t*1e6/max(r["events"],1)))' \
  "$WORK/gateway.json" "$((after - before))" "$(getconf CLK_TCK)"
python3 - "$WORK/direct.json" "$WORK/gateway.json" <<'PY'
import json, sys
d, g = (json.load(open(p)) for p in sys.argv[1:])
print(f"added inter-event gap: p50 {(g['gap_us']['p50'] - d['gap_us']['p50'])/1000:.2f} ms, "
      f"p99 {(g['gap_us']['p99'] - d['gap_us']['p99'])/1000:.2f} ms")
PY

# A 1 MiB prompt (ordinary prose, so the filter passes it), at 1 connection.
python3 - "$WORK/big.json" <<'PY'
import json, sys
words = "the support team reviewed the quarterly tickets about login problems and wrote a summary".split()
text = " ".join(words[i % len(words)] for i in range(200000))[: 1 << 20]
json.dump({"model": "gpt-4", "max_tokens": 16, "messages": [{"role": "user", "content": text}]}, open(sys.argv[1], "w"))
PY
big() { # name url extra-headers...
  local name=$1 url=$2; shift 2
  "$OHA" --no-tui --output-format json -z 5s -c 1 -m POST -H "Content-Type: application/json" "$@" \
    -D "$WORK/big.json" "$url" | python3 -c '
import json, sys
r = json.load(sys.stdin); p = r["latencyPercentiles"]
print(sys.argv[1], round(p["p50"]*1e6), round(p["p99"]*1e6), r["statusCodeDistribution"])' "$name"
}
{ big direct "http://$MOCK/v1/chat/completions"; big gateway "http://$GW/v1/chat/completions" -H "Authorization: Bearer $KEY" -H "Cache-Control: no-store"; } > "$WORK/big.txt"
python3 - "$WORK/big.txt" <<'PY'
import sys
rows = {l.split()[0]: l.split(None, 3) for l in open(sys.argv[1])}
for name, (_, p50, p99, codes) in rows.items():
    print(f"1 MiB prompt, {name:<8} p50 {int(p50)/1000:.2f} ms, p99 {int(p99)/1000:.2f} ms, statuses {codes}")
d, g = rows["direct"], rows["gateway"]
print(f"1 MiB prompt, added p50 {(int(g[1]) - int(d[1]))/1000:.2f} ms")
PY

# 100,000 consumers configured.
python3 - "$WORK/many.yaml" <<'PY'
import hashlib, sys
with open(sys.argv[1], "w") as f:
    f.write("consumers:\n")
    for i in range(100000):
        digest = hashlib.sha256(f"key-consumer-{i}".encode()).hexdigest()
        f.write(f'  - {{id: consumer-{i}, team: Team {i % 100}, key_sha256: "{digest}", daily_budget_usd: 10, '
                f'tokens_per_minute: 10000, tokens_per_hour: 100000, tokens_per_day: 1000000}}\n')
PY
config "$GW2" "$ADMIN2" "$WORK/many.yaml" > "$WORK/many-gw.yaml"
$BIN run -c "$WORK/many-gw.yaml" >"$WORK/gw2.log" 2>&1 & GW2_PID=$!; PIDS+=($GW2_PID)
tg_wait_ready "$ADMIN2"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer key-consumer-99999" -H "Content-Type: application/json" \
  -d '{"model":"gpt-4","max_tokens":16,"messages":[{"role":"user","content":"hello"}]}' "http://$GW2/v1/chat/completions")
sleep 1
echo "100,000 consumers: RSS $(rss_mib $GW2_PID) MiB (peak while loading $(hwm_mib $GW2_PID) MiB); the last consumer's key answered $code"
