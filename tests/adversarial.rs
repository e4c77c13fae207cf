//! Controls that hold against a motivated client: what the gateway adds to a request cannot be
//! cancelled, every text the model reads is scanned and counted, nothing of a backend's leaks to
//! the client, and resources stay bounded. Each test here failed on the build before its fix
//! (`TOLLGATE_TEST_BIN` runs them against another build).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

fn chat(body: serde_json::Value) -> String {
    body.to_string()
}

#[test]
fn a_null_output_cap_cannot_cancel_the_gateways() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start_with(
        &backends_for(mock.port),
        "",
        "max_output_tokens: {default: 3}\n",
        &[],
    );
    for (n, member) in [
        ("null", r#""max_tokens":null"#),
        ("escaped name", r#""max\u005ftokens":null"#),
        (
            "both null",
            r#""max_tokens":null,"max_completion_tokens":null"#,
        ),
    ] {
        let body = format!(
            r#"{{"model":"gpt-4","messages":[{{"role":"user","content":"{n}"}}],{member}}}"#
        );
        let r = post_as(gw.port, "/v1/chat/completions", &[], &body);
        assert_eq!(r.status, 200, "{n}: {}", r.body_text());
        assert_eq!(
            r.json()["usage"]["completion_tokens"],
            3,
            "{n}: the backend got the gateway's cap"
        );
    }
}

#[test]
fn a_null_stream_options_cannot_cancel_the_usage_the_gateway_settles_on() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let body = json!({
        "model": "gpt-4", "stream": true, "max_tokens": 5, "stream_options": null,
        "messages": [{"role": "user", "content": "count"}],
    });
    let r = post_json(
        gw.port,
        "/v1/chat/completions",
        Some(KEY_METERED),
        &chat(body),
    );
    assert_eq!(r.status, 200);
    assert!(
        !r.body_text().contains("\"usage\":{"),
        "the client did not ask for the usage event: {}",
        r.body_text()
    );
    wait_until("the stream is settled", 5, || {
        gw.admin("/costs")["consumers"]["metered"]["reserved_usd"] == "0.000000"
    });
    let rec = &gw.admin("/costs")["consumers"]["metered"]["recent_requests"][0];
    assert_eq!(
        rec["estimated"], false,
        "settled on the backend's usage: {rec}"
    );
    assert_eq!(rec["output_tokens"], 5);
}
