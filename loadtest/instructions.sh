#!/usr/bin/env bash
# Instructions per request, counted by valgrind (callgrind): repeatable whatever else the machine
# is doing, so two builds can be compared without the noise of a timed run. The gateway (full
# pipeline as in compare.sh: auth, the demo's content filter, limits, budget, cache key and store,
# metrics, access log) runs under callgrind twice per binary, serving N1 and then N2 sequential
# JSON requests; the difference divided by N2 - N1 is the cost of one request, start-up and
# shutdown cancelling out.
#
#   loadtest/instructions.sh BINARY [BINARY…]
#   N1=200 N2=1200 loadtest/instructions.sh /var/tmp/tollgate-old target/release/tollgate
#   MODEL=claude-sonnet-4 loadtest/instructions.sh BINARY
#                                  the OpenAI request translated for the mock's Anthropic
#                                  dialect and its answer back (the model lib.sh routes there)
#   TG_LEDGER=false TG_TRACING=127.0.0.1:19626 loadtest/instructions.sh BINARY
#                                  without the ledger's rows; with traces exported
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 BINARY [BINARY…]" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
N1=${N1:-200} N2=${N2:-1200}
MOCK=127.0.0.1:19622; GW=127.0.0.1:19624; ADMIN=127.0.0.1:19625
KEY=key-instructions; ADMIN_TOKEN=instructions-admin-token
THREADS=1
. loadtest/lib.sh
TOLLGATE_BIN=$1 tg_setup
tg_oha
$BIN mock --listen "$MOCK" --threads 1 >"$WORK/mock.log" 2>&1 & PIDS+=($!)
# TG_TRACING=HOST:PORT: traces on, exported to a collector that discards them.
if [ -n "${TG_TRACING:-}" ]; then tg_otlp_sink "$TG_TRACING"; fi
PROMPT="Summarise the quarterly support tickets about login problems and suggest three improvements to the help-centre articles."
BODY=$(printf '{"model":"%s","max_tokens":64,"messages":[{"role":"user","content":"%s"}]}' "${MODEL:-gpt-4}" "$PROMPT")

# Total instructions of one gateway process serving $2 requests with binary $1.
count() {
  local bin=$1 n=$2 out=$WORK/callgrind.$RANDOM
  BIN=$bin tg_pipeline "$GW" "$ADMIN" gw > "$WORK/tollgate.yaml"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" run -c "$WORK/tollgate.yaml" \
    >"$WORK/gw.log" 2>&1 & local pid=$!
  tg_wait_ready "$ADMIN"
  if [ "$n" -gt 0 ]; then
    "$OHA" --no-tui -n "$n" -c 1 -m POST -H "Content-Type: application/json" \
      -H "Authorization: Bearer $KEY" -H "Cache-Control: no-cache" -d "$BODY" "http://$GW/v1/chat/completions" >/dev/null
  fi
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  awk '/^summary:|^totals:/ {print $2; exit}' "$out"
}

echo "| binary | instructions at $N1 requests | at $N2 | per request |"
echo "|---|---|---|---|"
for bin in "$@"; do
  a=$(count "$bin" "$N1"); b=$(count "$bin" "$N2")
  echo "| $bin | $a | $b | $(( (b - a) / (N2 - N1) )) |"
done
