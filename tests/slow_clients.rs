//! Slow and idle clients below HTTP: a header that does not arrive in time gets 408 and the
//! connection is closed (slowloris), and idle connections beyond the cap are closed longest-idle
//! first without touching a request in progress.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

/// A chat body with its own prompt, so no answer comes from the cache.
fn chat(n: u32) -> String {
    CHAT.replace("hi", &format!("hi {n}"))
}

/// A request head for `body`.
fn head(body: &str, keep_alive: bool) -> String {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nX-API-Key: {KEY_STANDARD}\r\nConnection: {connection}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
}

fn assert_header_timeout(answer: &str, what: &str) {
    assert!(
        answer.starts_with("HTTP/1.1 408 "),
        "{what}: expected 408, got {answer:?}"
    );
    assert!(
        answer.contains("request_timeout") && answer.contains("header"),
        "{what}: {answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{what}: {answer}"
    );
}

fn metric(gw: &GatewayServer, series: &str) -> f64 {
    gw.admin_text("/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_header_that_does_not_arrive_in_time_gets_408_and_the_connection_is_closed() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(
        &backends_for(mock.port),
        "  timeouts:\n    client_header_ms: 600",
    );

    // Connected and silent: the first header is due 600 ms after the accept.
    let started = Instant::now();
    let mut s = connect(gw.port);
    let answer = read_all(&mut s);
    let took = started.elapsed();
    assert_header_timeout(&answer, "silent connection");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(2000),
        "silent connection closed after {took:?}"
    );

    // A header trickled a byte every 50 ms never arrives whole (it would take 5 s): it is cut at
    // the deadline, while bytes are still coming.
    let started = Instant::now();
    let mut s = connect(gw.port);
    let padded = head(CHAT, false).replace(
        "Host: a\r\n",
        &format!("Host: a\r\nX-Pad: {}\r\n", "p".repeat(100)),
    );
    trickle(&mut s, padded.as_bytes(), Duration::from_millis(50));
    let answer = read_all(&mut s);
    let took = started.elapsed();
    assert_header_timeout(&answer, "trickled header");
    assert!(
        took < Duration::from_millis(2500),
        "trickle cut after {took:?}"
    );

    // A header in three parts 150 ms apart arrives within the deadline and is served.
    let mut s = connect(gw.port);
    let full = head(&chat(1), false);
    let bytes = full.as_bytes();
    let third = bytes.len() / 3;
    for part in [
        &bytes[..third],
        &bytes[third..2 * third],
        &bytes[2 * third..],
    ] {
        s.write_all(part).unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    s.write_all(chat(1).as_bytes()).unwrap();
    let r = read_response(&mut BufReader::new(s)).unwrap();
    assert_eq!(r.status, 200, "{}", r.body_text());

    // On a kept-alive connection the deadline starts with the next request's first byte: a wait
    // longer than the deadline between requests is fine, a slow next header is not.
    let mut s = connect(gw.port);
    s.write_all(format!("{}{}", head(&chat(2), true), chat(2)).as_bytes())
        .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    assert_eq!(read_response(&mut reader).unwrap().status, 200);
    std::thread::sleep(Duration::from_millis(1200));
    s.write_all(format!("{}{}", head(&chat(3), true), chat(3)).as_bytes())
        .unwrap();
    assert_eq!(read_response(&mut reader).unwrap().status, 200);
    let started = Instant::now();
    trickle(
        &mut s,
        head(CHAT, true).as_bytes(),
        Duration::from_millis(50),
    );
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    assert_header_timeout(&rest, "slow second header on a kept-alive connection");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "cut after {:?}",
        started.elapsed()
    );

    // The admin plane has the same deadline.
    let started = Instant::now();
    let mut s = connect(gw.admin_port);
    s.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    assert_header_timeout(&read_all(&mut s), "admin plane");
    assert!(started.elapsed() < Duration::from_millis(2000));

    assert_eq!(mock.ledger()["requests"], 3, "only the complete requests");
    assert_eq!(
        metric(
            &gw,
            "tollgate_connections_closed_total{reason=\"header_timeout\"}"
        ),
        4.0
    );
    let r = post_as(gw.port, "/v1/chat/completions", &[], CHAT);
    assert_eq!(r.status, 200);
}

/// Whether the gateway has closed this connection (end of stream within `wait`).
fn closed_by_gateway(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => panic!("an idle connection was sent data"),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(_) => true,
    }
}

#[test]
fn idle_connections_beyond_the_cap_are_closed_longest_idle_first_and_requests_go_on() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(
        &backends_for(mock.port),
        "  max_idle_connections: 8\n  timeouts:\n    client_header_ms: 30000",
    );
    // A stream of 12 events 100 ms apart is in progress the whole time.
    let stream_body =
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let port = gw.port;
    let streaming = std::thread::spawn(move || {
        let mut r = send_post(
            port,
            "/v1/chat/completions",
            &[
                ("X-API-Key", KEY_STANDARD),
                ("X-Mock-Chunks", "12"),
                ("X-Mock-Chunk-Delay-Ms", "100"),
                ("Connection", "close"),
            ],
            stream_body,
        );
        let mut text = String::new();
        let _ = r.read_to_string(&mut text);
        text
    });
    std::thread::sleep(Duration::from_millis(200));

    // 20 silent connections, opened in order.
    let mut idle: Vec<TcpStream> = (0..20)
        .map(|_| {
            let s = connect(gw.port);
            std::thread::sleep(Duration::from_millis(20));
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let closed: Vec<bool> = idle
        .iter_mut()
        .map(|s| closed_by_gateway(s, Duration::from_millis(150)))
        .collect();
    let expected: Vec<bool> = (0..20).map(|i| i < 12).collect();
    assert_eq!(
        closed, expected,
        "the 12 longest idle are closed, the 8 newest kept"
    );
    assert_eq!(metric(&gw, "tollgate_idle_connections"), 8.0);

    // A new client is served: it takes the place of the longest idle one.
    let r = post_as(gw.port, "/v1/chat/completions", &[], CHAT);
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert!(closed_by_gateway(&mut idle[12], Duration::from_millis(500)));

    // The stream in progress was never idle, so never closed.
    let text = streaming.join().unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("data: [DONE]"),
        "the stream ran to its end: {text}"
    );
    assert!(
        metric(
            &gw,
            "tollgate_connections_closed_total{reason=\"idle_cap\"}"
        ) >= 13.0,
        "evictions are counted"
    );
}
