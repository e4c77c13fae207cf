//! Bodies of any size up to `server.max_body_bytes` reach the backend byte for byte, however they
//! are framed; larger ones are refused with a JSON 413.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::{BufReader, Write};
use std::time::Duration;

const MAX: usize = 8 * 1024 * 1024;

#[test]
fn bodies_of_every_size_reach_the_mock_byte_exact_streaming_and_not() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    for size in [1024, 65_535, 65_537, 1024 * 1024, MAX] {
        for stream in [false, true] {
            let body = chat_body_of_size("gpt-4o", stream, size);
            let r = request(
                gw.port,
                "POST",
                "/v1/chat/completions",
                &[
                    ("X-API-Key", KEY_STANDARD),
                    ("Content-Type", "application/json"),
                ],
                &body,
            );
            assert_eq!(
                r.status,
                200,
                "size {size} stream {stream}: {}",
                String::from_utf8_lossy(&r.body)
            );
            let last = &mock.ledger()["last_request"];
            assert_eq!(last["body_bytes"], size, "size {size} stream {stream}");
            assert_eq!(
                last["body_sha256"],
                sha256_hex(&body),
                "size {size} stream {stream}"
            );
            if stream {
                assert!(String::from_utf8_lossy(&r.body).ends_with("data: [DONE]\n\n"));
            } else {
                assert_eq!(r.json()["object"], "chat.completion");
            }
        }
    }
}

#[test]
fn a_body_one_byte_over_the_limit_is_413_json_and_never_forwarded() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let body = chat_body_of_size("gpt-4o", false, MAX + 1);
    let r = request(
        gw.port,
        "POST",
        "/v1/chat/completions",
        &[("X-API-Key", KEY_STANDARD)],
        &body,
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], "payload_too_large");
    assert_eq!(mock.ledger()["requests"], 0);
}

#[test]
fn an_oversized_upload_expecting_continue_gets_413_without_a_100_first() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let mut s = connect(gw.port);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nX-API-Key: {KEY_STANDARD}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        MAX + 1
    );
    s.write_all(head.as_bytes()).unwrap();
    let r = read_response(&mut BufReader::new(s)).unwrap();
    assert_eq!(r.status, 413, "the first thing the client hears is the 413");
    assert_eq!(r.json()["error"]["code"], "payload_too_large");
}

#[test]
fn chunked_uploads_are_reassembled_and_forwarded_whole() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let body = chat_body_of_size("gpt-4o", false, 200_000);
    let mut s = connect(gw.port);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nX-API-Key: {KEY_STANDARD}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(7_000) {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .unwrap();
        s.write_all(chunk).unwrap();
        s.write_all(b"\r\n").unwrap();
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    let r = read_response(&mut BufReader::new(s)).unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let last = &mock.ledger()["last_request"];
    assert_eq!(last["body_bytes"], body.len());
    assert_eq!(last["body_sha256"], sha256_hex(&body));
}

#[test]
fn a_chunked_upload_growing_past_the_limit_is_413() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "  max_body_bytes: 100000\n");
    let mut s = connect(gw.port);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nX-API-Key: {KEY_STANDARD}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'a'; 10_000];
    for _ in 0..11 {
        // The gateway may answer and close before we finish; later writes may then fail.
        if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .is_err()
            || s.write_all(&chunk).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let r = read_response(&mut BufReader::new(s)).unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(mock.ledger()["requests"], 0);
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let body = chat_body_of_size("gpt-4o", false, 2 * 1024 * 1024);
    let mut s = connect(gw.port);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nX-API-Key: {KEY_STANDARD}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    // Nothing of the body has been sent: only a 100 can arrive now (or the read times out).
    let (status, _) = read_head(&mut reader).expect("an interim response before the body");
    assert_eq!(status, 100);
    s.write_all(&body).unwrap();
    let r = read_response(&mut reader).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        mock.ledger()["last_request"]["body_sha256"],
        sha256_hex(&body)
    );
}

#[test]
fn a_body_without_an_output_cap_gets_the_configured_one_and_arrives_whole() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start_with(
        &backends_for(mock.port),
        "",
        "max_output_tokens: {default: 77}\n",
        &[],
    );
    for size in [1024, 100 * 1024, 4 * 1024 * 1024] {
        let mut body = chat_body_of_size("gpt-4o", false, size);
        // Remove the client's cap: the gateway must add its own.
        let without = String::from_utf8(body.clone())
            .unwrap()
            .replace(r#""max_tokens":16,"#, "");
        body = without.into_bytes();
        let r = request(
            gw.port,
            "POST",
            "/v1/chat/completions",
            &[("X-API-Key", KEY_STANDARD)],
            &body,
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let mut expected = b"{\"max_tokens\":77,".to_vec();
        expected.extend_from_slice(&body[1..]);
        let last = &mock.ledger()["last_request"];
        assert_eq!(last["body_bytes"], expected.len(), "size {size}");
        assert_eq!(last["body_sha256"], sha256_hex(&expected), "size {size}");
        assert_eq!(
            r.json()["usage"]["completion_tokens"],
            16,
            "the mock honoured the cap (16 < 77)"
        );
    }
}
