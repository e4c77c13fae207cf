#!/usr/bin/env bash
# What TLS and HTTP/2 to clients cost the gateway, beside plain HTTP/1.1, in one run on one machine,
# all on loopback. Every mode drives the same full pipeline as compare.sh's Tollgate row (auth, the
# demo's content filter, token limits, budget, metrics, JSON access log; `Cache-Control: no-store`,
# so every request goes to the backend) with the same request, through its own gateway process:
#   plain        HTTP/1.1, keep-alive                                gateway A (plain listener)
#   tls          HTTP/1.1 over TLS, keep-alive (ALPN http/1.1)       gateway B (server.tls)
#   h2           HTTP/2 over TLS (ALPN h2), one stream per conn.     gateway B
#   h2c          HTTP/2 with prior knowledge on a plain listener     gateway C (server.h2c)
#   plain-close  HTTP/1.1, a new connection per request              gateway A
#   tls-close    HTTP/1.1 over TLS, a new connection per request     gateway B
# The certificate is ECDSA P-256, for 127.0.0.1, signed by a CA made for the run (openssl, in WORK).
# Modes run for DURATION each, interleaved over ROUNDS rounds (the order reversed every other round,
# so no mode always runs first); each run is preceded by a 1 s warm-up. For every run: the
# gateway's CPU time (utime + stime from /proc/PID/stat) over the run, the requests answered, CPU µs
# per request, requests/s, p50/p99, the mock's and oha's CPU, and what the rest of the machine used
# (other processes, the hypervisor's steal; before each run the script waits, at most QUIET_WAIT
# seconds (60), for it to go quiet). Then the medians per mode, the ratios to `plain`, and
# `tls-close` − `plain-close`: what one TLS handshake costs the gateway.
#
#   loadtest/tls.sh                              # 6 modes × 3 rounds × 10 s, about 5 minutes
#   DURATION=5s ROUNDS=5 MODES="plain tls h2" TOLLGATE_BIN=/path/to/tollgate loadtest/tls.sh
#   RATE=2000 loadtest/tls.sh                    # RATE × DURATION requests at that rate (oha -q -n)
#
# CONNS (16) connections, each with one request in flight (HTTP/2 too: oha -p 1). The run fails
# unless every answer was 200, no request failed, and the gateway's access log shows every request
# with the expected HTTP version and TLS flag (so `h2` really was HTTP/2).
# Needs oha (`cargo install oha --locked`) and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-16}
MODES=${MODES:-plain tls h2 h2c plain-close tls-close}
THREADS=${THREADS:-2}
RATE=${RATE:-}
MOCK=127.0.0.1:19660
PLAIN=127.0.0.1:19661; PLAIN_ADMIN=127.0.0.1:19662
TLS=127.0.0.1:19663; TLS_ADMIN=127.0.0.1:19664
H2C=127.0.0.1:19665; H2C_ADMIN=127.0.0.1:19666
KEY=key-tls-bench; ADMIN_TOKEN=tls-bench-admin-token
. loadtest/lib.sh
tg_setup
tg_oha
command -v openssl >/dev/null || { echo "openssl not found" >&2; exit 1; }
for mode in $MODES; do
  case $mode in plain|tls|h2|h2c|plain-close|tls-close) ;; *) echo "unknown mode: $mode" >&2; exit 2 ;; esac
done
[ -n "${TOLLGATE_BIN:-}" ] || cargo build --release --quiet

# --- a throw-away CA and a certificate for 127.0.0.1 ---------------------------------------------
ssl() { openssl "$@" 2>>"$WORK/openssl.log"; }
ssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/ca.key"
ssl req -x509 -new -key "$WORK/ca.key" -sha256 -days 1 -subj "/CN=tollgate tls.sh CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$WORK/ca.pem"
ssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/server.key"
ssl req -new -key "$WORK/server.key" -subj "/CN=127.0.0.1" -out "$WORK/server.csr"
printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > "$WORK/server.ext"
ssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
  -sha256 -days 1 -extfile "$WORK/server.ext" -out "$WORK/server.pem"

