//! The validated runtime form of the configuration: what the gateway runs on.

pub use super::budgets::{AlertsConfig, Team, Webhook};
pub use super::cidr::CidrSet;
pub use super::filter::FilterConfig;
pub use super::tls::ServerTls;
use crate::digest::{KeyDigest, Secret};
use pingora::utils::tls::WrappedX509;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The whole validated configuration.
#[derive(Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub consumers: Vec<Arc<Consumer>>,
    pub backends: Vec<Arc<Backend>>,
    /// Model name → price; `default` prices unlisted models (required).
    pub pricing: BTreeMap<String, Price>,
    pub output_caps: OutputCaps,
    /// The content filter's rules and policy (compiled by `stages::filter`).
    pub filter: FilterConfig,
    pub cache: CacheConfig,
    pub state: StateConfig,
    pub routing: RoutingConfig,
    pub access_log: LogDestination,
    pub access_log_queue: usize,
    /// OpenTelemetry traces (read at start only).
    pub tracing: super::tracing::TracingConfig,
    pub keys: KeysConfig,
    /// Teams with shared limits, by name (the consumers of a listed team hold it too).
    pub teams: BTreeMap<String, Arc<Team>>,
    /// Budget threshold alerts.
    pub alerts: Arc<AlertsConfig>,
}

/// `keys:` — API keys issued at runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysConfig {
    /// Seconds a rotated key keeps working when the rotation names no overlap.
    pub rotation_overlap_seconds: u64,
}

impl KeysConfig {
    /// The longest overlap a rotation may ask for: 30 days.
    pub const MAX_OVERLAP_SECONDS: u64 = 30 * 86_400;
}

/// Where access-log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDestination {
    Stdout,
    File(PathBuf),
    Off,
}

impl Config {
    /// Every backend's `forward_headers`, once each: the client headers that may reach a
    /// backend and so are part of the cache key.
    pub fn forwarded_header_patterns(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .backends
            .iter()
            .flat_map(|b| b.forward_headers.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The price of `model` when `backend` serves it: pricing follows the model the backend is
    /// asked for (an alias's target, so one public name served by several providers is priced
    /// per provider), when the table lists it; else the public name's price, else `default`.
    pub fn price_on(&self, model: &str, backend: &Backend) -> Price {
        let own = backend
            .renamed(model)
            .and_then(|own| self.pricing.get(own).filter(|_| own != "default"));
        match own {
            Some(p) => *p,
            None => self.price_for(model),
        }
    }

    /// The most `model` may cost per token on any backend `serves` accepts (each price
    /// component at its highest): what a reservation is priced at before a backend is chosen.
    pub fn price_bound(&self, model: &str, serves: impl Fn(&Backend) -> bool) -> Price {
        self.backends
            .iter()
            .filter(|b| serves(b))
            .map(|b| self.price_on(model, b))
            .reduce(Price::max)
            .unwrap_or_else(|| self.price_for(model))
    }

    /// The price of `model`, or the `default` entry's.
    pub fn price_for(&self, model: &str) -> Price {
        self.pricing
            .get(model)
            .or_else(|| self.pricing.get("default"))
            .copied()
            .unwrap_or_default()
    }
}

/// Output caps (tokens) for requests that set none; the gateway sends the cap upstream too.
#[derive(Debug, Clone)]
pub struct OutputCaps {
    pub per_model: BTreeMap<String, u64>,
    pub default: u64,
}

impl OutputCaps {
    /// Used when `max_output_tokens.default` is not configured.
    pub const BUILT_IN_DEFAULT: u64 = 4096;

    pub fn cap_for(&self, model: &str) -> u64 {
        self.per_model.get(model).copied().unwrap_or(self.default)
    }
}

/// Who shares cache entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheScope {
    Consumer,
    Team,
    Global,
}

#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub enabled: bool,
    pub scope: CacheScope,
    pub ttl: Duration,
    pub max_entries: usize,
    pub max_bytes: usize,
    pub max_entry_bytes: usize,
}

