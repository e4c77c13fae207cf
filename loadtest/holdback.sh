#!/usr/bin/env bash
# The delay the demo's rules on answers add to a 2,000-event stream: the mock, and the gateway
# twice — the demo's content filter with its answer rules (ON) and without them (OFF) — on
# loopback; loadtest/holdback.py streams through both, interleaved, and prints p50/p99 per case.
#
#   loadtest/holdback.sh            (EVENTS=2000 ROUNDS=3; TOLLGATE_BIN to use another build)
set -euo pipefail
cd "$(dirname "$0")/.."
MOCK=127.0.0.1:19731; ON=127.0.0.1:19732; OFF=127.0.0.1:19734
KEY=key-holdback; ADMIN_TOKEN=holdback-admin-token
. loadtest/lib.sh
tg_setup
[ -x "$BIN" ] || cargo build --release --quiet
$BIN mock --listen "$MOCK" --threads 1 >"$WORK/mock.log" 2>&1 & PIDS+=($!)
for side in on off; do
  gw=$ON admin=127.0.0.1:19733
  [ $side = off ] && gw=$OFF admin=127.0.0.1:19735
  {
    tg_server "$gw" "$admin"
    echo "consumers:"
    tg_consumer bench "$KEY" "role: standard"
    tg_backends "$MOCK" "$side"
    echo "cache: {enabled: false}"
    TG_CLASSIFIER=off TG_OUTPUT=$side tg_demo_filter
  } > "$WORK/$side.yaml"
  $BIN run -c "$WORK/$side.yaml" >"$WORK/$side.log" 2>&1 & PIDS+=($!)
  tg_wait_ready "$admin"
done
python3 loadtest/holdback.py "$ON" "$OFF" "$KEY" "${EVENTS:-2000}" "${ROUNDS:-3}"
