//! The embedded store against the real gateway: one ledger row per request, committed before a
//! whole answer is written, so `kill -9` under load loses no settled spend; the spend report
//! (`GET /spend`) adds the ledger up to what `/costs` says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BODY: &str =
    r#"{"model":"gpt-4","max_tokens":20,"messages":[{"role":"user","content":"ledger-probe"}]}"#;

/// Rows in the gateway's ledger: (all, answered `ok`), read from the database file.
fn ledger_rows(gw: &GatewayServer) -> (u64, u64) {
    let db = rusqlite::Connection::open(gw.database()).unwrap();
    let all: i64 = db
        .query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get(0))
        .unwrap();
    let ok: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM ledger WHERE outcome = 'ok' AND status = 200",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (all as u64, ok as u64)
}

fn spend(gw: &GatewayServer, query: &str) -> Response {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    request(
        gw.admin_port,
        "GET",
        &format!("/spend{query}"),
        &[("Authorization", &auth)],
        b"",
    )
}

#[test]
fn kill_9_under_load_loses_no_settled_spend() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let port = gw.port;
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    const CLIENTS: u64 = 8;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, answered) = (Arc::clone(&stop), Arc::clone(&answered));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let no_store = [("Cache-Control", "no-store")];
                    match try_post(port, "/v1/chat/completions", &no_store, BODY) {
                        Some(r) if r.status == 200 && r.json()["usage"].is_object() => {
                            answered.fetch_add(1, Ordering::AcqRel);
                        }
                        Some(_) => {}
                        None => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    wait_until("load is under way", 20, || {
        answered.load(Ordering::Acquire) >= 200
    });
    // SIGKILL in the middle of the load: nothing gets to flush, and requests are in flight.
    let before_kill = answered.load(Ordering::Acquire);
    let gw = gw.restart();
    let after = answered.load(Ordering::Acquire);
    wait_until("the restarted gateway answers too", 20, || {
        answered.load(Ordering::Acquire) >= after + 50
    });
    stop.store(true, Ordering::Release);
    for c in clients {
        c.join().unwrap();
    }
    let answered = answered.load(Ordering::Acquire);
    let (rows, ok_rows) = ledger_rows(&gw);
    eprintln!(
        "{answered} answered ({before_kill} before the kill, {:?} in), {ok_rows} ok rows, {rows} rows",
        t0.elapsed()
    );
    assert!(
        ok_rows >= answered,
        "every answered request has its row: {ok_rows} rows for {answered} answers"
    );
    assert!(
        ok_rows <= answered + CLIENTS,
        "rows beyond the answers are at most the requests in flight at the kill: {ok_rows} for {answered}"
    );
    // What budgets restarted from is the ledger's sum: the report, `/costs` and the rows agree.
    let report = spend(&gw, "?group_by=consumer").json();
    let costs = gw.admin("/costs");
    let db = rusqlite::Connection::open(gw.database()).unwrap();
    let ledger_nanos: i64 = db
        .query_row(
            "SELECT SUM(cost_nanos) FROM ledger WHERE consumer = 'tester'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(report["rows"][0]["consumer"], "tester");
    assert_eq!(report["rows"][0]["cost_nanos"], ledger_nanos);
    assert_eq!(
        costs["consumers"]["tester"]["spent_today_nanos"], ledger_nanos,
        "spend restored after the kill is the ledger's"
    );
    assert_eq!(report["rows"][0]["requests"], rows);
}

#[test]
fn the_spend_report_adds_up_to_costs_by_every_grouping() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let sends = [
        (KEY_STANDARD, "gpt-4", 3),
        (KEY_STANDARD, "gpt-4o", 2),
        (KEY_METERED, "gpt-4", 2),
        (KEY_LIMITED, "gpt-4o", 1),
    ];
    let mut n = 0;
    for (key, model, times) in sends {
        for i in 0..times {
            let body = format!(
                r#"{{"model":"{model}","max_tokens":30,"messages":[{{"role":"user","content":"report {i} {model}"}}]}}"#
            );
            let r = post_as(
                gw.port,
                "/v1/chat/completions",
                &[("X-API-Key", key), ("Cache-Control", "no-store")],
                &body,
            );
            assert_eq!(r.status, 200, "{}", r.body_text());
            n += 1;
        }
    }
    // One answered from the cache: a row at no cost.
    let cached =
        r#"{"model":"gpt-4o","max_tokens":30,"messages":[{"role":"user","content":"twice"}]}"#;
    for _ in 0..2 {
        assert_eq!(
            post_as(gw.port, "/v1/chat/completions", &[], cached).status,
            200
        );
        n += 1;
    }
    wait_settled_and_logged(&gw, n);

    let costs = gw.admin("/costs");
    let by_consumer = spend(&gw, "?group_by=consumer");
    assert_eq!(by_consumer.status, 200, "{}", by_consumer.body_text());
    let report = by_consumer.json();
    let mut total = 0u64;
    for row in report["rows"].as_array().unwrap() {
        let id = row["consumer"].as_str().unwrap();
        assert_eq!(
            row["cost_nanos"], costs["consumers"][id]["spent_today_nanos"],
            "{id}: the report's spend is /costs' spend"
        );
        total += row["cost_nanos"].as_u64().unwrap();
    }
    assert_eq!(report["total"]["cost_nanos"], total);
    assert_eq!(report["total"]["requests"], n as u64);
    assert!(total > 0);
    let tokens = report["total"]["input_tokens"].as_u64().unwrap()
        + report["total"]["output_tokens"].as_u64().unwrap();
    assert_eq!(
        tokens,
        ledger_tokens(&mock),
        "the ledger's tokens are the backend's"
    );

    for (group, names) in [
        ("team", vec!["Interns", "Metered", "QA"]),
        ("model", vec!["gpt-4", "gpt-4o"]),
        ("day", vec![costs["date"].as_str().unwrap()]),
    ] {
        let r = spend(&gw, &format!("?group_by={group}")).json();
        let got: Vec<&str> = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row[group].as_str().unwrap())
            .collect();
        assert_eq!(got, names, "{group}");
        assert_eq!(r["total"]["cost_nanos"], total, "{group}");
    }
    let csv = spend(&gw, "?group_by=model&format=csv");
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = csv.body_text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("model,requests,input_tokens"),
        "{text}"
    );
    assert!(lines[3].starts_with(&format!("total,{n},")), "{text}");
    assert!(lines[3].contains(&format!(",{total},")), "{text}");

    // Every row names who, what and how it ended; no prompt text is stored.
    let db = rusqlite::Connection::open(gw.database()).unwrap();
    let (team, backend, status, outcome): (String, String, i64, String) = db
        .query_row(
            "SELECT team, backend, status, outcome FROM ledger WHERE consumer = 'metered' LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (team.as_str(), backend.as_str(), status, outcome.as_str()),
        ("Metered", "mock-openai", 200, "ok")
    );
    let hits: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM ledger WHERE outcome = 'cache_hit' AND cost_nanos = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(hits, 1);
    drop(db);
    let dir = gw.database().parent().unwrap().to_path_buf();
    for f in std::fs::read_dir(dir).unwrap() {
        let f = f.unwrap().path();
        if f.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("tollgate.db")
        {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !bytes.windows(6).any(|w| w == b"report" || w == b"twice\""),
                "{} holds prompt text",
                f.display()
            );
        }
    }

    // `tollgate spend` prints the same report as a table, and the CSV as it came.
    let cli = |args: &[&str]| {
        let admin = format!("http://127.0.0.1:{}", gw.admin_port);
        std::process::Command::new(bin())
            .args(["spend", "--admin", &admin])
            .args(args)
            .env("TOLLGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .unwrap()
    };
    let out = cli(&["--group-by", "team"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let total_line = table.lines().last().unwrap().to_string();
    assert!(
        table.lines().nth(1).unwrap().starts_with("team "),
        "{table}"
    );
    assert!(table.contains("\nQA "), "{table}");
    assert!(
        total_line.starts_with("total") && total_line.contains(&format!(" {n} ")),
        "{table}"
    );
    let usd = report["total"]["cost_usd"].as_str().unwrap().to_string();
    assert!(total_line.contains(&usd), "{usd} in {table}");
    let out = cli(&["--group-by", "model", "--csv"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
    let refused = cli(&["--group-by", "user"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("group_by"));

    for bad in [
        "?group_by=user",
        "?from=2026-02-30",
        "?format=xml",
        "?group-by=team",
    ] {
        assert_eq!(spend(&gw, bad).status, 400, "{bad}");
    }
    let anonymous = request(gw.admin_port, "GET", "/spend", &[], b"");
    assert_eq!(anonymous.status, 401);
}
