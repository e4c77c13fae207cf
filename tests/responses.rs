//! The OpenAI Responses API through the gateway (the official Python SDK's test is in
//! `tests/sdk.rs`, over HTTP/1.1 and over TLS with HTTP/2): the output cap forwarded over a
//! `null`, stateful requests never cached, answer rules on its streams (deltas and the full text
//! its `done` and terminal events repeat).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn post(port: u16, body: &serde_json::Value, headers: &[(&str, &str)]) -> Response {
    post_as(port, "/v1/responses", headers, &body.to_string())
}

#[test]
fn a_null_cap_still_forwards_the_gateways_numeric_cap() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start_with(
        &backends_for(mock.port),
        "",
        "max_output_tokens: {default: 5}\n",
        &[],
    );
    let body = serde_json::json!({"model": "gpt-4", "input": "hi", "max_output_tokens": null});
    let r = post(gw.port, &body, &[]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    let v = r.json();
    assert_eq!(
        v["usage"]["output_tokens"], 5,
        "the mock obeyed a cap of 5: {v}"
    );
    assert_eq!(v["status"], "incomplete");
}

#[test]
fn a_request_the_provider_keeps_state_for_is_never_answered_from_the_cache() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let plain = serde_json::json!({"model": "gpt-4", "input": "same question"});
    assert_eq!(
        post(gw.port, &plain, &[]).header("x-tollgate-cache"),
        Some("MISS")
    );
    assert_eq!(
        post(gw.port, &plain, &[]).header("x-tollgate-cache"),
        Some("HIT")
    );
    for stateful in [
        serde_json::json!({"model": "gpt-4", "input": "same question", "store": true}),
        serde_json::json!({"model": "gpt-4", "input": "next", "previous_response_id": "resp_1"}),
    ] {
        for _ in 0..2 {
            let r = post(gw.port, &stateful, &[]);
            assert_eq!(r.status, 200);
            assert_ne!(r.header("x-tollgate-cache"), Some("HIT"), "{stateful}");
        }
    }
    assert_eq!(mock.requests(), 5);
}

#[test]
fn answer_rules_redact_its_stream_deltas_and_the_full_text_its_final_events_repeat() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start_with(&backends_for(mock.port), "", &ssn_filter(true), &[]);
    let body = serde_json::json!({"model": "gpt-4", "input": "tell me", "stream": true});
    let r = post(
        gw.port,
        &body,
        &[("x-mock-answer", "It is 123-4|5-67|89, ok.")],
    );
    assert_eq!(r.status, 200);
    let text = r.body_text();
    assert!(!text.contains("6789") && !text.contains("5-67"), "{text}");
    let mut deltas = String::new();
    let mut completed = None;
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        match v["type"].as_str() {
            Some("response.output_text.delta") => deltas.push_str(v["delta"].as_str().unwrap()),
            Some("response.completed") => completed = Some(v),
            _ => {}
        }
    }
    assert_eq!(deltas, "It is [REDACTED:ssn_out], ok.");
    let completed = completed.expect("a completed event");
    assert_eq!(
        completed["response"]["output"][0]["content"][0]["text"],
        "It is [REDACTED:ssn_out], ok."
    );
    assert_eq!(completed["response"]["usage"]["output_tokens"], 3);
    // A whole answer too.
    let body = serde_json::json!({"model": "gpt-4", "input": "tell me"});
    let r = post(gw.port, &body, &[("x-mock-answer", "It is 123-45-6789.")]);
    assert_eq!(
        r.json()["output"][0]["content"][0]["text"],
        "It is [REDACTED:ssn_out]."
    );
}

