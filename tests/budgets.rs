//! Team and monthly budgets, request rates and budget alerts against the real gateway: a team's
//! daily budget shared by two of its consumers holds exactly under 64 concurrent requests, in
//! this process and across three instances sharing Redis; the settled spend is what the mock
//! billed; each alert threshold is posted to a webhook once; and the Redis scripts roll a
//! month over and give back expired team and monthly reservations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// gpt-4 at $30/$60 per million: "hi" estimates to 5 prompt tokens, so a request capped at 100
/// output tokens may cost 5 × 30,000 + 100 × 60,000 nano-dollars at worst.
const WORST: u64 = 5 * 30_000 + 100 * 60_000;
const BODY: &str =
    r#"{"model":"gpt-4","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
/// The same, streamed: cut by the backend after two events (`x-mock-reset-after`), before its
/// usage, the request is charged its worst case (estimated), as the backend may have billed it.
const STREAM: &str = r#"{"model":"gpt-4","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
/// A team daily budget of $0.063 holds 10 worst cases (61.5 M nano-dollars), not 11.
const TEAM_BUDGET: &str = "0.063";
const ADMITTED: usize = 10;

/// The gateway's YAML with `tester` (`KEY_STANDARD`) and `security` (`KEY_SECURITY`) both in
/// team `payments`.
fn payments(yaml: String) -> String {
    yaml.replace("team: QA", "team: payments")
        .replace("team: Security", "team: payments")
}

fn team_yaml(daily: &str, webhook: Option<u16>) -> String {
    let hook = webhook
        .map(|p| format!("alerts:\n  webhook: {{url: \"http://127.0.0.1:{p}/hooks/budget\", timeout_ms: 2000}}\n"))
        .unwrap_or_default();
    format!("teams:\n  payments: {{daily_budget_usd: \"{daily}\"}}\n{hook}")
}

/// A local webhook receiver: records every JSON body posted to it and answers 200.
struct FakeWebhook {
    port: u16,
    posts: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl FakeWebhook {
    fn start() -> FakeWebhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let posts = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&posts);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                assert!(line.starts_with("POST /hooks/budget "), "{line}");
                let mut length = 0;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        FakeWebhook { port, posts }
    }

    fn posts(&self) -> Vec<serde_json::Value> {
        self.posts.lock().unwrap().clone()
    }
}

