//! The official `openai` Python SDK, pointed at the gateway, gets a completion and streams (every
//! chunk; the usage chunk only when it asked for it), a bad key surfaces as the SDK's
//! `AuthenticationError`, and the Responses API answers, streams and refuses. The same scripts
//! run twice: over plain HTTP/1.1, and over TLS (a CA made for the test) with HTTP/2 offered by
//! ALPN, where every response must have come over HTTP/2. Either way each request is accounted
//! alike: one access-log line, the tokens the SDK saw, the priced cost, nothing left reserved.
//!
//! `make test` installs the SDK (and `h2`, its HTTP/2 support) and sets `TOLLGATE_REQUIRE_SDK=1`,
//! so there these tests cannot be skipped; a bare `cargo test` on a machine without them skips
//! them with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;

/// `gpt-4`'s price in the harness configuration, in nano-dollars per token ($30 and $60 a
/// million).
const INPUT_NANOS: u64 = 30_000;
const OUTPUT_NANOS: u64 = 60_000;

/// How the SDK reaches the gateway.
enum Transport {
    /// Plain HTTP/1.1 through the SDK's own HTTP client.
    Plain,
    /// TLS with a certificate from this CA, HTTP/2 offered by ALPN.
    Tls(TestCa),
}

impl Transport {
    /// TLS with a CA made now, or `None` (the test is skipped) when the SDK cannot speak HTTP/2.
    fn tls(python: &str) -> Option<Transport> {
        has_h2(python).then(|| Transport::Tls(TestCa::new("SDK Test CA")))
    }

    fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }
}

/// Whether `python` has `h2`, without which the SDK's client cannot offer HTTP/2. Missing under
/// `TOLLGATE_REQUIRE_SDK` is a failure.
fn has_h2(python: &str) -> bool {
    let has = Command::new(python)
        .args(["-c", "import h2"])
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        assert!(
            std::env::var_os("TOLLGATE_REQUIRE_SDK").is_none(),
            "TOLLGATE_REQUIRE_SDK is set but `{python}` has no `h2` (the SDK's HTTP/2 support): \
             run `make sdk`"
        );
        eprintln!("skipped: the `h2` package is not installed (make sdk installs it)");
    }
    has
}

/// One SDK script's run against a fresh gateway, after every request it made was accounted.
struct Exchange {
    /// What the script printed.
    sdk: Value,
    /// The access-log lines, one per request.
    log: Vec<Value>,
    /// `GET /costs` for the consumer `tester`.
    costs: Value,
    /// `GET /stats`.
    stats: Value,
    /// Requests the backend saw.
    backend_requests: u64,
}

/// Runs `tests/sdk/<script>` as `KEY_STANDARD` asking for `gpt-4`, over `transport`, against a
/// gateway with `extra_yaml` that writes an access log; waits until `requests` lines are written
/// and nothing is left reserved.
fn exchange(
    python: &str,
    transport: &Transport,
    script: &str,
    extra_yaml: &str,
    requests: usize,
) -> Exchange {
    let mock = MockServer::start(&[]);
    let dir = temp_dir();
    let log_file = dir.join("access.log");
    let (server_tls, scheme) = match transport {
        Transport::Plain => (String::new(), "http"),
        Transport::Tls(ca) => {
            let pair = ca.server("server");
            let lines = format!("  tls: {}", pair.tls_yaml(""));
            (lines, "https")
        }
    };
    let gw = GatewayServer::start_with(
        &backends_for(mock.port),
        &server_tls,
        &format!(
            "access_log: {{to: \"{}\"}}\n{extra_yaml}",
            log_file.display()
        ),
        &[],
    );

    let base = format!("{scheme}://127.0.0.1:{}/v1", gw.port);
    let ca = match transport {
        Transport::Plain => None,
        Transport::Tls(ca) => Some(ca.cert.as_path()),
    };
    let sdk = run_sdk_script(python, script, &base, "gpt-4", ca);
    let log = access_log_settled(&gw, &log_file, requests, 10);
    Exchange {
        sdk,
        log,
        costs: gw.admin("/costs")["consumers"]["tester"].clone(),
        stats: gw.admin("/stats"),
        backend_requests: mock.requests(),
    }
}

