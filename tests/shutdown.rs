//! Graceful shutdown (its own binary: it sends signals): on SIGTERM the gateway stops accepting
//! connections, lets the streams in flight finish, then exits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn sigterm_lets_twenty_streams_finish_and_refuses_new_connections() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "  grace_period_seconds: 10\n");
    let body = r#"{"model":"gpt-4o","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let streams: Vec<_> = (0..20)
        .map(|_| {
            let mut r = send_post(
                gw.port,
                "/v1/chat/completions",
                &[("x-mock-chunks", "10"), ("x-mock-chunk-delay-ms", "150")],
                body,
            );
            let (status, _) = read_head(&mut r).unwrap();
            assert_eq!(status, 200);
            r
        })
        .collect();
    gw.proc.signal("TERM");
    // New connections are refused once the listener is closed.
    wait_until("the listener is closed", 5, || {
        TcpStream::connect_timeout(
            &([127, 0, 0, 1], gw.port).into(),
            Duration::from_millis(200),
        )
        .is_err()
    });
    let finished: Vec<_> = streams
        .into_iter()
        .map(|mut r| {
            std::thread::spawn(move || {
                let mut body = Vec::new();
                loop {
                    let mut size = String::new();
                    if std::io::BufRead::read_line(&mut r, &mut size).unwrap_or(0) == 0 {
                        return (false, body);
                    }
                    let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
                        return (false, body);
                    };
                    let mut chunk = vec![0; n + 2];
                    if std::io::Read::read_exact(&mut r, &mut chunk).is_err() {
                        return (false, body);
                    }
                    if n == 0 {
                        return (true, body);
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
            })
        })
        .collect();
    for t in finished {
        let (complete, body) = t.join().unwrap();
        assert!(
            complete,
            "a stream was cut: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(String::from_utf8_lossy(&body).ends_with("data: [DONE]\n\n"));
    }
}
