//! Who may call: keys, model allowlists, bad bodies, and what never leaks (keys in logs, client
//! credentials upstream).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

const CHAT: &str = r#"{"model":"gpt-4","messages":[{"role":"user","content":"hello"}]}"#;

#[test]
fn missing_unknown_and_malformed_keys_all_get_the_same_401() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("X-API-Key", "")],
        vec![("X-API-Key", "key-not-configured")],
        vec![("Authorization", "Basic dXNlcjpwYXNz")],
        vec![("Authorization", "Bearer")],
        vec![
            ("X-API-Key", KEY_STANDARD),
            ("Authorization", "Bearer some-other-key"),
        ],
    ];
    let mut bodies = Vec::new();
    for headers in &cases {
        let r = request(
            gw.port,
            "POST",
            "/v1/chat/completions",
            headers,
            CHAT.as_bytes(),
        );
        assert_eq!(r.status, 401, "{headers:?}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        assert_eq!(v["error"]["code"], "invalid_api_key");
        assert_eq!(v["error"]["type"], "authentication_error");
        bodies.push(r.body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "one message for every failure"
    );
    // A key in the query string is not a key.
    let r = request(
        gw.port,
        "POST",
        &format!("/v1/chat/completions?api_key={KEY_STANDARD}"),
        &[],
        CHAT.as_bytes(),
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        mock.ledger()["requests"],
        0,
        "nothing unauthenticated reaches the backend"
    );
}

#[test]
fn the_lab_route_answers_401_in_the_seeds_detail_shape() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let r = post_json(
        gw.port,
        "/chat",
        None,
        r#"{"message":"Hello","session_id":"gw-test2"}"#,
    );
    assert_eq!(r.status, 401);
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.starts_with("Invalid or missing API key."),
        "{detail}"
    );
}

#[test]
fn a_model_outside_the_allowlist_is_403_and_inside_it_passes() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let r = post_json(gw.port, "/v1/chat/completions", Some(KEY_LIMITED), CHAT);
    assert_eq!(r.status, 403);
    let v = r.json();
    assert_eq!(v["error"]["code"], "model_not_allowed");
    assert_eq!(
        v["error"]["message"],
        "Consumer 'limited' is not authorized for model 'gpt-4'."
    );
    let r = post_json(
        gw.port,
        "/chat",
        Some(KEY_LIMITED),
        r#"{"message":"hi","model":"gpt-4"}"#,
    );
    assert_eq!(r.status, 403);
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("not authorized"));
    let ok = CHAT.replace("gpt-4", "gpt-4o");
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_LIMITED), &ok).status,
        200
    );
    assert_eq!(mock.ledger()["requests"], 1);
}

#[test]
fn bad_bodies_are_400_with_a_reason_and_never_forwarded() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    for (path, body, needle) in [
        ("/v1/chat/completions", "{not json", "key must be a string"),
        (
            "/v1/chat/completions",
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
            "missing field `model`",
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"gpt-4","messages":"x"}"#,
            "invalid type",
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"gpt-4","messages":[]}"#,
            "must not be empty",
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"gpt-4","stream":"yes","messages":[{"role":"user","content":"x"}]}"#,
            "invalid type",
        ),
        ("/chat", r#"{"session_id":"s"}"#, "missing field `message`"),
        ("/chat", r#"{"message":42}"#, "invalid type"),
        ("/chat", "", "JSON object"),
    ] {
        let r = post_json(gw.port, path, Some(KEY_STANDARD), body);
        assert_eq!(r.status, 400, "{path} {body}");
        let v = r.json();
        let msg = if path == "/chat" {
            v["detail"].as_str().unwrap().to_string()
        } else {
            assert_eq!(v["error"]["type"], "invalid_request_error");
            v["error"]["message"].as_str().unwrap().to_string()
        };
        assert!(msg.contains(needle), "{path} {body}: {msg}");
    }
    assert_eq!(mock.ledger()["requests"], 0);
}

#[test]
fn unknown_routes_and_methods_get_json_errors() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let r = request(
        gw.port,
        "GET",
        "/v1/chat/completions",
        &[("X-API-Key", KEY_STANDARD)],
        b"",
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["error"]["code"], "method_not_allowed");
    let r = request(
        gw.port,
        "POST",
        "/v1/nothing",
        &[("X-API-Key", KEY_STANDARD)],
        b"{}",
    );
    assert_eq!(r.status, 404);
    let r = post_json(
        gw.port,
        "/v1/chat/completions",
        Some(KEY_STANDARD),
        &CHAT.replace("gpt-4", "no-such-model"),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "model_not_found");
}

