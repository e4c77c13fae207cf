//! The other LLM routes: Anthropic Messages (JSON and stream), embeddings, and the gateway's own
//! `GET /v1/models`; same auth, limits and accounting as chat completions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

fn gateway(mock: &MockServer) -> GatewayServer {
    let backends = format!(
        "{}  - id: claude\n    url: \"http://127.0.0.1:{port}\"\n    protocol: anthropic\n    models: [claude-sonnet]\n    credential_env: TG_TEST_BACKEND_KEY\n    anthropic_version: \"2023-06-01\"\n    {}\n  - id: embedder\n    url: \"http://127.0.0.1:{port}\"\n    protocol: openai\n    models: [text-embedding-3-small]\n",
        backends_for(mock.port),
        mock_headers(),
        port = mock.port
    );
    GatewayServer::start(&backends, "")
}

/// The one settled record, once both the reservation is released and the record is written
/// (two steps of settlement that `/costs` can show one at a time).
fn settled(gw: &GatewayServer) -> serde_json::Value {
    let mut record = serde_json::Value::Null;
    wait_until("the request is settled", 5, || {
        let c = gw.admin("/costs")["consumers"]["tester"].clone();
        record = c["recent_requests"][0].clone();
        c["reserved_usd"] == "0.000000" && !record.is_null()
    });
    record
}

const MESSAGES: &str = r#"{"model":"claude-sonnet","max_tokens":8,"system":"be brief","messages":[{"role":"user","content":"12345678"}]}"#;

#[test]
fn anthropic_messages_are_forwarded_with_its_headers_and_settled_on_its_usage() {
    let mock = MockServer::start(&[]);
    let gw = gateway(&mock);
    let r = post_json(gw.port, "/v1/messages", Some(KEY_STANDARD), MESSAGES);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["usage"]["output_tokens"], 8);
    let seen = &mock.ledger()["last_request"];
    assert_eq!(seen["path"], "/v1/messages");
    let h = &seen["header_sha256"];
    assert_eq!(
        h["x-api-key"],
        sha256_hex(BACKEND_SECRET.as_bytes()),
        "the backend's key, not the client's"
    );
    assert_eq!(h["anthropic-version"], sha256_hex(b"2023-06-01"));
    let rec = settled(&gw);
    // "be brief" → 2 tokens, "12345678" → 2 tokens, as the mock counts.
    assert_eq!(
        (rec["input_tokens"].as_u64(), rec["output_tokens"].as_u64()),
        (Some(4), Some(8))
    );
    assert_eq!(rec["estimated"], false);
}

#[test]
fn anthropic_streams_pass_through_unchanged_and_settle_on_their_events() {
    let mock = MockServer::start(&[]);
    let gw = gateway(&mock);
    let body = MESSAGES.replace(r#""max_tokens":8,"#, r#""max_tokens":8,"stream":true,"#);
    let r = post_json(gw.port, "/v1/messages", Some(KEY_STANDARD), &body);
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.starts_with("event: message_start\n"));
    assert!(
        text.contains("event: message_delta")
            && text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
    );
    let rec = settled(&gw);
    assert_eq!(
        (rec["input_tokens"].as_u64(), rec["output_tokens"].as_u64()),
        (Some(4), Some(8))
    );
    assert_eq!(rec["estimated"], false);
}

#[test]
fn the_messages_route_speaks_anthropic_errors() {
    let mock = MockServer::start(&[]);
    let gw = gateway(&mock);
    let r = post_json(gw.port, "/v1/messages", None, MESSAGES);
    assert_eq!(r.status, 401);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    let r = post_json(
        gw.port,
        "/v1/messages",
        Some(KEY_STANDARD),
        r#"{"model":"claude-sonnet","messages":[]}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    // An Anthropic model on the OpenAI route is translated both ways.
    let r = post_json(
        gw.port,
        "/v1/chat/completions",
        Some(KEY_STANDARD),
        r#"{"model":"claude-sonnet","messages":[{"role":"user","content":"x"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(r.json()["object"], "chat.completion");
}

#[test]
fn embeddings_are_forwarded_and_settled_on_their_prompt_tokens() {
    let mock = MockServer::start(&[]);
    let gw = gateway(&mock);
    let r = post_json(
        gw.port,
        "/v1/embeddings",
        Some(KEY_STANDARD),
        r#"{"model":"text-embedding-3-small","input":["12345678","1234"]}"#,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    let rec = settled(&gw);
    assert_eq!(
        (rec["input_tokens"].as_u64(), rec["output_tokens"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(rec["estimated"], false);
}

#[test]
fn models_lists_what_the_consumer_may_use() {
    let mock = MockServer::start(&[]);
    let gw = gateway(&mock);
    let ids = |key: &str| -> Vec<String> {
        let r = request(gw.port, "GET", "/v1/models", &[("X-API-Key", key)], b"");
        assert_eq!(r.status, 200);
        r.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(KEY_LIMITED), ["default", "gpt-4o"]);
    assert_eq!(
        ids(KEY_STANDARD),
        [
            "claude-sonnet",
            "default",
            "gpt-4",
            "gpt-4o",
            "text-embedding-3-small"
        ]
    );
    let r = request(gw.port, "GET", "/v1/models", &[], b"");
    assert_eq!(r.status, 401);
}
