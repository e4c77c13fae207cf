//! The output side of the content filter: rules that check answers, streamed or not, redact,
//! withhold, warn or audit; what the cache keeps is what the client received; shadow rules only
//! count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::path::PathBuf;

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

/// The metrics count `n` redactions by the answer rule `ssn_out` in `mode`.
fn assert_redactions(gw: &GatewayServer, mode: &str, n: u64) {
    let metrics = gw.admin_text("/metrics");
    let series = format!(
        r#"tollgate_filter_decisions_total{{action="redact",mode="{mode}",rule="ssn_out",stage="response"}} {n}"#
    );
    assert!(metrics.contains(&series), "{metrics}");
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
    // Both lines: the answer from the backend is not always written first (each is logged
    // after its own answer went out).
    wait_until("the lines are logged", 5, || log_lines(&log).len() == 2);
    let lines = log_lines(&log);
    let line = lines.iter().find(|l| l["cache_hit"] == false).unwrap();
    assert_eq!(line["response_filter"], "ssn_out:redact");
    assert!(!line.to_string().contains("6789"));
    assert_redactions(&gw, "enforce", 1);
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

/// The answer text a chat stream delivered (its `delta.content`s, joined), and its events.
fn streamed_text(r: &Response) -> (String, Vec<serde_json::Value>) {
    let mut text = String::new();
    let mut events = Vec::new();
    for line in r.body_text().lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        if let Some(s) = v
            .pointer("/choices/0/delta/content")
            .and_then(|c| c.as_str())
        {
            text.push_str(s);
        }
        events.push(v);
    }
    (text, events)
}

#[test]
fn an_ssn_split_across_events_or_written_as_json_escapes_never_reaches_a_streaming_client() {
    let mock = MockServer::start(&[]);
    let (gw, log) = gateway(&mock, &ssn_answer_rule("redact", ""));
    for escape in [false, true] {
        let extra: &[(&str, &str)] = if escape {
            &[("x-mock-answer-escape", "1")]
        } else {
            &[]
        };
        for answer in [
            "Your SSN is 123-4|5-6789, keep it safe.",
            "Your SSN is |1|2|3|-|4|5|-|6|7|8|9|.",
            "123-45-6789",
            "Two: 123-45-|6789 and 987-|65-4321|!",
        ] {
            let r = ask(gw.port, answer, true, extra);
            assert_eq!(r.status, 200, "{}", r.body_text());
            let body = r.body_text();
            let (text, _) = streamed_text(&r);
            let expected = answer
                .replace('|', "")
                .replace("123-45-6789", "[REDACTED:ssn_out]")
                .replace("987-65-4321", "[REDACTED:ssn_out]");
            assert_eq!(text, expected, "{answer} (escaped: {escape}): {body}");
            assert!(!body.contains("6789") && !body.contains("4321"), "{body}");
            assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
        }
    }
    wait_until("the lines are logged", 5, || log_lines(&log).len() >= 8);
    assert!(log_lines(&log)
        .iter()
        .all(|l| l["response_filter"] == "ssn_out:redact"));
    let metrics = gw.admin_text("/metrics");
    assert!(
        metrics.contains("tollgate_output_hold_back_seconds_count"),
        "{metrics}"
    );
}

#[test]
fn a_clean_stream_passes_unchanged_and_its_usage_is_the_same_redacted_or_not() {
    let mock = MockServer::start(&[]);
    let (checked, checked_log) = gateway(&mock, &ssn_answer_rule("redact", ""));
    let (plain, plain_log) = gateway(&mock, "");
    let answer = "The number |123-45-6789| is on file|.";
    let a = ask(checked.port, answer, true, &[]);
    let b = ask(plain.port, answer, true, &[]);
    assert!(streamed_text(&a).0.contains("[REDACTED:ssn_out]"));
    assert!(streamed_text(&b).0.contains("123-45-6789"));
    wait_until("the lines are logged", 5, || {
        !log_lines(&checked_log).is_empty() && !log_lines(&plain_log).is_empty()
    });
    let (x, y) = (&log_lines(&checked_log)[0], &log_lines(&plain_log)[0]);
    for field in ["input_tokens", "output_tokens", "cost_nanos", "estimated"] {
        assert_eq!(x[field], y[field], "{field}: {x} vs {y}");
    }
    // A clean answer through the checks is the same text, event for event.
    let clean = "Nothing |to see |here.";
    let (c, p) = (
        ask(checked.port, clean, true, &[]),
        ask(plain.port, clean, true, &[]),
    );
    assert_eq!(streamed_text(&c).0, streamed_text(&p).0);
}

#[test]
fn a_block_mid_stream_ends_it_with_an_error_event_and_the_connection_is_not_reused() {
    use std::io::Read;
    let mock = MockServer::start(&[]);
    let (gw, log) = gateway(&mock, &ssn_answer_rule("block", ""));
    let body = serde_json::json!({"model": "gpt-4", "stream": true,
        "messages": [{"role": "user", "content": "tell me"}]});
    // A keep-alive connection: the client would reuse it.
    let mut conn = send_post(
        gw.port,
        "/v1/chat/completions",
        &[(
            "x-mock-answer",
            "Sure, it is |123-45-|6789| and more| text.",
        )],
        &body.to_string(),
    );
    conn.get_ref()
        .set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    let r = read_response(&mut conn).expect("a complete stream");
    assert_eq!(r.status, 200);
    let body = r.body_text();
    assert!(!body.contains("6789"), "{body}");
    assert!(!body.contains("[DONE]"), "{body}");
    let last = body.trim_end().lines().last().unwrap().to_string();
    assert!(
        last.contains("content_policy_violation") && last.contains("ssn_out"),
        "{body}"
    );
    // The gateway closed the connection after the stream.
    let mut rest = [0u8; 16];
    match conn.read(&mut rest) {
        Ok(0) => {}
        other => panic!("the connection must be closed, not kept for reuse: {other:?}"),
    }
    wait_until("the line is logged", 5, || !log_lines(&log).is_empty());
    let line = &log_lines(&log)[0];
    assert_eq!(line["error"], "content_policy_violation");
    assert_eq!(line["response_filter"], "ssn_out:block");
}

