//! The YAML shape of `tollgate.yaml`: plain serde structs, every unknown key an error.
//!
//! Nothing here is trusted: [`super::build`] turns this shape into the validated runtime form and
//! reports every problem with its YAML path.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole configuration file. `C` is what the `consumers:` list is read into: its sections,
/// or (the typed parse) consumers built as they are read ([`super::consumers::BuiltConsumers`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig<C = Vec<ConsumerSection>> {
    /// Listeners, admin plane, limits and timeouts.
    #[serde(default)]
    pub server: ServerSection,
    /// Who may call the gateway, with their profiles.
    #[serde(default)]
    pub consumers: C,
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
    /// Failover, circuit breaker and routing rules.
    #[serde(default)]
    pub routing: RoutingSection,
    /// The JSON access log.
    #[serde(default)]
    pub access_log: AccessLogSection,
    /// OpenTelemetry traces (OTLP over HTTP); off by default.
    #[serde(default)]
    pub tracing: TracingSection,
    /// API keys issued through the admin API (`POST /keys`).
    #[serde(default)]
    pub keys: KeysSection,
    /// Limits shared by every consumer of a team, by team name (a consumer's `team`).
    #[serde(default)]
    pub teams: BTreeMap<String, TeamSection>,
    /// Budget threshold alerts: a log line, a metric and optionally a webhook.
    #[serde(default)]
    pub alerts: AlertsSection,
}

/// One entry of `teams:`; every limit is optional (absent: none).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSection {
    /// The team's budget per UTC day in USD, shared by its consumers.
    #[serde(default)]
    pub daily_budget_usd: Option<serde_yaml::Value>,
    /// The team's budget per UTC calendar month in USD.
    #[serde(default)]
    pub monthly_budget_usd: Option<serde_yaml::Value>,
    /// Requests the team's consumers may send together per minute.
    #[serde(default)]
    pub requests_per_minute: Option<u64>,
}

/// `alerts:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// Percentages of a budget whose crossing by settled spend raises an alert.
    #[serde(default = "default_alert_thresholds")]
    pub thresholds: Vec<u64>,
    /// Where alerts are also posted as JSON (`http://` or `https://`); none by default.
    #[serde(default)]
    pub webhook: Option<WebhookSection>,
}

impl Default for AlertsSection {
    fn default() -> Self {
        AlertsSection {
            thresholds: default_alert_thresholds(),
            webhook: None,
        }
    }
}

/// `keys:` — API keys issued at runtime.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// How long a rotated key keeps working beside its replacement when `POST
    /// /keys/{id}/rotate` names no `overlap_seconds`.
    #[serde(default = "default_rotation_overlap_seconds")]
    pub rotation_overlap_seconds: u64,
}

impl Default for KeysSection {
    fn default() -> Self {
        KeysSection {
            rotation_overlap_seconds: default_rotation_overlap_seconds(),
        }
    }
}

/// `tracing:` OpenTelemetry traces, exported over OTLP/HTTP off the request path. Read when the
/// gateway starts (a reload that changes it is reported and keeps the running value). `Debug`
/// shows header names, never their values.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingSection {
    /// Off by default: no span is built and a client's `traceparent` passes to the backend as
    /// it came.
    #[serde(default)]
    pub enabled: bool,
    /// The collector's OTLP/HTTP traces URL (`http://` only).
    #[serde(default = "default_trace_endpoint")]
    pub endpoint: String,
    /// `http/protobuf` (default) or `http/json`.
    #[serde(default = "default_trace_protocol")]
    pub protocol: String,
    /// Share of new traces recorded, 0.0 to 1.0; a client's `traceparent` decides for its own
    /// trace (parent-based).
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
    /// The `service.name` of the exported resource.
    #[serde(default = "default_trace_service_name")]
    pub service_name: String,
    /// Spans waiting for the exporter; a request's spans that do not fit are dropped and
    /// counted (`tollgate_trace_spans_dropped_total`).
    #[serde(default = "default_trace_queue")]
    pub queue: usize,
    /// Longest one export (with its retries) may take, ms.
    #[serde(default = "default_trace_export_timeout_ms")]
    pub export_timeout_ms: u64,
    /// Headers sent with every export (e.g. `authorization`); the values are secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers sent with every export, each value read from the environment variable named.
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
}

