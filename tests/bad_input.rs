//! Malformed and abusive requests at the edge: each gets a clear 4xx, nothing reaches a backend,
//! and the gateway keeps serving afterwards. Keys never show up in logs, metrics or errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::Write;
use std::time::Duration;

/// A way of presenting (or not) a key: name, headers, path.
type Credential<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

fn still_serving(gw: &GatewayServer) {
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_STANDARD)],
        CHAT,
    );
    assert_eq!(r.status, 200, "the gateway still serves: {}", r.body_text());
}

#[test]
fn every_kind_of_bad_credential_gets_the_same_401_and_no_key_is_ever_logged() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let long = "k".repeat(8 * 1024);
    let basic = format!("Basic {KEY_STANDARD}");
    let query = format!("/v1/chat/completions?api_key={KEY_STANDARD}");
    let chat = "/v1/chat/completions";
    let cases: Vec<Credential> = vec![
        ("missing", vec![], chat),
        ("empty", vec![("X-API-Key", "")], chat),
        (
            "bearer without a token",
            vec![("Authorization", "Bearer")],
            chat,
        ),
        (
            "malformed bearer",
            vec![("Authorization", "Bearer  a b c")],
            chat,
        ),
        (
            "wrong scheme with a real key",
            vec![("Authorization", basic.as_str())],
            chat,
        ),
        ("key in the query string", vec![], query.as_str()),
        ("8 KiB key", vec![("X-API-Key", long.as_str())], chat),
        (
            "unknown key",
            vec![("X-API-Key", "tg-not-a-real-key-000000")],
            chat,
        ),
    ];
    let mut bodies = Vec::new();
    for (name, headers, path) in &cases {
        let r = request(gw.port, "POST", path, headers, CHAT.as_bytes());
        assert_eq!(r.status, 401, "{name}");
        assert_eq!(r.json()["error"]["code"], "invalid_api_key", "{name}");
        bodies.push(r.body_text());
    }
    assert!(
        bodies.iter().all(|b| b == &bodies[0]),
        "one message for all: {bodies:?}"
    );
    assert_eq!(mock.ledger()["requests"], 0);
    still_serving(&gw);
    let metrics = gw.admin_text("/metrics");
    wait_until("the requests are logged", 5, || {
        gw.proc.log_text().matches("tollgate::request").count() >= cases.len()
    });
    for secret in [KEY_STANDARD, &long[..], "tg-not-a-real-key-000000"] {
        assert!(
            !gw.proc.log_text().contains(secret),
            "a key reached the log"
        );
        assert!(!metrics.contains(secret), "a key reached the metrics");
        assert!(!bodies[0].contains(secret), "a key reached an error");
    }
}

