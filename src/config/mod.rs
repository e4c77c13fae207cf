//! Configuration: the YAML file ([`file`]), its key check ([`schema`]) and the validated runtime
//! form ([`build`]) that the gateway runs on. The bottom layer: it imports nothing of the
//! gateway's but [`crate::digest`]; what is compiled from it (the content filter's matcher, the
//! key index) is built above it, in `runtime`.
//!
//! Loading never panics: every problem found is returned with its YAML path, so `tollgate check`
//! and a reload can show them all at once.

pub mod backend;
pub mod budgets;
pub mod build;
pub mod cidr;
pub mod consumers;
pub mod file;
pub mod filter;
pub mod money;
pub mod schema;
pub mod screen;
pub mod tls;
pub mod tracing;
pub mod typed;
pub mod types;

pub use tracing::{TraceProtocol, TracingConfig};
pub use types::{
    AdminConfig, AlertsConfig, AwsAuth, Backend, BackendTimeouts, BackendUrl, CacheConfig,
    CacheScope, CheckKind, CircuitConfig, Config, Consumer, ConsumerKey, CostTier, FilterConfig,
    HealthCheck, KeysConfig, LogDestination, OutputCaps, Price, Protocol, Provider, Role,
    RouteMatch, RouteRule, RoutingConfig, ServerConfig, StateConfig, Team, Timeouts, Want, Webhook,
};

use std::fmt;
use std::path::Path;

/// One thing wrong with a configuration, at a YAML path such as `consumers[2].key_sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// What a reload cannot apply: the settings of `new` that differ from `old` and take effect
/// only when the process starts (listeners, threads, the grace period, the state store, the
/// access log, tracing), each with its path.
pub fn restart_only_changes(old: &Config, new: &Config) -> Vec<Problem> {
    let (o, n) = (&old.server, &new.server);
    let (os, ns) = (&old.state, &new.state);
    let changed = [
        ("server.listen", o.listen != n.listen),
        ("server.threads", o.threads != n.threads),
        ("server.admin.listen", o.admin.listen != n.admin.listen),
        // A certificate reloads (new handshakes present the new one); whether a listener speaks
        // TLS, what it offers and what it asks of clients are fixed when it starts.
        ("server.tls", o.tls.is_some() != n.tls.is_some()),
        (
            "server.tls.client_ca_file",
            client_auth(&o.tls) != client_auth(&n.tls),
        ),
        (
            "server.admin.tls",
            o.admin.tls.is_some() != n.admin.tls.is_some(),
        ),
        (
            "server.admin.tls.client_ca_file",
            client_auth(&o.admin.tls) != client_auth(&n.admin.tls),
        ),
        ("server.http2", o.http2 != n.http2),
        ("server.h2c", o.h2c != n.h2c),
        (
            "server.proxy_protocol",
            o.proxy_protocol != n.proxy_protocol,
        ),
        (
            "server.grace_period_seconds",
            o.grace_period_seconds != n.grace_period_seconds,
        ),
        ("state.database", os.database != ns.database),
        ("state.ledger", os.ledger != ns.ledger),
        ("state.durability", os.durability != ns.durability),
        ("state.backend", os.shared.is_some() != ns.shared.is_some()),
        (
            "state (Redis settings)",
            os.shared.is_some() && ns.shared.is_some() && os.shared != ns.shared,
        ),
        ("access_log.to", old.access_log != new.access_log),
        (
            "access_log.queue",
            old.access_log_queue != new.access_log_queue,
        ),
        // The exporter, its queue and the sampler are built once, when the gateway starts.
        ("tracing", old.tracing != new.tracing),
    ];
    changed
        .into_iter()
        .filter(|(_, c)| *c)
        .map(|(path, _)| {
            Problem::new(
                path,
                "changed, but takes effect only when the gateway restarts; the running value stays",
            )
        })
        .collect()
}

/// Keeps in `new` the running values of the settings its listeners fixed when they started and
/// still read: whether each speaks TLS and what it asks of clients, HTTP/2, h2c and the PROXY
/// protocol. (`restart_only_changes` reports them.) A reload that drops `server.tls` must not
/// leave a TLS listener with no certificate to present; one that changes the certificate does
/// reach new handshakes.
pub fn keep_running(old: &Config, new: &mut Config) {
    let (o, n) = (&old.server, &mut new.server);
    for (old_tls, new_tls) in [(&o.tls, &mut n.tls), (&o.admin.tls, &mut n.admin.tls)] {
        match (old_tls, new_tls.as_mut()) {
            (Some(running), Some(next)) => next.clients = running.clients.clone(),
            (running, _) => *new_tls = running.clone(),
        }
    }
    n.http2 = o.http2;
    n.h2c = o.h2c;
    n.proxy_protocol = o.proxy_protocol;
}