/// Sends `BODY` once per (port, key) at the same moment; the answers in order.
fn race(
    targets: &[(u16, &'static str)],
    headers: &[(&'static str, &'static str)],
) -> Vec<Response> {
    let barrier = Arc::new(std::sync::Barrier::new(targets.len()));
    let threads: Vec<_> = targets
        .iter()
        .map(|&(port, key)| {
            let barrier = Arc::clone(&barrier);
            let mut hs: Vec<(&str, &str)> = headers.to_vec();
            hs.push(("X-API-Key", key));
            std::thread::spawn(move || {
                barrier.wait();
                request(port, "POST", "/v1/chat/completions", &hs, BODY.as_bytes())
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Sends `STREAM` as `key`, which the backend breaks off after two events; the status, once the
/// gateway's terminal error event has ended the answer.
fn cut_stream(port: u16, key: &str) -> u16 {
    let mut r = send_post(
        port,
        "/v1/chat/completions",
        &[("X-API-Key", key), ("x-mock-reset-after", "2")],
        STREAM,
    );
    let (status, _) = read_head(&mut r).unwrap();
    if status != 200 {
        return status;
    }
    // The stream's chunks until the last (size 0) or a cut.
    loop {
        let mut size = String::new();
        if r.read_line(&mut size).unwrap_or(0) == 0 {
            break;
        }
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        let mut chunk = vec![0; n + 2];
        if n == 0 || r.read_exact(&mut chunk).is_err() {
            break;
        }
    }
    status
}

/// 64 requests, half from each consumer of the team, spread over `ports`.
fn sixty_four(ports: &[u16]) -> Vec<(u16, &'static str)> {
    (0..64)
        .map(|i| {
            let key = if i % 2 == 0 {
                KEY_STANDARD
            } else {
                KEY_SECURITY
            };
            (ports[i % ports.len()], key)
        })
        .collect()
}

fn secs_to_midnight() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    86_400 - now % 86_400
}

/// Exactly `ADMITTED` answered, every other one refused on the team's daily budget, with a
/// Retry-After that runs to midnight UTC.
fn assert_exactly_the_budget_admitted(rs: &[Response]) {
    let ok = rs.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        ok,
        ADMITTED,
        "statuses: {:?}",
        rs.iter()
            .filter(|r| r.status != 200)
            .map(|r| (r.status, r.body_text()))
            .take(3)
            .collect::<Vec<_>>()
    );
    for r in rs.iter().filter(|r| r.status != 200) {
        assert_eq!(r.status, 429, "{}", r.body_text());
        let e = &r.json()["error"];
        assert_eq!(e["code"], "budget_exceeded");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.starts_with("Team daily budget exceeded."),
            "{message}"
        );
        assert!(
            message.contains("Budget: team daily (team payments)."),
            "{message}"
        );
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        let midnight = secs_to_midnight();
        assert!(
            retry.abs_diff(midnight) <= 5,
            "retry after {retry}, midnight in {midnight}"
        );
    }
}

/// The team's spend once every reservation is settled: what the mock billed, and the sum of its
/// consumers' spend.
fn assert_settled_spend_is_what_the_mock_billed(gw: &GatewayServer, mock: &MockServer) {
    wait_until("every reservation is settled", 10, || {
        gw.admin("/costs")["teams"]["payments"]["reserved_usd"] == "0.000000"
    });
    let costs = gw.admin("/costs");
    let team = &costs["teams"]["payments"];
    let spent = team["spent_today_nanos"].as_u64().unwrap();
    let ledger = mock.ledger();
    assert_eq!(ledger["requests"].as_u64(), Some(ADMITTED as u64));
    let billed = ledger["prompt_tokens"].as_u64().unwrap() * 30_000
        + ledger["completion_tokens"].as_u64().unwrap() * 60_000;
    assert_eq!(spent, billed, "{team}");
    assert!(spent <= 63_000_000, "never past the budget");
    let consumers = &costs["consumers"];
    let own = |id: &str| consumers[id]["spent_today_nanos"].as_u64().unwrap();
    assert_eq!(own("tester") + own("security"), spent);
    assert_eq!(team["daily_budget_usd"], "0.06");
}

#[test]
fn sixty_four_requests_from_two_consumers_of_a_team_admit_exactly_what_its_budget_holds() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start_edited(
        &backends_for(mock.port),
        "",
        "",
        &team_yaml(TEAM_BUDGET, None),
        &[],
        &payments,
    );
    // The backend holds admitted requests for a second, so all 64 are decided while the ten
    // admitted still hold their worst case.
    let rs = race(
        &sixty_four(&[gw.port]),
        &[("x-mock-latency-ms", "1000"), ("x-mock-chunks", "100")],
    );
    assert_exactly_the_budget_admitted(&rs);
    assert_settled_spend_is_what_the_mock_billed(&gw, &mock);
    let metrics = gw.admin_text("/metrics");
    assert!(
        metrics
            .contains("tollgate_limit_rejections_total{consumer=\"tester\",limit=\"team_budget\"}"),
        "team refusals are counted apart"
    );
}

#[test]
fn the_team_budget_holds_across_three_instances_sharing_redis_and_alerts_once() {
    let Some(redis) = Redis::start() else { return };
    let mock = MockServer::start(&[]);
    let hook = FakeWebhook::start();
    let state = format!(
        "  backend: redis\n  redis_url: \"{}\"\n  key_prefix: \"budgets:\"\n  redis_timeout_ms: 3000\n",
        redis.url()
    );
    let gws: Vec<GatewayServer> = (0..3)
        .map(|_| {
            GatewayServer::start_edited(
                &backends_for(mock.port),
                "",
                &state,
                &team_yaml(TEAM_BUDGET, Some(hook.port)),
                &[],
                &payments,
            )
        })
        .collect();
    let ports: Vec<u16> = gws.iter().map(|g| g.port).collect();
    let rs = race(
        &sixty_four(&ports),
        &[("x-mock-latency-ms", "1000"), ("x-mock-chunks", "100")],
    );
    assert_exactly_the_budget_admitted(&rs);
    for gw in &gws {
        assert_settled_spend_is_what_the_mock_billed(gw, &mock);
        assert_eq!(gw.admin("/costs")["spend_source"], "redis");
    }
    // Ten settlements of 6.03 M nano-dollars reach 95.7 % of the 63 M budget, over three
    // instances: the 50 % and 80 % marks are each posted once, by whichever instance crossed it.
    wait_until("both alerts are posted", 10, || hook.posts().len() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    let mut thresholds: Vec<u64> = hook
        .posts()
        .iter()
        .map(|p| {
            assert_eq!(p["scope"], "team daily");
            assert_eq!(p["id"], "payments");
            p["threshold_percent"].as_u64().unwrap()
        })
        .collect();
    thresholds.sort_unstable();
    assert_eq!(thresholds, vec![50, 80]);
}

#[test]
fn each_threshold_is_posted_to_the_webhook_once_with_its_figures() {
    let mock = MockServer::start(&[]);
    let hook = FakeWebhook::start();
    // Four worst cases fill the budget; each stream breaks off before its usage, so each request
    // settles on its worst case: 25 %, 50 %, 75 %, 100 %.
    let budget = format!("0.{:06}", 4 * WORST / 1_000);
    let gw = GatewayServer::start_edited(
        &backends_for(mock.port),
        "",
        "",
        &team_yaml(&budget, Some(hook.port)),
        &[],
        &payments,
    );
    for i in 1..=4 {
        assert_eq!(cut_stream(gw.port, KEY_STANDARD), 200, "request {i}");
    }
    assert_eq!(
        cut_stream(gw.port, KEY_STANDARD),
        429,
        "the budget is spent"
    );
    wait_until("every request is settled", 10, || {
        gw.admin("/costs")["teams"]["payments"]["spent_today_nanos"].as_u64() == Some(4 * WORST)
    });
    wait_until("three alerts are posted", 10, || hook.posts().len() >= 3);
    std::thread::sleep(Duration::from_millis(500));
    let posts = hook.posts();
    assert_eq!(posts.len(), 3, "{posts:?}");
    let today = gw.admin("/costs")["date"].as_str().unwrap().to_string();
    for (p, (threshold, spent)) in posts.iter().zip([(50, 2), (80, 4), (100, 4)]) {
        let at = p["at"].as_str().unwrap();
        assert!(at.starts_with(&today) && at.ends_with('Z'), "{at}");
        let expected = serde_json::json!({
            "scope": "team daily",
            "id": "payments",
            "period": today,
            "threshold_percent": threshold,
            "spent_usd": format!("0.{:06}", spent * WORST / 1_000),
            "budget_usd": budget,
            "at": at,
        });
        assert_eq!(p, &expected);
    }
    let metrics = gw.admin_text("/metrics");
    for t in [50, 80, 100] {
        let line =
            format!("tollgate_budget_alerts_total{{scope=\"team_daily\",threshold=\"{t}\"}} 1");
        assert!(metrics.contains(&line), "{line}");
    }
    assert!(metrics.contains("tollgate_budget_alert_webhook_failures_total 0"));
    // Each alert is one log line, with ids and amounts only.
    wait_until("the alerts are logged", 5, || {
        gw.proc
            .log_text()
            .matches("budget alert: team daily budget of payments")
            .count()
            == 3
    });
    assert!(!gw.proc.log_text().contains(KEY_STANDARD));
}

#[test]
fn a_webhook_that_never_answers_is_counted_and_requests_do_not_wait() {
    let mock = MockServer::start(&[]);
    // A receiver that takes the connection and never answers: each post waits out its 2 s
    // timeout, which a request must never see.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let budget = format!("0.{:06}", 2 * WORST / 1_000);
    let gw = GatewayServer::start_edited(
        &backends_for(mock.port),
        "",
        "",
        &team_yaml(&budget, Some(closed)),
        &[],
        &payments,
    );
    for _ in 0..2 {
        let started = std::time::Instant::now();
        assert_eq!(cut_stream(gw.port, KEY_SECURITY), 200);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    wait_until("the failed posts are counted", 15, || {
        gw.admin_text("/metrics")
            .contains("tollgate_budget_alert_webhook_failures_total 3")
    });
}

#[test]
fn a_consumer_request_rate_refuses_with_429_until_the_next_minute() {
    let mock = MockServer::start(&[]);
    let gw =
        GatewayServer::start_edited(&backends_for(mock.port), "", "", "", &[], &|y: String| {
            y.replacen(
                "    daily_budget_usd: \"0.10\"\n",
                "    daily_budget_usd: \"0.10\"\n    requests_per_minute: 3\n",
                1,
            )
        });
    away_from_a_minute_boundary();
    let body = r#"{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let statuses: Vec<Response> = (0..5)
        .map(|_| post_json(gw.port, "/v1/chat/completions", Some(KEY_METERED), body))
        .collect();
    assert_eq!(
        statuses.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![200, 200, 200, 429, 429]
    );
    let refused = &statuses[3];
    assert_eq!(refused.json()["error"]["code"], "rate_limit_exceeded");
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("consumer requests per minute"),
        "{message}"
    );
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // Another consumer is not held to it.
    assert_eq!(
        post_json(gw.port, "/v1/chat/completions", Some(KEY_STANDARD), body).status,
        200
    );
}

/// A store on `redis` for library-level tests, with its own key prefix.
fn store(redis: &Redis, prefix: &str) -> tollgate::state::redis::RedisStore {
    tollgate::state::redis::RedisStore::new(&redis.url(), prefix, Duration::from_millis(500))
        .unwrap()
}

fn team(daily: u64, monthly: u64) -> Arc<tollgate::config::Team> {
    Arc::new(tollgate::config::Team {
        name: "payments".into(),
        daily_budget_micros: Some(daily),
        monthly_budget_micros: Some(monthly),
        requests_per_minute: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_redis_a_new_month_starts_from_zero_and_a_request_counts_in_the_month_it_was_admitted() {
    use tollgate::state::budget::{Budgets, Scope};
    use tollgate::state::limits::Limits;
    use tollgate::state::redis::{Held, Refused};
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis, "month:");
    // The last second of 2024-12-31, and the first of 2025-01-01.
    let new_year = tollgate::state::utc_month_start(tollgate::state::utc_month(20_088) + 1);
    assert_eq!(tollgate::state::utc_date(new_year), "2025-01-01");
    let before = new_year * 86_400 - 1;
    let after = new_year * 86_400 + 1;
    let t = team(1_000_000, 1_000_000);
    let budgets = Budgets {
        consumer_daily: 10_000_000,
        consumer_monthly: Some(8_000),
        team_daily: Some(1_000_000_000),
        team_monthly: Some(9_000),
    };
    let limits = Limits::tokens([100_000; 3]);
    // December: 7,000 of the consumer's 8,000 a month, then a request admitted in the last
    // second and settled after midnight.
    let first = Held::against("c", Some(&t), &budgets, 10, 7_000, before - 100);
    assert!(matches!(
        store.admit(&first, limits, &budgets, before - 100).await,
        Ok(Ok(_))
    ));
    store.settle(&first, 10, 7_000).await.unwrap();
    let over = Held::against("c", Some(&t), &budgets, 10, 1_001, before);
    match store.admit(&over, limits, &budgets, before).await {
        Ok(Err(Refused::Budget(o))) => assert_eq!(o.scope, Scope::ConsumerMonthly),
        other => panic!("{other:?}"),
    }
    let late = Held::against("c", Some(&t), &budgets, 10, 1_000, before);
    assert!(matches!(
        store.admit(&late, limits, &budgets, before).await,
        Ok(Ok(_))
    ));
    let settled = store.settle(&late, 10, 600).await.unwrap();
    assert_eq!(settled.moves.get(Scope::ConsumerMonthly), (7_000, 7_600));
    assert_eq!(settled.moves.get(Scope::TeamMonthly), (7_000, 7_600));
    let december = store.standing_now(&["c"], before).await.unwrap()[0];
    assert_eq!(
        (december.month_spent, december.month_committed),
        (7_600, 7_600)
    );
    // January starts from zero, for the consumer and the team alike.
    let january = store.standing_now(&["c"], after).await.unwrap()[0];
    assert_eq!((january.month_spent, january.month_committed), (0, 0));
    let team_now = store.teams_now(&["payments"], after).await.unwrap()[0];
    assert_eq!((team_now.month_spent, team_now.spent), (0, 0));
    let team_then = store.teams_now(&["payments"], before).await.unwrap()[0];
    assert_eq!((team_then.month_spent, team_then.spent), (7_600, 7_600));
    let fresh = Held::against("c", Some(&t), &budgets, 10, 8_000, after);
    assert!(matches!(
        store.admit(&fresh, limits, &budgets, after).await,
        Ok(Ok(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_redis_expired_team_and_monthly_reservations_are_given_back() {
    use tollgate::state::budget::{Budgets, Scope};
    use tollgate::state::limits::Limits;
    use tollgate::state::redis::{Held, Refused};
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis, "reap:");
    let now = tollgate::state::unix_now();
    let t = team(1_000, 1_000);
    let budgets = Budgets {
        consumer_daily: 1_000_000,
        consumer_monthly: Some(1_000_000),
        team_daily: Some(5_000),
        team_monthly: Some(5_000),
    };
    let limits = Limits::tokens([100_000; 3]);
    // A reservation whose settlement never comes holds the team's whole day.
    let mut lost = Held::against("a", Some(&t), &budgets, 300, 5_000, now);
    lost.expires = now;
    assert!(matches!(
        store.admit(&lost, limits, &budgets, now).await,
        Ok(Ok(_))
    ));
    let other = Held::against("b", Some(&t), &budgets, 300, 1, now);
    match store.admit(&other, limits, &budgets, now).await {
        Ok(Err(Refused::Budget(o))) => assert_eq!(o.scope, Scope::TeamDaily),
        other => panic!("{other:?}"),
    }
    store.reap_touched(now + 1).await;
    let team_now = store.teams_now(&["payments"], now).await.unwrap()[0];
    assert_eq!(
        (team_now.committed, team_now.month_committed),
        (0, 0),
        "{team_now:?}"
    );
    let a = store.standing_now(&["a"], now).await.unwrap()[0];
    assert_eq!(
        (a.committed, a.month_committed, a.tokens[0]),
        (0, 0, 0),
        "{a:?}"
    );
    assert!(matches!(
        store.admit(&other, limits, &budgets, now).await,
        Ok(Ok(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_redis_a_team_request_rate_is_shared_by_its_consumers_exactly() {
    use tollgate::state::budget::Budgets;
    use tollgate::state::limits::{Limits, Refusal, Who};
    use tollgate::state::redis::{Held, Refused};
    let Some(redis) = Redis::start() else { return };
    let store = Arc::new(store(&redis, "rpm:"));
    // 30 seconds into a minute, so the 40 admissions share it.
    let now = (tollgate::state::unix_now() / 60) * 60 + 30;
    let t = Arc::new(tollgate::config::Team {
        name: "payments".into(),
        daily_budget_micros: None,
        monthly_budget_micros: None,
        requests_per_minute: Some(7),
    });
    let limits = Limits {
        tokens: [100_000; 3],
        requests: Some(5),
        team_requests: Some(7),
    };
    let budgets = Budgets::daily(1_000_000_000);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (store, t) = (Arc::clone(&store), Arc::clone(&t));
            tokio::spawn(async move {
                let consumer = ["a", "b"][i % 2];
                let held = Held::against(consumer, Some(&t), &budgets, 10, 1, now);
                store.admit(&held, limits, &budgets, now).await.unwrap()
            })
        })
        .collect();
    let mut admitted = 0;
    let mut refused_by = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(Refused::Tokens(Refusal::Requests {
                who, retry_after, ..
            })) => {
                assert_eq!(retry_after, 30);
                refused_by.push(who);
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(admitted, 7, "the team's seven a minute");
    assert!(refused_by.contains(&Who::Team));
    // In the next minute, one consumer alone stops at its own five.
    for i in 0..6 {
        let held = Held::against("c", Some(&t), &budgets, 10, 1, now + 30);
        let got = store
            .admit(&held, limits, &budgets, now + 30)
            .await
            .unwrap();
        match (i, got) {
            (0..=4, Ok(_)) => {}
            (5, Err(Refused::Tokens(Refusal::Requests { who, limit, .. }))) => {
                assert_eq!((who, limit), (Who::Consumer, 5))
            }
            (i, other) => panic!("{i}: {other:?}"),
        }
    }
}