#[test]
fn request_smuggling_shapes_and_oversized_headers_are_refused_and_never_forwarded() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let key = format!("X-API-Key: {KEY_STANDARD}\r\n");
    let head = |extra: &str| -> Vec<u8> {
        format!("POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n{key}{extra}").into_bytes()
    };
    let body = CHAT.as_bytes();
    let chunked = format!("{:x}\r\n{CHAT}\r\n0\r\n\r\n", CHAT.len());
    let big = format!("X-Padding: {}\r\n", "a".repeat(40 * 1024));
    let many: String = (0..300).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "Content-Length and Transfer-Encoding",
            [
                head(&format!(
                    "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
                    body.len()
                )),
                chunked.clone().into_bytes(),
            ]
            .concat(),
            400,
        ),
        (
            "Transfer-Encoding and Content-Length",
            [
                head(&format!(
                    "Transfer-Encoding: chunked\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )),
                chunked.clone().into_bytes(),
            ]
            .concat(),
            400,
        ),
        (
            "two Content-Lengths",
            [
                head(&format!(
                    "Content-Length: {}\r\nContent-Length: 5\r\n\r\n",
                    body.len()
                )),
                body.to_vec(),
            ]
            .concat(),
            400,
        ),
        (
            "gzip transfer coding",
            [
                head("Transfer-Encoding: gzip, chunked\r\n\r\n"),
                chunked.clone().into_bytes(),
            ]
            .concat(),
            400,
        ),
        (
            "negative Content-Length",
            [head("Content-Length: -5\r\n\r\n"), body.to_vec()].concat(),
            400,
        ),
        (
            "overflowing Content-Length",
            [
                head("Content-Length: 99999999999999999999999999\r\n\r\n"),
                body.to_vec(),
            ]
            .concat(),
            400,
        ),
        (
            "duplicate Host",
            [
                head(&format!(
                    "Host: b\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )),
                body.to_vec(),
            ]
            .concat(),
            400,
        ),
        (
            "CR inside a header value",
            [
                head(&format!(
                    "X-A: b\rc\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )),
                body.to_vec(),
            ]
            .concat(),
            400,
        ),
        (
            "header block over 32 KiB",
            [
                head(&format!("{big}Content-Length: {}\r\n\r\n", body.len())),
                body.to_vec(),
            ]
            .concat(),
            431,
        ),
        (
            "300 headers",
            [
                head(&format!("{many}Content-Length: {}\r\n\r\n", body.len())),
                body.to_vec(),
            ]
            .concat(),
            400,
        ),
    ];
    for (name, bytes, status) in &cases {
        let (got, text) = raw(gw.port, bytes);
        assert_eq!(got, *status, "{name}: {text}");
        let lower = text.to_ascii_lowercase();
        assert!(
            lower.contains("connection: close"),
            "{name}: the connection must not be reused: {text}"
        );
        // Also where Pingora refuses the header itself: a JSON error, not its empty 400.
        assert!(
            lower.contains("content-type: application/json") && text.contains(r#"{"error":"#),
            "{name}: a JSON error: {text}"
        );
        assert!(!lower.contains("server: pingora"), "{name}: {text}");
    }
    assert_eq!(mock.ledger()["requests"], 0, "nothing was forwarded");
    // The ones the gateway answers itself carry a JSON reason.
    let (_, text) = raw(gw.port, &cases[0].1);
    assert!(
        text.contains("both Content-Length and Transfer-Encoding"),
        "{text}"
    );
    let (_, text) = raw(gw.port, &cases[8].1);
    assert!(text.contains("request_header_fields_too_large"), "{text}");
    still_serving(&gw);
}

#[test]
fn connect_is_refused_with_the_gateways_405_not_pingoras() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let (status, text) = raw(
        gw.port,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    );
    assert_eq!(status, 405, "{text}");
    assert!(text.contains("method_not_allowed"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("server: pingora"),
        "{text}"
    );
    assert_eq!(mock.ledger()["requests"], 0);
    still_serving(&gw);
}

#[test]
fn bodies_out_of_bounds_are_400_before_any_backend_is_called() {
    let mock = MockServer::start(&[]);
    // Backends with the default context (128,000 tokens).
    let backends =
        backends_for(mock.port).replace(&format!("    max_context_tokens: {LARGE_CONTEXT}\n"), "");
    let gw = GatewayServer::start(&backends, "");
    let deep = format!(
        r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"x","extra":{}{}}}]}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    // About 150,000 tokens: more than the 128,000 a backend has by default.
    let huge_string = format!(
        r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{}"}}],"max_tokens":16}}"#,
        "a ".repeat(300_000)
    );
    for (name, body, needle) in [
        (
            "deeply nested JSON",
            deep.as_str(),
            "nested deeper than 64 levels",
        ),
        (
            "unknown model",
            r#"{"model":"no-such-model","messages":[{"role":"user","content":"x"}]}"#,
            "no-such-model",
        ),
        (
            "n over the configured limit",
            r#"{"model":"gpt-4o","n":17,"messages":[{"role":"user","content":"x"}]}"#,
            "at most 16 choices",
        ),
        (
            "max_tokens past every window",
            r#"{"model":"gpt-4o","max_tokens":1000000000000,"messages":[{"role":"user","content":"x"}]}"#,
            "more than the per-minute limit",
        ),
        (
            "negative max_tokens",
            r#"{"model":"gpt-4o","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}"#,
            "invalid value",
        ),
        (
            "a prompt larger than the backend's context",
            huge_string.as_str(),
            "context",
        ),
    ] {
        let r = post_as(
            gw.port,
            "/v1/chat/completions",
            &[("X-API-Key", KEY_STANDARD)],
            body,
        );
        assert!(
            r.status == 400 || r.status == 404,
            "{name}: {} {}",
            r.status,
            r.body_text()
        );
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{name}: {msg}");
        assert!(
            !msg.contains("panicked") && !msg.contains("src/"),
            "{name}: {msg}"
        );
    }
    assert_eq!(mock.ledger()["requests"], 0);
    still_serving(&gw);
}

#[test]
fn n_choices_multiply_the_reserved_output() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    // `metered` has 10,000 tokens a minute. Without max_tokens the gateway's cap for gpt-4o
    // applies per choice; 16 choices of it cannot fit, one can.
    let one = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}"#;
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_METERED)],
        one,
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    let cap: u64 = r
        .header("x-ratelimit-limit-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(cap, 10_000);
    let many = r#"{"model":"gpt-4o","n":16,"messages":[{"role":"user","content":"x"}]}"#;
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_METERED)],
        many,
    );
    assert_eq!(r.status, 400, "{}", r.body_text());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("more than the per-minute limit"));
}