# --- the mock and three gateways ------------------------------------------------------------------
$BIN mock --listen "$MOCK" --threads "$THREADS" >"$WORK/mock.log" 2>&1 & MOCK_PID=$!; PIDS+=($MOCK_PID)

gateway() { # NAME LISTEN ADMIN [server LINE…]; sets GW_PID
  local name=$1 listen=$2 admin=$3; shift 3
  # As in compare.sh; `no-store` on every request keeps the cache out of the way.
  tg_pipeline "$listen" "$admin" "$name" "$@" > "$WORK/$name.yaml"
  $BIN check -c "$WORK/$name.yaml" >/dev/null
  $BIN run -c "$WORK/$name.yaml" >"$WORK/gw-$name.log" 2>&1 & GW_PID=$!; PIDS+=($GW_PID)
}
gateway plain "$PLAIN" "$PLAIN_ADMIN"; PLAIN_PID=$GW_PID
gateway tls "$TLS" "$TLS_ADMIN" "tls: {cert_file: \"$WORK/server.pem\", key_file: \"$WORK/server.key\"}"; TLS_PID=$GW_PID
gateway h2c "$H2C" "$H2C_ADMIN" "h2c: true"; H2C_PID=$GW_PID
for _ in $(seq 1 100); do curl -sf "http://$MOCK/health" >/dev/null 2>&1 && break; sleep 0.1; done
tg_wait_ready "$PLAIN_ADMIN"; tg_wait_ready "$TLS_ADMIN"; tg_wait_ready "$H2C_ADMIN"

# What the TLS listener negotiates (printed with the results).
NEGOTIATED=$(openssl s_client -connect "$TLS" -CAfile "$WORK/ca.pem" -alpn h2,http/1.1 </dev/null 2>/dev/null |
  awk '/^New, / {p=$2 " " $NF} /Server Temp Key/ {sub(/.*Key: /, ""); k=$0} /^ALPN protocol/ {a=$3}
       /Verify return code/ {v=$4 == 0 ? "verified" : "NOT verified"} END {print p ", key exchange " k ", ALPN " a ", chain " v}')

# --- measurement ---------------------------------------------------------------------------------
TCK=$(getconf CLK_TCK)
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }   # every CPU, not idle/iowait
PROMPT="Summarise the quarterly support tickets about login problems and suggest three improvements to the help-centre articles."
BODY=$(printf '{"model":"gpt-4","stream":false,"max_tokens":64,"messages":[{"role":"user","content":"%s"}]}' "$PROMPT")
HDRS=(-H "Content-Type: application/json" -H "Authorization: Bearer $KEY" -H "Cache-Control: no-store")
# Flat out for DURATION; or, with RATE, RATE × DURATION requests at that rate (a count, not a
# deadline, so no request is cut off at the end).
seconds() { case $1 in *m) echo $(( ${1%m} * 60 )) ;; *s) echo "${1%s}" ;; *) echo "$1" ;; esac; }
for_time() { if [ -z "$RATE" ]; then echo "-z $1"; else echo "-q $RATE -n $((RATE * $(seconds "$1")))"; fi; }
RESULTS=$WORK/results.tsv; : > "$RESULTS"
# The machine is shared: before each run, wait (at most QUIET_WAIT, 60 s) until the rest of it has
# used less than a fifth of one CPU for a second; the results still show what it used during the run.
QUIET_WAIT=${QUIET_WAIT:-60}
quiet() {
  local end=$((SECONDS + QUIET_WAIT)) b0 b1 ours0 ours1
  while [ $SECONDS -lt $end ]; do
    b0=$(busy); ours0=$(tg_cpu_ticks $MOCK_PID $PLAIN_PID $TLS_PID $H2C_PID)
    sleep 1
    b1=$(busy); ours1=$(tg_cpu_ticks $MOCK_PID $PLAIN_PID $TLS_PID $H2C_PID)
    [ $(( (b1 - b0) - (ours1 - ours0) )) -lt $((TCK / 5)) ] && return
  done
  echo "  (the machine did not go quiet within ${QUIET_WAIT} s; running anyway)" >&2
}