/// The accounting every transport must give alike: one access-log line per request with the
/// `statuses` (in any order), each answered request on `route` reaching the backend once, priced
/// from its tokens (as counted, not estimated), its cost in the consumer's spend and nothing left
/// reserved; the protocol each line records is the one the transport speaks.
fn check_accounting(ex: &Exchange, transport: &Transport, route: &str, statuses: &[u64]) {
    let mut seen: Vec<u64> = ex
        .log
        .iter()
        .map(|l| l["status"].as_u64().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, statuses, "one line per request: {:#?}", ex.log);
    assert_eq!(ex.stats["aggregate"]["total_requests"], statuses.len());

    let (version, tls) = if transport.is_tls() {
        ("2", true)
    } else {
        ("1.1", false)
    };
    for line in &ex.log {
        assert_eq!(line["http_version"], version, "{line}");
        assert_eq!(line["tls"], tls, "{line}");
    }

    let answered: Vec<&Value> = ex.log.iter().filter(|l| l["status"] == 200).collect();
    assert_eq!(
        ex.backend_requests,
        answered.len() as u64,
        "only answered requests reach the backend, once each"
    );
    let mut spent = 0;
    for line in &answered {
        assert_eq!(line["route"], route, "{line}");
        assert_eq!(line["consumer_id"], "tester", "{line}");
        assert_eq!(line["model"], "gpt-4", "{line}");
        assert_eq!(line["cache_hit"], false, "{line}");
        assert_eq!(
            line["estimated"], false,
            "usage came from the backend: {line}"
        );
        assert_eq!(line["output_tokens"], 16, "{line}");
        let input = line["input_tokens"].as_u64().unwrap();
        assert!(input > 0, "{line}");
        let cost = line["cost_nanos"].as_u64().unwrap();
        assert_eq!(cost, input * INPUT_NANOS + 16 * OUTPUT_NANOS, "{line}");
        spent += cost;
    }
    for line in ex.log.iter().filter(|l| l["status"] != 200) {
        assert_eq!(
            line["cost_nanos"], 0,
            "a refused request costs nothing: {line}"
        );
    }
    assert_eq!(ex.costs["spent_today_nanos"], spent, "{}", ex.costs);
    assert_eq!(ex.costs["reserved_usd"], "0.000000", "{}", ex.costs);
    assert_eq!(
        ex.costs["recent_requests"].as_array().unwrap().len(),
        answered.len(),
        "one settlement per answered request: {}",
        ex.costs
    );
}

/// With TLS, the SDK's client saw `responses` responses, every one over HTTP/2 (the script
/// itself fails otherwise); without, it used its own client and recorded nothing.
fn check_transport(v: &Value, transport: &Transport, responses: u64) {
    assert_eq!(v["tls"], transport.is_tls(), "{v}");
    if transport.is_tls() {
        assert_eq!(v["responses"], responses, "{v}");
        assert_eq!(v["http_versions"], serde_json::json!(["HTTP/2"]), "{v}");
    }
}

/// A completion, a stream without and one with `include_usage`, and a bad key.
fn chat_completions(python: &str, transport: &Transport) {
    let ex = exchange(python, transport, "openai_chat.py", "", 4);
    let v = &ex.sdk;
    assert_eq!(v["content"], MOCK_ANSWER, "{v}");
    assert_eq!(v["streamed"], MOCK_ANSWER);
    assert_eq!(v["completion_tokens"], 16);
    assert_eq!(v["denied_status"], 401);
    // Role chunk + 16 token chunks + the finish chunk; the usage chunk the gateway asked for is
    // removed when the client did not ask, and passed through when it did.
    assert_eq!(v["chunks_plain"], 18);
    assert_eq!(v["usage_chunks_plain"], 0);
    assert_eq!(v["chunks_with_usage"], 19);
    assert_eq!(v["usage_chunks_asked"], 1);
    assert_eq!(v["usage_asked"], 16);
    check_transport(v, transport, 4);
    check_accounting(&ex, transport, "chat_completions", &[200, 200, 200, 401]);
    // The three answers had the same prompt; streamed or not, it is counted as the SDK saw it.
    for line in ex.log.iter().filter(|l| l["status"] == 200) {
        assert_eq!(line["input_tokens"], v["prompt_tokens"], "{line}");
    }
    let denied = ex.log.iter().find(|l| l["status"] == 401).unwrap();
    assert_eq!(denied["consumer_id"], "-");
}

/// The Responses API: a whole answer, a stream, and a refused SSN.
fn responses_api(python: &str, transport: &Transport) {
    // The script sends an SSN in a `function_call_output`; the filter refuses it.
    let ex = exchange(
        python,
        transport,
        "openai_responses.py",
        &ssn_filter(false),
        3,
    );
    let v = &ex.sdk;
    assert_eq!(v["text"], MOCK_ANSWER, "{v}");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output_tokens"], 16);
    assert_eq!(v["streamed"], MOCK_ANSWER);
    assert_eq!(v["first_event"], "response.created");
    assert_eq!(v["last_event"], "response.completed");
    assert_eq!(v["stream_output_tokens"], 16);
    assert_eq!(v["refused"], 400, "an SSN in a function_call_output: {v}");
    assert_eq!(v["refused_code"], "content_policy_violation");
    check_transport(v, transport, 3);
    check_accounting(&ex, transport, "responses", &[200, 200, 400]);
    assert!(
        ex.log
            .iter()
            .any(|l| l["status"] == 200 && l["input_tokens"] == v["input_tokens"]),
        "the whole answer is counted as the SDK saw it: {:#?}",
        ex.log
    );
}

#[test]
fn the_official_openai_sdk_gets_a_chat_completion_through_the_gateway() {
    let Some(python) = python_with_sdk() else {
        return;
    };
    chat_completions(&python, &Transport::Plain);
}

#[test]
fn the_official_openai_sdk_gets_a_chat_completion_over_tls_and_http2_accounted_alike() {
    let Some(python) = python_with_sdk() else {
        return;
    };
    let Some(tls) = Transport::tls(&python) else {
        return;
    };
    chat_completions(&python, &tls);
}

#[test]
fn the_official_openai_sdk_uses_the_responses_api_through_the_gateway() {
    let Some(python) = python_with_sdk() else {
        return;
    };
    responses_api(&python, &Transport::Plain);
}

#[test]
fn the_official_openai_sdk_uses_the_responses_api_over_tls_and_http2_accounted_alike() {
    let Some(python) = python_with_sdk() else {
        return;
    };
    let Some(tls) = Transport::tls(&python) else {
        return;
    };
    responses_api(&python, &tls);
}
