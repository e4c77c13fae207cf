//! Routing and resilience against real processes: weighted shares, priority failover and
//! recovery, the circuit breaker, failover with large bodies, never retrying after the first
//! streamed byte, all backends down, and HTTPS backends with a private CA.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::{BufReader, Write};
use std::time::{Duration, Instant};

const ASK: &str =
    r#"{"model":"gpt-4o","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#;

/// A keep-alive client sending `ASK` repeatedly; returns the statuses.
fn hammer(port: u16, n: usize) -> Vec<u16> {
    let s = connect(port);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let bytes = post_bytes(
        "/v1/chat/completions",
        &[("Cache-Control", "no-store")],
        ASK,
    );
    (0..n)
        .map(|_| {
            w.write_all(&bytes).unwrap();
            read_response(&mut r).map(|x| x.status).unwrap_or(0)
        })
        .collect()
}

fn backends(items: &[String]) -> String {
    format!("backends:\n{}", items.concat())
}

#[test]
fn weighted_backends_share_traffic_three_to_one() {
    let (a, b) = (MockServer::start(&[]), MockServer::start(&[]));
    let gw = GatewayServer::start(
        &backends(&[
            openai_backend("a", a.port, 1, 3, ""),
            openai_backend("b", b.port, 1, 1, ""),
        ]),
        "",
    );
    let statuses = hammer(gw.port, 4_000);
    assert!(statuses.iter().all(|s| *s == 200));
    let (na, nb) = (a.requests() as f64, b.requests() as f64);
    let share = na / (na + nb);
    assert!((0.72..=0.78).contains(&share), "a got {na}, b got {nb}");
}

#[test]
fn priority_two_takes_over_without_client_errors_and_priority_one_takes_back() {
    let a = MockServer::start(&[]);
    let a_port = a.port;
    let b = MockServer::start(&[]);
    let check = "    health_check: {kind: http, path: /health, interval_ms: 100, timeout_ms: 500, unhealthy_threshold: 2, healthy_threshold: 2}\n";
    let gw = GatewayServer::start(
        &backends(&[
            openai_backend("primary", a.port, 1, 1, check),
            openai_backend("secondary", b.port, 2, 1, check),
        ]),
        "",
    );
    assert!(hammer(gw.port, 20).iter().all(|s| *s == 200));
    assert_eq!(
        (a.requests(), b.requests()),
        (20, 0),
        "priority 2 idles while 1 is healthy"
    );
    drop(a); // the primary dies mid-run
    let statuses = hammer(gw.port, 50);
    assert!(
        statuses.iter().all(|s| *s == 200),
        "no client-visible errors: {statuses:?}"
    );
    wait_until("the checks mark the primary unhealthy", 10, || {
        gw.proc
            .log_text()
            .contains("backend primary failed 2 health checks")
    });
    assert!(hammer(gw.port, 20).iter().all(|s| *s == 200));
    assert_eq!(b.requests(), 70, "the secondary took everything");
    let a = MockServer::start_on(a_port, &[]);
    // Traffic returns once the primary passed its success threshold (2 checks, 100 ms apart).
    wait_until("the checks see the primary recover", 10, || {
        gw.proc
            .log_text()
            .contains("backend primary is healthy again")
    });
    assert!(hammer(gw.port, 20).iter().all(|s| *s == 200));
    assert_eq!(
        (a.requests(), b.requests()),
        (20, 70),
        "the primary has the traffic back"
    );
}

#[test]
fn a_failing_backend_opens_its_circuit_then_gets_one_probe_after_the_cooldown() {
    let bad = MockServer::start(&["--fault-status", "500"]);
    let good = MockServer::start(&[]);
    let gw = GatewayServer::start_with(
        &backends(&[
            openai_backend("bad", bad.port, 1, 1, ""),
            openai_backend("good", good.port, 2, 1, ""),
        ]),
        "",
        "routing:\n  circuit_breaker: {failure_threshold: 5, window_seconds: 60, open_seconds: 2}\n",
        &[],
    );
    // Each request fails on `bad` and is retried on `good`: the client never sees the 500s.
    assert!(hammer(gw.port, 5).iter().all(|s| *s == 200));
    assert_eq!(bad.requests(), 5);
    // Open: no traffic at all to `bad`.
    assert!(hammer(gw.port, 30).iter().all(|s| *s == 200));
    assert_eq!(bad.requests(), 5, "an open circuit gets no traffic");
    std::thread::sleep(Duration::from_millis(2_100)); // the cooldown itself is what is tested
    assert!(hammer(gw.port, 10).iter().all(|s| *s == 200));
    assert_eq!(
        bad.requests(),
        6,
        "exactly one half-open probe, which failed and re-opened"
    );
    assert_eq!(good.requests(), 5 + 30 + 10);
}