impl Default for TracingSection {
    fn default() -> Self {
        TracingSection {
            enabled: false,
            endpoint: default_trace_endpoint(),
            protocol: default_trace_protocol(),
            sample_ratio: default_sample_ratio(),
            service_name: default_trace_service_name(),
            queue: default_trace_queue(),
            export_timeout_ms: default_trace_export_timeout_ms(),
            headers: BTreeMap::new(),
            headers_env: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for TracingSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracingSection")
            .field("enabled", &self.enabled)
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("sample_ratio", &self.sample_ratio)
            .field("service_name", &self.service_name)
            .field("queue", &self.queue)
            .field("export_timeout_ms", &self.export_timeout_ms)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("headers_env", &self.headers_env)
            .finish()
    }
}

fn default_trace_endpoint() -> String {
    "http://127.0.0.1:4318/v1/traces".into()
}
fn default_trace_protocol() -> String {
    "http/protobuf".into()
}
fn default_sample_ratio() -> f64 {
    1.0
}
fn default_trace_service_name() -> String {
    "tollgate".into()
}
fn default_trace_queue() -> usize {
    2048
}
fn default_trace_export_timeout_ms() -> u64 {
    10_000
}

/// An hour: long enough to move a fleet of clients, short enough that a leaked key dies soon.
fn default_rotation_overlap_seconds() -> u64 {
    3_600
}

fn default_alert_thresholds() -> Vec<u64> {
    vec![50, 80, 100]
}

/// `alerts.webhook:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// The URL alerts are posted to.
    pub url: String,
    /// Longest wait for one post, connect to answer.
    #[serde(default = "default_webhook_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_webhook_timeout_ms() -> u64 {
    2_000
}

/// `access_log:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogSection {
    /// `stdout`, `off`, or a file path (reopened on SIGHUP).
    #[serde(default = "default_access_log_to")]
    pub to: String,
    /// Lines queued for the writer before new ones are dropped (and counted).
    #[serde(default = "default_access_log_queue")]
    pub queue: usize,
}

impl Default for AccessLogSection {
    fn default() -> Self {
        AccessLogSection {
            to: default_access_log_to(),
            queue: default_access_log_queue(),
        }
    }
}

fn default_access_log_to() -> String {
    "stdout".into()
}
fn default_access_log_queue() -> usize {
    16_384
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
    /// The injection classifier stage, after the rules.
    #[serde(default)]
    pub classifier: Option<ClassifierSection>,
    /// An external guardrail service, after the classifier.
    #[serde(default)]
    pub guardrail: Option<GuardrailSection>,
    /// `enforce` (default) or `shadow`: every rule and stage of the filter in shadow mode.
    #[serde(default)]
    pub mode: Option<String>,
    /// The most bytes of a streamed answer held back for the response rules (a rule whose
    /// matches may be longer is checked up to this length across events).
    #[serde(default = "default_max_hold_back")]
    pub max_hold_back_bytes: usize,
}

fn default_max_hold_back() -> usize {
    256
}

impl Default for FilterSection {
    fn default() -> Self {
        FilterSection {
            rules: Vec::new(),
            policy: BTreeMap::new(),
            always_block_severity: default_always_block_severity(),
            base64_min_len: default_base64_min_len(),
            classifier: None,
            guardrail: None,
            mode: None,
            max_hold_back_bytes: default_max_hold_back(),
        }
    }
}

/// `content_filter.classifier:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierSection {
    /// Off keeps the section but runs no classifier.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A model file (`TGCLS001`); absent, the model shipped in `conf/models/injection.tgc`.
    #[serde(default)]
    pub model: Option<String>,
    /// The score at or above which a text counts as an attack; absent, the model's own.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Per role (`standard`, `elevated`, `admin`), overriding `threshold`.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f64>,
    /// `enforce` (default) or `shadow` (scored, logged and counted, never acted on).
    #[serde(default)]
    pub mode: Option<String>,
}