/// How hard a commit is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Survives the process dying (`synchronous = NORMAL` in WAL mode).
    Process,
    /// Survives the machine dying too: one fsync per commit (`synchronous = FULL`).
    Machine,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// The embedded database (SQLite).
    pub database: PathBuf,
    /// One ledger row per request is kept.
    pub ledger: bool,
    pub durability: Durability,
    /// Set for `backend: redis`.
    pub shared: Option<SharedStateConfig>,
}

/// `state.backend: redis`.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedStateConfig {
    /// May carry a password: never printed (see the `Debug` impl).
    pub url: String,
    pub key_prefix: String,
    pub timeout: Duration,
    pub cache: bool,
    pub limits_fail_open: bool,
    pub budget_fail_open: bool,
}

impl std::fmt::Debug for SharedStateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStateConfig")
            .field("url", &"<redacted>")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("cache", &self.cache)
            .field("limits_fail_open", &self.limits_fail_open)
            .field("budget_fail_open", &self.budget_fail_open)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub threads: usize,
    pub max_body_bytes: usize,
    /// Most `n` choices per chat request.
    pub max_choices: u64,
    /// Requests handled at once before new ones are refused with 503.
    pub max_in_flight: usize,
    /// Idle client connections kept; beyond it the one idle longest is closed.
    pub max_idle_connections: usize,
    pub max_response_bytes: usize,
    pub grace_period_seconds: u64,
    pub timeouts: Timeouts,
    pub admin: AdminConfig,
    /// The lab's reports are served on the consumer listener too (`server.lab_endpoints`).
    pub lab_endpoints: bool,
    /// TLS on the consumer listener.
    pub tls: Option<ServerTls>,
    /// HTTP/2 offered by ALPN on TLS listeners.
    pub http2: bool,
    /// HTTP/2 with prior knowledge on a plain listener.
    pub h2c: bool,
    /// Peers trusted to name the client (`X-Forwarded-For`, PROXY headers).
    pub trusted_proxies: CidrSet,
    /// The consumer listener reads a PROXY protocol header from trusted peers.
    pub proxy_protocol: bool,
    /// Clients refused before anything else.
    pub deny_ips: CidrSet,
    /// `X-Forwarded-For` is sent to backends.
    pub forward_client_address: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub write: Duration,
    /// For a request's whole header block.
    pub client_header: Duration,
    pub client_body: Duration,
    pub client_body_total: Duration,
    pub upstream_idle: Duration,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Digest of the admin bearer token.
    pub token: KeyDigest,
    /// TLS on the admin listener.
    pub tls: Option<ServerTls>,
}

/// Content-filter strictness (see the content filter stage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Standard,
    Elevated,
    Admin,
}

impl Role {
    /// Every role, in [`Role::index`] order.
    pub const ALL: [Role; 3] = [Role::Standard, Role::Elevated, Role::Admin];

    /// Its place in per-role tables.
    pub fn index(self) -> usize {
        match self {
            Role::Standard => 0,
            Role::Elevated => 1,
            Role::Admin => 2,
        }
    }

    /// A role's configuration name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Standard => "standard",
            Role::Elevated => "elevated",
            Role::Admin => "admin",
        }
    }
}

/// One of a consumer's API keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerKey {
    pub digest: KeyDigest,
    /// Unix time (seconds) from which the key is refused.
    pub expires: Option<u64>,
    /// Shared with the requests that present the key (their ledger rows name it).
    pub label: Option<Arc<str>>,
}

impl ConsumerKey {
    /// Whether the key works at `now` (Unix seconds).
    pub fn valid_at(&self, now: u64) -> bool {
        self.expires.is_none_or(|e| now < e)
    }
}

/// A consumer's profile.
#[derive(Debug)]
pub struct Consumer {
    pub id: String,
    pub team: String,
    pub role: Role,
    /// Its API keys (`key_sha256` and the enabled entries of `keys`); none for a consumer known
    /// by its client certificate alone.
    pub keys: Vec<ConsumerKey>,
    /// The client certificate it must present (mutual TLS); boxed, as few consumers have one
    /// and every consumer's profile stays in memory.
    pub client_cert: Option<Box<CertBinding>>,
    pub daily_budget_micros: u64,
    /// Per UTC calendar month; `None` is no monthly cap.
    pub monthly_budget_micros: Option<u64>,
    /// Requests per minute; `None` is unlimited.
    pub requests_per_minute: Option<u64>,
    /// Its team's shared limits, when `teams:` lists its team.
    pub team_limits: Option<Arc<Team>>,
    /// Empty means every model.
    pub allowed_models: Vec<String>,
    /// Client addresses the key may be used from; empty means any.
    pub allowed_ips: CidrSet,
    pub tokens_per_minute: u64,
    pub tokens_per_hour: u64,
    pub tokens_per_day: u64,
    // The file's `description` is for the people reading it: not kept, 100,000 times over.
}

