#!/usr/bin/env bash
# The peer gateways compare.sh measures beside Tollgate, installed at pinned versions from the
# package registries into PEERS_DIR (outside the repository; /var/tmp/tollgate-peers by default).
#
#   loadtest/peers.sh install [NAME...]   install the named peers (all by default); a peer that
#                                         cannot be installed is skipped with a one-line note
#   loadtest/peers.sh list                which peers are installed, at which version
#
# Sourced by compare.sh (after lib.sh and tg_setup, so WORK and PIDS exist), it gives:
#   peers_installed [NAME...]   the installed ones among NAME (all peers by default), one a line
#   peer_start NAME PORT MOCK SLOW [SIDE]  write NAME's configuration into $WORK/peer-NAME and start it on
#                               127.0.0.1:PORT, forwarding gpt-4 to the OpenAI-compatible mock at
#                               MOCK and gpt-4-slow to SLOW (a mock with a gap between events)
#   peer_wait NAME              until it answers (bounded; non-zero and the log's tail if not)
#   peer_pids NAME              the pids of its whole process tree (for CPU and RSS)
#   peer_url NAME               the URL of its chat-completions endpoint
#   peer_headers NAME           sets PEER_HDRS: the curl/oha header arguments of a request
#   peer_warmup NAME URL BODY   warms its pools (gently for grapsus, whose breaker counts client
#                               disconnects as upstream failures)
#   peer_stop NAME              stops the whole process tree
#   peer_features NAME          one line: what it had on
#
# Each peer at its defaults except what a deployer turns off (telemetry, phoning home), with the
# key check where it has one; loadtest/README.md lists what each had on.

PEERS_DIR=${PEERS_DIR:-/var/tmp/tollgate-peers}
PEERS_ALL="litellm portkey grapsus langdb"
PEER_MOCK=127.0.0.1:19602
PEER_KEY=sk-compare-peer          # the key a peer checks (LiteLLM's master key)
PEER_UPSTREAM_KEY=sk-mock         # what a peer sends the mock as the provider's key

LITELLM_VERSION=1.106.12          # 1.110.x needs litellm-proxy, not on the index; 1.107.0 was
                                  # a compromised release
PORTKEY_VERSION=1.15.2
PORTKEY_HONO_NODE_SERVER=1.14.1   # later @hono/node-server versions break its SSE path (its
                                  # issue 1389: "TypeError: immutable" on every streamed answer)
GRAPSUS_VERSION=0.5.12
LANGDB_VERSION=0.3.2              # crate ai-gateway

declare -A PEER_PID PEER_PORT

peer_note() { echo "peers: $*" >&2; }

peer_version() {
  case $1 in
    litellm) echo "$LITELLM_VERSION" ;; portkey) echo "$PORTKEY_VERSION" ;;
    grapsus) echo "$GRAPSUS_VERSION" ;; langdb) echo "$LANGDB_VERSION" ;;
  esac
}

# Installed means the marker written after a successful install names the pinned version.
peer_is_installed() { [ "$(cat "$PEERS_DIR/$1/.installed" 2>/dev/null)" = "$(peer_version "$1")" ]; }

peers_installed() {
  local p
  for p in ${*:-$PEERS_ALL}; do peer_is_installed "$p" && echo "$p"; done
  return 0
}

# --- install ---------------------------------------------------------------------------------
_install_litellm() {
  local d=$PEERS_DIR/litellm
  command -v python3 >/dev/null || { echo "python3 not found"; return 1; }
  rm -rf "$d" && python3 -m venv "$d" >/dev/null || { echo "python3 -m venv failed"; return 1; }
  "$d/bin/pip" install -q --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION" \
    >"$PEERS_DIR/litellm-install.log" 2>&1 || { echo "pip failed (see $PEERS_DIR/litellm-install.log)"; return 1; }
}

_install_portkey() {
  local d=$PEERS_DIR/portkey
  command -v node >/dev/null && command -v npm >/dev/null || { echo "node/npm not found"; return 1; }
  rm -rf "$d" && mkdir -p "$d"
  cat > "$d/package.json" <<JSON
{
  "private": true,
  "dependencies": { "@portkey-ai/gateway": "$PORTKEY_VERSION" },
  "overrides": { "@hono/node-server": "$PORTKEY_HONO_NODE_SERVER" }
}
JSON
  # --ignore-scripts: its only install script is patch-package, with no patches in the package.
  npm install --prefix "$d" --no-audit --no-fund --ignore-scripts \
    >"$PEERS_DIR/portkey-install.log" 2>&1 || { echo "npm failed (see $PEERS_DIR/portkey-install.log)"; return 1; }
}

