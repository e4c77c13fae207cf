//! Keys issued at runtime through the admin API and `tollgate keys`: they work at once on every
//! instance sharing Redis, a revoked one is refused everywhere within a second, rotation keeps the
//! old key for its overlap, expiry and per-key model allowlists hold, keys survive a restart, and
//! the key itself never shows again (list, access log, the gateway's log).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const CHAT_4O: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
const CHAT_4: &str = r#"{"model":"gpt-4","messages":[{"role":"user","content":"hi"}]}"#;

/// `method path` on the admin plane with the admin token and a JSON body.
fn admin_call(gw: &GatewayServer, method: &str, path: &str, body: &str) -> Response {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    request(
        gw.admin_port,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

/// Issues a key through `gw`'s admin API: its id and the key.
fn create(gw: &GatewayServer, body: &str) -> (String, String) {
    let r = admin_call(gw, "POST", "/keys", body);
    assert_eq!(r.status, 201, "{}", r.body_text());
    let v = r.json();
    (
        v["id"].as_str().unwrap().to_string(),
        v["key"].as_str().unwrap().to_string(),
    )
}

/// The status of an authenticated request that reaches no backend (`GET /v1/models`).
fn auth_status(port: u16, key: &str) -> u16 {
    let bearer = format!("Bearer {key}");
    request(
        port,
        "GET",
        "/v1/models",
        &[("Authorization", &bearer)],
        b"",
    )
    .status
}

fn chat(port: u16, key: &str, body: &str) -> Response {
    post_json(port, "/v1/chat/completions", Some(key), body)
}

/// Polls every instance until each refuses `key` (401); returns how long after `since` the
/// slowest one took. Fails after 5 s.
fn refused_everywhere(ports: &[u16], key: &str, since: Instant) -> Duration {
    let mut pending: Vec<u16> = ports.to_vec();
    let mut slowest = Duration::ZERO;
    while !pending.is_empty() {
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "still accepted on {pending:?}"
        );
        pending.retain(|port| match auth_status(*port, key) {
            401 => {
                slowest = slowest.max(since.elapsed());
                false
            }
            200 => true,
            other => panic!("unexpected status {other} on {port}"),
        });
        std::thread::sleep(Duration::from_millis(10));
    }
    slowest
}

/// `tollgate keys ARGS` against `admin_port`, the admin token in the environment.
fn keys_cli(admin_port: u16, args: &[&str]) -> Output {
    let admin = format!("http://127.0.0.1:{admin_port}");
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("keys")
        .args(args)
        .args(["--admin", &admin])
        .env("TOLLGATE_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A field `name:` of `tollgate keys create`'s output.
fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no `{name}:` in {out}"))
}

fn three_on(redis: &Redis, mock: &MockServer) -> Vec<GatewayServer> {
    (0..3)
        .map(|_| {
            GatewayServer::start_full(&backends_for(mock.port), "", &redis.state_yaml(), "", &[])
        })
        .collect()
}

#[test]
fn a_key_made_on_one_of_three_instances_works_on_all_at_once_and_its_revocation_reaches_all_within_a_second(
) {
    let Some(redis) = Redis::start() else {
        return;
    };
    let mock = MockServer::start(&[]);
    let gws = three_on(&redis, &mock);
    let ports: Vec<u16> = gws.iter().map(|g| g.port).collect();
    let (id, key) = create(&gws[0], r#"{"consumer":"tester","label":"lifecycle"}"#);
    // At once: no waiting for the others to poll.
    for g in &gws {
        let r = chat(g.port, &key, CHAT_4O);
        assert_eq!(r.status, 200, "instance {}: {}", g.port, r.body_text());
    }
    let revoked = admin_call(&gws[2], "POST", &format!("/keys/{id}/revoke"), "");
    let since = Instant::now();
    assert_eq!(revoked.status, 200, "{}", revoked.body_text());
    assert_eq!(revoked.json()["status"], "revoked");
    let took = refused_everywhere(&ports, &key, since);
    eprintln!("the revocation reached all three instances in {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "refused everywhere after {took:?}"
    );
    // Every instance lists it as revoked.
    for g in &gws {
        let listed = g.admin("/keys");
        let k = &listed["keys"].as_array().unwrap()[0];
        assert_eq!(
            (k["id"].as_str(), k["status"].as_str()),
            (Some(id.as_str()), Some("revoked"))
        );
    }
}

#[test]
fn the_same_lifecycle_through_the_cli_on_three_instances() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let mock = MockServer::start(&[]);
    let gws = three_on(&redis, &mock);
    let ports: Vec<u16> = gws.iter().map(|g| g.port).collect();
    let out = keys_cli(
        gws[0].admin_port,
        &[
            "create",
            "--consumer",
            "tester",
            "--label",
            "from the cli",
            "--model",
            "gpt-4o",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let (key, id) = (field(&text, "key"), field(&text, "id"));
    assert!(key.starts_with("tg-"), "{text}");
    assert_eq!(field(&text, "models"), "gpt-4o");
    for g in &gws {
        assert_eq!(chat(g.port, &key, CHAT_4O).status, 200);
    }
    let listed = keys_cli(gws[1].admin_port, &["list", "--consumer", "tester"]);
    assert!(listed.status.success(), "{listed:?}");
    let table = stdout(&listed);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&id) && table.contains("active"), "{table}");
    assert!(!table.contains(&key), "the list never shows the key");
    let revoked = keys_cli(gws[2].admin_port, &["revoke", &id]);
    let since = Instant::now();
    assert!(revoked.status.success(), "{revoked:?}");
    assert!(stdout(&revoked).contains("revoked"));
    let took = refused_everywhere(&ports, &key, since);
    assert!(
        took < Duration::from_secs(1),
        "refused everywhere after {took:?}"
    );
    // Errors are told apart: an unknown key (1), no token (2).
    let missing = keys_cli(gws[0].admin_port, &["revoke", "key_0000000000000000"]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    let no_token = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "keys",
            "list",
            "--admin",
            &format!("http://127.0.0.1:{}", gws[0].admin_port),
        ])
        .env_remove("TOLLGATE_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(no_token.status.code(), Some(2), "{no_token:?}");
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("TOLLGATE_ADMIN_TOKEN"));
}

#[test]
fn without_redis_issued_keys_fail_closed_and_configured_keys_still_authenticate() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let mock = MockServer::start(&[]);
    let state = redis
        .state_yaml()
        .replace("redis_timeout_ms: 1000", "redis_timeout_ms: 200");
    let gws: Vec<GatewayServer> = (0..2)
        .map(|_| GatewayServer::start_full(&backends_for(mock.port), "", &state, "", &[]))
        .collect();
    let (_, seen) = create(&gws[0], r#"{"consumer":"tester"}"#);
    let (_, unseen) = create(&gws[0], r#"{"consumer":"tester"}"#);
    assert_eq!(auth_status(gws[1].port, &seen), 200);
    redis.stop();
    // A key this instance never saw cannot be looked up: 503, quickly, not 401.
    let started = Instant::now();
    let bearer = format!("Bearer {unseen}");
    let r = request(
        gws[1].port,
        "GET",
        "/v1/models",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(r.status, 503, "{}", r.body_text());
    assert_eq!(r.json()["error"]["code"], "state_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // One it knows is served until its index is 2 s out of date (a revocation could be missed
    // after that), then refused the same way.
    wait_until("the known key fails closed", 5, || {
        auth_status(gws[1].port, &seen) == 503
    });
    // Keys from the configuration never depend on Redis.
    assert_eq!(auth_status(gws[1].port, KEY_STANDARD), 200);
    // Creating a key needs Redis.
    let r = admin_call(&gws[0], "POST", "/keys", r#"{"consumer":"tester"}"#);
    assert_eq!(r.status, 503, "{}", r.body_text());
}

#[test]
fn a_rotated_key_keeps_working_for_its_overlap_beside_the_new_one_then_is_refused() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let mock = MockServer::start(&[]);
    let gws: Vec<GatewayServer> = (0..2)
        .map(|_| {
            GatewayServer::start_full(&backends_for(mock.port), "", &redis.state_yaml(), "", &[])
        })
        .collect();
    let ports: Vec<u16> = gws.iter().map(|g| g.port).collect();
    let (old_id, old_key) = create(&gws[0], r#"{"consumer":"tester","label":"rotating"}"#);
    let started = Instant::now();
    let r = admin_call(
        &gws[0],
        "POST",
        &format!("/keys/{old_id}/rotate"),
        r#"{"overlap_seconds": 2}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body_text());
    let new = r.json();
    let new_key = new["key"].as_str().unwrap().to_string();
    assert_eq!(new["label"], "rotating");
    assert_eq!(new["rotated_from"], Value::String(old_id.clone()));
    for port in &ports {
        assert_eq!(
            auth_status(*port, &old_key),
            200,
            "the old key during the overlap"
        );
        assert_eq!(auth_status(*port, &new_key), 200, "the new key at once");
    }
    let took = refused_everywhere(&ports, &old_key, started);
    assert!(
        took >= Duration::from_millis(1_900),
        "refused too early: {took:?}"
    );
    for port in &ports {
        assert_eq!(auth_status(*port, &new_key), 200, "the new key stays");
    }
}

#[test]
fn a_key_works_until_it_expires() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let at = tollgate::state::unix_now() + 2;
    let body = format!(
        r#"{{"consumer":"tester","expires":"{}"}}"#,
        tollgate::state::utc_time(at)
    );
    let (id, key) = create(&gw, &body);
    assert_eq!(chat(gw.port, &key, CHAT_4O).status, 200);
    wait_until("the key expires", 5, || auth_status(gw.port, &key) == 401);
    assert!(tollgate::state::unix_now() >= at, "not before its time");
    let shown = admin_call(&gw, "GET", &format!("/keys/{id}"), "").json();
    assert_eq!(shown["status"], "expired");
    // An expiry in the past is refused at creation.
    let r = admin_call(
        &gw,
        "POST",
        "/keys",
        r#"{"consumer":"tester","expires":"2001-01-01"}"#,
    );
    assert_eq!(r.status, 400);
}

#[test]
fn a_key_allowlist_narrows_its_consumer_and_cannot_widen_it() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let (_, key) = create(&gw, r#"{"consumer":"tester","models":["gpt-4o"]}"#);
    assert_eq!(chat(gw.port, &key, CHAT_4O).status, 200);
    let refused = chat(gw.port, &key, CHAT_4);
    assert_eq!(refused.status, 403, "{}", refused.body_text());
    assert_eq!(refused.json()["error"]["code"], "model_not_allowed");
    // The consumer itself may use gpt-4.
    assert_eq!(chat(gw.port, KEY_STANDARD, CHAT_4).status, 200);
    let bearer = format!("Bearer {key}");
    let models = request(
        gw.port,
        "GET",
        "/v1/models",
        &[("Authorization", &bearer)],
        b"",
    )
    .json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"gpt-4o") && !ids.contains(&"gpt-4"),
        "{ids:?}"
    );
    // `limited` may use gpt-4o and default only: a key for gpt-4 is refused at creation.
    let r = admin_call(
        &gw,
        "POST",
        "/keys",
        r#"{"consumer":"limited","models":["gpt-4"]}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body_text());
    assert!(r.json()["error"].as_str().unwrap().contains("gpt-4"));
    let r = admin_call(&gw, "POST", "/keys", r#"{"consumer":"nobody"}"#);
    assert_eq!(r.status, 404);
}

#[test]
fn issued_keys_survive_a_restart_and_a_revoked_one_stays_revoked() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let (kept_id, kept) = create(&gw, r#"{"consumer":"tester","label":"kept"}"#);
    let (gone_id, gone) = create(&gw, r#"{"consumer":"metered","label":"gone"}"#);
    assert_eq!(auth_status(gw.port, &gone), 200);
    assert_eq!(
        admin_call(&gw, "DELETE", &format!("/keys/{gone_id}"), "").status,
        200
    );
    assert_eq!(
        auth_status(gw.port, &gone),
        401,
        "refused at once by this process"
    );
    assert_eq!(chat(gw.port, &kept, CHAT_4O).status, 200);
    // SIGKILL: nothing is flushed on the way out; the API answered only after its commit.
    let gw = gw.restart();
    assert_eq!(chat(gw.port, &kept, CHAT_4O).status, 200);
    assert_eq!(auth_status(gw.port, &gone), 401);
    let listed = gw.admin("/keys");
    let by_id = |id: &str| {
        listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_id(&kept_id)["status"], "active");
    assert_eq!(by_id(&gone_id)["status"], "revoked");
    // A reload keeps them too; a consumer dropped from the file takes its keys with it.
    let path = gw.config_path().to_path_buf();
    let yaml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, yaml.replace("- id: tester", "- id: tester-renamed")).unwrap();
    assert_eq!(gw.reload().status, 200);
    assert_eq!(auth_status(gw.port, &kept), 401, "its consumer is gone");
    assert!(gw.proc.log_text().contains("no longer configured"));
    std::fs::write(&path, yaml).unwrap();
    assert_eq!(gw.reload().status, 200);
    assert_eq!(auth_status(gw.port, &kept), 200, "and back");
}

#[test]
fn the_key_never_shows_again_in_the_list_the_access_log_or_the_gateways_log() {
    let mock = MockServer::start(&[]);
    let dir = temp_dir();
    let log = dir.join("access.log");
    let gw = GatewayServer::start_with(
        &backends_for(mock.port),
        "",
        &format!("access_log: {{to: \"{}\"}}\n", log.display()),
        &[],
    );
    let (id, key) = create(
        &gw,
        r#"{"consumer":"tester","label":"secret-holder","models":["gpt-4o"]}"#,
    );
    let digest = sha256_hex(key.as_bytes());
    assert_eq!(chat(gw.port, &key, CHAT_4O).status, 200);
    assert_eq!(chat(gw.port, &key, CHAT_4).status, 403);
    let rotated = admin_call(
        &gw,
        "POST",
        &format!("/keys/{id}/rotate"),
        r#"{"overlap_seconds":0}"#,
    );
    let new_key = rotated.json()["key"].as_str().unwrap().to_string();
    assert_eq!(auth_status(gw.port, &key), 401);
    assert_eq!(auth_status(gw.port, &new_key), 200);
    let listed = admin_call(&gw, "GET", "/keys", "").body_text();
    let old = serde_json::from_str::<Value>(&listed).unwrap()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert!(
        old["last_used"].is_string(),
        "its use is shown at once: {old}"
    );
    let table = stdout(&keys_cli(gw.admin_port, &["list"]));
    let json = stdout(&keys_cli(gw.admin_port, &["list", "--json"]));
    assert!(listed.contains(&id) && table.contains(&id) && json.contains(&id));
    for (what, text) in [
        ("the list", &listed),
        ("the table", &table),
        ("the JSON list", &json),
    ] {
        for secret in [&key, &new_key, &digest] {
            assert!(
                !text.contains(secret.as_str()),
                "{what} shows a key or digest: {text}"
            );
        }
        assert!(
            text.contains("last_used") || text.contains("LAST USED"),
            "{what}: {text}"
        );
    }
    let lines = access_log_settled(&gw, &log, 3, 10);
    let access = lines.iter().map(|l| l.to_string()).collect::<String>();
    let gateway = gw.proc.log_text();
    for secret in [&key, &new_key] {
        assert!(
            !access.contains(secret.as_str()),
            "the access log shows a key"
        );
        assert!(
            !gateway.contains(secret.as_str()),
            "the gateway's log shows a key"
        );
    }
    assert!(gateway.contains(&id), "changes are logged by id");
}

#[test]
fn the_cli_reaches_an_admin_plane_over_tls_trusting_only_the_ca_it_is_given() {
    let ca = TestCa::new("Keys admin CA");
    let pair = ca.server("admin");
    let mock = MockServer::start(&[]);
    let (_gw, port, admin_port) = gateway_with_admin_tls(&pair, mock.port);
    wait_ready_tcp(port);
    let url = format!("https://127.0.0.1:{admin_port}");
    let cli = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["keys", "--admin", &url])
            .args(extra)
            .env("TOLLGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .unwrap()
    };
    let ca_file = ca.cert_str();
    let mut created = None;
    wait_until("the CLI creates a key over TLS", 20, || {
        let out = cli(&["create", "--consumer", "tester", "--cacert", &ca_file]);
        let ok = out.status.success();
        created = Some(out);
        ok
    });
    let key = field(&stdout(&created.unwrap()), "key");
    assert_eq!(auth_status(port, &key), 200);
    let no_ca = cli(&["list"]);
    assert_eq!(no_ca.status.code(), Some(2), "{no_ca:?}");
    assert!(String::from_utf8_lossy(&no_ca.stderr).contains("--cacert"));
    let other = TestCa::new("Some other CA");
    let wrong = cli(&["list", "--cacert", &other.cert_str()]);
    assert_eq!(
        wrong.status.code(),
        Some(2),
        "an unknown CA is not trusted: {wrong:?}"
    );
}
