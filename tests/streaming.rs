//! Streaming: events pass through as the backend sends them, and every stream is settled — with
//! the usage it reported, or, when the client left or the backend failed first, with the
//! reservation's worst case (prompt estimate + output cap: what the backend may have consumed,
//! marked estimated, never zero).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::{BufRead, Read};
use std::time::{Duration, Instant};

fn stream_body(model: &str, content: &str) -> String {
    format!(
        r#"{{"model":"{model}","stream":true,"max_tokens":64,"messages":[{{"role":"user","content":"{content}"}}]}}"#
    )
}

/// Reads one chunk of a chunked body; `None` at the end or on a cut.
fn next_chunk<R: BufRead>(r: &mut R) -> Option<Vec<u8>> {
    let mut size = String::new();
    r.read_line(&mut size).ok()?;
    let n = usize::from_str_radix(size.trim(), 16).ok()?;
    let mut chunk = vec![0; n + 2];
    r.read_exact(&mut chunk).ok()?;
    chunk.truncate(n);
    (n > 0).then_some(chunk)
}

#[test]
fn events_arrive_as_the_backend_sends_them() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let mut r = send_post(
        gw.port,
        "/v1/chat/completions",
        &[("x-mock-chunks", "5"), ("x-mock-chunk-delay-ms", "100")],
        &stream_body("gpt-4o", "hi"),
    );
    let (status, _) = read_head(&mut r).unwrap();
    let header_at = Instant::now();
    assert_eq!(status, 200);
    let mut arrivals = Vec::new();
    while let Some(chunk) = next_chunk(&mut r) {
        assert!(String::from_utf8_lossy(&chunk).starts_with("data: "));
        arrivals.push(header_at.elapsed());
    }
    // The mock sends its first event with the header, then one every 100 ms.
    assert!(
        arrivals[0] < Duration::from_millis(80),
        "first event after {:?}",
        arrivals[0]
    );
    for pair in arrivals.windows(2).take(5) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(60),
            "events were batched: gap {gap:?}"
        );
    }
}

#[test]
fn a_completed_stream_settles_on_the_usage_it_reported() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let r = post_json(
        gw.port,
        "/v1/chat/completions",
        Some(KEY_METERED),
        &stream_body("gpt-4", "12345678"),
    );
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        !text.contains("\"usage\""),
        "the usage event the gateway asked for was removed"
    );
    wait_until("the stream is settled", 5, || {
        gw.admin("/costs")["consumers"]["metered"]["reserved_usd"] == "0.000000"
    });
    let m = &gw.admin("/costs")["consumers"]["metered"];
    let rec = &m["recent_requests"][0];
    assert_eq!(
        (rec["input_tokens"].as_u64(), rec["output_tokens"].as_u64()),
        (Some(2), Some(16))
    );
    assert_eq!(rec["estimated"], false);
    // 2 × $30/M + 16 × $60/M
    assert_eq!(m["spent_today_nanos"], 1_020_000);
}