# Rust peers: cargo install of the pinned crate (with the crate's own Cargo.lock), niced, the
# build output in PEERS_CARGO_TARGET_DIR/NAME (one each, so both can build at once): each takes
# tens of minutes on 2 busy cores.
_cargo_peer() { # name crate version [env...]
  local name=$1 crate=$2 version=$3; shift 3
  command -v cargo >/dev/null || { echo "cargo not found"; return 1; }
  env "$@" CARGO_TARGET_DIR="${PEERS_CARGO_TARGET_DIR:-$PEERS_DIR/build}/$name" \
    nice -n 15 cargo install --locked --version "$version" --root "$PEERS_DIR/$name" -j2 "$crate" \
    >"$PEERS_DIR/$name-build.log" 2>&1 || { echo "cargo install $crate $version failed (see $PEERS_DIR/$name-build.log)"; return 1; }
}

_install_grapsus() {
  if ! command -v protoc >/dev/null; then # its build compiles protobuf definitions
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq protobuf-compiler; } \
      >/dev/null 2>&1 || { echo "protoc missing and apt-get install protobuf-compiler failed"; return 1; }
  fi
  _cargo_peer grapsus grapsus-proxy "$GRAPSUS_VERSION"
}

_install_langdb() {
  # Its README's build flags (tracing's valuable feature, aws-sdk's unstable cfg).
  _cargo_peer langdb ai-gateway "$LANGDB_VERSION" RUSTFLAGS="--cfg tracing_unstable --cfg aws_sdk_unstable" || return 1
  # It binds an OTLP trace receiver on [::]:4317, hard-coded in its source: a preloaded shim
  # moves that one socket to [::1] and the port peer_start gives it.
  command -v cc >/dev/null || { echo "cc not found (for the port shim)"; return 1; }
  cat > "$PEERS_DIR/langdb/portshim.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
/* bind(): a socket asked for port 4317 gets $PORTSHIM_4317 instead, on loopback only. */
int bind(int fd, const struct sockaddr *addr, socklen_t len) {
  static int (*real)(int, const struct sockaddr *, socklen_t);
  if (!real) real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
  const char *to = getenv("PORTSHIM_4317");
  if (to && addr && len >= sizeof(struct sockaddr_in6) && addr->sa_family == AF_INET6 &&
      ((const struct sockaddr_in6 *)addr)->sin6_port == htons(4317)) {
    struct sockaddr_in6 a = *(const struct sockaddr_in6 *)addr;
    a.sin6_port = htons((unsigned short)atoi(to));
    a.sin6_addr = in6addr_loopback;
    return real(fd, (const struct sockaddr *)&a, sizeof a);
  }
  if (to && addr && len >= sizeof(struct sockaddr_in) && addr->sa_family == AF_INET &&
      ((const struct sockaddr_in *)addr)->sin_port == htons(4317)) {
    struct sockaddr_in a = *(const struct sockaddr_in *)addr;
    a.sin_port = htons((unsigned short)atoi(to));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return real(fd, (const struct sockaddr *)&a, sizeof a);
  }
  return real(fd, addr, len);
}
C
  cc -shared -fPIC -O2 -o "$PEERS_DIR/langdb/portshim.so" "$PEERS_DIR/langdb/portshim.c" -ldl \
    || { echo "building the port shim failed"; return 1; }
}

peer_install() {
  local name=$1 start why
  case " $PEERS_ALL " in *" $name "*) ;; *) peer_note "$name: unknown peer (known: $PEERS_ALL)"; return 1 ;; esac
  if peer_is_installed "$name"; then echo "$name $(peer_version "$name"): already installed"; return 0; fi
  mkdir -p "$PEERS_DIR"
  start=$(date +%s)
  if why=$("_install_$name" 2>&1); then
    peer_version "$name" > "$PEERS_DIR/$name/.installed"
    echo "$name $(peer_version "$name"): installed in $(( $(date +%s) - start )) s"
  else
    peer_note "$name skipped: ${why##*$'\n'}"
    return 1
  fi
}

# --- run ---------------------------------------------------------------------------------------
# The peer's root process is $! of the subshell that execs it; its tree is found through /proc.
peer_start() { # name port mock slow-mock [side port: grapsus's metrics, langdb's OTLP receiver; port+2 by default]
  local name=$1 port=$2 mock=$3 slow=$4 side=${5:-$(($2 + 2))} dir=$WORK/peer-$1
  mkdir -p "$dir"
  PEER_PORT[$name]=$port
  PEER_MOCK=$mock
  case $name in
    litellm)
      cat > "$dir/config.yaml" <<YAML