#[test]
fn a_backend_429_with_retry_after_keeps_it_out_for_that_long() {
    let busy = MockServer::start(&["--fault-status", "429", "--retry-after", "7"]);
    let good = MockServer::start(&[]);
    let gw = GatewayServer::start(
        &backends(&[
            openai_backend("busy", busy.port, 1, 1, ""),
            openai_backend("good", good.port, 2, 1, ""),
        ]),
        "",
    );
    let t0 = Instant::now();
    assert!(
        hammer(gw.port, 1).iter().all(|s| *s == 200),
        "the 429 was retried elsewhere"
    );
    assert_eq!(busy.requests(), 1);
    while t0.elapsed() < Duration::from_secs(6) {
        assert_eq!(hammer(gw.port, 1)[0], 200);
        assert_eq!(
            busy.requests(),
            1,
            "kept out for Retry-After ({:?} in)",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(hammer(gw.port, 1)[0], 200);
    assert_eq!(busy.requests(), 2, "tried again after ~7 s");
}

#[test]
fn failover_resends_a_one_mebibyte_body_byte_exact() {
    let second = MockServer::start(&[]);
    let failing = MockServer::start(&["--fault-status", "500"]);
    let dead = free_port();
    for first in [
        openai_backend("refusing", dead, 1, 1, ""),
        openai_backend("failing", failing.port, 1, 1, ""),
    ] {
        let gw = GatewayServer::start(
            &backends(&[first, openai_backend("second", second.port, 2, 1, "")]),
            "",
        );
        let body = chat_body_of_size("gpt-4o", false, 1024 * 1024);
        let r = request(
            gw.port,
            "POST",
            "/v1/chat/completions",
            &[("X-API-Key", KEY_STANDARD)],
            &body,
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("x-tollgate-backend"), Some("second"));
        let last = &second.ledger()["last_request"];
        assert_eq!(last["body_bytes"], body.len());
        assert_eq!(last["body_sha256"], sha256_hex(&body));
        wait_until("the attempts are logged", 5, || {
            gw.proc.log_text().contains("attempts=2")
        });
    }
    assert_eq!(failing.requests(), 1);
}

#[test]
fn a_failure_after_the_first_streamed_byte_is_not_retried() {
    let cut = MockServer::start(&["--reset-after", "3"]);
    let second = MockServer::start(&[]);
    let gw = GatewayServer::start(
        &backends(&[
            openai_backend("cut", cut.port, 1, 1, ""),
            openai_backend("second", second.port, 2, 1, ""),
        ]),
        "",
    );
    let body = r#"{"model":"gpt-4o","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#;
    let mut r = send_post(gw.port, "/v1/chat/completions", &[], body);
    assert!(
        read_response(&mut r).is_none(),
        "the client sees the stream cut, not a retry"
    );
    assert_eq!(second.requests(), 0);
}

#[test]
fn with_every_backend_down_the_answer_is_a_fast_503_with_retry_after() {
    let (d1, d2) = (free_port(), free_port());
    let gw = GatewayServer::start(
        &backends(&[
            openai_backend("d1", d1, 1, 1, ""),
            openai_backend("d2", d2, 2, 1, ""),
        ]),
        "  timeouts:\n    connect_ms: 2000\n",
    );
    let t0 = Instant::now();
    let r = post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), ASK);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "answered within the connect timeout"
    );
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
    assert!(r.json()["error"]["code"]
        .as_str()
        .unwrap()
        .starts_with("upstream_unreachable"));
}