#[test]
fn the_client_key_never_reaches_the_backend_and_the_backend_credential_does() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    for headers in [
        vec![("X-API-Key", KEY_STANDARD)],
        vec![("Authorization", &*format!("Bearer {KEY_STANDARD}"))],
    ] {
        let r = request(
            gw.port,
            "POST",
            "/v1/chat/completions",
            &headers,
            CHAT.as_bytes(),
        );
        assert_eq!(r.status, 200);
        let seen = &mock.ledger()["last_request"]["header_sha256"];
        assert!(seen.get("x-api-key").is_none(), "{seen}");
        assert_eq!(
            seen["authorization"],
            sha256_hex(format!("Bearer {BACKEND_SECRET}").as_bytes()),
            "the backend's credential replaces the client's"
        );
        assert_eq!(
            seen["host"],
            sha256_hex(format!("127.0.0.1:{}", mock.port).as_bytes())
        );
    }
    // A backend without credential_env gets no Authorization at all.
    let r = post_json(gw.port, "/chat", Some(KEY_STANDARD), r#"{"message":"hi"}"#);
    assert_eq!(r.status, 200);
    let seen = &mock.ledger()["last_request"]["header_sha256"];
    assert!(
        seen.get("authorization").is_none() && seen.get("x-api-key").is_none(),
        "{seen}"
    );
}

#[test]
fn keys_never_appear_in_logs_even_at_trace_level() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let unknown = "tg-unknown-key-that-must-not-be-logged";
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), CHAT).status,
        200
    );
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(unknown), CHAT).status,
        401
    );
    assert_eq!(
        post_json(
            gw.port,
            "/chat",
            Some(KEY_STANDARD),
            r#"{"message":"secret prompt text"}"#
        )
        .status,
        200
    );
    // The log line of the last request is written by `logging` before the connection closes;
    // poll briefly for it rather than assuming.
    wait_until("three request log lines are written", 5, || {
        gw.proc.log_text().matches("tollgate::request").count() >= 3
    });
    let log = gw.proc.log_text();
    assert!(
        log.contains("consumer=tester"),
        "the consumer id is what gets logged"
    );
    for secret in [KEY_STANDARD, unknown, BACKEND_SECRET, "secret prompt text"] {
        assert!(!log.contains(secret), "{secret} leaked into the log");
    }
}

#[test]
fn a_consumer_rotates_its_key_by_configuration_with_expiry_and_disabled_keys() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let hex = |k: &str| tollgate::digest::KeyDigest::of(k.as_bytes()).to_hex();
    let path = gw.config_path().to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap();
    let standard = format!("key_sha256: \"{}\"", hex(KEY_STANDARD));
    assert!(text.contains(&standard));
    let keys = format!(
        "{standard}\n    keys:\n      - {{sha256: \"{}\", label: next, expires: \"2999-01-01\"}}\n      - {{sha256: \"{}\", label: leaked, expires: \"2020-01-01T00:00:00Z\"}}\n      - {{sha256: \"{}\", disabled: true}}",
        hex("tg-next-key"),
        hex("tg-expired-key"),
        hex("tg-disabled-key"),
    );
    std::fs::write(&path, text.replace(&standard, &keys)).unwrap();
    assert_eq!(gw.reload().status, 200, "taken without a restart");
    let body = r#"{"model":"gpt-4","messages":[{"role":"user","content":"hi"}]}"#;
    let status = |key: &str| post_json(gw.port, "/v1/chat/completions", Some(key), body).status;
    assert_eq!(status(KEY_STANDARD), 200, "the old key still works");
    assert_eq!(status("tg-next-key"), 200, "the new key works at once");
    assert_eq!(status("tg-expired-key"), 401, "an expired key is unknown");
    assert_eq!(status("tg-disabled-key"), 401, "a disabled key is unknown");
    // Both keys are the same consumer: its spend counts both answers.
    wait_until("both answers settled for the consumer", 10, || {
        gw.admin("/costs")["consumers"]["tester"]["recent_requests"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
    });
}