model_list:
  - model_name: gpt-4
    litellm_params: {model: openai/gpt-4, api_base: "http://$mock/v1", api_key: $PEER_UPSTREAM_KEY}
  - model_name: gpt-4-slow
    litellm_params: {model: openai/gpt-4, api_base: "http://$slow/v1", api_key: $PEER_UPSTREAM_KEY}
general_settings:
  master_key: $PEER_KEY
YAML
      # LITELLM_LOCAL_MODEL_COST_MAP: the cost map shipped in the package, not fetched at start.
      # LITELLM_LOG=ERROR, LITELLM_MODE=PRODUCTION: its production checklist (no info log line
      # per request, no .env loading). --timeout_worker_healthcheck: a worker takes longer than
      # uvicorn's 5 s to import the proxy on a busy 2-core machine, and is killed and restarted
      # forever without it.
      (cd "$dir" && LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR LITELLM_MODE=PRODUCTION \
        exec "$PEERS_DIR/litellm/bin/litellm" \
        --config "$dir/config.yaml" --host 127.0.0.1 --port "$port" --num_workers 2 \
        --timeout_worker_healthcheck 180 >"$dir/log" 2>&1) &
      ;;
    portkey)
      # --headless (and NODE_ENV=production): no console UI, no log stream to its page.
      (cd "$dir" && NODE_ENV=production exec node \
        "$PEERS_DIR/portkey/node_modules/@portkey-ai/gateway/build/start-server.js" \
        --port="$port" --headless >"$dir/log" 2>&1) &
      ;;
    grapsus)
      _grapsus_config "$port" "$mock" "$slow" "$side" "$dir" > "$dir/grapsus.kdl"
      (cd "$dir" && exec "$PEERS_DIR/grapsus/bin/grapsus" -c "$dir/grapsus.kdl" >"$dir/log" 2>&1) &
      ;;
    langdb)
      _langdb_config "$port" "$mock" "$slow" "$dir"
      # HOME: its model list (with the mock as gpt-4's endpoint) is read from ~/.langdb.
      # OTEL_EXPORTER_OTLP_ENDPOINT: it exports its own spans to its own receiver (moved).
      (cd "$dir" && HOME=$dir PORTSHIM_4317=$side LD_PRELOAD="$PEERS_DIR/langdb/portshim.so" \
        OTEL_EXPORTER_OTLP_ENDPOINT="http://[::1]:$side" ANSI_OUTPUT=false \
        exec "$PEERS_DIR/langdb/bin/ai-gateway" -c "$dir/config.yaml" serve \
        --host 127.0.0.1 --port "$port" >"$dir/log" 2>&1) &
      ;;
  esac
  PEER_PID[$name]=$!
  PIDS+=("$!")
}

# KDL 2 (its kdl crate is 6.x): booleans are #true, not its docs' `true`. Its metrics (on by
# default, on 0.0.0.0:9090) go to the side port, its error log (on by default, under /var/log)
# into WORK; its access log is off by default and stays off.
_grapsus_config() { # port mock slow side dir
  cat <<KDL
schema-version "1.0"
system {
    worker-threads ${THREADS:-2}
}
observability {
    metrics {
        address "127.0.0.1:$4"
    }
    logging {
        error-log {
            file "$5/error.log"
        }
    }
}
listeners {
    listener "http" {
        address "127.0.0.1:$1"
        protocol "http"
    }
}
upstreams {
    upstream "mock" {
        target "$2"
    }
    upstream "slow" {
        target "$3"
    }
}
routes {
    route "chat" {
        matches {
            path-prefix "/v1/chat/completions"
        }
        upstream "mock"
        service-type "inference"
        inference {
            provider "openai"
            rate-limit {
                tokens-per-minute 1000000000
                burst-tokens 1000000000
            }
            budget {
                period "daily"
                limit 1000000000000
                enforce #true
            }
            cost-attribution {
                enabled #true
                pricing {
                    model "gpt-4*" {
                        input-cost-per-million 30.0
                        output-cost-per-million 60.0
                    }
                }
            }
            model-routing {
                model "gpt-4-slow" upstream="slow"
                default-upstream "mock"
            }
        }
    }
}
KDL
}

