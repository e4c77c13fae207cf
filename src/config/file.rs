//! The YAML shape of `tollgate.yaml`: plain serde structs, every unknown key an error.
//!
//! Nothing here is trusted: [`super::build`] turns this shape into the validated runtime form and
//! reports every problem with its YAML path.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listeners, admin plane, limits and timeouts.
    #[serde(default)]
    pub server: ServerSection,
    /// Who may call the gateway, with their profiles.
    #[serde(default)]
    pub consumers: Vec<ConsumerSection>,
    /// Where requests may go.
    #[serde(default)]
    pub backends: Vec<BackendSection>,
    /// Price per model, in USD per million tokens. The entry `default` prices unlisted models.
    #[serde(default)]
    pub pricing: BTreeMap<String, PriceSection>,
    /// Output cap per model (tokens) used when a request sets none; `default` covers the rest.
    #[serde(default)]
    pub max_output_tokens: BTreeMap<String, u64>,
    /// The organisation-wide content filter.
    #[serde(default)]
    pub content_filter: FilterSection,
    /// The response cache.
    #[serde(default)]
    pub cache: CacheSection,
    /// Where state that must survive a restart is kept.
    #[serde(default)]
    pub state: StateSection,
}

/// `content_filter:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSection {
    /// The rules; none means no filtering.
    #[serde(default)]
    pub rules: Vec<RuleSection>,
    /// Per role, per category: `block`, `warn`, `audit` (allowed, logged as an audited bypass)
    /// or `allow`. Missing entries block.
    #[serde(default)]
    pub policy: BTreeMap<String, BTreeMap<String, String>>,
    /// A match at or above this severity blocks whatever the role's action (`never` to disable).
    #[serde(default = "default_always_block_severity")]
    pub always_block_severity: String,
    /// Base64 runs at least this long are decoded and scanned too.
    #[serde(default = "default_base64_min_len")]
    pub base64_min_len: usize,
}

impl Default for FilterSection {
    fn default() -> Self {
        FilterSection {
            rules: Vec::new(),
            policy: BTreeMap::new(),
            always_block_severity: default_always_block_severity(),
            base64_min_len: default_base64_min_len(),
        }
    }
}

/// One entry of `content_filter.rules:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    /// Stable id, reported to the client and in logs.
    pub id: String,
    /// `pii`, `topic` or `injection`.
    pub category: String,
    /// A regular expression (matched case-insensitively on normalised text).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Literal keywords (any one matches, case-insensitively).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// Why the rule exists; the client reads it when blocked.
    pub reason: String,
}

/// `cache:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Whether identical requests are answered from the cache.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Who shares entries: `consumer` (default), `team` or `global`.
    #[serde(default = "default_cache_scope")]
    pub scope: String,
    /// Seconds an entry lives.
    #[serde(default = "default_cache_ttl")]
    pub ttl_seconds: u64,
    /// Most entries kept (least recently used go first).
    #[serde(default = "default_cache_entries")]
    pub max_entries: usize,
    /// Most bytes kept across entries.
    #[serde(default = "default_cache_bytes")]
    pub max_bytes: usize,
    /// Largest single response stored.
    #[serde(default = "default_cache_entry_bytes")]
    pub max_entry_bytes: usize,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            enabled: true,
            scope: default_cache_scope(),
            ttl_seconds: default_cache_ttl(),
            max_entries: default_cache_entries(),
            max_bytes: default_cache_bytes(),
            max_entry_bytes: default_cache_entry_bytes(),
        }
    }
}

/// `state:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// File where spend is persisted (atomically) so a restart keeps everyone's spent-today.
    #[serde(default = "default_spend_file")]
    pub spend_file: String,
    /// How often changed spend is written, ms.
    #[serde(default = "default_persist_interval_ms")]
    pub persist_interval_ms: u64,
}

impl Default for StateSection {
    fn default() -> Self {
        StateSection {
            spend_file: default_spend_file(),
            persist_interval_ms: default_persist_interval_ms(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_always_block_severity() -> String {
    "critical".into()
}
fn default_base64_min_len() -> usize {
    24
}
fn default_cache_scope() -> String {
    "consumer".into()
}
fn default_cache_ttl() -> u64 {
    300
}
fn default_cache_entries() -> usize {
    1000
}
fn default_cache_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_cache_entry_bytes() -> usize {
    1024 * 1024
}
fn default_spend_file() -> String {
    "tollgate-spend.json".into()
}
fn default_persist_interval_ms() -> u64 {
    250
}

/// `server:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Consumer-plane listener, `ip:port`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Worker threads of the consumer plane.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Largest request body accepted; larger bodies get 413 before they are read.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Largest upstream response the gateway buffers when it must rewrite it (`/chat`).
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// Seconds in-flight requests get to finish on SIGTERM.
    #[serde(default = "default_grace_period_seconds")]
    pub grace_period_seconds: u64,
    /// Timeouts, in milliseconds.
    #[serde(default)]
    pub timeouts: TimeoutsSection,
    /// The admin plane.
    #[serde(default)]
    pub admin: AdminSection,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: default_listen(),
            threads: default_threads(),
            max_body_bytes: default_max_body_bytes(),
            max_response_bytes: default_max_response_bytes(),
            grace_period_seconds: default_grace_period_seconds(),
            timeouts: TimeoutsSection::default(),
            admin: AdminSection::default(),
        }
    }
}

/// `server.timeouts:` (all milliseconds).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSection {
    /// TCP (and TLS) connect to a backend.
    #[serde(default = "default_connect_ms")]
    pub connect_ms: u64,
    /// Waiting for the backend's first byte, and between two reads after that.
    #[serde(default = "default_read_ms")]
    pub read_ms: u64,
    /// Writing one chunk of the request to the backend.
    #[serde(default = "default_write_ms")]
    pub write_ms: u64,
    /// Between two reads of the client's request body.
    #[serde(default = "default_client_body_ms")]
    pub client_body_ms: u64,
    /// How long an idle upstream connection stays in the pool.
    #[serde(default = "default_upstream_idle_ms")]
    pub upstream_idle_ms: u64,
}

