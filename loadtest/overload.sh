#!/usr/bin/env bash
# Overload: far more concurrent requests than `server.max_in_flight`, then back to normal load.
# A release gateway with max_in_flight 64 in front of the mock answering after LATENCY_MS:
#   before     CONNS_LOW connections for PHASE   (all must be 200)
#   overload   CONNS_HIGH connections for PHASE  (only 200 and 503 `overloaded` allowed)
#   after      CONNS_LOW connections for PHASE   (all must be 200 again: recovery)
# During the overload a probe sends one request every 200 ms on its own connection and times the
# 503s. The gateway's RSS is sampled every second. Prints statuses per phase, the probe's 503
# latency, and RSS before, at its peak and after; exits non-zero when a phase breaks its rule.
#
#   loadtest/overload.sh                       # 3 x 15 s
#   PHASE=5s CONNS_HIGH=500 loadtest/overload.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PHASE=${PHASE:-15s}
CONNS_LOW=${CONNS_LOW:-8}
CONNS_HIGH=${CONNS_HIGH:-1000}
LATENCY_MS=${LATENCY_MS:-200}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-64}
MOCK=127.0.0.1:19902; GW=127.0.0.1:19904; ADMIN=127.0.0.1:19905
KEY=key-overload; ADMIN_TOKEN=overload-admin-token
. loadtest/lib.sh
tg_setup
tg_oha
ulimit -n 65536 2>/dev/null || true
cargo build --release --quiet --bin tollgate

{
  tg_server "$GW" "$ADMIN" "max_in_flight: $MAX_IN_FLIGHT"
  echo "consumers:"
  tg_consumer load "$KEY"
  tg_backends "$MOCK" gw
} > "$WORK/gw.yaml"
$BIN mock --listen "$MOCK" --threads 2 >"$WORK/mock.log" 2>&1 & PIDS+=($!)
$BIN run -c "$WORK/gw.yaml" >"$WORK/gw.log" 2>&1 & GW_PID=$!; PIDS+=($GW_PID)
tg_wait_ready "$ADMIN"

BODY='{"model":"gpt-4","max_tokens":32,"messages":[{"role":"user","content":"overload test"}]}'
HEADERS=(-H "Content-Type: application/json" -H "Authorization: Bearer $KEY"
         -H "Cache-Control: no-store" -H "x-mock-latency-ms: $LATENCY_MS")
rss() { tg_rss_kib "$GW_PID"; }
phase() { # name conns
  "$OHA" --no-tui --output-format json -z "$PHASE" -c "$2" -m POST "${HEADERS[@]}" -d "$BODY" \
    "http://$GW/v1/chat/completions" > "$WORK/$1.json" 2>"$WORK/$1.err" &
  local load=$!
  echo "seconds,rss_kib" > "$WORK/$1.rss"
  local start; start=$(date +%s)
  while kill -0 "$load" 2>/dev/null; do
    echo "$(( $(date +%s) - start )),$(rss)" >> "$WORK/$1.rss"
    if [ "$1" = overload ]; then
      curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST "${HEADERS[@]}" -d "$BODY" \
        "http://$GW/v1/chat/completions" >> "$WORK/probe.txt" || true
      sleep 0.2
    else
      sleep 1
    fi
  done
  wait "$load" || true
}

RSS_IDLE=$(rss)
phase before "$CONNS_LOW"
phase overload "$CONNS_HIGH"
phase after "$CONNS_LOW"

python3 - "$WORK" "$RSS_IDLE" "$MAX_IN_FLIGHT" "$CONNS_HIGH" <<'PY'
import csv, json, sys
work, rss_idle, cap, high = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ok = True
for name, allowed in (("before", {"200"}), ("overload", {"200", "503"}), ("after", {"200"})):
    r = json.load(open(f"{work}/{name}.json"))
    dist = r.get("statusCodeDistribution", {})
    errs = {e: c for e, c in r.get("errorDistribution", {}).items() if "aborted due to deadline" not in e}
    rss = [int(b) for _, b in list(csv.reader(open(f"{work}/{name}.rss")))[1:]]
    bad = {k: v for k, v in dist.items() if k not in allowed}
    if bad or errs:
        ok = False
    print(f"{name:<8} {sum(dist.values()):>8} answers {r['summary']['requestsPerSec']:>8.0f}/s  statuses {dict(sorted(dist.items()))}"
          f"  errors {errs or 'none'}  RSS MiB max {max(rss)/1024:.1f}")
probe = [l.split() for l in open(f"{work}/probe.txt")]
fast = sorted(float(t) * 1000 for code, t in probe if code == "503")
others = sorted(code for code, _ in probe if code != "503")
if fast:
    print(f"probe during overload: {len(fast)} of {len(probe)} got 503; 503 time p50 {fast[len(fast)//2]:.1f} ms, max {fast[-1]:.1f} ms; others {others}")
else:
    print(f"probe during overload: no 503 in {len(probe)} ({others})")
print(f"RSS MiB idle {rss_idle/1024:.1f}; cap {cap} in flight against {high} connections")
sys.exit(0 if ok else 1)
PY