_langdb_config() { # port mock slow dir
  mkdir -p "$4/.langdb"
  cat > "$4/config.yaml" <<YAML
http: {host: "127.0.0.1", port: $1, cors_allowed_origins: ["*"]}
providers:
  openai: {api_key: "$PEER_UPSTREAM_KEY"}
YAML
  local m
  for m in "gpt-4 $2" "gpt-4-slow $3"; do
    set -- $m
    cat <<YAML
- model: $1
  model_provider: openai
  inference_provider: {provider: openai, model_name: gpt-4, endpoint: "http://$2/v1"}
  price: {per_input_token: 30.0, per_output_token: 60.0, valid_from: null}
  input_formats: [text]
  output_formats: [text]
  capabilities: []
  type: completions
  limits: {max_context_size: 8192}
  description: the mock
  parameters: {}
YAML
  done > "$4/.langdb/models.yaml"
}

peer_url() { echo "http://127.0.0.1:${PEER_PORT[$1]}/v1/chat/completions"; }

peer_headers() { # name [slow: the slow mock's address, for a request to model gpt-4-slow]
  case $1 in
    litellm) PEER_HDRS=(-H "Authorization: Bearer $PEER_KEY") ;;
    portkey) PEER_HDRS=(-H "x-portkey-provider: openai" -H "x-portkey-custom-host: http://${2:-$PEER_MOCK}/v1"
                        -H "Authorization: Bearer $PEER_UPSTREAM_KEY") ;;
    *) PEER_HDRS=(-H "Authorization: Bearer $PEER_UPSTREAM_KEY") ;;
  esac
  # grapsus routes by model from a header (x-model), not from the body
  if [ "$1" = grapsus ] && [ -n "${2:-}" ]; then PEER_HDRS+=(-H "x-model: gpt-4-slow"); fi
}

peer_wait() { # name [seconds]
  local name=$1 limit=${2:-240} i url
  url="http://127.0.0.1:${PEER_PORT[$name]}"
  case $name in
    litellm) url=$url/health/liveliness ;;
    portkey) url=$url/ ;;
    grapsus|langdb) url=$url/v1/models ;;
  esac
  for i in $(seq 1 $((limit * 5))); do
    kill -0 "${PEER_PID[$name]}" 2>/dev/null || break
    # any HTTP answer means it listens (grapsus has no route for /v1/models)
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null)" != 000 ] && return 0
    sleep 0.2
  done
  peer_note "$name did not become ready; its log ends:"; tail -5 "$WORK/peer-$name/log" >&2
  return 1
}

