//! Shared state on Redis: several gateway instances, one set of limits, budgets and cache.
//!
//! Each test starts its own `redis-server` on a free loopback port (nothing assumes 6379).
//! Without `redis-server` on the machine the tests are skipped, unless `TOLLGATE_REQUIRE_REDIS`
//! is set (as `make test` does, after installing it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};
use tollgate::state::budget::Budgets;
use tollgate::state::limits::Limits;

/// `n` gateways on one Redis (and one mock), each call to it bounded by 300 ms.
fn instances(redis: &Redis, mock: &MockServer, n: usize, extra_state: &str) -> Vec<GatewayServer> {
    instances_bounded(redis, mock, n, extra_state, 300)
}

/// As [`instances`], each call to Redis bounded by `timeout_ms`.
fn instances_bounded(
    redis: &Redis,
    mock: &MockServer,
    n: usize,
    extra_state: &str,
    timeout_ms: u64,
) -> Vec<GatewayServer> {
    let state = format!(
        "  backend: redis\n  redis_url: \"{}\"\n  key_prefix: \"test:\"\n  redis_timeout_ms: {timeout_ms}\n{extra_state}",
        redis.url()
    );
    (0..n)
        .map(|_| GatewayServer::start_full(&backends_for(mock.port), "", &state, "", &[]))
        .collect()
}

#[test]
fn six_hundred_requests_across_three_instances_admit_exactly_ten() {
    let Some(redis) = Redis::start() else { return };
    let mock = MockServer::start(&[]);
    // What is tested is the atomicity of admission, not the timeout: 600 requests at once on two
    // vCPUs (beside the other tests) can hold a Redis reply past 300 ms, which fails closed (503).
    let gws = instances_bounded(&redis, &mock, 3, "", 3_000);
    // "hi" estimates to 1 token + 4 of framing; with max_tokens 995 each request reserves
    // exactly 1,000 tokens of `metered`'s 10,000 a minute. The backend holds admitted requests
    // for 2 s, so no settlement frees capacity while the others are decided.
    let body = r#"{"model":"gpt-4o","max_tokens":995,"messages":[{"role":"user","content":"hi"}]}"#;
    let ports: Vec<u16> = (0..600).map(|i| gws[i % 3].port).collect();
    away_from_a_minute_boundary();
    let rs = burst(
        &ports,
        &[("X-API-Key", KEY_METERED), ("x-mock-latency-ms", "2000")],
        body,
    );
    let ok = rs.iter().filter(|r| r.status == 200).count();
    let limited = rs.iter().filter(|r| r.status == 429).count();
    assert_eq!(
        (ok, limited),
        (10, 590),
        "other statuses: {:?}",
        rs.iter()
            .filter(|r| r.status != 200 && r.status != 429)
            .map(|r| (r.status, r.body_text()))
            .take(3)
            .collect::<Vec<_>>()
    );
    for r in rs.iter().filter(|r| r.status == 429) {
        assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
        assert!(r.header("retry-after").is_some());
    }
    // Every instance reads the same shared spend.
    let spent: Vec<u64> = gws
        .iter()
        .map(|g| {
            g.admin("/costs")["consumers"]["metered"]["spent_today_nanos"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(spent.iter().all(|s| *s == spent[0]), "{spent:?}");
    assert_eq!(gws[0].admin("/costs")["spend_source"], "redis");
}

#[test]
fn a_budget_race_across_three_instances_never_overspends() {
    let Some(redis) = Redis::start() else { return };
    let mock = MockServer::start(&[]);
    let gws = instances(&redis, &mock, 3, "");
    // gpt-4 at $30/$60 per million: 5 prompt tokens + 500 output = $0.03015 worst case against
    // `metered`'s $0.10: at most 3 fit, whichever instances they reach. (18 × 505 tokens stay
    // inside its 10,000 a minute, so only the budget decides.)
    let body = r#"{"model":"gpt-4","max_tokens":500,"messages":[{"role":"user","content":"hi"}]}"#;
    let ports: Vec<u16> = (0..18).map(|i| gws[i % 3].port).collect();
    let rs = burst(
        &ports,
        &[
            ("X-API-Key", KEY_METERED),
            ("x-mock-latency-ms", "1000"),
            ("x-mock-chunks", "500"),
        ],
        body,
    );
    let ok = rs.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        ok,
        3,
        "{:?}",
        rs.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in rs.iter().filter(|r| r.status != 200) {
        assert_eq!(r.status, 429);
        assert_eq!(r.json()["error"]["code"], "budget_exceeded");
    }
    let costs = gws[2].admin("/costs");
    let spent = costs["consumers"]["metered"]["spent_today_nanos"]
        .as_u64()
        .unwrap();
    assert!(spent <= 100_000_000, "spent {spent} of a $0.10 budget");
    assert_eq!(spent, 3 * 30_030_000);
    assert_eq!(costs["consumers"]["metered"]["reserved_usd"], "0.000000");
}

#[test]
fn an_answer_cached_through_one_instance_is_a_hit_through_another() {
    let Some(redis) = Redis::start() else { return };
    let mock = MockServer::start(&[]);
    let cache = "cache: {enabled: true, scope: consumer, ttl_seconds: 60}\n";
    let state = format!(
        "  backend: redis\n  redis_url: \"{}\"\n  key_prefix: \"test:\"\n  shared_cache: true\n",
        redis.url()
    );
    let a = GatewayServer::start_full(&backends_for(mock.port), "", &state, cache, &[]);
    let b = GatewayServer::start_full(&backends_for(mock.port), "", &state, cache, &[]);
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"shared cache please"}]}"#;
    let first = post_as(
        a.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_STANDARD)],
        body,
    );
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-tollgate-cache"), Some("MISS"));
    // A stores it in Redis in the background, after answering.
    wait_until("the answer is in Redis", 5, || {
        redis.count_keys("test:cache:*") == 1
    });
    let second = post_as(
        b.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_STANDARD)],
        body,
    );
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-tollgate-cache"), Some("HIT"));
    assert_eq!(
        first.json()["choices"],
        second.json()["choices"],
        "the same answer"
    );
    // Another consumer never sees it.
    let other = post_as(
        b.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_METERED)],
        body,
    );
    assert_eq!(other.header("x-tollgate-cache"), Some("MISS"));
}

