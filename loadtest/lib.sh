# Shared by the load scripts; sourced from the repository root, after `set -euo pipefail`.
#
#   tg_setup [PROFILE]             BIN (the tollgate binary of PROFILE, release by default, or
#                                  $TOLLGATE_BIN when set), WORK (a temporary directory) and PIDS
#                                  (killed and reaped at exit, when WORK is removed too)
#   tg_oha                         OHA: the oha binary, or exit saying how to install it
#   tg_server LISTEN ADMIN [LINE]  the `server:` block: THREADS (2) threads, 1 s grace, the admin plane with
#                                  ADMIN_TOKEN; each LINE is added inside the block
#   tg_consumer ID KEY [LINE]      one consumer whose windows and budget are out of the way
#   tg_backends MOCK NAME [EXTRA]  the mock as the one gpt-4 backend (EXTRA inside its mapping),
#                                  pricing, and the database and access log in WORK, named NAME
#                                  (TG_LEDGER=false: daily spend only, no row per request;
#                                  TG_DURABILITY=machine: an fsync per commit)
#   tg_demo_filter                 the demo's content filter (conf/demo.yaml), as shipped
#                                  (TG_CLASSIFIER=off: without its classifier section;
#                                  TG_OUTPUT=off: without its rules on answers;
#                                  TG_CASED=off: every rule ignoring case)
#   tg_pipeline LISTEN ADMIN NAME [LINE]
#                                  the full pipeline compare.sh measures: one consumer (KEY, role
#                                  standard), the mock as backend (OpenAI's dialect for gpt-4,
#                                  Anthropic's for claude-sonnet-4, so an OpenAI request for it is
#                                  translated), an output cap, the cache and the demo's content
#                                  filter; each LINE goes into `server:`
#                                  (TG_TRACING=HOST:PORT: traces on, sent to that collector)
#   tg_otlp_sink ADDR              a collector that accepts and discards traces (for TG_TRACING)
#   tg_wait_ready ADMIN            until the admin plane reports ready (or exit after 30 s)
#   tg_rss_kib PID                 resident memory now
#   tg_cpu_ticks PID…              user + system CPU ticks of the processes so far

tg_setup() {
  TARGET_DIR=${CARGO_TARGET_DIR:-target}
  BIN=${TOLLGATE_BIN:-$TARGET_DIR/${1:-release}/tollgate}
  WORK=$(mktemp -d)
  PIDS=()
  trap tg_cleanup EXIT
}

tg_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}

tg_oha() {
  OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")
  [ -x "$OHA" ] || { echo "oha not found: cargo install oha --locked" >&2; exit 1; }
}

tg_server() {
  local listen=$1 admin=$2; shift 2
  cat <<YAML
server:
  listen: "$listen"
  threads: ${THREADS:-2}
  grace_period_seconds: 1
  admin: {listen: "$admin", token_sha256: "$($BIN hash-key "$ADMIN_TOKEN")"}
YAML
  for line in "$@"; do echo "  $line"; done
}

tg_consumer() {
  local id=$1 key=$2 extra=${3:-}
  echo "  - {id: $id, team: $id, key_sha256: \"$($BIN hash-key "$key")\", daily_budget_usd: 1000000,"
  echo "     tokens_per_minute: 1000000000, tokens_per_hour: 1000000000, tokens_per_day: 1000000000${extra:+, $extra}}"
}

tg_backends() {
  local mock=$1 name=$2 extra=${3:-}
  cat <<YAML
backends:
  - {id: mock, url: "http://$mock", protocol: openai, models: [gpt-4], forward_headers: ["x-mock-*"]${extra:+, $extra}}
  - {id: mock-anthropic, url: "http://$mock", protocol: anthropic, models: [claude-sonnet-4], forward_headers: ["x-mock-*"]${extra:+, $extra}}
pricing: {default: {input_per_million_usd: 30, output_per_million_usd: 60}}
state: {database: "$WORK/tollgate-$name.db", ledger: ${TG_LEDGER:-true}, durability: ${TG_DURABILITY:-process}}
access_log: {to: "$WORK/access-$name.log"}
YAML
}

tg_demo_filter() {
  awk -v classifier="${TG_CLASSIFIER:-on}" -v output="${TG_OUTPUT:-on}" -v cased="${TG_CASED:-on}" '
    function flush() { if (item != "" && !(output == "off" && item ~ /applies_to: \[response\]/)) printf "%s", item; item = "" }
    /^content_filter:/ {on=1; print; next}
    on && /^[a-z_]+:/ {flush(); on=0}
    !on {next}
    classifier == "off" && /^  classifier:/ {skip=1; next}
    cased == "off" && /^      case_sensitive:/ {next}
    skip && /^    / {next}
    skip {skip=0}
    /^    - / {flush(); item = $0 "\n"; next}
    item != "" && /^      / {item = item $0 "\n"; next}
    {flush(); print}
    END {flush()}' conf/demo.yaml
}

tg_pipeline() {
  local listen=$1 admin=$2 name=$3; shift 3
  tg_server "$listen" "$admin" "$@"
  echo "consumers:"
  tg_consumer bench "$KEY" "role: standard"
  tg_backends "$MOCK" "$name"
  echo "max_output_tokens: {default: 1024}"
  echo "cache: {enabled: true, scope: consumer, ttl_seconds: 300, max_entries: 1000, max_bytes: 67108864}"
  if [ -n "${TG_TRACING:-}" ]; then
    echo "tracing: {enabled: true, endpoint: \"http://$TG_TRACING/v1/traces\"}"
  fi
  tg_demo_filter
}

# An OTLP/HTTP collector that takes every export and keeps nothing, listening on ADDR
# (host:port), for measuring the gateway with tracing on.
tg_otlp_sink() {
  python3 -c '
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
host, port = sys.argv[1].rsplit(":", 1)
http.server.ThreadingHTTPServer((host, int(port)), Sink).serve_forever()
' "$1" >"$WORK/otlp-sink.log" 2>&1 & PIDS+=($!)
}

tg_wait_ready() {
  for _ in $(seq 1 300); do
    curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "http://$1/ready" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "the gateway with admin plane $1 never became ready" >&2
  exit 1
}

tg_rss_kib() {
  awk '/^VmRSS/ {print $2}' "/proc/$1/status"
}

tg_cpu_ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
