//! The backend side: answers pass through (streaming too), `/chat` is translated, failures map to
//! JSON 502/503/504, and connections are reused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

const CHAT: &str = r#"{"model":"gpt-4","messages":[{"role":"user","content":"hello"}]}"#;

#[test]
fn the_seed_test_one_answers_with_gateway_metadata() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let r = post_json(
        gw.port,
        "/chat",
        Some(KEY_STANDARD),
        r#"{"message": "Look up customer Alice Thornton", "session_id": "gw-test1"}"#,
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    let meta = &v["gateway_metadata"];
    assert_eq!(meta["consumer_id"], "tester");
    assert_eq!(meta["consumer_team"], "QA");
    assert_eq!(meta["routed_to"], "agent");
    assert!(meta["latency_ms"].as_f64().unwrap() >= meta["backend_latency_ms"].as_f64().unwrap());
    assert!(v["response"].as_str().unwrap().starts_with("w0 "));
    let last = &mock.ledger()["last_request"];
    assert_eq!(last["path"], "/chat");
    // The session is the consumer's own: namespaced by its id (issue 15).
    let sent = br#"{"message":"Look up customer Alice Thornton","session_id":"tester:gw-test1"}"#;
    assert_eq!(
        last["body_sha256"],
        sha256_hex(sent),
        "the agent gets exactly message + the consumer's session_id"
    );
}

#[test]
fn chat_routed_to_an_openai_backend_is_translated_both_ways() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let r = post_json(
        gw.port,
        "/chat",
        Some(KEY_STANDARD),
        r#"{"message":"hi","model":"gpt-4"}"#,
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["gateway_metadata"]["routed_to"], "mock-openai");
    assert_eq!(v["response"], MOCK_ANSWER);
    assert_eq!(r.header("x-tollgate-backend"), Some("mock-openai"));
    assert_eq!(
        mock.ledger()["last_request"]["path"],
        "/v1/chat/completions"
    );
}

#[test]
fn an_unreachable_backend_is_503_json() {
    let dead = free_port();
    let gw = GatewayServer::start(&backends_for(dead), "");
    let r = post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), CHAT);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "upstream_unreachable");
    let r = post_json(gw.port, "/chat", Some(KEY_STANDARD), r#"{"message":"hi"}"#);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["detail"],
        "Backend is unreachable. Try again later."
    );
}

#[test]
fn a_backend_5xx_is_502_json_without_upstream_details() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("x-mock-status", "500")],
        CHAT,
    );
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"]["code"], "upstream_failed");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("mock fault"),
        "upstream body not leaked"
    );
    let r = request(
        gw.port,
        "POST",
        "/chat",
        &[("X-API-Key", KEY_STANDARD), ("x-mock-status", "503")],
        br#"{"message":"hi"}"#,
    );
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["detail"], "Backend error: 503");
}

#[test]
fn a_backend_4xx_passes_through_so_the_client_sees_the_real_reason() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("x-mock-status", "429")],
        CHAT,
    );
    assert_eq!(r.status, 429);
    // The mock names itself and an internal host in `Server`; that never reaches the client,
    // whether the answer is passed on, streamed, or the gateway's own error.
    let direct = request(
        mock.port,
        "POST",
        "/v1/chat/completions",
        &[],
        CHAT.as_bytes(),
    );
    assert!(direct
        .header("server")
        .is_some_and(|s| s.contains("internal")));
    assert!(r.header("server").is_none());
    let ok = post_as(gw.port, "/v1/chat/completions", &[], CHAT);
    let stream = post_as(
        gw.port,
        "/v1/chat/completions",
        &[],
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    let failed = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("x-mock-status", "500")],
        CHAT,
    );
    for (what, r) in [("200", &ok), ("stream", &stream), ("502", &failed)] {
        assert!(r.header("server").is_none(), "{what}: {:?}", r.headers);
        let text = format!("{:?}{}", r.headers, r.body_text());
        assert!(!text.contains("internal"), "{what}: {text}");
    }
}

#[test]
fn a_backend_slower_than_the_read_timeout_is_504_json() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "  timeouts:\n    read_ms: 300\n");
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("x-mock-latency-ms", "3000")],
        CHAT,
    );
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"]["code"], "upstream_timeout");
}

#[test]
fn sse_events_arrive_one_by_one_before_the_stream_ends() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let body = r#"{"model":"gpt-4","stream":true,"messages":[{"role":"user","content":"hello"}]}"#;
    let mut r = send_post(
        gw.port,
        "/v1/chat/completions",
        &[("x-mock-chunks", "5"), ("x-mock-chunk-delay-ms", "400")],
        body,
    );
    let (status, headers) = read_head(&mut r).unwrap();
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v == "text/event-stream"));
    // The first event must reach us while the mock is still pacing the rest (5 × 400 ms):
    // a buffering proxy would deliver everything at once at the end.
    let started = std::time::Instant::now();
    let mut size = String::new();
    r.read_line(&mut size).unwrap();
    let n = usize::from_str_radix(size.trim(), 16).unwrap();
    let mut first = vec![0; n + 2];
    r.read_exact(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("data: "));
    let first_at = started.elapsed();
    let mut rest = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size).unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut chunk = vec![0; n + 2];
        r.read_exact(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        rest.extend_from_slice(&chunk[..n]);
    }
    let end_at = started.elapsed();
    assert!(String::from_utf8_lossy(&rest).ends_with("data: [DONE]\n\n"));
    assert!(
        end_at - first_at >= Duration::from_millis(1200),
        "first event at {first_at:?}, end at {end_at:?}: the stream was buffered"
    );
}