run() { # MODE ROUND
  local mode=$1 round=$2 url pid log version tls args=()
  case $mode in
    plain)       url=http://$PLAIN pid=$PLAIN_PID log=plain version=1.1 tls=false args=(--http-version 1.1) ;;
    plain-close) url=http://$PLAIN pid=$PLAIN_PID log=plain version=1.1 tls=false args=(--http-version 1.1 --disable-keepalive) ;;
    tls)         url=https://$TLS pid=$TLS_PID log=tls version=1.1 tls=true args=(--cacert "$WORK/ca.pem" --http-version 1.1) ;;
    tls-close)   url=https://$TLS pid=$TLS_PID log=tls version=1.1 tls=true args=(--cacert "$WORK/ca.pem" --http-version 1.1 --disable-keepalive) ;;
    h2)          url=https://$TLS pid=$TLS_PID log=tls version=2 tls=true args=(--cacert "$WORK/ca.pem" --http2 -p 1) ;;
    h2c)         url=http://$H2C pid=$H2C_PID log=h2c version=2 tls=false args=(--http2 -p 1) ;;
  esac
  log=$WORK/access-$log.log
  local from; from=$(stat -c %s "$log" 2>/dev/null || echo 0)
  # -w: requests in flight at the deadline are answered, not aborted, so every request counts.
  local oha=("$OHA" --no-tui --output-format json -w -m POST "${HDRS[@]}" -d "$BODY" -c "$CONNS" "${args[@]}")
  quiet
  # shellcheck disable=SC2046 # for_time's words are options
  "${oha[@]}" $(for_time 1s) "$url/v1/chat/completions" > "$WORK/warm.json"
  local g0 m0 b0 g1 m1 b1
  g0=$(tg_cpu_ticks "$pid"); m0=$(tg_cpu_ticks "$MOCK_PID"); b0=$(busy)
  # shellcheck disable=SC2046
  /usr/bin/time -f "%U %S" -o "$WORK/oha.time" "${oha[@]}" $(for_time "$DURATION") "$url/v1/chat/completions" > "$WORK/oha.json"
  g1=$(tg_cpu_ticks "$pid"); m1=$(tg_cpu_ticks "$MOCK_PID"); b1=$(busy)
  python3 - "$mode" "$round" "$((g1 - g0))" "$((m1 - m0))" "$((b1 - b0))" "$TCK" "$WORK/oha.time" \
      "$WORK/warm.json" "$WORK/oha.json" "$log" "$from" "$version" "$tls" >>"$RESULTS" <<'PY'
import json, sys, time
mode, rnd, gw, mock, busy, tck, oha_time, warm, path, log, start, version, tls = sys.argv[1:]
tck = int(tck)
def load(p):
    r = json.load(open(p))
    codes = {k: v for k, v in r.get("statusCodeDistribution", {}).items()}
    errors = r.get("errorDistribution", {})
    bad = {k: v for k, v in codes.items() if k != "200"}
    if bad or errors:
        sys.exit(f"{mode} round {rnd}: answers other than 200 {bad}, errors {errors}")
    return r, codes.get("200", 0)
_, warm_ok = load(warm)
r, ok = load(path)
if ok == 0:
    sys.exit(f"{mode} round {rnd}: no request answered")
# The access log is written in batches off the request path: wait (≤ 5 s) for this run's lines.
want, lines = warm_ok + ok, []
for _ in range(50):
    with open(log, "rb") as f:
        f.seek(int(start))
        lines = [json.loads(l) for l in f.read().splitlines() if l.strip()]
    if len(lines) >= want:
        break
    time.sleep(0.1)