impl Consumer {
    /// A consumer of role `standard` presenting `key`, with every limit and the budget at their
    /// smallest (1) and every model allowed: a starting point for tests and benchmarks.
    pub fn basic(id: &str, team: &str, key: &[u8]) -> Consumer {
        Consumer {
            id: id.into(),
            team: team.into(),
            role: Role::Standard,
            keys: vec![ConsumerKey {
                digest: KeyDigest::of(key),
                expires: None,
                label: None,
            }],
            client_cert: None,
            daily_budget_micros: 1,
            monthly_budget_micros: None,
            requests_per_minute: None,
            team_limits: None,
            allowed_models: Vec::new(),
            allowed_ips: CidrSet::default(),
            tokens_per_minute: 1,
            tokens_per_hour: 1,
            tokens_per_day: 1,
        }
    }

    /// Whether the allowlist lets this consumer ask for `model`. `default` (the lab agent's model)
    /// is always allowed, as in the lab; an empty list allows every model.
    pub fn may_use(&self, model: &str) -> bool {
        model == "default"
            || self.allowed_models.is_empty()
            || self.allowed_models.iter().any(|m| m == model)
    }
}

/// What a consumer's client certificate must name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CertBinding {
    /// The subject, as `CN=bot, O=Corp`.
    Subject(String),
    /// A URI subject alternative name (a SPIFFE id).
    Uri(String),
}

impl CertBinding {
    /// Whether a verified certificate with this `subject` and these URI SANs is the one bound.
    pub fn matches(&self, subject: &str, uris: &[String]) -> bool {
        match self {
            CertBinding::Subject(s) => s == subject,
            CertBinding::Uri(u) => uris.iter().any(|x| x == u),
        }
    }
}

/// The wire protocol a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OpenAI chat completions (`/v1/chat/completions`), also vLLM, Ollama, Azure-compatible.
    OpenAi,
    /// The lab agent's `/chat` (`{"message","session_id"}` → `{"response"}`).
    LabAgent,
    /// The Anthropic Messages API (`/v1/messages`).
    Anthropic,
    /// Google's Generative Language API (`models/{model}:generateContent`,
    /// `:streamGenerateContent`).
    Gemini,
    /// AWS Bedrock Runtime's Converse API (`/model/{model}/converse`, `/converse-stream`),
    /// SigV4-signed.
    Bedrock,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::LabAgent => "lab-agent",
            Protocol::Anthropic => "anthropic",
            Protocol::Gemini => "gemini",
            Protocol::Bedrock => "bedrock",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CostTier {
    Low,
    Medium,
    High,
}

/// A backend's base URL, split for the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash (`""` or `/openai`).
    pub path_prefix: String,
}

impl BackendUrl {
    /// The `Host` header value.
    pub fn authority(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    pub fn parse(url: &str) -> Result<BackendUrl, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err("must start with http:// or https://".into());
        };
        if rest.contains(['?', '#']) {
            return Err("must not contain a query or fragment".into());
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err("must not carry credentials; use credential_env".into());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("unclosed `[` in host")?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err("garbage after IPv6 host".into()),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("has no host".into());
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| format!("bad port `{p}`"))?,
            None if tls => 443,
            None => 80,
        };
        if port == 0 {
            return Err("port 0 is not a backend".into());
        }
        Ok(BackendUrl {
            tls,
            host: host.to_string(),
            port,
            path_prefix: path.trim_end_matches('/').to_string(),
        })
    }
}

