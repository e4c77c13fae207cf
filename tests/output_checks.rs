//! The output side of the content filter: rules that check answers, streamed or not, redact,
//! withhold, warn or audit; what the cache keeps is what the client received; shadow rules only
//! count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// A rule on answers: SSNs, with `action` (and `mode` lines, indented by six).
fn ssn_answer_rule(action: &str, extra: &str) -> String {
    format!(
        "content_filter:
  rules:
    - id: ssn_out
      category: pii
      applies_to: [response]
      action: {action}
      pattern: '\\b\\d{{3}}-\\d{{2}}-\\d{{4}}\\b'
      severity: critical
      reason: no SSNs in answers
{extra}"
    )
}

fn gateway(mock: &MockServer, filter: &str) -> (GatewayServer, PathBuf) {
    let log = temp_dir().join("access.log");
    let gw = GatewayServer::start_with(
        &backends_for(mock.port),
        "",
        &format!("access_log: {{to: \"{}\"}}\n{filter}", log.display()),
        &[],
    );
    (gw, log)
}

fn log_lines(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A chat request whose answer is `answer` (pieces separated by `|`).
fn ask(port: u16, answer: &str, stream: bool, extra: &[(&str, &str)]) -> Response {
    let body = serde_json::json!({"model": "gpt-4", "stream": stream,
        "messages": [{"role": "user", "content": "tell me"}]});
    let mut headers = vec![("x-mock-answer", answer)];
    headers.extend_from_slice(extra);
    post_as(port, "/v1/chat/completions", &headers, &body.to_string())
}

#[test]
fn a_whole_answer_is_redacted_before_the_client_and_the_cache_see_it() {
    let mock = MockServer::start(&[]);
    let (gw, log) = gateway(&mock, &ssn_answer_rule("redact", ""));
    let answer = "Your SSN is |123-45-6789|, keep it safe.";
    let r = ask(gw.port, answer, false, &[]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    let content = r.json()["choices"][0]["message"]["content"].clone();
    assert_eq!(content, "Your SSN is [REDACTED:ssn_out], keep it safe.");
    assert_eq!(r.header("x-tollgate-redacted"), Some("ssn_out"));
    // The same request again is answered from the cache: redacted too.
    let again = ask(gw.port, answer, false, &[]);
    assert_eq!(
        again.header("x-tollgate-cache"),
        Some("HIT"),
        "{:?}",
        again.headers
    );
    assert_eq!(again.json()["choices"][0]["message"]["content"], content);
    assert_eq!(mock.requests(), 1);
    wait_until("the lines are logged", 5, || !log_lines(&log).is_empty());
    let line = &log_lines(&log)[0];
    assert_eq!(line["response_filter"], "ssn_out:redact");
    assert!(!line.to_string().contains("6789"));
    let metrics = gw.admin_text("/metrics");
    assert!(
        metrics.contains(
            r#"tollgate_filter_decisions_total{action="redact",mode="enforce",rule="ssn_out",stage="response"} 1"#
        ),
        "{metrics}"
    );
}

#[test]
fn a_whole_answer_a_block_rule_matches_is_withheld_and_still_charged() {
    let mock = MockServer::start(&[]);
    let (gw, _) = gateway(&mock, &ssn_answer_rule("block", ""));
    let r = ask(gw.port, "It is |123-45-6789", false, &[]);
    assert_eq!(r.status, 400, "{}", r.body_text());
    assert_eq!(r.json()["error"]["code"], "content_policy_violation");
    assert!(!r.body_text().contains("6789"));
    let costs = gw.admin("/costs");
    assert_ne!(
        costs["consumers"]["tester"]["spent_today_nanos"], 0,
        "{costs}"
    );
}