wrong = [(l.get("status"), l.get("http_version"), l.get("tls")) for l in lines
         if (l.get("status"), l.get("http_version"), l.get("tls")) != (200, version, tls == "true")]
if wrong or len(lines) != want:
    sys.exit(f"{mode} round {rnd}: access log has {len(lines)} lines for {want} requests; "
             f"expected status 200, HTTP/{version}, tls {tls}; first unexpected: {wrong[:3]}")
user, system = map(float, open(oha_time).read().split()[-2:])
s, p = r["summary"], r["latencyPercentiles"]
gw_s, mock_s, oha_s = int(gw) / tck, int(mock) / tck, user + system
rest_s = max(0.0, int(busy) / tck - gw_s - mock_s - oha_s)
print("\t".join(map(str, [mode, rnd, ok, f"{s['requestsPerSec']:.0f}", f"{p['p50']*1e6:.0f}", f"{p['p99']*1e6:.0f}",
    f"{gw_s:.2f}", f"{gw_s / ok * 1e6:.1f}", f"{mock_s:.2f}", f"{oha_s:.2f}", f"{oha_s / ok * 1e6:.1f}", f"{rest_s:.2f}"])))
PY
}

for round in $(seq 1 "$ROUNDS"); do
  order=$MODES; [ $((round % 2)) -eq 0 ] && order=$(echo $MODES | tr ' ' '\n' | tac | tr '\n' ' ')
  for mode in $order; do
    echo "round $round: $mode" >&2
    run "$mode" "$round"
  done
done

# --- report --------------------------------------------------------------------------------------
echo "TLS: $NEGOTIATED; $CONNS connections, ${RATE:+$RATE req/s, }$DURATION per run, $ROUNDS rounds, $THREADS gateway threads"
echo
python3 - "$RESULTS" "$MODES" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
modes = sys.argv[2].split()
head = ["mode", "round", "200s", "req/s", "p50 µs", "p99 µs", "gateway CPU s", "gateway CPU µs/req",
        "mock CPU s", "oha CPU s", "oha CPU µs/req", "rest of machine CPU s"]
def table(head, rows):
    w = [max(len(h), *(len(str(r[i])) for r in rows)) for i, h in enumerate(head)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i]) for i, c in enumerate(cells)) + " |"
    print(line(head)); print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows: print(line(r))
table(head, sorted(rows, key=lambda r: (modes.index(r[0]), int(r[1]))))
print()
med = {m: [statistics.median(float(r[i]) for r in rows if r[0] == m) for i in range(2, 12)] for m in modes}
COL = {h: i - 2 for i, h in enumerate(head)}
plain = med.get("plain")
out = []
for m in modes:
    v = med[m]
    cpu, rps = v[COL["gateway CPU µs/req"]], v[COL["req/s"]]
    ratio = lambda x, y: f"{x / y:.2f}"
    out.append([m, f"{rps:.0f}", f"{v[COL['p50 µs']]:.0f}", f"{v[COL['p99 µs']]:.0f}", f"{cpu:.1f}",
                ratio(cpu, plain[COL["gateway CPU µs/req"]]) if plain else "-",
                ratio(rps, plain[COL["req/s"]]) if plain else "-", f"{v[COL['oha CPU µs/req']]:.1f}"])
table(["mode (medians)", "req/s", "p50 µs", "p99 µs", "gateway CPU µs/req", "CPU/req ÷ plain", "req/s ÷ plain",
       "oha CPU µs/req"], out)
if "plain-close" in med and "tls-close" in med:
    c = COL["gateway CPU µs/req"]
    print()
    print(f"A new TLS connection (its TLS 1.3 handshake, as oha makes them: most resume an earlier "
          f"session) costs the gateway {med['tls-close'][c] - med['plain-close'][c]:.0f} µs of CPU more "
          f"than a new plain one (tls-close {med['tls-close'][c]:.1f} − plain-close "
          f"{med['plain-close'][c]:.1f} µs per request).")
PY
