//! Hot reload (its own test binary: it sends signals): SIGHUP and `POST /admin/reload` swap the
//! configuration without dropping traffic; state survives; invalid files are rejected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::time::Duration;

const GPT4: &str =
    r#"{"model":"gpt-4","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#;

fn rewrite(gw: &GatewayServer, from: &str, to: &str) {
    let text = std::fs::read_to_string(gw.config_path()).unwrap();
    assert!(text.contains(from), "{from} not in the config");
    std::fs::write(gw.config_path(), text.replace(from, to)).unwrap();
}

#[test]
fn sighup_applies_a_changed_allowlist_and_keeps_spend_and_windows() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_LIMITED), GPT4).status,
        403
    );
    let ok = GPT4.replace("gpt-4", "gpt-4o");
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_LIMITED), &ok).status,
        200
    );
    let before = gw.admin("/costs")["consumers"]["limited"].clone();
    wait_until("both requests are counted", 5, || {
        requests_total(&gw) >= 2.0
    });
    let requests_before = requests_total(&gw);
    let v1 = gw.version();
    rewrite(
        &gw,
        "allowed_models: [gpt-4o, default]",
        "allowed_models: [gpt-4o, gpt-4, default]",
    );
    gw.proc.signal("HUP");
    wait_until("the new version is active", 10, || gw.version() != v1);
    let after = gw.admin("/costs")["consumers"]["limited"].clone();
    assert_eq!(
        before["spent_today_nanos"], after["spent_today_nanos"],
        "spend kept"
    );
    assert_eq!(
        before["tokens_used"], after["tokens_used"],
        "token windows kept"
    );
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_LIMITED), GPT4).status,
        200
    );
    wait_until("the counter moved on from where it was", 5, || {
        requests_total(&gw) >= requests_before + 1.0
    });
}

#[test]
fn an_invalid_file_is_rejected_by_sighup_and_by_the_admin_call_and_the_old_one_serves() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let v1 = gw.version();
    rewrite(&gw, "tokens_per_minute: 10000", "tokens_per_minit: 10000");
    gw.proc.signal("HUP");
    wait_until("the rejection is logged", 10, || {
        gw.proc
            .log_text()
            .contains("rejected, the previous one keeps serving")
    });
    assert_eq!(gw.version(), v1);
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), GPT4).status,
        200
    );
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let r = gw.reload();
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["result"], "error");
    assert!(v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["path"] == "consumers[2].tokens_per_minit"));
    // A half-written file is just another invalid file.
    let text = std::fs::read_to_string(gw.config_path()).unwrap();
    std::fs::write(gw.config_path(), &text[..text.len() / 2]).unwrap();
    let r = gw.reload();
    assert_eq!(r.status, 400);
    assert_eq!(gw.version(), v1);
    let metrics = request(
        gw.admin_port,
        "GET",
        "/metrics",
        &[("Authorization", &auth)],
        b"",
    );
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.contains(r#"tollgate_config_reloads_total{result="error"} 3"#),
        "{text}"
    );
    // Consumer keys cannot reload.
    let r = request(
        gw.admin_port,
        "POST",
        "/admin/reload",
        &[("Authorization", &format!("Bearer {KEY_STANDARD}"))],
        b"",
    );
    assert_eq!(r.status, 401);
}

#[test]
fn twenty_reloads_under_load_drop_nothing() {
    let mock = MockServer::start(&["--chunk-delay-ms", "2"]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let original = std::fs::read_to_string(gw.config_path()).unwrap();
    let other = original.replace("daily_budget_usd: 100\n", "daily_budget_usd: 101\n");
    assert_ne!(original, other);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let stop = stop.clone();
            let port = gw.port;
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body = if (n + i) % 2 == 0 {
                        GPT4.replace(r#""max_tokens""#, r#""stream":true,"max_tokens""#)
                    } else {
                        GPT4.to_string()
                    };
                    let r = post_as(
                        port,
                        "/v1/chat/completions",
                        &[("Cache-Control", "no-store")],
                        &body,
                    );
                    let complete = r.status == 200
                        && (!body.contains("stream")
                            || String::from_utf8_lossy(&r.body).ends_with("data: [DONE]\n\n"));
                    if !complete {
                        failures.push(r.status);
                    }
                    n += 1;
                }
                (n, failures)
            })
        })
        .collect();
    for i in 0..20 {
        std::fs::write(
            gw.config_path(),
            if i % 2 == 0 { &other } else { &original },
        )
        .unwrap();
        let before = gw.version();
        gw.proc.signal("HUP");
        wait_until("the reload is applied", 10, || gw.version() != before);
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        let (n, failures) = c.join().unwrap();
        assert!(failures.is_empty(), "failed or truncated: {failures:?}");
        total += n;
    }
    assert!(total > 40, "the load ran ({total} requests)");
}

/// Sum of `tollgate_requests_total` over all series: counters must survive reloads.
fn requests_total(gw: &GatewayServer) -> f64 {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let text = String::from_utf8(
        request(
            gw.admin_port,
            "GET",
            "/metrics",
            &[("Authorization", &auth)],
            b"",
        )
        .body,
    )
    .unwrap();
    text.lines()
        .filter(|l| l.starts_with("tollgate_requests_total{"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Consumers enough that building their configuration takes a while (about a second in a debug
/// build): `bulk-0` … with made-up key digests.
fn with_many_consumers(yaml: String) -> String {
    let many: String = (1..=BULK)
        .map(|i| format!("  - {{id: bulk-{i}, team: bulk, key_sha256: \"{i:064x}\"}}\n"))
        .collect();
    yaml.replacen("consumers:\n", &format!("consumers:\n{many}"), 1)
}

const BULK: usize = 60_000;

#[test]
fn requests_are_answered_while_a_large_configuration_reloads() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start_edited(
        &backends_for(mock.port),
        "",
        "",
        "",
        &[],
        &with_many_consumers,
    );
    assert_eq!(gw.admin("/ready")["consumers"], BULK + 4);
    let v1 = gw.version();
    let text = std::fs::read_to_string(gw.config_path()).unwrap();
    std::fs::write(gw.config_path(), format!("# edited\n{text}")).unwrap();
    gw.proc.signal("HUP");
    // Requests sent while the new configuration is built are answered on the old one: none
    // waits for the build (were they held until the swap, at most one would be answered first).
    let mut before_swap = 0;
    wait_until("the reload is done", 60, || {
        let r = post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), GPT4);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        if gw.version() == v1 {
            before_swap += 1;
            false
        } else {
            true
        }
    });
    assert!(
        before_swap >= 3,
        "only {before_swap} requests were answered while the reload ran"
    );
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), GPT4).status,
        200
    );
}