/// `content_filter.guardrail:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailSection {
    /// `azure_prompt_shields` or `json`.
    pub preset: String,
    /// The service: for `azure_prompt_shields` the resource endpoint, for `json` the URL posted to.
    pub url: String,
    /// Environment variable holding the service's key.
    #[serde(default)]
    pub credential_env: Option<String>,
    /// For `azure_prompt_shields`: the `api-version` query parameter.
    #[serde(default)]
    pub api_version: Option<String>,
    /// PEM file of CA certificates trusted for the service (besides the system's).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// The whole call, connect to verdict.
    #[serde(default = "default_guardrail_timeout_ms")]
    pub timeout_ms: u64,
    /// Per role: `open` (a failed call lets the request through) or `closed` (default: refused).
    #[serde(default)]
    pub fail: BTreeMap<String, String>,
    /// `enforce` (default) or `shadow`.
    #[serde(default)]
    pub mode: Option<String>,
}

fn default_guardrail_timeout_ms() -> u64 {
    1_000
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
    /// Several regular expressions, any one of which matches: each is searched on its own, so
    /// long rules stay fast on hostile text (see `filter`).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Literal keywords (any one matches, case-insensitively).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// Why the rule exists; the client reads it when blocked.
    pub reason: String,
    /// `enforce` (default) or `shadow`: matched, logged and counted as what it would have done,
    /// never acted on.
    #[serde(default)]
    pub mode: Option<String>,
    /// What it checks: `request` (the default), `response`, or both.
    #[serde(default)]
    pub applies_to: Vec<String>,
    /// The action for every role, instead of the role policy's for its category: `block`,
    /// `warn`, `audit`, `allow`, or (on responses) `redact`.
    #[serde(default)]
    pub action: Option<String>,
    /// Match requests with case kept (on text normalised otherwise as usual), e.g. the lab's
    /// passport rule `[A-Z]\d{8}`. Off by default: request rules ignore case. Answers are always
    /// matched as written, case-sensitively unless a pattern says `(?i)`.
    #[serde(default)]
    pub case_sensitive: bool,
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
    /// The embedded database (SQLite) holding the spend ledger, daily spend and issued keys;
    /// a relative path is relative to the working directory.
    #[serde(default = "default_database")]
    pub database: String,
    /// Keep one ledger row per request (`GET /spend` reads them); with `false` only the daily
    /// spend per consumer is kept (budgets still survive a restart).
    #[serde(default = "default_true")]
    pub ledger: bool,
    /// `process` (a commit survives the process dying, the default) or `machine` (it survives
    /// the machine dying too: one fsync per commit).
    #[serde(default = "default_durability")]
    pub durability: String,
    /// `memory` (this instance only) or `redis` (shared by every instance using the same Redis).
    #[serde(default = "default_state_backend")]
    pub backend: String,
    /// `redis://[:password@]host:port[/db]` (or `rediss://`); or name a variable in `redis_url_env`.
    #[serde(default)]
    pub redis_url: Option<String>,
    #[serde(default)]
    pub redis_url_env: Option<String>,
    /// Prefix of every key Tollgate writes.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Longest wait for one Redis call before the control's failure mode applies, ms.
    #[serde(default = "default_redis_timeout_ms")]
    pub redis_timeout_ms: u64,
    /// Share the response cache through Redis too (fails open: a miss).
    #[serde(default)]
    pub shared_cache: bool,
    /// When Redis cannot answer: `closed` (503, the default) or `open` (this instance's own
    /// counters decide).
    #[serde(default = "default_closed")]
    pub limits_on_error: String,
    #[serde(default = "default_closed")]
    pub budget_on_error: String,
}

impl Default for StateSection {
    fn default() -> Self {
        StateSection {
            database: default_database(),
            ledger: true,
            durability: default_durability(),
            backend: default_state_backend(),
            redis_url: None,
            redis_url_env: None,
            key_prefix: default_key_prefix(),
            redis_timeout_ms: default_redis_timeout_ms(),
            shared_cache: false,
            limits_on_error: default_closed(),
            budget_on_error: default_closed(),
        }
    }
}

fn default_state_backend() -> String {
    "memory".into()
}
fn default_key_prefix() -> String {
    "tollgate:".into()
}
fn default_redis_timeout_ms() -> u64 {
    250
}
fn default_closed() -> String {
    "closed".into()
}

fn default_true() -> bool {
    true
}
fn default_always_block_severity() -> String {
    "critical".into()
}
/// The shortest base64 run the filter decodes when the configuration does not say.
pub const DEFAULT_BASE64_MIN_LEN: usize = 24;

