#!/usr/bin/env bash
# Soak: 64 concurrent clients of mixed traffic for DURATION (10 minutes by default) against a
# release gateway and the mock, on loopback: 32 JSON requests past the cache, 16 SSE streams, 16
# answered from the cache. The gateway's RSS is sampled every SAMPLE seconds into a CSV. Prints
# the totals, every status seen, and the RSS curve's summary (the second half must be flat);
# exits non-zero on any answer other than 200.
#
#   loadtest/soak.sh                       # 10 minutes
#   DURATION=60s loadtest/soak.sh          # a short run
#   OUT=docs/soak-rss.csv loadtest/soak.sh # keep the samples
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-600s}
SAMPLE=${SAMPLE:-10}
MOCK=127.0.0.1:19802; GW=127.0.0.1:19804; ADMIN=127.0.0.1:19805
KEY=key-soak; ADMIN_TOKEN=soak-admin-token
. loadtest/lib.sh
tg_setup
tg_oha
OUT=${OUT:-$WORK/rss.csv}
cargo build --release --quiet --bin tollgate

{
  tg_server "$GW" "$ADMIN"
  echo "consumers:"
  tg_consumer soak "$KEY"
  tg_backends "$MOCK" gw
  echo "cache: {enabled: true, scope: consumer, ttl_seconds: 300, max_entries: 1000, max_bytes: 67108864}"
  tg_demo_filter
} > "$WORK/gw.yaml"
$BIN mock --listen "$MOCK" --threads 2 --chunk-delay-ms 5 >"$WORK/mock.log" 2>&1 & PIDS+=($!)
$BIN run -c "$WORK/gw.yaml" >"$WORK/gw.log" 2>&1 & GW_PID=$!; PIDS+=($GW_PID)
tg_wait_ready "$ADMIN"

body() { printf '{"model":"gpt-4","stream":%s,"max_tokens":32,"messages":[{"role":"user","content":"%s"}]}' "$1" "$2"; }
load() { # name conns headers... (body last)
  local name=$1 conns=$2; shift 2
  "$OHA" --no-tui --output-format json -z "$DURATION" -c "$conns" -m POST \
    -H "Content-Type: application/json" -H "Authorization: Bearer $KEY" "$@" \
    "http://$GW/v1/chat/completions" > "$WORK/$name.json" 2>"$WORK/$name.err" &
  LOADS+=($!)
}
LOADS=()
load json 32 -H "Cache-Control: no-store" -d "$(body false "summarise the soak test notes")"
load stream 16 -H "Cache-Control: no-store" -d "$(body true "stream the soak test notes")"
load cached 16 -d "$(body false "a question answered from the cache")"

echo "seconds,rss_kib" > "$OUT"
start=$(date +%s)
while kill -0 "${LOADS[0]}" 2>/dev/null || kill -0 "${LOADS[1]}" 2>/dev/null || kill -0 "${LOADS[2]}" 2>/dev/null; do
  echo "$(( $(date +%s) - start )),$(tg_rss_kib "$GW_PID")" >> "$OUT"
  sleep "$SAMPLE"
done
for p in "${LOADS[@]}"; do wait "$p" || true; done

python3 - "$WORK" "$OUT" <<'PY'
import csv, json, sys
work, out = sys.argv[1:]
total, bad = 0, {}
for name in ("json", "stream", "cached"):
    r = json.load(open(f"{work}/{name}.json"))
    dist = r.get("statusCodeDistribution", {})
    n = sum(dist.values())
    total += n
    for code, c in dist.items():
        if code != "200":
            bad[f"{name}:{code}"] = c
    errs = r.get("errorDistribution", {})
    for e, c in errs.items():
        # oha cancels the requests still in flight when its time is up; those are not answers.
        if "aborted due to deadline" not in e:
            bad[f"{name}:{e}"] = c
    p = r["latencyPercentiles"]
    print(f"{name:<7} {n:>9} requests  {r['summary']['requestsPerSec']:>8.0f} req/s  p50 {p['p50']*1000:.2f} ms  p99 {p['p99']*1000:.2f} ms  statuses {dist}")
rows = [(int(a), int(b)) for a, b in list(csv.reader(open(out)))[1:]]
half = rows[len(rows) // 2:]
xs, ys = [r[0] for r in half], [r[1] for r in half]
mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
den = sum((x - mx) ** 2 for x in xs) or 1
slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 60
print(f"total {total} requests; answers other than 200: {bad or 'none'}")
print(f"RSS MiB: start {rows[0][1]/1024:.1f}, at half time {half[0][1]/1024:.1f}, end {rows[-1][1]/1024:.1f}, "
      f"max {max(r[1] for r in rows)/1024:.1f}; second half: min {min(ys)/1024:.1f}, max {max(ys)/1024:.1f}, "
      f"trend {slope/1024:+.3f} MiB/min")
sys.exit(1 if bad else 0)
PY
