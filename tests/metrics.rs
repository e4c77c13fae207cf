//! Metrics: valid Prometheus text on the admin plane, counters for what happened, and label
//! values only from configured sets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

fn scrape(gw: &GatewayServer) -> String {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let r = request(
        gw.admin_port,
        "GET",
        "/metrics",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    String::from_utf8(r.body).unwrap()
}

/// Checks the exposition format line by line; returns (series name with labels, value).
fn parse(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels in {line:?}");
        }
        out.push((series.to_string(), value));
    }
    out
}

fn value(series: &[(String, f64)], name: &str, labels: &[&str]) -> f64 {
    series
        .iter()
        .filter(|(s, _)| {
            (s == name || s.starts_with(&format!("{name}{{")))
                && labels.iter().all(|l| s.contains(l))
        })
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn the_exposition_is_valid_and_counts_requests_tokens_cost_and_streams_without_usage() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let body =
        r#"{"model":"gpt-4","max_tokens":5,"messages":[{"role":"user","content":"12345678"}]}"#;
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), body).status,
        200
    );
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", None, body).status,
        401
    );
    let stream = body.replace(r#""max_tokens""#, r#""stream":true,"max_tokens""#);
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("x-mock-no-usage", "1")],
        &stream,
    );
    assert_eq!(r.status, 200);
    wait_until("all three are counted", 5, || {
        value(&parse(&scrape(&gw)), "tollgate_requests_total", &[]) >= 3.0
    });
    let s = parse(&scrape(&gw));
    assert_eq!(
        value(
            &s,
            "tollgate_requests_total",
            &[
                r#"consumer="tester""#,
                r#"model="gpt-4""#,
                r#"status="2xx""#
            ]
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "tollgate_requests_total",
            &[r#"consumer="-""#, r#"status="4xx""#]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "tollgate_tokens_total",
            &[r#"consumer="tester""#, r#"direction="input""#]
        ),
        2.0 + 6.0
    );
    assert_eq!(
        value(
            &s,
            "tollgate_streams_without_usage_total",
            &[r#"backend="mock-openai""#]
        ),
        1.0
    );
    assert_eq!(value(&s, "tollgate_estimated_settlements_total", &[]), 1.0);
    assert!(
        value(
            &s,
            "tollgate_cost_nanodollars_total",
            &[r#"consumer="tester""#]
        ) > 0.0
    );
    assert!(s
        .iter()
        .any(|(n, v)| n == "tollgate_in_flight_requests" && *v == 0.0));
    assert_eq!(
        value(
            &s,
            "tollgate_backend_healthy",
            &[r#"backend="mock-openai""#]
        ),
        1.0
    );
    assert!(s
        .iter()
        .any(|(n, _)| n.starts_with("tollgate_gateway_overhead_seconds_bucket")));
    assert!(s
        .iter()
        .any(|(n, _)| n.starts_with("tollgate_time_to_first_token_seconds_bucket")));
    for phase in ["auth", "filter", "limits", "cache", "routing"] {
        assert!(
            s.iter()
                .any(|(n, _)| n.starts_with("tollgate_phase_seconds_count")
                    && n.contains(&format!("phase=\"{phase}\""))),
            "{phase} overhead missing"
        );
    }
    // Consumer keys never open the admin plane, metrics included.
    let r = request(
        gw.admin_port,
        "GET",
        "/metrics",
        &[("Authorization", &format!("Bearer {KEY_STANDARD}"))],
        b"",
    );
    assert_eq!(r.status, 401);
}

#[test]
fn a_thousand_random_model_names_do_not_grow_the_series_count() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let send = |model: &str| {
        let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"x"}}]}}"#);
        post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), &body).status
    };
    assert_eq!(send("warm-up-unknown"), 404);
    wait_until("the warm-up is counted", 5, || {
        scrape(&gw).contains(r#"model="other""#)
    });
    let before = parse(&scrape(&gw)).len();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..1_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        assert_eq!(send(&format!("attacker-model-{x:016x}")), 404);
    }
    wait_until("all are counted", 10, || {
        value(
            &parse(&scrape(&gw)),
            "tollgate_requests_total",
            &[r#"model="other""#],
        ) >= 1_001.0
    });
    let text = scrape(&gw);
    assert!(
        !text.contains("attacker-model-"),
        "client-chosen names never become labels"
    );
    assert_eq!(parse(&text).len(), before, "no new series");
}

#[test]
fn stats_give_the_seeds_aggregate_view() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let body =
        r#"{"model":"gpt-4","max_tokens":5,"messages":[{"role":"user","content":"12345678"}]}"#;
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), body).status,
        200
    );
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), body).status,
        200
    );
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_LIMITED), body).status,
        403
    );
    wait_until("all three are counted", 5, || {
        gw.admin("/stats")["aggregate"]["total_requests"] == 3
    });
    let s = gw.admin("/stats");
    let a = &s["aggregate"];
    assert_eq!(a["total_blocked"], 1);
    assert_eq!(a["block_rate_percent"], 33.3);
    assert_eq!(
        a["total_cache_hits"], 1,
        "the second identical request was a hit"
    );
    assert_eq!(a["total_input_tokens"], 2);
    assert_eq!(s["per_consumer"]["tester"]["requests"], 2);
    assert_eq!(s["per_consumer"]["limited"]["blocked"], 1);
    assert_eq!(s["per_model"]["gpt-4"]["requests"], 3);
    let recent = s["recent_entries"].as_array().unwrap();
    assert_eq!(recent.len(), 3);
    // Entries are recorded as requests finish logging, which may interleave: compare as a set.
    let mut statuses: Vec<u64> = recent
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 403]);
    assert!(!s.to_string().contains(KEY_STANDARD) && !s.to_string().contains("12345678"));
}
