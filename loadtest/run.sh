#!/usr/bin/env bash
# Runs the bundled load scenarios against the demo configuration: conf/demo.yaml with only its
# ports moved (gateway 19500, admin 19501, mock 19502) and its spend file in a temporary
# directory, served by `tollgate demo` as `make demo` serves it, with the demo's keys (the
# load-test consumer key-load-test; key-team-intern for the rate limit; demo-admin-token). All on
# loopback, every run bounded in time. With k6 it runs the k6 scripts beside this file, otherwise
# the same scenarios with oha (a Rust load generator: `cargo install oha --locked`). Prints one
# table and exits non-zero when any scenario misses its thresholds.
#
#   loadtest/run.sh                                           # all scenarios, about a minute
#   DURATION=30s RATE=500 loadtest/run.sh steady
#   PROFILE=debug DURATION=3s loadtest/run.sh                 # what `make test` runs
#
# k6: $K6 when set (K6=off: use oha even when k6 is there), else `k6` on PATH, else the copy
# `make k6` installs in $TARGET_DIR/k6. TOLLGATE_BIN=path runs that binary without building.
# RATE (requests/s: steady, streaming; 100), PEAK (users: spike; 200) and RAMP (spike's ramps, 1s;
# it holds PEAK for DURATION) shape the load. A debug build is several times slower: with
# PROFILE=debug they default to 50/s and 20 users, which two cores hold well inside the thresholds.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then RATE=${RATE:-100} PEAK=${PEAK:-200}; else RATE=${RATE:-50} PEAK=${PEAK:-20}; fi
RAMP=${RAMP:-1s}
SCENARIOS=${*:-smoke steady spike streaming ratelimit cache}
GW=127.0.0.1:19500; ADMIN=127.0.0.1:19501; MOCK=127.0.0.1:19502
# The demo's public keys (conf/demo.yaml).
KEY=key-load-test; INTERN=key-team-intern; ADMIN_TOKEN=demo-admin-token
. loadtest/lib.sh
tg_setup "$PROFILE"

if [ -z "${TOLLGATE_BIN:-}" ]; then
  if [ "$PROFILE" = release ]; then ${CARGO:-cargo} build --release --quiet; else ${CARGO:-cargo} build --quiet; fi
fi

# The demo configuration, nothing changed but where it listens and writes.
sed -e "s/127\.0\.0\.1:9000\b/$GW/g" -e "s/127\.0\.0\.1:9001\b/$ADMIN/g" -e "s/127\.0\.0\.1:9100\b/$MOCK/g" \
  -e "s|^\(  database:\).*|\1 \"$WORK/tollgate.db\"|" conf/demo.yaml > "$WORK/demo.yaml"
if grep -Eq '127\.0\.0\.1:(9000|9001|9100)\b' "$WORK/demo.yaml" || ! grep -q "$WORK/tollgate.db" "$WORK/demo.yaml"; then
  echo "conf/demo.yaml: could not move its ports and database" >&2
  exit 1
fi
$BIN demo -c "$WORK/demo.yaml" --mock-listen "$MOCK" >"$WORK/demo.log" 2>&1 & PIDS+=($!)
tg_wait_ready "$ADMIN"

K6=${K6:-$(command -v k6 || true)}
if [ -z "$K6" ] && [ -x "$TARGET_DIR/k6/bin/k6" ]; then K6=$TARGET_DIR/k6/bin/k6; fi
[ "$K6" = off ] && K6=
FAILED=0
printf '%-10s %8s %8s %8s %8s  %s\n' scenario "req/s" "p50 ms" "p99 ms" "ok" "notes"