/// Mixed Responses traffic — whole, streamed, streams the client leaves, streams the backend
/// cuts, requests the backend fails — settles what the backend reports for every completed one,
/// the worst case (estimated, never zero) for every cut one, and nothing for a failed one.
#[test]
fn mixed_responses_traffic_settles_what_the_backend_counted() {
    use std::io::Read;
    let good = MockServer::start(&[]);
    let flaky = MockServer::start(&["--chunk-delay-ms", "3"]);
    let backends = format!(
        "backends:\n{}  - id: flaky\n    url: \"http://127.0.0.1:{}\"\n    protocol: openai\n    models: [gpt-x]\n    {}\n",
        openai_backend("good", good.port, 1, 1, ""),
        flaky.port,
        mock_headers()
    );
    // The flaky backend fails a tenth of its requests on purpose; this test is about what they
    // settle, so its circuit must not open (five failures in a row without a success between
    // would, and then the cut streams would be answered 503 at once, seen once in CI).
    let gw = GatewayServer::start_with(
        &backends,
        "",
        "routing: {circuit_breaker: {failure_threshold: 100000}}\n",
        &[],
    );
    let body = |model: &str, input: &str, stream: bool| {
        serde_json::json!({"model": model, "input": input, "stream": stream}).to_string()
    };
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let port = gw.port;
            std::thread::spawn(move || {
                let (mut completed, mut cut, mut failed) = (0u64, 0u64, 0u64);
                for i in 0..40u64 {
                    let kind = (i * 8 + t) % 100;
                    if kind < 10 {
                        let mut r =
                            send_post(port, "/v1/responses", &[], &body("gpt-x", "leave", true));
                        let mut buf = vec![0u8; 1 + ((i * 37 + t * 11) % 600) as usize];
                        let _ = r.read(&mut buf);
                        cut += 1;
                    } else if kind < 15 {
                        let after = (2 + (i + t) % 12).to_string();
                        let mut r = send_post(
                            port,
                            "/v1/responses",
                            &[("x-mock-reset-after", &after)],
                            &body("gpt-x", "backend dies", true),
                        );
                        assert!(
                            read_response(&mut r).is_none(),
                            "a cut stream must not look complete"
                        );
                        cut += 1;
                    } else if kind < 20 {
                        let r = post_as(
                            port,
                            "/v1/responses",
                            &[("x-mock-status", "500")],
                            &body("gpt-x", "fails", false),
                        );
                        assert_eq!(r.status, 502, "{}", r.body_text());
                        failed += 1;
                    } else {
                        let input = format!("question {i} of client {t}");
                        let r = post_as(
                            port,
                            "/v1/responses",
                            &[],
                            &body("gpt-4o", &input, kind % 2 == 0),
                        );
                        assert_eq!(r.status, 200, "{}", r.body_text());
                        completed += 1;
                    }
                }
                (completed, cut, failed)
            })
        })
        .collect();
    let (mut completed, mut cut, mut failed) = (0, 0, 0);
    for t in threads {
        let (c, k, f) = t.join().unwrap();
        (completed, cut, failed) = (completed + c, cut + k, failed + f);
    }
    assert_eq!(completed + cut + failed, 320);
    wait_settled_and_logged(&gw, 320);
    let log = gw.proc.log_text();
    assert_eq!(
        settled_tokens(&log, "gpt-4o"),
        ledger_tokens(&good),
        "completed requests settle exactly what the backend counted"
    );
    let gpt_x: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("tollgate::request") && l.contains("model=gpt-x"))
        .collect();
    let cut_lines: Vec<&&str> = gpt_x
        .iter()
        .filter(|l| l.contains(" status=200 "))
        .collect();
    assert_eq!(cut_lines.len() as u64, cut);
    for l in cut_lines {
        assert!(
            l.contains("estimated=true") && !l.contains(" tokens_in=0 "),
            "{l}"
        );
    }
    let failed_lines: Vec<&&str> = gpt_x
        .iter()
        .filter(|l| l.contains(" status=502 "))
        .collect();
    assert_eq!(failed_lines.len() as u64, failed);
    for l in failed_lines {
        assert!(
            l.contains(" cost_nanos=0"),
            "a failed request costs nothing: {l}"
        );
    }
}

/// The Vercel AI SDK's default `openai(model)` (the Responses API): `generateText` and
/// `streamText`. `make test` installs it when Node is on the machine and then requires it.
#[test]
fn the_vercel_ai_sdk_default_openai_path_generates_and_streams_through_the_gateway() {
    let dir = std::env::var("TOLLGATE_JS_SDK").ok();
    let has_node = Command::new("node")
        .arg("--version")
        .status()
        .is_ok_and(|s| s.success());
    let Some(dir) = dir.filter(|d| has_node && Path::new(d).join("node_modules/ai").is_dir())
    else {
        assert!(
            std::env::var_os("TOLLGATE_REQUIRE_JS_SDK").is_none(),
            "TOLLGATE_REQUIRE_JS_SDK is set but Node or the SDK (TOLLGATE_JS_SDK) is missing"
        );
        eprintln!("skipped: the Vercel AI SDK is not installed (make test installs it)");
        return;
    };
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/vercel_ai.cjs");
    let out = Command::new("node")
        .args([
            script,
            &dir,
            &format!("http://127.0.0.1:{}/v1", gw.port),
            KEY_STANDARD,
            "gpt-4",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the SDK failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = MOCK_ANSWER;
    assert_eq!(v["text"], expected, "{v}");
    assert_eq!(v["output_tokens"], 16);
    assert_eq!(v["streamed"], expected);
    assert_eq!(v["stream_output_tokens"], 16);
}
