#!/usr/bin/env bash
# Runs the load scenarios against a local gateway and mock, all on loopback, every run bounded in
# time. Uses k6 (the scripts beside this file) when it is installed, otherwise oha (a Rust load
# generator: `cargo install oha --locked`), and prints one table.
#
#   loadtest/run.sh                 # all scenarios, ~1 minute
#   DURATION=30s RATE=500 loadtest/run.sh steady
#   PROFILE=debug DURATION=3s loadtest/run.sh smoke   # what `make test` runs
#
# Each scenario has the k6 script's threshold; the script exits non-zero when one fails.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
RATE=${RATE:-200}
PEAK=${PEAK:-200}
SCENARIOS=${*:-smoke steady spike streaming ratelimit cache}
PROFILE=${PROFILE:-release}
GW=127.0.0.1:19500; ADMIN=127.0.0.1:19501; MOCK=127.0.0.1:19502
KEY=key-load-test; INTERN=key-load-intern; ADMIN_TOKEN=load-test-admin-token
. loadtest/lib.sh
tg_setup "$PROFILE"

if [ "$PROFILE" = release ]; then cargo build --release --quiet; else cargo build --quiet; fi
{
  tg_server "$GW" "$ADMIN"
  echo "consumers:"
  tg_consumer load "$KEY"
  # A limited consumer for the rate-limit scenario.
  echo "  - {id: intern, team: Intern Program, key_sha256: \"$($BIN hash-key $INTERN)\", daily_budget_usd: 10,"
  echo "     tokens_per_minute: 2000, tokens_per_hour: 20000, tokens_per_day: 50000}"
  tg_backends "$MOCK" gw
} > "$WORK/tollgate.yaml"
$BIN mock --listen "$MOCK" --threads 1 >"$WORK/mock.log" 2>&1 & PIDS+=($!)
$BIN run -c "$WORK/tollgate.yaml" >"$WORK/gw.log" 2>&1 & PIDS+=($!)
tg_wait_ready "$ADMIN"

body() { printf '{"model":"gpt-4","stream":%s,"max_tokens":%s,"messages":[{"role":"user","content":"%s"}]}' "$1" "$2" "$3"; }

if command -v k6 >/dev/null 2>&1; then
  for s in $SCENARIOS; do
    key=$KEY; [ "$s" = ratelimit ] && key=$INTERN
    GATEWAY_URL="http://$GW" API_KEY=$key MODEL=gpt-4 DURATION=$DURATION RATE=$RATE PEAK=$PEAK \
      k6 run --quiet "loadtest/$s.js"
  done
  exit 0
fi

tg_oha
FAILED=0
printf '%-10s %10s %9s %9s %9s %s\n' scenario "req/s" "p50 ms" "p99 ms" "success" "statuses"
run_oha() { # name, extra oha args...
  local name=$1; shift
  "$OHA" --no-tui --output-format json -z "$DURATION" -m POST -H "Content-Type: application/json" "$@" \
    "http://$GW/v1/chat/completions" > "$WORK/$name.json"
  python3 - "$name" "$WORK/$name.json" <<'PY' || FAILED=1
import json, sys
name, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
s, p = r["summary"], r["latencyPercentiles"]
dist = r.get("statusCodeDistribution", {})
codes = " ".join(f"{k}:{v}" for k, v in sorted(dist.items()))
print(f"{name:<10} {s['requestsPerSec']:>10.0f} {p['p50']*1000:>9.2f} {p['p99']*1000:>9.2f} {s['successRate']*100:>8.1f}% {codes}")
# The k6 scripts' thresholds: nothing but 200 (a limited consumer: 200s then 429s, nothing else).
ok = set(dist) <= {"200", "429"} and "200" in dist and "429" in dist if name == "ratelimit" else set(dist) == {"200"}
if not ok or s["successRate"] < 1:
    print(f"{name}: threshold failed", file=sys.stderr)
    sys.exit(1)
PY
}
for s in $SCENARIOS; do
  case $s in
    smoke)     run_oha smoke -c 2 -H "Authorization: Bearer $KEY" -H "Cache-Control: no-store" -d "$(body false 16 smoke)" ;;
    steady)    run_oha steady -c 32 -q "$RATE" -H "Authorization: Bearer $KEY" -H "Cache-Control: no-store" -d "$(body false 16 steady)" ;;
    spike)     run_oha spike -c "$PEAK" -H "Authorization: Bearer $KEY" -H "Cache-Control: no-store" -d "$(body false 16 spike)" ;;
    streaming) run_oha streaming -c 32 -H "Authorization: Bearer $KEY" -H "Cache-Control: no-store" -d "$(body true 32 stream)" ;;
    ratelimit) run_oha ratelimit -c 4 -H "Authorization: Bearer $INTERN" -H "Cache-Control: no-store" -d "$(body false 200 limit)" ;;
    cache)     run_oha cache -c 8 -H "Authorization: Bearer $KEY" -d "$(body false 16 cached)"
               curl -s -H "Authorization: Bearer $ADMIN_TOKEN" "http://$ADMIN/cache/stats" |
                 python3 -c 'import json,sys; s=json.load(sys.stdin); print("%-10s cache hit rate %s" % ("", s["hit_rate"])); sys.exit(s["hits"] < 0.9 * (s["hits"] + s["misses"]))' || FAILED=1 ;;
    *) echo "unknown scenario $s" >&2; exit 1 ;;
  esac
done
exit $FAILED