#[test]
fn more_requests_than_the_in_flight_cap_get_a_fast_503_and_service_recovers() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "  max_in_flight: 4");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let barrier = barrier.clone();
            let port = gw.port;
            std::thread::spawn(move || {
                barrier.wait();
                let started = std::time::Instant::now();
                let r = post_as(
                    port,
                    "/v1/chat/completions",
                    &[("X-API-Key", KEY_STANDARD), ("x-mock-latency-ms", "1500")],
                    CHAT,
                );
                (r, started.elapsed())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|(r, _)| r.status == 200).count();
    let refused: Vec<_> = results.iter().filter(|(r, _)| r.status == 503).collect();
    assert_eq!((ok, refused.len()), (4, 16));
    for (r, took) in refused {
        assert_eq!(r.json()["error"]["code"], "overloaded");
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(*took < Duration::from_millis(1000), "refused in {took:?}");
    }
    assert_eq!(mock.ledger()["requests"], 4);
    still_serving(&gw);
}

#[test]
fn a_request_refused_as_overloaded_keeps_its_connection_when_its_body_is_plain() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "  max_in_flight: 1");
    // Takes the one place for a second (each with its own prompt, so none is a cache hit).
    let occupy = |prompt: &str| {
        let (port, body) = (gw.port, CHAT.replace("hi", prompt));
        let slow = std::thread::spawn(move || {
            post_as(
                port,
                "/v1/chat/completions",
                &[("x-mock-latency-ms", "1000")],
                &body,
            )
            .status
        });
        std::thread::sleep(Duration::from_millis(300));
        slow
    };
    let slow = occupy("first");
    let mut s = connect(gw.port);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
    let keep_alive = post_bytes(
        "/v1/chat/completions",
        &[("X-Mock-Latency-Ms", "0")],
        &CHAT.replace("hi", "hi again"),
    );
    s.write_all(&keep_alive).unwrap();
    let refused = read_response(&mut reader).unwrap();
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_ne!(refused.header("connection"), Some("close"));
    assert_eq!(slow.join().unwrap(), 200);
    // The same connection, once the cap has room again: the refused body was read off, so the
    // next request is parsed from its own first byte.
    s.write_all(&keep_alive).unwrap();
    assert_eq!(read_response(&mut reader).unwrap().status, 200);

    // A chunked body is not read off: that connection is closed after the 503.
    let slow = occupy("second");
    let chunked = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nX-API-Key: {KEY_STANDARD}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{CHAT}\r\n0\r\n\r\n",
        CHAT.len()
    );
    let (status, text) = raw(gw.port, chunked.as_bytes());
    assert_eq!(status, 503, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert_eq!(slow.join().unwrap(), 200);
    assert_eq!(mock.ledger()["requests"], 3);
}

/// Sends a request head declaring `len` body bytes, then `sent` of them, one every `gap`; returns
/// the status and how long the gateway took to answer after the last byte went out.
fn trickle_body(port: u16, len: usize, sent: usize, gap: Duration) -> (u16, String, Duration) {
    let mut s = connect(port);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nX-API-Key: {KEY_STANDARD}\r\nContent-Length: {len}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    trickle(&mut s, &vec![b' '; sent], gap);
    let after = std::time::Instant::now();
    let text = read_all(&mut s);
    (status_of(&text), text, after.elapsed())
}

#[test]
fn a_stalled_body_and_a_trickling_body_are_cut_with_408() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(
        &backends_for(mock.port),
        "  timeouts:\n    client_body_ms: 400\n    client_body_total_ms: 1500",
    );
    // Stalled: 10 of 100 bytes, then nothing; cut one idle timeout later.
    let (status, text, took) = trickle_body(gw.port, 100, 10, Duration::ZERO);
    assert_eq!(status, 408, "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(took < Duration::from_secs(3), "cut after {took:?}");
    // Trickling: a byte every 200 ms never trips the idle timeout, but the whole body must
    // arrive within 1.5 s, so it is cut while still sending.
    let started = std::time::Instant::now();
    let (status, text, _) = trickle_body(gw.port, 100, 30, Duration::from_millis(200));
    assert_eq!(status, 408, "{text}");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(mock.ledger()["requests"], 0, "nothing was forwarded");
    still_serving(&gw);
}
