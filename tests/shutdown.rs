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

/// Kills the daemon named in a pid file when dropped (it is this test's own process).
struct DaemonGuard(std::path::PathBuf);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid.trim()])
                .status();
        }
    }
}

#[test]
fn run_daemon_detaches_writes_its_pid_and_reloads_on_sighup() {
    let mock = MockServer::start(&[]);
    // Build a config file the same way the harness does, then start it as a daemon.
    let probe = GatewayServer::start(&backends_for(mock.port), "");
    let config = probe.config_path().to_path_buf();
    let (port, admin_port) = (probe.port, probe.admin_port);
    drop(probe);
    wait_until("the probe instance released its ports", 10, || {
        TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    let pid_file = temp_dir().join("tollgate.pid");
    let upgrade_sock = temp_dir().join("upgrade.sock");
    let launcher = std::process::Command::new(bin())
        .args(["run", "-d", "-c"])
        .arg(&config)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("--upgrade-sock")
        .arg(&upgrade_sock)
        .env("TG_TEST_BACKEND_KEY", BACKEND_SECRET)
        .status()
        .unwrap();
    assert!(
        launcher.success(),
        "the launcher returns once the daemon is started"
    );
    let _guard = DaemonGuard(pid_file.clone());
    wait_until("the daemon writes its pid", 10, || pid_file.exists());
    wait_ready(admin_port, "/ready", Some(ADMIN_TOKEN));
    // The admin plane may be ready a moment before the consumer listener (as the harness does).
    wait_ready_tcp(port);
    let chat = r#"{"model":"gpt-4o","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(
        post_json(port, "/v1/chat/completions", Some(KEY_STANDARD), chat).status,
        200
    );
    // SIGHUP reloads (it does not kill the daemon): the handler was installed after the fork.
    let version = |admin: u16| {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        request(
            admin,
            "GET",
            "/admin/config",
            &[("Authorization", &auth)],
            b"",
        )
        .json()["version"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before = version(admin_port);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("daily_budget_usd: 100\n", "daily_budget_usd: 99\n"),
    )
    .unwrap();
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", pid.trim()])
        .status()
        .unwrap()
        .success());
    wait_until("the daemon reloaded", 10, || version(admin_port) != before);
    assert_eq!(
        post_json(port, "/v1/chat/completions", Some(KEY_STANDARD), chat).status,
        200
    );
}
