//! Configuration builders: the test consumers' keys, backends for a mock, and the gateway's YAML.

use std::path::Path;
use tollgate::digest::KeyDigest;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const KEY_STANDARD: &str = "tg-test-standard-key-5b7e1c";
pub const KEY_LIMITED: &str = "tg-test-limited-key-9f2d44";
/// A consumer held to 10,000 tokens a minute and $0.10 a day.
pub const KEY_METERED: &str = "tg-test-metered-key-31c0aa";
/// The security team: role `admin` (injections audited where the policy says so).
pub const KEY_SECURITY: &str = "tg-test-security-key-77aa01";
pub const BACKEND_SECRET: &str = "sk-backend-secret-for-tests";
/// What the mock answers by default, word by word: 16 completion tokens.
pub const MOCK_ANSWER: &str = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 ";

/// The backend setting that lets the mock's fault-injection headers (`x-mock-*`) reach it: a
/// backend gets only the client headers its `forward_headers` names. Left out when the tests run
/// against another build (`TOLLGATE_TEST_BIN`), which may not know the setting and forwards
/// every header anyway.
pub fn mock_headers() -> &'static str {
    if std::env::var_os("TOLLGATE_TEST_BIN").is_some() {
        ""
    } else {
        "forward_headers: [\"x-mock-*\"]"
    }
}

/// The test backends' context: large enough for the multi-MiB bodies the body tests send (the
/// default, 128,000 tokens, would refuse them before forwarding).
pub const LARGE_CONTEXT: u64 = 4_000_000;

/// One OpenAI backend serving `gpt-4o` (YAML list item), with extra lines (indented by four).
pub fn openai_backend(id: &str, port: u16, priority: u32, weight: u32, extra: &str) -> String {
    let mock_headers = mock_headers();
    format!(
        "  - id: {id}\n    url: \"http://127.0.0.1:{port}\"\n    protocol: openai\n    models: [gpt-4o]\n    priority: {priority}\n    weight: {weight}\n    max_context_tokens: {LARGE_CONTEXT}\n    {mock_headers}\n{extra}"
    )
}

/// Backends section for a mock on `mock_port`: an OpenAI backend (with a credential) serving
/// `gpt-4`/`gpt-4o`, and a lab agent serving `default`.
pub fn backends_for(mock_port: u16) -> String {
    let mock_headers = mock_headers();
    format!(
        r#"backends:
  - id: mock-openai
    url: "http://127.0.0.1:{mock_port}"
    protocol: openai
    models: [gpt-4, gpt-4o]
    credential_env: TG_TEST_BACKEND_KEY
    max_context_tokens: {LARGE_CONTEXT}
    {mock_headers}
  - id: agent
    url: "http://127.0.0.1:{mock_port}"
    protocol: lab-agent
    models: [default]
    max_context_tokens: {LARGE_CONTEXT}
    {mock_headers}
"#
    )
}

/// The gateway's listeners.
pub struct Ports {
    pub port: u16,
    pub admin_port: u16,
}

/// The gateway's configuration: four consumers (`KEY_STANDARD`: all models, generous limits;
/// `KEY_LIMITED`: `gpt-4o` and `default` only; `KEY_METERED`: 10,000 tokens a minute and $0.10 a
/// day; `KEY_SECURITY`: role `admin`), its state in `dir`, `backends` (YAML), `server_extra` and `state_extra` lines (indented
/// by two) in their sections, and `extra_yaml` at the top level.
pub fn gateway_yaml(
    ports: &Ports,
    dir: &Path,
    backends: &str,
    server_extra: &str,
    state_extra: &str,
    extra_yaml: &str,
) -> String {
    let Ports { port, admin_port } = ports;
    format!(
        r#"server:
  listen: "127.0.0.1:{port}"
  threads: 2
{grace}{server_extra}
  admin:
    listen: "127.0.0.1:{admin_port}"
    token_sha256: "{admin}"
consumers:
  - id: tester
    team: QA
    key_sha256: "{k1}"
    daily_budget_usd: 100
    tokens_per_minute: 100000000
    tokens_per_hour: 100000000
    tokens_per_day: 100000000
  - id: limited
    team: Interns
    key_sha256: "{k2}"
    daily_budget_usd: 1
    allowed_models: [gpt-4o, default]
  - id: metered
    team: Metered
    key_sha256: "{k3}"
    daily_budget_usd: "0.10"
    tokens_per_minute: 10000
    tokens_per_hour: 100000
    tokens_per_day: 500000
  - id: security
    team: Security
    role: admin
    key_sha256: "{k4}"
    daily_budget_usd: 100
pricing:
  gpt-4: {{input_per_million_usd: 30, output_per_million_usd: 60}}
  claude-sonnet-4: {{input_per_million_usd: 3, output_per_million_usd: 15, cached_input_per_million_usd: "0.30", cache_write_per_million_usd: "3.75"}}
  gemini-2.5-flash: {{input_per_million_usd: "0.30", output_per_million_usd: "2.50", reasoning_per_million_usd: "3.50"}}
  "anthropic.claude-3-5-haiku-20241022-v1:0": {{input_per_million_usd: "0.80", output_per_million_usd: 4}}
  default: {{input_per_million_usd: "0.01", output_per_million_usd: "0.02"}}
state:
  database: "{database}"
{state_extra}
{backends}
{extra_yaml}"#,
        admin = KeyDigest::of(ADMIN_TOKEN.as_bytes()).to_hex(),
        k1 = KeyDigest::of(KEY_STANDARD.as_bytes()).to_hex(),
        k2 = KeyDigest::of(KEY_LIMITED.as_bytes()).to_hex(),
        k3 = KeyDigest::of(KEY_METERED.as_bytes()).to_hex(),
        k4 = KeyDigest::of(KEY_SECURITY.as_bytes()).to_hex(),
        database = dir.join("tollgate.db").display(),
        grace = if server_extra.contains("grace_period_seconds") {
            ""
        } else {
            "  grace_period_seconds: 0\n"
        },
    )
}

/// A content filter that refuses SSNs in requests and, with `answers`, redacts them in answers.
pub fn ssn_filter(answers: bool) -> String {
    let mut yaml = "content_filter:
  rules:
    - id: pii_input_ssn
      category: pii
      pattern: '\\b\\d{3}-\\d{2}-\\d{4}\\b'
      severity: critical
      reason: no SSNs
"
    .to_string();
    if answers {
        yaml.push_str(
            "    - id: ssn_out
      category: pii
      applies_to: [response]
      action: redact
      pattern: '\\b\\d{3}-\\d{2}-\\d{4}\\b'
      severity: critical
      reason: no SSNs in answers
",
        );
    }
    yaml
}