#[test]
fn a_backend_failing_mid_stream_sends_a_terminal_error_event_and_is_charged() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let mut r = send_post(
        gw.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_METERED), ("x-mock-reset-after", "4")],
        &stream_body("gpt-4", "12345678"),
    );
    let (status, _) = read_head(&mut r).unwrap();
    assert_eq!(status, 200);
    let mut seen = String::new();
    while let Some(chunk) = next_chunk(&mut r) {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains(r#""type":"upstream_error""#), "{seen}");
    wait_until("the stream is settled", 5, || {
        gw.admin("/costs")["consumers"]["metered"]["reserved_usd"] == "0.000000"
    });
    let rec = &gw.admin("/costs")["consumers"]["metered"]["recent_requests"][0];
    assert_eq!(rec["estimated"], true);
    // Prompt estimate (2 + 4 framing) + the output cap (64): the backend may have generated
    // more than the 3 tokens it delivered before breaking off, so the charge is the worst case.
    assert_eq!(
        (rec["input_tokens"].as_u64(), rec["output_tokens"].as_u64()),
        (Some(6), Some(64))
    );
}

#[test]
fn a_thousand_mixed_requests_settle_exactly_what_the_backend_reports() {
    let good = MockServer::start(&[]);
    let flaky = MockServer::start(&["--chunk-delay-ms", "3"]);
    let flaky_item = format!(
        "  - id: flaky\n    url: \"http://127.0.0.1:{}\"\n    protocol: openai\n    models: [gpt-x]\n    {}\n",
        flaky.port,
        mock_headers()
    );
    let backends = format!(
        "backends:\n{}{flaky_item}",
        openai_backend("good", good.port, 1, 1, "")
    );
    let gw = GatewayServer::start(&backends, "");
    let (mut completed, mut cut) = (0u64, 0u64);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let port = gw.port;
            std::thread::spawn(move || {
                let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1);
                let mut rnd = move |n: u64| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x % n
                };
                let (mut completed, mut cut) = (0u64, 0u64);
                for i in 0..125u64 {
                    let kind = (i * 8 + t as u64) % 100;
                    if kind < 10 {
                        // The client leaves at a random point of a slow stream.
                        let mut r = send_post(
                            port,
                            "/v1/chat/completions",
                            &[],
                            &stream_body("gpt-x", "leave early"),
                        );
                        let mut buf = vec![0u8; 1 + rnd(600) as usize];
                        let _ = r.read(&mut buf);
                        cut += 1;
                    } else if kind < 15 {
                        // The backend dies mid-stream.
                        let after = (2 + rnd(12)).to_string();
                        let mut r = send_post(
                            port,
                            "/v1/chat/completions",
                            &[("x-mock-reset-after", &after)],
                            &stream_body("gpt-x", "backend dies"),
                        );
                        assert!(
                            read_response(&mut r).is_none(),
                            "a cut stream must not look complete"
                        );
                        cut += 1;
                    } else {
                        let content = format!("question {i} of client {t}");
                        let body = if kind % 2 == 0 {
                            stream_body("gpt-4o", &content)
                        } else {
                            stream_body("gpt-4o", &content).replace(r#""stream":true,"#, "")
                        };
                        let r = post_json(port, "/v1/chat/completions", Some(KEY_STANDARD), &body);
                        assert_eq!(r.status, 200);
                        completed += 1;
                    }
                }
                (completed, cut)
            })
        })
        .collect();
    for t in threads {
        let (c, k) = t.join().unwrap();
        completed += c;
        cut += k;
    }
    assert_eq!(completed + cut, 1_000);
    wait_settled_and_logged(&gw, 1_000);
    let log = gw.proc.log_text();
    // Completed requests: what the gateway settled is exactly what the backend counted.
    assert_eq!(settled_tokens(&log, "gpt-4o"), ledger_tokens(&good));
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("model=gpt-4o") && l.contains("estimated=true"))
            .count(),
        0,
        "every completed request settled on reported usage"
    );
    // Cut requests: every one settled, none at zero, each marked estimated.
    let cut_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("tollgate::request") && l.contains("model=gpt-x"))
        .collect();
    assert_eq!(cut_lines.len() as u64, cut);
    for l in &cut_lines {
        assert!(l.contains("estimated=true"), "{l}");
        assert!(!l.contains(" tokens_in=0 "), "{l}");
    }
    // Budget and token windows equal the sum of the settled records.
    let c = &gw.admin("/costs")["consumers"]["tester"];
    assert_eq!(
        c["spent_today_nanos"].as_u64().unwrap(),
        sum_field(&log, "consumer=tester", "cost_nanos")
    );
    let tokens = sum_field(&log, "consumer=tester", "tokens_in")
        + sum_field(&log, "consumer=tester", "tokens_out");
    assert_eq!(c["tokens_used"]["day"].as_u64().unwrap(), tokens);
}