# One k6 script; its row of the table from the summary export, its log when it fails.
run_k6() {
  local s=$1 key=$KEY model=gpt-4 rc=0
  if [ "$s" = ratelimit ]; then key=$INTERN model=haiku; fi
  GATEWAY_URL="http://$GW" API_KEY=$key MODEL=$model DURATION=$DURATION RATE=$RATE PEAK=$PEAK \
    HOLD=$DURATION RAMP=$RAMP K6_NO_USAGE_REPORT=true \
    "$K6" run --quiet --no-usage-report --summary-trend-stats 'med,p(99)' \
    --summary-export "$WORK/$s.json" "loadtest/$s.js" >"$WORK/$s.log" 2>&1 || rc=$?
  python3 - "$s" "$WORK/$s.json" "$rc" <<'PY' || { FAILED=1; sed 's/^/    /' "$WORK/$s.log" >&2; }
import json, os, sys
name, path, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
if not os.path.exists(path):
    print(f"{name:<10} k6 exited with {rc} before its summary")
    sys.exit(1)
m = json.load(open(path))["metrics"]
get = lambda metric, stat: m.get(metric, {}).get(stat, 0)
notes = []
if "cache_hit_ratio" in m: notes.append(f"hit ratio {get('cache_hit_ratio', 'value'):.3f}")
if "stream_time_to_first_byte" in m: notes.append(f"first byte p99 {get('stream_time_to_first_byte', 'p(99)'):.2f} ms")
if "admitted" in m or "rate_limited" in m: notes.append(f"admitted {get('admitted', 'count'):.0f}, limited {get('rate_limited', 'count'):.0f}")
crossed = [f"{k} {t}" for k, v in m.items() for t, bad in v.get("thresholds", {}).items() if bad]
notes += [f"CROSSED {c}" for c in crossed]
print(f"{name:<10} {get('http_reqs', 'rate'):>8.0f} {get('http_req_duration', 'med'):>8.2f} "
      f"{get('http_req_duration', 'p(99)'):>8.2f} {get('checks', 'value') * 100:>7.1f}%  {', '.join(notes)}")
sys.exit(1 if crossed or rc else 0)
PY
}

if [ -n "$K6" ]; then
  for s in $SCENARIOS; do
    [ -f "loadtest/$s.js" ] || { echo "unknown scenario $s" >&2; exit 1; }
    run_k6 "$s"
  done
  exit $FAILED
fi

tg_oha
body() { printf '{"model":"%s","stream":%s,"max_tokens":%s,"messages":[{"role":"user","content":"%s"}]}' "$1" "$2" "$3" "$4"; }
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
print(f"{name:<10} {s['requestsPerSec']:>8.0f} {p['p50']*1000:>8.2f} {p['p99']*1000:>8.2f} {s['successRate']*100:>7.1f}%  {codes}")
# The k6 scripts' thresholds: nothing but 200 (a limited consumer: 200s then 429s, nothing else).
ok = set(dist) <= {"200", "429"} and "200" in dist and "429" in dist if name == "ratelimit" else set(dist) == {"200"}
if not ok or s["successRate"] < 1:
    print(f"{name}: threshold failed", file=sys.stderr)
    sys.exit(1)
PY
}
# Past the cache (`no-store`) except in the cache scenario, which repeats one prompt.
for s in $SCENARIOS; do
  case $s in
    smoke)     run_oha smoke -c 2 -H "Authorization: Bearer $KEY" -H "Cache-Control: no-store" -d "$(body gpt-4 false 16 smoke)" ;;
    steady)    run_oha steady -c 32 -q "$RATE" -H "Authorization: Bearer $KEY" -H "Cache-Control: no-store" -d "$(body gpt-4 false 16 steady)" ;;
    spike)     run_oha spike -c "$PEAK" -H "Authorization: Bearer $KEY" -H "Cache-Control: no-store" -d "$(body gpt-4 false 16 spike)" ;;
    streaming) run_oha streaming -c 32 -q "$RATE" -H "Authorization: Bearer $KEY" -H "Cache-Control: no-store" -d "$(body gpt-4 true 32 stream)" ;;
    ratelimit) run_oha ratelimit -c 4 -H "Authorization: Bearer $INTERN" -H "Cache-Control: no-store" -d "$(body haiku false 200 "limit me")" ;;
    cache)     run_oha cache -c 8 -H "Authorization: Bearer $KEY" -d "$(body gpt-4 false 16 "cached question")"
               curl -s -H "Authorization: Bearer $ADMIN_TOKEN" "http://$ADMIN/cache/stats" |
                 python3 -c 'import json,sys; s=json.load(sys.stdin); print("%-10s cache hit rate %s" % ("", s["hit_rate"])); sys.exit(s["hits"] < 0.9 * (s["hits"] + s["misses"]))' || FAILED=1 ;;
    *) echo "unknown scenario $s" >&2; exit 1 ;;
  esac
done
exit $FAILED