# The root pid and every descendant, found through /proc (LiteLLM's workers, node's children).
peer_pids() {
  local todo=("${PEER_PID[$1]}") p kids
  while [ ${#todo[@]} -gt 0 ]; do
    p=${todo[0]}; todo=("${todo[@]:1}")
    [ -d "/proc/$p" ] || continue
    echo "$p"
    kids=$(cat /proc/"$p"/task/*/children 2>/dev/null || true)
    for k in $kids; do todo+=("$k"); done
  done
}

peer_warmup() { # name url body conns
  local name=$1 url=$2 body=$3 conns=$4 i
  peer_headers "$name"
  if [ "$name" = grapsus ]; then
    # Gently: a load generator's warm-up ends by dropping the requests in flight, and grapsus's
    # circuit breaker (5 failures) counts each dropped client as an upstream failure.
    for i in 1 2 3 4 5 6 7 8; do
      curl -s -o /dev/null --max-time 10 -H "Content-Type: application/json" "${PEER_HDRS[@]}" -d "$body" "$url" || true
    done
  else
    # 16 connections whatever the run's, opened anew in each of three rounds, so that every
    # worker gets some: LiteLLM's workers each import their provider's client (seconds of CPU,
    # mostly pydantic building models) on their first requests, not at start.
    for i in 1 2 3; do
      "$OHA" --no-tui -z 2s -c 16 -w -m POST -H "Content-Type: application/json" "${PEER_HDRS[@]}" \
        -d "$body" "$url" >/dev/null
    done
  fi
}

peer_stop() { # the root first (uvicorn's parent stops its workers), then what is left of the tree
  local pid=${PEER_PID[$1]:-} tree i
  [ -n "$pid" ] || return 0
  tree=$(peer_pids "$1")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  for i in $tree; do kill -TERM "$i" 2>/dev/null || true; done
  sleep 0.2
  for i in $tree; do kill -KILL "$i" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
  unset "PEER_PID[$1]"
}

peers_stop_all() { local p; for p in "${!PEER_PID[@]}"; do peer_stop "$p"; done; }

# One streamed request: "events first-event-ms last-byte-ms saw-[DONE] status".
_sse_probe() { # url model header-args...
  python3 - "$@" <<'PY'
import http.client, json, sys, time, urllib.parse
url, model, args = sys.argv[1], sys.argv[2], sys.argv[3:]
u = urllib.parse.urlsplit(url)
headers = {"Content-Type": "application/json"}
for h in args[1::2]:  # args are -H "Name: value" pairs
    k, v = h.split(":", 1)
    headers[k.strip()] = v.strip()
body = json.dumps({"model": model, "stream": True, "max_tokens": 64,
                   "messages": [{"role": "user", "content": "Say something about help-centre articles."}]})
t0 = time.monotonic()
try:
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("POST", u.path, body, headers)
    r = c.getresponse()
    events, first, done = 0, None, False
    for line in r:
        if line.startswith(b"data:"):
            events += 1
            first = first if first is not None else time.monotonic() - t0
            done = done or line.strip() == b"data: [DONE]"
    status = r.status
except Exception as e:  # refused, reset, not HTTP: the verdict says which
    events, first, done, status = 0, None, False, type(e).__name__
total = time.monotonic() - t0
print(events, round((first if first is not None else total) * 1000), round(total * 1000), int(done), status)
PY
}

# Whether NAME passes SSE through as it comes: the same stream straight from SLOW (a mock with
# a gap between events) and through the peer (its gpt-4-slow model goes to SLOW).
peer_sse_check() { # name slow
  local name=$1 slow=$2 ev first total done status ev0 first0 total0 i
  peer_headers "$name" "$slow"
  # Four streams first (LiteLLM's workers each take seconds over their first requests), then the
  # best of three: a peer that buffers is late with the first event every time.
  for i in 1 2 3 4; do _sse_probe "$(peer_url "$name")" gpt-4-slow "${PEER_HDRS[@]}" >/dev/null; done
  read -r ev first total done status < <(for i in 1 2 3; do _sse_probe "$(peer_url "$name")" gpt-4-slow "${PEER_HDRS[@]}"; done | sort -k2,2n | head -1)
  read -r ev0 first0 total0 _ _ < <(_sse_probe "http://$slow/v1/chat/completions" gpt-4)
  if [ "$status" != 200 ] || [ "$done" != 1 ] || [ "$ev" != "$ev0" ]; then
    echo "$name: BREAKS SSE: status $status, $ev events (direct $ev0), [DONE] seen: $done"
  elif [ $((total * 2)) -lt "$total0" ]; then
    echo "$name: SSE not checked: its stream did not come from the slow mock ($total ms, direct $total0 ms)"
  elif [ $((first * 2)) -gt "$total" ]; then
    echo "$name: BUFFERS SSE: first event after $first ms of $total ms (direct: $first0 of $total0 ms)"
  else
    echo "$name: passes SSE through: $ev events, first after $first ms, last after $total ms (direct: $first0, $total0 ms)"
  fi
}

peer_features() {
  case $1 in
    litellm) echo "LiteLLM $LITELLM_VERSION: master-key check, cost per answer (local cost map, x-litellm-response-cost), log at ERROR (its production advice: no line per request); 2 uvicorn workers, no DB (so no virtual keys, spend log or budgets)" ;;
    portkey) echo "Portkey $PORTKEY_VERSION: no key check (the open-source gateway has none), provider and host per request from headers, cache off (its default); 1 Node process" ;;
    grapsus) echo "grapsus $GRAPSUS_VERSION: inference route (OpenAI provider, model routing by x-model header), token rate limit, daily token budget (X-Budget-Remaining), cost attribution, error log; access log off (its default); no key check (its auth is an external agent process); ${THREADS:-2} worker threads" ;;
    langdb) echo "LangDB ai-gateway $LANGDB_VERSION: no key check (none in the open-source gateway), cost per answer into its in-memory usage, its own OTLP spans to its own receiver, request log" ;;
  esac
}

# --- command line ------------------------------------------------------------------------------
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  case ${1:-} in
    install)
      shift
      for p in ${*:-$PEERS_ALL}; do peer_install "$p" || true; done
      ;;
    list)
      for p in $PEERS_ALL; do
        if peer_is_installed "$p"; then echo "$p $(peer_version "$p") installed in $PEERS_DIR/$p"
        else echo "$p $(peer_version "$p") not installed"; fi
      done
      ;;
    *) echo "usage: $0 install [NAME...] | list   (peers: $PEERS_ALL; PEERS_DIR=$PEERS_DIR)" >&2; exit 2 ;;
  esac
fi