#[test]
fn several_requests_share_one_client_connection() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let s = connect(gw.port);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    for i in 0..5 {
        let stream = i % 2 == 1;
        let body = format!(
            r#"{{"model":"gpt-4","stream":{stream},"messages":[{{"role":"user","content":"n{i}"}}]}}"#
        );
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nX-API-Key: {KEY_STANDARD}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        w.write_all(head.as_bytes()).unwrap();
        let resp = read_response(&mut r).expect("a complete response on the same connection");
        assert_eq!(resp.status, 200, "request {i}");
    }
    assert_eq!(mock.ledger()["requests"], 5);
}

#[test]
fn a_backend_dying_mid_stream_aborts_the_client_response_instead_of_completing_it() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let body = r#"{"model":"gpt-4","stream":true,"messages":[{"role":"user","content":"hello"}]}"#;
    let mut r = send_post(
        gw.port,
        "/v1/chat/completions",
        &[("x-mock-reset-after", "3")],
        body,
    );
    let r = read_response(&mut r);
    assert!(
        r.is_none(),
        "a truncated stream must not end with a clean terminating chunk"
    );
    // The gateway is fine afterwards.
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), CHAT).status,
        200
    );
}

#[test]
fn a_client_leaving_mid_stream_leaves_the_gateway_healthy() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let body = r#"{"model":"gpt-4","stream":true,"messages":[{"role":"user","content":"hello"}]}"#;
    {
        let mut r = send_post(
            gw.port,
            "/v1/chat/completions",
            &[("x-mock-chunks", "3"), ("x-mock-chunk-delay-ms", "20000")],
            body,
        );
        let (status, _) = read_head(&mut r).unwrap();
        assert_eq!(status, 200);
        // Dropping the reader closes the connection: the client is gone mid-stream.
    }
    // The mock waits 20 s before its next event, so only watching the client socket can notice
    // the disconnect this soon.
    wait_until("the disconnect is noticed", 10, || {
        gw.proc.log_text().contains("error=client_gone")
    });
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), CHAT).status,
        200
    );
}

#[test]
fn a_client_leaving_before_the_first_byte_is_noticed_while_the_backend_is_still_thinking() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    for (path, body) in [
        ("/v1/chat/completions", CHAT),
        ("/chat", r#"{"message":"hi"}"#),
    ] {
        let before = gw.proc.log_text().matches("error=client_gone").count();
        {
            let _client = send_post(gw.port, path, &[("x-mock-latency-ms", "20000")], body);
            // Wait until the backend has the request, then leave.
            wait_until("the request reaches the mock", 10, || {
                mock.ledger()["last_request"]["path"] == path
            });
        }
        // The backend answers only after 20 s: noticing sooner requires watching the client.
        wait_until(&format!("{path}: the disconnect is noticed"), 10, || {
            gw.proc.log_text().matches("error=client_gone").count() > before
        });
    }
}

#[test]
fn the_mock_ledger_counts_only_the_completion_tokens_it_delivered() {
    let mock = MockServer::start(&["--reset-after", "4"]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let body =
        r#"{"model":"gpt-4","stream":true,"messages":[{"role":"user","content":"12345678"}]}"#;
    let r = {
        let mut r = send_post(gw.port, "/v1/chat/completions", &[], body);
        read_response(&mut r)
    };
    assert!(r.is_none(), "the stream was cut");
    let ledger = mock.ledger();
    assert_eq!(ledger["prompt_tokens"], 2);
    // Events: role, then one token each; the cut after 4 events delivered 3 tokens.
    assert_eq!(ledger["completion_tokens"], 3);
}

#[test]
fn pipelined_requests_are_answered_in_order_and_none_is_corrupted() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let s = connect(gw.port);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut burst = Vec::new();
    for i in 0..3 {
        let body =
            format!(r#"{{"model":"gpt-4","messages":[{{"role":"user","content":"p{i}"}}]}}"#);
        burst.extend_from_slice(
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nX-API-Key: {KEY_STANDARD}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    }
    w.write_all(&burst).unwrap();
    for i in 0..3 {
        let resp = read_response(&mut r).expect("a response per pipelined request");
        assert_eq!(
            resp.status,
            200,
            "request {i}: {}",
            String::from_utf8_lossy(&resp.body)
        );
    }
}

#[test]
fn back_to_back_keep_alive_requests_never_lose_a_byte() {
    // The client sends its next request the moment a response is complete, while the gateway
    // may still be watching the socket; no request may arrive mangled (e.g. as a 405 "OST").
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let s = connect(gw.port);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nX-API-Key: {KEY_STANDARD}\r\nContent-Length: {}\r\n\r\n{CHAT}",
        CHAT.len()
    );
    for i in 0..300 {
        w.write_all(head.as_bytes()).unwrap();
        let resp = read_response(&mut r).expect("a complete response");
        assert_eq!(
            resp.status,
            200,
            "request {i}: {}",
            String::from_utf8_lossy(&resp.body)
        );
    }
}