fn default_base64_min_len() -> usize {
    DEFAULT_BASE64_MIN_LEN
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
fn default_database() -> String {
    "tollgate.db".into()
}
fn default_durability() -> String {
    "process".into()
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
    /// Most choices (`n`) one chat request may ask for; each multiplies the output reserved.
    #[serde(default = "default_max_choices")]
    pub max_choices: u64,
    /// Requests handled at once; beyond it new ones get 503 with `Retry-After` at once.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u64,
    /// Client connections kept while idle (no request, or a header still arriving); beyond it the
    /// one idle longest is closed.
    #[serde(default = "default_max_idle_connections")]
    pub max_idle_connections: u64,
    /// Seconds in-flight requests get to finish on SIGTERM.
    #[serde(default = "default_grace_period_seconds")]
    pub grace_period_seconds: u64,
    /// Timeouts, in milliseconds.
    #[serde(default)]
    pub timeouts: TimeoutsSection,
    /// The admin plane.
    #[serde(default)]
    pub admin: AdminSection,
    /// Also serve the lab's reports (`GET /metrics` as JSON, `/costs`, `/cache/stats`) on the
    /// consumer listener, unauthenticated, as LAB 5 does. Off by default: they are the admin
    /// plane's, behind its token.
    #[serde(default)]
    pub lab_endpoints: bool,
    /// TLS on the consumer listener (off: plain HTTP).
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// HTTP/2 for clients: offered by ALPN on TLS listeners (default on).
    #[serde(default = "default_true")]
    pub http2: bool,
    /// HTTP/2 with prior knowledge (h2c) on a plain listener, beside HTTP/1.1.
    #[serde(default)]
    pub h2c: bool,
    /// Peers whose `X-Forwarded-For` (and PROXY header) name the client: CIDRs.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The consumer listener expects a PROXY protocol header (v1 or v2) from trusted proxies.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Clients refused on every route before anything else: CIDRs.
    #[serde(default)]
    pub deny_ips: Vec<String>,
    /// Send `X-Forwarded-For` to backends (the client's address appended to a trusted chain).
    #[serde(default)]
    pub forward_client_address: bool,
}

/// One entry of a consumer's `keys:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerKeySection {
    /// SHA-256 (hex) of the key.
    pub sha256: String,
    /// A name for the key (who holds it, where it is deployed); never the key.
    #[serde(default)]
    pub label: Option<String>,
    /// When the key stops working: `2027-01-31` (the start of that day, UTC) or
    /// `2027-01-31T12:00:00Z`.
    #[serde(default)]
    pub expires: Option<String>,
    /// The key is refused, as an unknown one.
    #[serde(default)]
    pub disabled: bool,
}

/// `client_cert:` of a consumer: exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCertSection {
    /// The certificate's subject, as `CN=bot, O=Corp` (attributes in certificate order).
    #[serde(default)]
    pub subject: Option<String>,
    /// A URI subject alternative name, e.g. a SPIFFE id.
    #[serde(default)]
    pub uri: Option<String>,
}