#[test]
fn redis_down_fails_limited_routes_closed_fast_and_service_resumes_when_it_returns() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let mock = MockServer::start(&[]);
    let cache = "cache: {enabled: true, scope: consumer, ttl_seconds: 60}\n";
    let state = format!(
        "  backend: redis\n  redis_url: \"{}\"\n  redis_timeout_ms: 200\n  shared_cache: true\n",
        redis.url()
    );
    let gw = GatewayServer::start_full(&backends_for(mock.port), "", &state, cache, &[]);
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"while redis is up"}]}"#;
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_STANDARD)],
        body,
    );
    assert_eq!(r.status, 200);

    redis.stop();
    let started = Instant::now();
    let fresh =
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"while redis is down"}]}"#;
    let down = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_STANDARD)],
        fresh,
    );
    let took = started.elapsed();
    assert_eq!(down.status, 503, "{}", down.body_text());
    assert_eq!(down.json()["error"]["code"], "state_unavailable");
    assert!(down.header("retry-after").is_some());
    assert!(took < Duration::from_secs(2), "answered in {took:?}");
    // The gateway is still healthy, and an answer it already holds is served: it costs nothing,
    // so the cache fails open even though limits fail closed.
    let health = request(gw.admin_port, "GET", "/health", &[], b"");
    assert_eq!(health.status, 200);
    let cached = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_STANDARD)],
        body,
    );
    assert_eq!(cached.status, 200, "{}", cached.body_text());
    assert_eq!(cached.header("x-tollgate-cache"), Some("HIT"));

    redis.run();
    wait_until("requests are admitted again", 15, || {
        post_as(
            gw.port,
            "/v1/chat/completions",
            &[("X-API-Key", KEY_STANDARD)],
            fresh,
        )
        .status
            == 200
    });
    let metrics = gw.admin_text("/metrics");
    assert!(
        metrics.contains("tollgate_redis_errors_total"),
        "redis errors counted"
    );
}

