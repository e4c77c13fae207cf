#!/usr/bin/env bash
# Many configured consumers, all on loopback, every run bounded in time:
#   - startup: from the process's start until the admin plane answers /ready, and the CPU time
#     the gateway used by then (the figure a busy machine moves least);
#   - RSS after start (once ready, 1 s later) and the peak RSS of the start (VmHWM);
#   - a SIGHUP reload of the same file (one comment changed, so its version changes) while a
#     light steady load runs (oha at RATE requests/s over CONNS connections, DURATION long):
#     the reload's time (SIGHUP until /admin/config shows the new version), the peak RSS while it
#     ran, the RSS after it, and the latency p50/p99/max of the requests that overlapped the
#     reload and of the whole run.
#
#   loadtest/consumers.sh            CONSUMERS (100000), RATE (200), CONNS (2), DURATION (8)
#
# Each consumer is a one-line flow mapping with a key digest, a budget and three token limits, as
# in capacity.sh; one more consumer (key-consumers-load, limits out of the way) carries the load.
set -euo pipefail
cd "$(dirname "$0")/.."

CONSUMERS=${CONSUMERS:-100000}; RATE=${RATE:-200}; CONNS=${CONNS:-2}; DURATION=${DURATION:-8}
MOCK=127.0.0.1:19630; GW=127.0.0.1:19631; ADMIN=127.0.0.1:19632
KEY=key-consumers-load; ADMIN_TOKEN=consumers-admin-token
. loadtest/lib.sh
tg_setup
tg_oha
if [ -z "${TOLLGATE_BIN:-}" ]; then cargo build --release --quiet --bin tollgate; fi

rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }

python3 - "$WORK/consumers.yaml" "$CONSUMERS" <<'PY'
import hashlib, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        digest = hashlib.sha256(f"key-consumer-{i}".encode()).hexdigest()
        f.write(f'  - {{id: consumer-{i}, team: Team {i % 100}, key_sha256: "{digest}", daily_budget_usd: 10, '
                f'tokens_per_minute: 10000, tokens_per_hour: 100000, tokens_per_day: 1000000}}\n')
PY
config() { # version-comment
  echo "# $1"
  tg_server "$GW" "$ADMIN"
  tg_backends "$MOCK" consumers
  echo "consumers:"
  tg_consumer load "$KEY"
  cat "$WORK/consumers.yaml"
}
config one > "$WORK/gw.yaml"
echo "configuration: $((CONSUMERS + 1)) consumers, $(( $(stat -c %s "$WORK/gw.yaml") / 1024 )) KiB"

$BIN mock --listen "$MOCK" --threads 1 >"$WORK/mock.log" 2>&1 & PIDS+=($!)
start=$(now_ns)
$BIN run -c "$WORK/gw.yaml" >"$WORK/gw.log" 2>&1 & GW_PID=$!; PIDS+=($GW_PID)
ready=
for _ in $(seq 1 3000); do # 30 s at most
  if curl -sf -o /dev/null -H "Authorization: Bearer $ADMIN_TOKEN" "http://$ADMIN/ready"; then
    ready=$(ms_since "$start"); break
  fi
  kill -0 "$GW_PID" 2>/dev/null || { echo "the gateway exited:" >&2; cat "$WORK/gw.log" >&2; exit 1; }
  sleep 0.01
done
[ -n "$ready" ] || { echo "the gateway never became ready" >&2; exit 1; }
cpu=$(tg_cpu_ticks "$GW_PID")
echo "startup (process start to ready): $ready ms; CPU used by then: $((cpu * 1000 / $(getconf CLK_TCK))) ms"
sleep 1
echo "RSS after start: $(rss_mib $GW_PID) MiB; peak RSS while starting: $(hwm_mib $GW_PID) MiB"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer key-consumer-$((CONSUMERS - 1))" \
  -H "Content-Type: application/json" -d '{"model":"gpt-4","max_tokens":16,"messages":[{"role":"user","content":"hello"}]}' \
  "http://$GW/v1/chat/completions")
echo "the last consumer's key answered $code"

version() {
  curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "http://$ADMIN/admin/config" | grep -o '"version":"[0-9a-f]*"'
}
before=$(version)
config two > "$WORK/gw.yaml.new" && mv "$WORK/gw.yaml.new" "$WORK/gw.yaml"
echo 5 > "/proc/$GW_PID/clear_refs" # the peak below is the reload's
body='{"model":"gpt-4","max_tokens":16,"messages":[{"role":"user","content":"Say hello to the reload test."}]}'
oha_start=$(now_ns)
"$OHA" --no-tui --output-format json -z "${DURATION}s" -q "$RATE" -c "$CONNS" -m POST \
  -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" -H "Cache-Control: no-store" \
  -d "$body" --db-url "$WORK/requests.db" "http://$GW/v1/chat/completions" >"$WORK/oha.json" 2>"$WORK/oha.err" &
OHA_PID=$!; PIDS+=($OHA_PID)
sleep 2
hup=$(now_ns)
kill -HUP "$GW_PID"
done_ns=
for _ in $(seq 1 3000); do # 30 s at most
  v=$(version || true)
  if [ -n "$v" ] && [ "$v" != "$before" ]; then done_ns=$(now_ns); break; fi
  sleep 0.005
done
[ -n "$done_ns" ] || { echo "the reload never finished:" >&2; tail "$WORK/gw.log" >&2; exit 1; }
echo "reload (SIGHUP to new version served): $(( (done_ns - hup) / 1000000 )) ms; peak RSS while reloading: $(hwm_mib $GW_PID) MiB"
wait "$OHA_PID" || true
sleep 1
echo "RSS after the reload: $(rss_mib $GW_PID) MiB"
python3 - "$WORK/requests.db" "$WORK/oha.json" "$(( (hup - oha_start) ))" "$(( (done_ns - oha_start) ))" <<'PY'
import json, sqlite3, sys
db, summary, hup, done = sys.argv[1], sys.argv[2], int(sys.argv[3]) / 1e9, int(sys.argv[4]) / 1e9
rows = sqlite3.connect(db).execute("select start, end, status from oha").fetchall()
codes = json.load(open(summary)).get("statusCodeDistribution", {})
def stats(name, sel):
    d = sorted((e - s) * 1000 for s, e, _ in sel)
    if not d:
        print(f"{name}: no requests"); return
    q = lambda p: d[min(len(d) - 1, int(p * len(d)))]
    print(f"{name}: {len(d)} requests, p50 {q(0.50):.2f} ms, p99 {q(0.99):.2f} ms, max {d[-1]:.2f} ms")
print(f"load: {len(rows)} answers recorded, statuses {codes}")
stats("latency during the reload", [r for r in rows if r[0] < done and r[1] > hup])
stats("latency over the whole run", rows)
PY