/// `tls:` of a listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The certificate chain presented, PEM, leaf first.
    pub cert_file: String,
    /// Its private key, PEM.
    pub key_file: String,
    /// CA certificates (PEM) client certificates must chain to: mutual TLS.
    #[serde(default)]
    pub client_ca_file: Option<String>,
    /// `required` (default with a CA) or `optional`.
    #[serde(default)]
    pub client_auth: Option<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: default_listen(),
            threads: default_threads(),
            max_body_bytes: default_max_body_bytes(),
            max_response_bytes: default_max_response_bytes(),
            max_choices: default_max_choices(),
            max_in_flight: default_max_in_flight(),
            max_idle_connections: default_max_idle_connections(),
            grace_period_seconds: default_grace_period_seconds(),
            timeouts: TimeoutsSection::default(),
            admin: AdminSection::default(),
            lab_endpoints: false,
            tls: None,
            http2: true,
            h2c: false,
            trusted_proxies: Vec::new(),
            proxy_protocol: false,
            deny_ips: Vec::new(),
            forward_client_address: false,
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
    /// Writing one chunk to a client or to a backend: a write that stalls longer closes the
    /// connection (a client that stops reading its answer holds nothing for long).
    #[serde(default = "default_write_ms")]
    pub write_ms: u64,
    /// For a request's whole header block: from the accept for a connection's first request,
    /// from the first byte for later ones.
    #[serde(default = "default_client_header_ms")]
    pub client_header_ms: u64,
    /// Between two reads of the client's request body.
    #[serde(default = "default_client_body_ms")]
    pub client_body_ms: u64,
    /// For the whole request body, however it trickles in.
    #[serde(default = "default_client_body_total_ms")]
    pub client_body_total_ms: u64,
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
            client_header_ms: default_client_header_ms(),
            client_body_ms: default_client_body_ms(),
            client_body_total_ms: default_client_body_total_ms(),
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
    /// TLS on the admin listener.
    #[serde(default)]
    pub tls: Option<TlsSection>,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: default_admin_listen(),
            token_sha256: None,
            token_env: None,
            tls: None,
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
    /// SHA-256 (hex) of the consumer's API key (`tollgate hash-key`); may be left out when
    /// `keys` lists its keys or `client_cert` identifies the consumer instead.
    #[serde(default)]
    pub key_sha256: Option<String>,
    /// More keys, each with an optional expiry and label, or `disabled: true`: several keys at
    /// once rotate a consumer's key without a gap.
    #[serde(default)]
    pub keys: Vec<ConsumerKeySection>,
    /// The client certificate the consumer must present (mutual TLS): `{subject: "CN=bot,
    /// O=Corp"}` or `{uri: "spiffe://corp/ns/a/sa/bot"}`.
    #[serde(default)]
    pub client_cert: Option<ClientCertSection>,
    /// Daily budget in USD, e.g. `100` or `"12.50"` (at most 6 decimals); the lab's $10 when
    /// not given.
    #[serde(default = "default_daily_budget_usd")]
    pub daily_budget_usd: serde_yaml::Value,
    /// Budget per UTC calendar month in USD; none means no monthly cap.
    #[serde(default)]
    pub monthly_budget_usd: Option<serde_yaml::Value>,
    /// Requests per minute; none means unlimited.
    #[serde(default)]
    pub requests_per_minute: Option<u64>,
    /// Models this consumer may use; empty means all.
    #[serde(default)]
    pub allowed_models: Vec<String>,
    /// Client addresses its key may be used from (CIDRs); empty means any.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
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
    /// Base URL, `http://host:port[/prefix]` or `https://…`; route paths are appended. Optional
    /// for a provider's own API (its preset: `https://api.openai.com`,
    /// `https://api.anthropic.com`, `https://generativelanguage.googleapis.com/v1beta`,
    /// `https://bedrock-runtime.{region}.amazonaws.com`).
    #[serde(default)]
    pub url: String,
    /// `openai`, `anthropic`, `gemini`, `bedrock` or `lab-agent`. A client's request in another
    /// dialect is translated for it.
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
    /// Environment variable holding the provider credential (sent as `Authorization: Bearer`,
    /// `api-key` for Azure, `x-api-key` for Anthropic, `x-goog-api-key` for Gemini). Bedrock
    /// signs with AWS credentials instead (`aws`).
    #[serde(default)]
    pub credential_env: Option<String>,
    /// AWS signing for a `bedrock` backend: region and credentials (by default from the
    /// standard AWS environment variables).
    #[serde(default)]
    pub aws: Option<AwsSection>,
    /// Request fields the gateway may drop, instead of refusing the request with a 400, when
    /// it translates a request for this backend and its dialect cannot express them: names as
    /// the client sends them (`logprobs`, `cache_control`), or `*` for any.
    #[serde(default)]
    pub drop_unsupported: Vec<String>,
    /// Takes requests for the model `default`.
    #[serde(default)]
    pub default: bool,
    /// Public model name → the backend's own name; requests for the public name come here and
    /// the forwarded body names the backend's model.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// `openai` (default), `azure` or `compatible` (Ollama, vLLM, …): sets auth header and path.
    #[serde(default = "default_provider")]
    pub provider: String,
    /// Azure OpenAI deployment name (provider `azure`).
    #[serde(default)]
    pub azure_deployment: Option<String>,
    /// Azure OpenAI `api-version` (provider `azure`).
    #[serde(default)]
    pub azure_api_version: Option<String>,
    /// PEM file of the CA that signs this backend's certificate (private endpoints); system roots
    /// otherwise.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Per-backend timeouts overriding `server.timeouts`.
    #[serde(default)]
    pub timeouts: Option<BackendTimeoutsSection>,
    /// Active health check; without one the backend counts as healthy (the circuit breaker still
    /// watches it).
    #[serde(default)]
    pub health_check: Option<HealthCheckSection>,
    /// `anthropic-version` header for `anthropic` backends.
    #[serde(default = "default_anthropic_version")]
    pub anthropic_version: String,
    /// Client request headers forwarded to this backend beyond the gateway's own short list
    /// (content negotiation, tracing): names, or prefixes ending in `*` (`x-mock-*`). Each one
    /// forwarded is part of the cache key. Credentials and the gateway's own headers never are.
    #[serde(default)]
    pub forward_headers: Vec<String>,
}