#[test]
fn the_cache_fails_open_and_limits_may_be_configured_to() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let mock = MockServer::start(&[]);
    let state = format!(
        "  backend: redis\n  redis_url: \"{}\"\n  redis_timeout_ms: 200\n  shared_cache: true\n  limits_on_error: open\n  budget_on_error: open\n",
        redis.url()
    );
    let cache = "cache: {enabled: true, scope: consumer, ttl_seconds: 60}\n";
    let gw = GatewayServer::start_full(&backends_for(mock.port), "", &state, cache, &[]);
    redis.stop();
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"redis is down"}]}"#;
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_STANDARD)],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    // The local cache still answers the repeat.
    let again = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("X-API-Key", KEY_STANDARD)],
        body,
    );
    assert_eq!(again.header("x-tollgate-cache"), Some("HIT"));
}

#[test]
fn tollgate_check_rejects_a_redis_backend_without_a_url() {
    let dir = temp_dir();
    let path = dir.join("bad.yaml");
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml"))
        .unwrap()
        .replace(
            "state:\n",
            "state:\n  backend: redis\n  limits_on_error: sometimes\n",
        );
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(bin())
        .args(["check", "-c", path.to_str().unwrap()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("redis_url"), "{text}");
    assert!(text.contains("state.limits_on_error"), "{text}");
}

#[test]
fn the_redis_url_and_its_password_never_show_in_debug_output() {
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml"))
        .unwrap()
        .replace(
            "state:\n",
            "state:\n  backend: redis\n  redis_url: \"redis://:s3cret-pass@127.0.0.1:6390/0\"\n",
        );
    let cfg = tollgate::config::load_str(&yaml, &|_| None).unwrap();
    let shown = format!("{cfg:?}");
    assert!(
        shown.contains("SharedStateConfig"),
        "the shared state is configured"
    );
    assert!(!shown.contains("s3cret-pass"), "{shown}");
    let state = tollgate::state::Shared::new(cfg.state.shared.as_ref().unwrap()).unwrap();
    assert!(!format!("{state:?}").contains("s3cret-pass"));
}

/// A shared store on `redis` for library-level tests, with its own key prefix.
fn store(redis: &Redis, prefix: &str) -> tollgate::state::redis::RedisStore {
    tollgate::state::redis::RedisStore::new(&redis.url(), prefix, Duration::from_millis(500))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_admitted_before_midnight_is_charged_to_its_own_day() {
    use tollgate::state::redis::Held;
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis, "midnight:");
    let day = 20_000u64;
    let before = day * 86_400 + 86_399;
    let after = (day + 1) * 86_400 + 1;
    let held = Held::new("c", 500, 7_000, before);
    let admitted = store
        .admit(
            &held,
            Limits::tokens([10_000; 3]),
            &Budgets::daily(1_000_000),
            before,
        )
        .await;
    assert!(matches!(admitted, Ok(Ok(_))), "{admitted:?}");
    let used = store.settle(&held, 120, 3_000).await;
    assert!(used.is_some());
    let old_day = store.standing_now(&["c"], before).await.unwrap()[0];
    let new_day = store.standing_now(&["c"], after).await.unwrap()[0];
    assert_eq!(
        (old_day.spent, old_day.committed),
        (3_000, 3_000),
        "the day it was made on"
    );
    assert_eq!(
        (new_day.spent, new_day.committed),
        (0, 0),
        "nothing on the new day"
    );
    assert_eq!(old_day.tokens[2], 120, "and its day window");
    let _ = after;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_is_released_by_id_once_and_expires_on_its_own() {
    use tollgate::state::redis::Held;
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis, "release:");
    let now = tollgate::state::unix_now();
    // The admission ran but its answer was lost: released by id, twice, applied once.
    let held = Held::new("c", 800, 9_000, now);
    assert!(matches!(
        store
            .admit(
                &held,
                Limits::tokens([10_000; 3]),
                &Budgets::daily(1_000_000),
                now
            )
            .await,
        Ok(Ok(_))
    ));
    store.release_later(held.clone());
    store.release_later(held.clone());
    assert_eq!(store.retry_pending().await, 0);
    let c = store.standing_now(&["c"], now).await.unwrap()[0];
    assert_eq!((c.committed, c.tokens[0]), (0, 0), "{c:?}");
    // A reservation whose settlement never comes is given back when it expires.
    let mut lost = Held::new("d", 300, 4_000, now);
    lost.expires = now;
    assert!(matches!(
        store
            .admit(
                &lost,
                Limits::tokens([10_000; 3]),
                &Budgets::daily(1_000_000),
                now
            )
            .await,
        Ok(Ok(_))
    ));
    assert_eq!(
        store.standing_now(&["d"], now).await.unwrap()[0].committed,
        4_000
    );
    store.reap_touched(now + 1).await;
    let d = store.standing_now(&["d"], now).await.unwrap()[0];
    assert_eq!((d.committed, d.tokens[0]), (0, 0), "{d:?}");
    // Its late settlement still counts what was used.
    assert!(store.settle(&lost, 50, 600).await.is_some());
    let d = store.standing_now(&["d"], now).await.unwrap()[0];
    assert_eq!((d.spent, d.committed, d.tokens[0]), (600, 600, 50), "{d:?}");
}

#[test]
fn settlements_that_fail_while_redis_is_paused_are_kept_and_applied_later() {
    let Some(redis) = Redis::start() else { return };
    let mock = MockServer::start(&[]);
    let gw = instances(&redis, &mock, 1, "").remove(0);
    // Requests already admitted when Redis stops answering settle while it is away.
    let load: Vec<_> = (0..8)
        .map(|i| {
            let port = gw.port;
            std::thread::spawn(move || {
                let stream = i % 2 == 0;
                let body = format!(
                    r#"{{"model":"gpt-4o","stream":{stream},"max_tokens":20,"messages":[{{"role":"user","content":"pause {i}"}}]}}"#
                );
                post_as(port, "/v1/chat/completions", &[("x-mock-latency-ms", "800")], &body).status
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    redis.signal(true);
    let statuses: Vec<u16> = load.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = gw.admin_text("/metrics");
    let failed: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("tollgate_redis_errors_total{op=\"settle\"}")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0);
    assert!(failed > 0.0, "settlements failed while Redis was stopped");
    redis.signal(false);
    wait_until("every reservation is settled", 15, || {
        let costs = gw.admin("/costs");
        costs["consumers"]["tester"]["reserved_usd"] == "0.000000"
            && costs["settlements_waiting"] == 0
    });
    let c = &gw.admin("/costs")["consumers"]["tester"];
    assert_ne!(c["spent_today_usd"], "0.000000", "{c}");
}

#[test]
fn the_rate_limit_headers_and_costs_read_the_windows_redis_enforces() {
    let Some(redis) = Redis::start() else { return };
    let mock = MockServer::start(&[]);
    let gw = instances(&redis, &mock, 1, "").remove(0);
    away_from_a_minute_boundary();
    let body =
        r#"{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"hello"}]}"#;
    let r = post_json(gw.port, "/v1/chat/completions", Some(KEY_METERED), body);
    assert_eq!(r.status, 200);
    let used = r.json()["usage"]["total_tokens"].as_u64().unwrap();
    assert_eq!(
        r.header("x-ratelimit-remaining-tokens"),
        Some((10_000 - used).to_string().as_str()),
        "after settlement"
    );
    let c = &gw.admin("/costs")["consumers"]["metered"];
    assert_eq!(c["tokens_used"]["minute"].as_u64(), Some(used), "{c}");
}