/// How an OpenAI-speaking backend wants to be addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// `Authorization: Bearer`, `/v1/chat/completions`.
    OpenAi,
    /// Azure OpenAI: `api-key` header,
    /// `/openai/deployments/{deployment}/chat/completions?api-version=…`.
    Azure {
        deployment: String,
        api_version: String,
    },
    /// Any OpenAI-compatible server (Ollama, vLLM, …): as OpenAI.
    Compatible,
}

/// One backend's effective timeouts.
#[derive(Debug, Clone, Copy)]
pub struct BackendTimeouts {
    pub connect: Duration,
    /// From the request sent to the answer's first byte.
    pub first_byte: Duration,
    /// Between reads once the answer flows.
    pub idle: Duration,
    /// The whole exchange, when set.
    pub total: Option<Duration>,
    /// Writing one chunk of the request (`server.timeouts.write_ms`).
    pub write: Duration,
    /// How long an idle connection stays in the pool (`server.timeouts.upstream_idle_ms`).
    pub pool_idle: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    Http { path: String, expected_status: u16 },
    Tcp,
}

/// An active health check.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
}

/// Failover, the circuit breaker and routing rules.
#[derive(Debug, Clone)]
pub struct RoutingConfig {
    pub max_attempts: u32,
    pub fallback_to_unusable: bool,
    pub circuit: CircuitConfig,
    pub rules: Vec<RouteRule>,
}

#[derive(Debug, Clone, Copy)]
pub struct CircuitConfig {
    pub failure_threshold: u32,
    pub window: Duration,
    pub open_for: Duration,
}

#[derive(Debug, Clone)]
pub struct RouteRule {
    pub name: String,
    pub when: RouteMatch,
    pub prefer: Want,
    pub require: Want,
}

/// Conditions on the consumer and the request; unset ones always hold.
#[derive(Debug, Clone, Default)]
pub struct RouteMatch {
    pub team: Option<String>,
    pub role: Option<Role>,
    pub consumer: Option<String>,
    pub model: Option<String>,
    pub estimated_tokens_over: Option<u64>,
}

/// Backend attributes a rule asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Want {
    pub cost_tier: Option<CostTier>,
    pub context_factor: Option<u64>,
}

/// A backend the gateway may route to.
#[derive(Debug)]
pub struct Backend {
    pub id: String,
    pub url: BackendUrl,
    pub protocol: Protocol,
    pub models: Vec<String>,
    pub priority: u32,
    pub weight: u32,
    pub max_context_tokens: u64,
    pub cost_tier: CostTier,
    /// Provider credential from `credential_env`.
    pub credential: Option<Secret>,
    /// Takes requests for the model `default`.
    pub default: bool,
    /// Public model name → this backend's model name.
    pub aliases: BTreeMap<String, String>,
    pub provider: Provider,
    /// A private CA for this backend's certificate (system roots otherwise).
    pub ca: Option<Arc<[WrappedX509]>>,
    pub timeouts: BackendTimeouts,
    pub health_check: Option<HealthCheck>,
    /// `anthropic-version` sent to `anthropic` backends.
    pub anthropic_version: String,
    /// Client headers forwarded beyond the gateway's own list (lower-case names; a trailing
    /// `*` matches a prefix).
    pub forward_headers: Vec<String>,
    /// SigV4 signing (`bedrock` backends).
    pub aws: Option<AwsAuth>,
    /// Fields a translated request may lose for this backend instead of being refused.
    pub drop_unsupported: Vec<String>,
}

/// A `bedrock` backend's SigV4 signing: region and credentials (`Debug` shows no secret).
#[derive(Debug, Clone)]
pub struct AwsAuth {
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

impl Backend {
    /// A plain backend with default settings (plain HTTP to 127.0.0.1:9100, no credential,
    /// no health check): a starting point for tests and benchmarks.
    pub fn basic(
        id: &str,
        protocol: Protocol,
        models: &[&str],
        priority: u32,
        weight: u32,
    ) -> Backend {
        Backend {
            id: id.into(),
            url: BackendUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 9100,
                path_prefix: String::new(),
            },
            protocol,
            models: models.iter().map(|m| m.to_string()).collect(),
            priority,
            weight,
            max_context_tokens: 128_000,
            cost_tier: CostTier::Medium,
            credential: None,
            default: false,
            aliases: BTreeMap::new(),
            provider: Provider::OpenAi,
            ca: None,
            timeouts: BackendTimeouts {
                connect: Duration::from_secs(2),
                first_byte: Duration::from_secs(120),
                idle: Duration::from_secs(120),
                total: None,
                write: Duration::from_secs(30),
                pool_idle: Duration::from_secs(60),
            },
            health_check: None,
            anthropic_version: "2023-06-01".into(),
            forward_headers: Vec::new(),
            aws: None,
            drop_unsupported: Vec::new(),
        }
    }