#[test]
fn a_shadow_answer_rule_changes_nothing_and_counts_what_it_would_have_done() {
    let mock = MockServer::start(&[]);
    let (gw, _) = gateway(&mock, &ssn_answer_rule("redact", "      mode: shadow\n"));
    let r = ask(gw.port, "It is |123-45-|6789.", true, &[]);
    assert_eq!(streamed_text(&r).0, "It is 123-45-6789.");
    let r = ask(gw.port, "It is |123-45-|6789.", false, &[]);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "It is 123-45-6789."
    );
    assert_eq!(r.header("x-tollgate-redacted"), None);
    assert_redactions(&gw, "shadow", 2);
}

#[test]
fn anthropic_streams_and_the_lab_chat_are_checked_too() {
    let mock = MockServer::start(&[]);
    let backends = format!(
        "{}  - id: claude\n    url: \"http://127.0.0.1:{}\"\n    protocol: anthropic\n    models: [claude-3]\n    {}\n",
        backends_for(mock.port),
        mock.port,
        mock_headers()
    );
    let log = temp_dir().join("access.log");
    let gw = GatewayServer::start_with(
        &backends,
        "",
        &format!(
            "access_log: {{to: \"{}\"}}\n{}",
            log.display(),
            ssn_answer_rule("redact", "")
        ),
        &[],
    );
    let body = serde_json::json!({"model": "claude-3", "max_tokens": 50, "stream": true,
        "messages": [{"role": "user", "content": "tell me"}]});
    let r = post_as(
        gw.port,
        "/v1/messages",
        &[("x-mock-answer", "SSN: 123-4|5-67|89 ok")],
        &body.to_string(),
    );
    let body = r.body_text();
    let mut text = String::new();
    for line in body.lines() {
        if let Some(data) = line.strip_prefix("data: ") {
            let v: serde_json::Value = serde_json::from_str(data).unwrap();
            if let Some(t) = v.pointer("/delta/text").and_then(|t| t.as_str()) {
                text.push_str(t);
            }
        }
    }
    assert_eq!(text, "SSN: [REDACTED:ssn_out] ok", "{body}");
    let r = post_as(
        gw.port,
        "/chat",
        &[("x-mock-answer", "SSN 123-45-6789")],
        r#"{"message": "hi"}"#,
    );
    assert_eq!(
        r.json()["response"],
        "SSN [REDACTED:ssn_out]",
        "{}",
        r.body_text()
    );
}

#[test]
fn a_redacting_request_rule_forwards_the_masked_body_and_says_which_rules_redacted() {
    let mock = MockServer::start(&[]);
    let filter = "content_filter:
  rules:
    - id: ssn_in
      category: pii
      action: redact
      pattern: '\\b\\d{3}-\\d{2}-\\d{4}\\b'
      severity: critical
      reason: no SSNs to providers
    - id: ssn_block
      category: pii
      pattern: 'never-matches-anything-zzz'
      severity: critical
      reason: a blocking rule beside it
";
    let (gw, log) = gateway(&mock, filter);
    // The SSN's first digits written as JSON escapes in the raw body.
    let body = r#"{"model":"gpt-4","max_tokens":4,"messages":[{"role":"user","content":"file \u0031\u00323-45-6789 for me"}]}"#;
    let r = post_as(gw.port, "/v1/chat/completions", &[], body);
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(r.header("x-tollgate-request-redacted"), Some("ssn_in"));
    let forwarded = r#"{"model":"gpt-4","max_tokens":4,"messages":[{"role":"user","content":"file [REDACTED:ssn_in] for me"}]}"#;
    let ledger = mock.ledger();
    assert_eq!(
        ledger["last_request"]["body_sha256"],
        sha256_hex(forwarded.as_bytes()),
        "the backend got the masked body, every other byte as sent: {ledger}"
    );
    wait_until("the line is logged", 5, || !log_lines(&log).is_empty());
    let line = &log_lines(&log)[0];
    assert_eq!(line["request_redacted"], "ssn_in:redact");
    assert_eq!(line["content_filter_result"], "passed");
    assert!(!line.to_string().contains("6789"));
}

#[test]
fn the_demo_redacts_ssns_cards_and_keys_in_every_roles_answers_streamed_or_not() {
    let demo = DemoServer::start();
    let answer =
        "SSN 123-45-|6789, card 4111 1111 |1111 1111, key sk-abcdefghij|klmnopqrstuvwxyz0123 done";
    let expected = "SSN [REDACTED:pii_output_ssn], card [REDACTED:pii_output_credit_card], \
                    key [REDACTED:secret_output_api_key] done";
    for key in [
        "key-team-support",
        "key-team-engineering",
        "key-team-security",
    ] {
        for stream in [false, true] {
            let body = serde_json::json!({"model": "gpt-4", "stream": stream,
                "messages": [{"role": "user", "content": "what is on file?"}]});
            let r = post_as(
                demo.port,
                "/v1/chat/completions",
                &[("X-API-Key", key), ("x-mock-answer", answer)],
                &body.to_string(),
            );
            assert_eq!(r.status, 200, "{key}: {}", r.body_text());
            let text = if stream {
                streamed_text(&r).0
            } else {
                r.json()["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap()
                    .to_string()
            };
            assert_eq!(text, expected, "{key}, stream {stream}");
        }
    }
}