impl Default for TimeoutsSection {
    fn default() -> Self {
        TimeoutsSection {
            connect_ms: default_connect_ms(),
            read_ms: default_read_ms(),
            write_ms: default_write_ms(),
            client_body_ms: default_client_body_ms(),
            upstream_idle_ms: default_upstream_idle_ms(),
        }
    }
}

/// `server.admin:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Admin-plane listener, `ip:port`.
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// SHA-256 (hex) of the admin bearer token.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Name of an environment variable holding the admin bearer token.
    #[serde(default)]
    pub token_env: Option<String>,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: default_admin_listen(),
            token_sha256: None,
            token_env: None,
        }
    }
}

/// One entry of `consumers:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSection {
    /// Stable id, used in logs, metrics and state.
    pub id: String,
    /// Team the spend is attributed to.
    #[serde(default)]
    pub team: String,
    /// `standard`, `elevated` or `admin`; grades the content filter.
    #[serde(default = "default_role")]
    pub role: String,
    /// SHA-256 (hex) of the consumer's API key (`tollgate hash-key`).
    pub key_sha256: String,
    /// Daily budget in USD, e.g. `100` or `"12.50"` (at most 6 decimals).
    pub daily_budget_usd: serde_yaml::Value,
    /// Models this consumer may use; empty means all.
    #[serde(default)]
    pub allowed_models: Vec<String>,
    /// Token limit per minute.
    #[serde(default = "default_tpm")]
    pub tokens_per_minute: u64,
    /// Token limit per hour.
    #[serde(default = "default_tph")]
    pub tokens_per_hour: u64,
    /// Token limit per day.
    #[serde(default = "default_tpd")]
    pub tokens_per_day: u64,
    /// Free text for humans.
    #[serde(default)]
    pub description: String,
}

/// One entry of `backends:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    /// Stable id, used in logs, metrics, state and `x-tollgate-backend`.
    pub id: String,
    /// Base URL, `http://host:port[/prefix]` or `https://…`; route paths are appended.
    pub url: String,
    /// `openai` or `lab-agent`.
    pub protocol: String,
    /// Model names this backend serves (`default` included where it should take it).
    pub models: Vec<String>,
    /// Lower is preferred.
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// Share of traffic within its priority group.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Largest context (prompt + output tokens) the backend accepts.
    #[serde(default = "default_max_context_tokens")]
    pub max_context_tokens: u64,
    /// `low`, `medium` or `high`.
    #[serde(default = "default_cost_tier")]
    pub cost_tier: String,
    /// Environment variable holding the provider credential, sent as `Authorization: Bearer`.
    #[serde(default)]
    pub credential_env: Option<String>,
}

/// One entry of `pricing:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSection {
    /// USD per million prompt tokens.
    pub input_per_million_usd: serde_yaml::Value,
    /// USD per million completion tokens.
    pub output_per_million_usd: serde_yaml::Value,
}

fn default_listen() -> String {
    "0.0.0.0:9000".into()
}
fn default_admin_listen() -> String {
    "127.0.0.1:9001".into()
}
fn default_threads() -> usize {
    2
}
fn default_max_body_bytes() -> u64 {
    8 * 1024 * 1024
}
fn default_max_response_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_grace_period_seconds() -> u64 {
    10
}
fn default_connect_ms() -> u64 {
    2_000
}
fn default_read_ms() -> u64 {
    120_000
}
fn default_write_ms() -> u64 {
    30_000
}
fn default_client_body_ms() -> u64 {
    30_000
}
fn default_upstream_idle_ms() -> u64 {
    60_000
}
fn default_role() -> String {
    "standard".into()
}
fn default_tpm() -> u64 {
    10_000
}
fn default_tph() -> u64 {
    100_000
}
fn default_tpd() -> u64 {
    500_000
}
fn default_priority() -> u32 {
    1
}
fn default_weight() -> u32 {
    1
}
fn default_max_context_tokens() -> u64 {
    128_000
}
fn default_cost_tier() -> String {
    "medium".into()
}
