//! LAB 5 §12.3's management commands, run as the lab writes them (curl on the consumer port,
//! unauthenticated) against the demo configuration, and the same paths with the lab's switch off.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

/// Runs a lab command as written, on the demo's consumer port instead of 9000; its output as
/// JSON.
fn run(demo: &DemoServer, command: &str) -> Value {
    let command = command.replace("localhost:9000", &format!("localhost:{}", demo.port));
    let out = std::process::Command::new("sh")
        .args(["-c", &command])
        .output()
        .expect("sh and curl (make deps installs curl)");
    assert!(out.status.success(), "{command}: {out:?}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{command}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn the_labs_management_commands_work_as_written_against_the_demo() {
    let demo = DemoServer::start();
    let ask = r#"curl -s -X POST localhost:9000/chat -H "Content-Type: application/json" -H "X-API-Key: key-team-support" -d '{"message": "What is the capital of France?", "session_id": "lab-12-3"}'"#;
    let first = run(&demo, ask);
    assert!(first["response"].is_string(), "{first}");
    let again = run(&demo, ask);
    assert_eq!(again["gateway_metadata"]["cache_hit"], true, "{again}");

    // Both chats are recorded before the lab reads its figures (recording follows the answer).
    wait_until("both chats are recorded", 5, || {
        run(&demo, "curl localhost:9000/metrics")["recent_entries"]
            .as_array()
            .is_some_and(|e| e.len() == 2)
    });
    let health = run(&demo, "curl localhost:9000/health");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["service"], "tollgate");
    assert_eq!(health["backends"]["total"], 7);

    let metrics = run(&demo, "curl localhost:9000/metrics");
    let aggregate = &metrics["aggregate"];
    assert_eq!(
        aggregate["total_requests"], 2,
        "only model traffic: {metrics}"
    );
    assert_eq!(aggregate["total_cache_hits"], 1);
    assert_eq!(aggregate["cache_hit_rate_percent"], 50.0);
    assert_eq!(metrics["per_consumer"]["team-support"]["requests"], 2);
    assert_eq!(metrics["per_model"]["default"]["requests"], 2);
    assert_eq!(metrics["recent_entries"].as_array().unwrap().len(), 2);

    let costs = run(&demo, "curl localhost:9000/costs");
    let support = &costs["consumers"]["team-support"];
    let spent = support["spent_today"].as_f64().unwrap();
    assert!(spent > 0.0, "{support}");
    assert_eq!(support["total_all_time"].as_f64(), Some(spent));
    assert_eq!(support["spent_today_usd"], format!("{spent:.6}"));
    let recent = support["recent_requests"].as_array().unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0]["cost"], 0.0, "the hit cost nothing: {support}");

    let cache = run(&demo, "curl localhost:9000/cache/stats");
    for key in [
        "total_entries",
        "active_entries",
        "max_entries",
        "total_hits",
        "total_misses",
        "evictions",
        "ttl_seconds",
    ] {
        assert!(cache[key].is_u64(), "{key}: {cache}");
    }
    assert_eq!(
        (cache["total_hits"].as_u64(), cache["total_misses"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(cache["hit_rate_percent"], 50.0);
    assert_eq!(
        (cache["max_entries"].as_u64(), cache["ttl_seconds"].as_u64()),
        (Some(1000), Some(300))
    );
}

#[test]
fn without_the_lab_switch_health_answers_and_the_reports_name_the_admin_plane() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let get = |path: &str| request(gw.port, "GET", path, &[], b"");
    let health = get("/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    for path in ["/metrics", "/costs", "/cache/stats"] {
        let r = get(path);
        assert_eq!(r.status, 404, "{path}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains("admin plane"), "{path}: {message}");
        assert!(
            message.contains("server.lab_endpoints"),
            "{path}: {message}"
        );
    }
    // Probes are not model traffic: the statistics and the access log do not count them.
    assert_eq!(gw.admin("/stats")["aggregate"]["total_requests"], 0);
    // A probe's method is checked like any route's, and told which one to use.
    let post = request(gw.port, "POST", "/health", &[], b"{}");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET"));
    let models = request(gw.port, "POST", "/v1/models", &[], b"{}");
    assert_eq!(
        models.header("allow"),
        Some("GET"),
        "it said `use POST` before"
    );
}
