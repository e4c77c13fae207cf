//! The JSON access log: one object per request, the fields operators need, never keys or text;
//! reopened on SIGHUP for rotation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn one_json_line_per_request_without_keys_or_text_and_reopened_on_sighup() {
    let mock = MockServer::start(&[]);
    // A directory of this run only: a file left by an earlier run would add its lines.
    let dir = temp_dir();
    let file = dir.join("access.log");
    let gw = GatewayServer::start_with(
        &backends_for(mock.port),
        "",
        &format!("access_log: {{to: \"{}\"}}\n", file.display()),
        &[],
    );
    let secret_prompt = "my secret prompt about the merger";
    let body = format!(
        r#"{{"model":"gpt-4","max_tokens":4,"messages":[{{"role":"user","content":"{secret_prompt}"}}]}}"#
    );
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("x-request-id", "req-abc-123")],
        &body,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some("tg-not-a-key"), &body).status,
        401
    );
    assert_eq!(
        post_json(
            gw.port,
            "/chat",
            Some(KEY_STANDARD),
            r#"{"message":"SSN 123-45-6789"}"#
        )
        .status,
        200,
        "the harness config has no filter rules"
    );
    let lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    wait_until("three lines are written", 5, || lines().len() >= 3);
    assert_eq!(lines().len(), 3, "{:#?}", lines());
    let all = lines();
    // Lines are written as requests finish logging, which may interleave: find them by content.
    let first = all
        .iter()
        .find(|l| l["request_id"] == "req-abc-123")
        .unwrap();
    assert_eq!(first["request_id"], "req-abc-123");
    assert_eq!(first["consumer_id"], "tester");
    assert_eq!(first["model"], "gpt-4");
    assert_eq!(first["backend"], "mock-openai");
    assert_eq!(first["status"], 200);
    assert_eq!(first["attempts"], 1);
    assert_eq!(first["estimated"], false);
    for key in [
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "latency_ms",
        "overhead_ms",
        "cache_hit",
        "content_filter_result",
        "rate_limit_remaining",
        "timestamp",
        "route",
    ] {
        assert!(first.get(key).is_some(), "{key} missing");
    }
    let refused = all.iter().find(|l| l["status"] == 401).unwrap();
    assert_eq!(refused["consumer_id"], "-");
    let text = std::fs::read_to_string(&file).unwrap();
    for secret in [KEY_STANDARD, "tg-not-a-key", secret_prompt, "123-45-6789"] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the access log"
        );
    }
    // Rotation: move the file away, SIGHUP, and new lines go to a fresh file.
    std::fs::rename(&file, dir.join("access.log.1")).unwrap();
    gw.proc.signal("HUP");
    wait_until("the reload is logged", 10, || {
        gw.proc.log_text().contains("reloaded")
    });
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), &body).status,
        200
    );
    wait_until("the new file has the line", 5, || lines().len() == 1);
}