/// `backends[].aws:` (a `bedrock` backend's SigV4 signing). `Debug` leaves the secret out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSection {
    /// The region (`us-east-1`); else `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    #[serde(default)]
    pub region: Option<String>,
    /// The access key id itself (not a secret); else the variable `access_key_id_env` names.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Variable holding the access key id (`AWS_ACCESS_KEY_ID`).
    #[serde(default = "default_aws_key_env")]
    pub access_key_id_env: String,
    /// Variable holding the secret access key (`AWS_SECRET_ACCESS_KEY`).
    #[serde(default = "default_aws_secret_env")]
    pub secret_access_key_env: String,
    /// The secret access key itself, for a mock or a demo: a real one belongs in the variable
    /// `secret_access_key_env` names, not in a file.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Variable holding a session token, used when it is set (`AWS_SESSION_TOKEN`).
    #[serde(default = "default_aws_token_env")]
    pub session_token_env: String,
}

impl std::fmt::Debug for AwsSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSection")
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_id_env", &self.access_key_id_env)
            .field("secret_access_key_env", &self.secret_access_key_env)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "*****"),
            )
            .field("session_token_env", &self.session_token_env)
            .finish()
    }
}

impl AwsSection {
    /// The standard AWS environment variables, no region or key id given.
    pub fn standard() -> AwsSection {
        AwsSection {
            region: None,
            access_key_id: None,
            access_key_id_env: default_aws_key_env(),
            secret_access_key_env: default_aws_secret_env(),
            secret_access_key: None,
            session_token_env: default_aws_token_env(),
        }
    }
}

fn default_aws_key_env() -> String {
    "AWS_ACCESS_KEY_ID".into()
}
fn default_aws_secret_env() -> String {
    "AWS_SECRET_ACCESS_KEY".into()
}
fn default_aws_token_env() -> String {
    "AWS_SESSION_TOKEN".into()
}

/// `backends[].timeouts:` (milliseconds; unset ones come from `server.timeouts`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTimeoutsSection {
    /// TCP (and TLS) connect.
    #[serde(default)]
    pub connect_ms: Option<u64>,
    /// From sending the request to the first byte of the answer.
    #[serde(default)]
    pub first_byte_ms: Option<u64>,
    /// Between two reads once the answer flows.
    #[serde(default)]
    pub idle_ms: Option<u64>,
    /// The whole exchange, connect to last byte.
    #[serde(default)]
    pub total_ms: Option<u64>,
}

/// `backends[].health_check:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSection {
    /// `http` (GET `path`, expect `expected_status`) or `tcp` (connect).
    #[serde(default = "default_check_kind")]
    pub kind: String,
    /// Path for `http` checks.
    #[serde(default = "default_check_path")]
    pub path: String,
    /// Status an `http` check expects.
    #[serde(default = "default_check_status")]
    pub expected_status: u16,
    /// Time between checks, ms.
    #[serde(default = "default_check_interval")]
    pub interval_ms: u64,
    /// A check slower than this fails, ms.
    #[serde(default = "default_check_timeout")]
    pub timeout_ms: u64,
    /// Consecutive failures that mark a healthy backend unhealthy.
    #[serde(default = "default_unhealthy_threshold")]
    pub unhealthy_threshold: u32,
    /// Consecutive successes that mark an unhealthy backend healthy again.
    #[serde(default = "default_healthy_threshold")]
    pub healthy_threshold: u32,
}

/// `routing:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSection {
    /// Backends tried per request (the first plus failovers).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// When no backend is usable, try an unhealthy or open-circuit one anyway (the seed's
    /// behaviour) instead of answering 503.
    #[serde(default)]
    pub fallback_to_unusable: bool,
    /// The passive circuit breaker.
    #[serde(default)]
    pub circuit_breaker: CircuitSection,
    /// Rules matched in order; every matching rule applies.
    #[serde(default)]
    pub rules: Vec<RouteRuleSection>,
}

