//! The deployment files: the systemd unit and the Grafana dashboard.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

const UNIT: &str = include_str!("../deploy/tollgate.service");

fn unit_value(key: &str) -> String {
    UNIT.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key}= missing from the unit"))
        .to_string()
}

#[test]
fn the_systemd_unit_reloads_with_sighup_and_stops_gracefully() {
    assert_eq!(unit_value("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(unit_value("KillSignal"), "SIGTERM");
    assert!(unit_value("ExecStart").starts_with("/usr/local/bin/tollgate run -c "));
    assert!(unit_value("ExecStartPre").contains("tollgate check -c"));
    let stop: u64 = unit_value("TimeoutStopSec").parse().unwrap();
    assert!(
        stop > 30,
        "systemd must wait longer than the 30 s grace period"
    );
    // Where systemd is installed, let it verify the unit (with this build's binary and no user).
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let dir = temp_dir();
        let unit = UNIT
            .replace("/usr/local/bin/tollgate", &bin())
            .lines()
            .filter(|l| !l.starts_with("User=") && !l.starts_with("Group="))
            .collect::<Vec<_>>()
            .join("\n");
        let path = dir.join("tollgate.service");
        std::fs::write(&path, unit).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_metric_the_dashboard_queries_exists() {
    let dash: serde_json::Value =
        serde_json::from_str(include_str!("../deploy/grafana/tollgate.json")).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("tollgate_") {
                    let base = word
                        .trim_end_matches("_bucket")
                        .trim_end_matches("_sum")
                        .trim_end_matches("_count");
                    names.insert(base.to_string());
                }
            }
        }
    }
    assert!(names.len() >= 15, "{names:?}");
    // A short run on the demo configuration, so histograms and counters have samples.
    let demo = DemoServer::start();
    let body = r#"{"model":"gpt-4o","stream":true,"max_tokens":3,"messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(
        post_json(
            demo.port,
            "/v1/chat/completions",
            Some("key-team-engineering"),
            body
        )
        .status,
        200
    );
    let scrape = || {
        String::from_utf8(
            request(
                demo.admin_port,
                "GET",
                "/metrics",
                &[("Authorization", "Bearer demo-admin-token")],
                b"",
            )
            .body,
        )
        .unwrap()
    };
    let missing = |text: &str| -> Vec<String> {
        names
            .iter()
            .filter(|n| !text.contains(&format!("# TYPE {n} ")))
            .cloned()
            .collect()
    };
    // The request's own samples are recorded when it is logged, just after it is answered.
    wait_until("every dashboard metric is exported", 5, || {
        missing(&scrape()).is_empty()
    });
    assert_eq!(missing(&scrape()), Vec::<String>::new());
}