/// A listener's client-certificate settings: the CA file and whether a certificate is required.
fn client_auth(tls: &Option<tls::ServerTls>) -> Option<(&str, bool)> {
    let c = tls.as_ref()?.clients.as_ref()?;
    Some((c.ca_file.as_str(), c.required))
}

/// Largest configuration file read; anything bigger is a mistake or an attack.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads, parses and validates a configuration file.
pub fn load_file(path: &Path) -> Result<Config, Vec<Problem>> {
    load_file_versioned(path).map(|(c, _)| c)
}

/// As [`load_file`], also returning the file's version: the first 12 hex digits of its SHA-256.
pub fn load_file_versioned(path: &Path) -> Result<(Config, String), Vec<Problem>> {
    let meta = std::fs::metadata(path).map_err(|e| {
        vec![Problem::new(
            "",
            format!("cannot read {}: {e}", path.display()),
        )]
    })?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(vec![Problem::new(
            "",
            format!("{} is larger than {MAX_FILE_BYTES} bytes", path.display()),
        )]);
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem::new(
            "",
            format!("cannot read {}: {e}", path.display()),
        )]
    })?;
    let version = version_of(&text);
    load_str(&text, &|name| std::env::var(name).ok()).map(|c| (c, version))
}

/// A configuration's version: the first 12 hex digits of its text's SHA-256.
pub fn version_of(text: &str) -> String {
    crate::digest::sha256_hex(text.as_bytes())[..12].to_string()
}

/// Parses and validates configuration text; `env` looks up environment variables.
/// Loads `path` with a content-filter rule pack applied: a YAML file with `replaces` (rule ids
/// to drop) and `rules` (rule items to add, in the `content_filter.rules` schema). For measuring
/// a pack with `tollgate eval-filter --rules`; the gateway itself reads one file.
pub fn load_file_with_rule_pack(path: &Path, pack: &Path) -> Result<Config, Vec<Problem>> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| {
            vec![Problem::new(
                "",
                format!("cannot read {}: {e}", p.display()),
            )]
        })
    };
    let yaml = |text: &str, p: &Path| {
        serde_yaml::from_str::<serde_yaml::Value>(text)
            .map_err(|e| vec![Problem::new("", format!("{}: {e}", p.display()))])
    };
    let mut config = yaml(&read(path)?, path)?;
    let pack_value = yaml(&read(pack)?, pack)?;
    let replaces: Vec<&str> = match pack_value.get("replaces") {
        None => Vec::new(),
        Some(v) => v
            .as_sequence()
            .and_then(|s| s.iter().map(|v| v.as_str()).collect::<Option<Vec<_>>>())
            .ok_or_else(|| {
                vec![Problem::new(
                    "replaces",
                    format!("{}: `replaces` must be a list of rule ids", pack.display()),
                )]
            })?,
    };
    let added = pack_value
        .get("rules")
        .and_then(|v| v.as_sequence())
        .cloned()
        .ok_or_else(|| {
            vec![Problem::new(
                "rules",
                format!("{}: no `rules` list", pack.display()),
            )]
        })?;
    let rules = config
        .get_mut("content_filter")
        .and_then(|f| f.get_mut("rules"))
        .and_then(|r| r.as_sequence_mut())
        .ok_or_else(|| vec![Problem::new("content_filter.rules", "missing")])?;
    let id_of = |r: &serde_yaml::Value| r.get("id").and_then(|v| v.as_str()).map(str::to_string);
    let present: Vec<String> = rules.iter().filter_map(id_of).collect();
    let missing: Vec<Problem> = replaces
        .iter()
        .filter(|id| !present.iter().any(|p| p == *id))
        .map(|id| {
            Problem::new(
                "replaces",
                format!("{}: no rule `{id}` to replace", pack.display()),
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    rules.retain(|r| !id_of(r).is_some_and(|id| replaces.contains(&id.as_str())));
    rules.extend(added);
    let text = serde_yaml::to_string(&config)
        .map_err(|e| vec![Problem::new("", format!("cannot merge the rule pack: {e}"))])?;
    load_str(&text, &|name| std::env::var(name).ok())
}

pub fn load_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Vec<Problem>> {
    // The typed parse first: no value tree, each consumer built as it is read.
    if let Some(file) = typed::parse::<consumers::BuiltConsumers>(text) {
        let mut problems = Vec::new();
        if let Some(c) = build::build(schema::Parsed::from_file(file), env, &mut problems) {
            if problems.is_empty() {
                return Ok(c);
            }
        }
        // A problem: the value-tree pass names every one, in its order, as it always has.
    }
    let mut problems = Vec::new();
    let parsed = schema::parse(text, &mut problems);
    let config = parsed.and_then(|f| build::build(f, env, &mut problems));
    match config {
        Some(c) if problems.is_empty() => Ok(c),
        _ => Err(problems),
    }
}