#[test]
fn an_https_backend_signed_by_a_private_ca_works_end_to_end() {
    let ca_made = TestCa::new("Tollgate Test CA");
    let server = ca_made.server("server");
    let (cert, key) = (server.cert_str(), server.key_str());
    let tls_mock = MockServer::start(&["--tls-cert", &cert, "--tls-key", &key]);
    let ca = ca_made.cert_str();
    let item = format!(
        "  - id: secure\n    url: \"https://127.0.0.1:{}\"\n    protocol: openai\n    models: [gpt-4o]\n    ca_file: \"{ca}\"\n    {}\n",
        tls_mock.port,
        mock_headers()
    );
    let gw = GatewayServer::start(&format!("backends:\n{item}"), "");
    let r = post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), ASK);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["object"], "chat.completion");
    // Without the private CA the certificate is refused: verification is on.
    let plain = item.replace(&format!("    ca_file: \"{ca}\"\n"), "");
    let gw2 = GatewayServer::start(&format!("backends:\n{plain}"), "");
    let r = post_json(gw2.port, "/v1/chat/completions", Some(KEY_STANDARD), ASK);
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn the_demo_rules_route_interns_to_the_low_cost_agent_and_aliases_rename_the_model() {
    let demo = DemoServer::start();
    let intern = demo.chat("key-team-intern", "hello", "s1");
    assert_eq!(
        intern.json()["gateway_metadata"]["routed_to"],
        "agent-low-cost"
    );
    let support = demo.chat("key-team-support", "hello", "s1");
    assert_eq!(
        support.json()["gateway_metadata"]["routed_to"],
        "agent-primary"
    );
    let r = post_json(
        demo.port,
        "/v1/chat/completions",
        Some("key-team-engineering"),
        r#"{"model":"gpt-4o-mini","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-tollgate-backend"), Some("mock-openai"));
    assert_eq!(
        r.json()["model"],
        "gpt-4o",
        "the backend was asked for its own model name"
    );
}

#[test]
fn with_the_only_backend_cooling_down_the_answer_is_503_unless_fallback_is_configured() {
    let bad = MockServer::start(&["--fault-status", "500"]);
    for (fallback, sixth) in [(false, 503), (true, 502)] {
        let gw = GatewayServer::start_with(
            &backends(&[openai_backend("bad", bad.port, 1, 1, "")]),
            "",
            &format!(
                "routing:\n  fallback_to_unusable: {fallback}\n  circuit_breaker: {{failure_threshold: 5, window_seconds: 60, open_seconds: 30}}\n"
            ),
            &[],
        );
        let statuses = hammer(gw.port, 6);
        assert_eq!(
            statuses,
            [502, 502, 502, 502, 502, sixth],
            "fallback {fallback}"
        );
        if !fallback {
            let r = post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), ASK);
            assert_eq!(r.json()["error"]["code"], "no_backend_available");
            let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=30).contains(&retry), "{retry}");
        }
    }
}

#[test]
fn a_truncated_json_answer_is_502_settled_on_the_worst_case_and_never_cached() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start_with(
        &backends_for(mock.port),
        "",
        "cache: {enabled: true, scope: consumer, ttl_seconds: 60}\n",
        &[],
    );
    let body =
        r#"{"model":"gpt-4o","max_tokens":50,"messages":[{"role":"user","content":"cut me off"}]}"#;
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_METERED), ("x-mock-truncate", "1")],
        body,
    );
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["type"], "upstream_error");
    // The backend may have generated the answer: charged as the worst case, marked estimated.
    let costs = gw.admin("/costs");
    let last = &costs["consumers"]["metered"]["recent_requests"][0];
    assert_eq!(last["estimated"], true, "{costs}");
    assert_eq!(last["output_tokens"], 50);
    assert_eq!(costs["consumers"]["metered"]["reserved_usd"], "0.000000");
    // Nothing was cached: the same request, without the fault, goes to the backend.
    let again = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_METERED)],
        body,
    );
    assert_eq!(again.status, 200);
    assert_eq!(again.header("x-tollgate-cache"), Some("MISS"));
    assert_eq!(mock.ledger()["requests"], 2);
}

#[test]
fn a_preference_applies_among_usable_backends_and_a_requirement_does_not_bend() {
    let mock = MockServer::start(&[]);
    let dead = free_port();
    let routing = "routing:\n  rules:\n    - {name: interns, when: {team: Interns}, prefer: {cost_tier: low}}\n    - {name: long-prefer, when: {consumer: tester, estimated_tokens_over: 5000}, prefer: {context_factor: 2}}\n    - {name: long-require, when: {consumer: security, estimated_tokens_over: 5000}, require: {context_factor: 2}}\n";
    let gw = GatewayServer::start_with(
        &backends(&[
            openai_backend("main", mock.port, 1, 1, "    max_context_tokens: 9000\n")
                .replace(&format!("    max_context_tokens: {LARGE_CONTEXT}\n"), ""),
            openai_backend(
                "cheap",
                dead,
                3,
                1,
                "    cost_tier: low\n    max_context_tokens: 9000\n",
            )
            .replace(&format!("    max_context_tokens: {LARGE_CONTEXT}\n"), ""),
        ]),
        "",
        routing,
        &[],
    );
    // The intern's preferred low-cost backend is down: the others answer, as in the lab.
    for i in 0..3 {
        let ask = ASK.replace("hi", &format!("hi {i}"));
        let r = post_json(gw.port, "/v1/chat/completions", Some(KEY_LIMITED), &ask);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("x-tollgate-backend"), Some("main"));
    }
    // About 6,000 prompt tokens: no backend has twice that. Preferred: served anyway.
    let long = format!(
        r#"{{"model":"gpt-4o","max_tokens":4,"messages":[{{"role":"user","content":"{}"}}]}}"#,
        "lorem ipsum dolor sit amet ".repeat(900)
    );
    let r = post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), &long);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Required: refused, naming the model.
    let r = post_json(gw.port, "/v1/chat/completions", Some(KEY_SECURITY), &long);
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
}