impl Default for RoutingSection {
    fn default() -> Self {
        RoutingSection {
            max_attempts: default_max_attempts(),
            fallback_to_unusable: false,
            circuit_breaker: CircuitSection::default(),
            rules: Vec::new(),
        }
    }
}

/// `routing.circuit_breaker:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitSection {
    /// Failures within the window that open the circuit.
    #[serde(default = "default_cb_failures")]
    pub failure_threshold: u32,
    /// The window, seconds.
    #[serde(default = "default_cb_window")]
    pub window_seconds: u64,
    /// How long an open circuit stays open before one probe, seconds.
    #[serde(default = "default_cb_open")]
    pub open_seconds: u64,
}

impl Default for CircuitSection {
    fn default() -> Self {
        CircuitSection {
            failure_threshold: default_cb_failures(),
            window_seconds: default_cb_window(),
            open_seconds: default_cb_open(),
        }
    }
}

/// One entry of `routing.rules:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRuleSection {
    /// A name for logs.
    pub name: String,
    /// Conditions (all must hold); none means every request.
    #[serde(default)]
    pub when: RouteMatchSection,
    /// Backend attributes preferred: used when some candidate has them.
    #[serde(default)]
    pub prefer: RouteWantSection,
    /// Backend attributes required: candidates without them are dropped.
    #[serde(default)]
    pub require: RouteWantSection,
}

/// `routing.rules[].when:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteMatchSection {
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub consumer: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// The request's estimated tokens (prompt + output cap) exceed this.
    #[serde(default)]
    pub estimated_tokens_over: Option<u64>,
}

/// `routing.rules[].prefer:` / `require:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteWantSection {
    /// `low`, `medium` or `high`.
    #[serde(default)]
    pub cost_tier: Option<String>,
    /// `max_context_tokens` must be at least this many times the request's estimated tokens.
    #[serde(default)]
    pub context_factor: Option<u64>,
}

/// One entry of `pricing:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSection {
    /// USD per million prompt tokens.
    pub input_per_million_usd: serde_yaml::Value,
    /// USD per million completion tokens.
    pub output_per_million_usd: serde_yaml::Value,
    /// USD per million prompt tokens read from the provider's prompt cache (OpenAI's
    /// `cached_tokens`, Anthropic's and Bedrock's cache reads, Gemini's cached content); the
    /// input price when unset.
    #[serde(default)]
    pub cached_input_per_million_usd: Option<serde_yaml::Value>,
    /// USD per million prompt tokens written to the provider's prompt cache (Anthropic,
    /// Bedrock); the input price when unset.
    #[serde(default)]
    pub cache_write_per_million_usd: Option<serde_yaml::Value>,
    /// USD per million reasoning (thought) tokens; the output price when unset.
    #[serde(default)]
    pub reasoning_per_million_usd: Option<serde_yaml::Value>,
}

fn default_anthropic_version() -> String {
    "2023-06-01".into()
}
fn default_provider() -> String {
    "openai".into()
}
fn default_check_kind() -> String {
    "http".into()
}
fn default_check_path() -> String {
    "/health".into()
}
fn default_check_status() -> u16 {
    200
}
fn default_check_interval() -> u64 {
    5_000
}
fn default_check_timeout() -> u64 {
    2_000
}
fn default_unhealthy_threshold() -> u32 {
    3
}
fn default_healthy_threshold() -> u32 {
    2
}
fn default_max_attempts() -> u32 {
    3
}
fn default_cb_failures() -> u32 {
    5
}
fn default_cb_window() -> u64 {
    60
}
fn default_cb_open() -> u64 {
    30
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
fn default_max_in_flight() -> u64 {
    4_096
}
fn default_max_choices() -> u64 {
    16
}
fn default_max_body_bytes() -> u64 {
    8 * 1024 * 1024
}
fn default_max_response_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_grace_period_seconds() -> u64 {
    30
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
fn default_client_header_ms() -> u64 {
    10_000
}
fn default_max_idle_connections() -> u64 {
    4096
}
fn default_client_body_total_ms() -> u64 {
    120_000
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
fn default_daily_budget_usd() -> serde_yaml::Value {
    serde_yaml::Value::Number(10.into())
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
