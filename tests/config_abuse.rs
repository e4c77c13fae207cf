//! Bad configuration files: `tollgate check` and a reload both refuse them, naming the YAML path
//! of each problem, and a running gateway keeps its working configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::process::Command;

fn demo() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml")).unwrap()
}

/// (name, file text, text the report must contain)
fn cases() -> Vec<(&'static str, String, &'static str)> {
    let d = demo();
    let alias_bomb = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/corpus/config/alias_bomb.yaml"
    ))
    .unwrap();
    vec![
        (
            "unknown key",
            d.replacen("  threads: 2\n", "  threads: 2\n  thraeds: 4\n", 1),
            "server.thraeds: unknown key `thraeds` (did you mean `threads`?)",
        ),
        (
            "negative limit",
            d.replacen(
                "    tokens_per_minute: 10000\n",
                "    tokens_per_minute: -10000\n",
                1,
            ),
            "consumers[0].tokens_per_minute",
        ),
        (
            "negative budget",
            d.replacen(
                "    daily_budget_usd: 100\n",
                "    daily_budget_usd: -100\n",
                1,
            ),
            "consumers[0].daily_budget_usd: amount must not be negative",
        ),
        (
            "all weights zero",
            d.replace("weight: 3", "weight: 0")
                .replace("weight: 1", "weight: 0"),
            "has weight 0; at least one must be > 0",
        ),
        (
            "duplicate consumer id",
            d.replacen("  - id: team-engineering", "  - id: team-support", 1),
            "consumers[1].id: `team-support` is used twice",
        ),
        (
            "duplicate key digest",
            d.replacen(
                "35d19f761b29dfaa721aacd85c36a807a71eee25e62e82bc70c42c9cef7f4a20",
                "35aa5085c1991080747f020f2807d382ac78cfacc7ec76105eb83a1fe8bde29e",
                1,
            ),
            "consumers[1].key_sha256: the same key as consumers[0]",
        ),
        (
            "invalid YAML",
            d.replacen("consumers:\n", "consumers:\n  - [unclosed\n", 1),
            "invalid YAML",
        ),
        ("YAML alias bomb", alias_bomb, "repetition limit exceeded"),
    ]
}

#[test]
fn tollgate_check_refuses_each_with_its_path() {
    let dir = temp_dir();
    for (name, text, needle) in cases() {
        let path = dir.join("bad.yaml");
        std::fs::write(&path, &text).unwrap();
        let out = Command::new(bin())
            .args(["check", "-c", path.to_str().unwrap()])
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {report}");
        assert!(report.contains(needle), "{name}: {report}");
    }
}

#[test]
fn a_reload_refuses_each_and_the_gateway_keeps_serving() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let good = std::fs::read_to_string(gw.config_path()).unwrap();
    let version = gw.version();
    let bad: Vec<(&str, String)> = vec![
        (
            "unknown key",
            good.replacen("  threads: 2\n", "  threads: 2\n  thraeds: 4\n", 1),
        ),
        (
            "duplicate consumer id",
            good.replacen("  - id: limited", "  - id: tester", 1),
        ),
        (
            "invalid YAML",
            good.replacen("consumers:\n", "consumers:\n  - [x\n", 1),
        ),
        (
            "alias bomb",
            std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fuzz/corpus/config/alias_bomb.yaml"
            ))
            .unwrap(),
        ),
    ];
    for (name, text) in bad {
        std::fs::write(gw.config_path(), text).unwrap();
        let r = gw.reload();
        assert_eq!(r.status, 400, "{name}: {}", r.body_text());
        assert_eq!(r.json()["result"], "error", "{name}");
        assert!(
            !r.json()["problems"].as_array().unwrap().is_empty(),
            "{name}"
        );
        assert_eq!(
            gw.version(),
            version,
            "{name}: the working configuration stays"
        );
        let chat = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
        assert_eq!(
            post_as(
                gw.port,
                "/v1/chat/completions",
                &[("X-API-Key", KEY_STANDARD)],
                chat
            )
            .status,
            200,
            "{name}"
        );
    }
}