    /// Whether the client's header `name` (lower case) is forwarded to this backend beyond the
    /// gateway's own list.
    pub fn forwards(&self, name: &str) -> bool {
        self.forward_headers
            .iter()
            .any(|p| header_pattern_matches(p, name))
    }

    pub fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|m| m == model)
            || self.aliases.contains_key(model)
            || (self.default && model == "default")
    }

    /// The model name this backend knows `model` by, when it differs.
    pub fn renamed(&self, model: &str) -> Option<&str> {
        self.aliases.get(model).map(String::as_str)
    }
}

/// Whether a `forward_headers` entry (a lower-case name, or a prefix ending in `*`) matches the
/// lower-case header `name`.
pub fn header_pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Integer price of a model, micro-dollars per million tokens. Prompt-cache reads and writes
/// and reasoning tokens have their own prices where the pricing table gives them; otherwise
/// they cost what any prompt (or output) token costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Price {
    pub input_micros_per_million: u64,
    pub output_micros_per_million: u64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cached_input_micros_per_million: Option<u64>,
    /// Prompt tokens written to the provider's prompt cache (Anthropic, Bedrock).
    pub cache_write_micros_per_million: Option<u64>,
    /// Reasoning (thought) tokens, which are output tokens.
    pub reasoning_micros_per_million: Option<u64>,
}

impl Price {
    /// A price with plain input and output rates only.
    #[cfg(test)]
    pub fn flat(input_micros_per_million: u64, output_micros_per_million: u64) -> Price {
        Price {
            input_micros_per_million,
            output_micros_per_million,
            ..Price::default()
        }
    }

    /// A prompt token read from the provider's cache: its own rate, else the input rate.
    pub fn cached_rate(&self) -> u64 {
        self.cached_input_micros_per_million
            .unwrap_or(self.input_micros_per_million)
    }

    /// A prompt token written to the provider's cache: its own rate, else the input rate.
    pub fn cache_write_rate(&self) -> u64 {
        self.cache_write_micros_per_million
            .unwrap_or(self.input_micros_per_million)
    }

    /// A reasoning token: its own rate, else the output rate.
    pub fn reasoning_rate(&self) -> u64 {
        self.reasoning_micros_per_million
            .unwrap_or(self.output_micros_per_million)
    }

    /// The most one prompt token may cost (whether read from or written to a cache).
    pub fn prompt_bound(&self) -> u64 {
        self.input_micros_per_million
            .max(self.cached_rate())
            .max(self.cache_write_rate())
    }

    /// The most one output token may cost (reasoning included).
    pub fn output_bound(&self) -> u64 {
        self.output_micros_per_million.max(self.reasoning_rate())
    }

    /// Each component at the higher of the two prices (an unset rate compared as the plain one
    /// it stands for).
    pub fn max(self, other: Price) -> Price {
        let either = |a: Option<u64>, b: Option<u64>, rate: fn(&Price) -> u64| {
            (a.is_some() || b.is_some()).then(|| rate(&self).max(rate(&other)))
        };
        Price {
            input_micros_per_million: self
                .input_micros_per_million
                .max(other.input_micros_per_million),
            output_micros_per_million: self
                .output_micros_per_million
                .max(other.output_micros_per_million),
            cached_input_micros_per_million: either(
                self.cached_input_micros_per_million,
                other.cached_input_micros_per_million,
                Price::cached_rate,
            ),
            cache_write_micros_per_million: either(
                self.cache_write_micros_per_million,
                other.cache_write_micros_per_million,
                Price::cache_write_rate,
            ),
            reasoning_micros_per_million: either(
                self.reasoning_micros_per_million,
                other.reasoning_micros_per_million,
                Price::reasoning_rate,
            ),
        }
    }
}
