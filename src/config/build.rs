//! Building the runtime form ([`super::types`]) from the parsed file, with every problem reported
//! at its YAML path.

use super::backend;
use super::consumers::{build_consumer, key_digests, Consumers};
use super::file::{BackendSection, CacheSection, ServerSection};
use super::money::parse_usd;
use super::schema::Parsed;
use super::types::Durability;
use super::types::*;
use super::Problem;
use crate::digest::KeyDigest;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Longest duration any setting may hold. Longer is a mistake, and instants computed from it
/// (a cache entry's expiry, a deadline) would overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// `value` in `unit`s (`1` for seconds, `1_000` for milliseconds) as a duration, or a problem at
/// `path` when it is longer than [`MAX_DURATION`] (which then stands in).
pub(super) fn duration(
    value: u64,
    per_second: u64,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Duration {
    let d = match per_second {
        1 => Duration::from_secs(value),
        _ => Duration::from_millis(value),
    };
    if d > MAX_DURATION {
        problems.push(Problem::new(path, "must be at most 30 days"));
        return MAX_DURATION;
    }
    d
}

/// Builds the runtime configuration, pushing every problem found.
pub fn build(
    file: Parsed,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Config> {
    let server = build_server(&file.server, env, problems);
    let server_timeouts = server.as_ref().map(|s| s.timeouts);
    let teams = super::budgets::build_teams(&file.teams, problems);
    // Sections (the value-tree pass) are built here, in order, each problem named; the typed
    // parse has built its consumers as it read them, and had none.
    let (sections, mut consumers, built_digests) = match file.consumers {
        Consumers::Sections(sections) => {
            let built: Vec<Arc<Consumer>> = sections
                .iter()
                .filter_map(|(i, c)| build_consumer(c, *i, problems))
                .map(Arc::new)
                .collect();
            (Some(sections), built, None)
        }
        Consumers::Built(b) => (None, b.consumers, Some(b.digests)),
    };
    for c in &mut consumers {
        if let (Some(limits), Some(c)) = (teams.get(&c.team), Arc::get_mut(c)) {
            c.team_limits = Some(Arc::clone(limits));
        }
    }
    // A team with limits that no consumer names is a misspelt team whose limits bind nobody.
    let named: HashSet<&str> = match (&sections, teams.is_empty()) {
        (_, true) => HashSet::new(),
        (Some(s), false) => s.iter().map(|(_, c)| c.team.as_str()).collect(),
        (None, false) => consumers.iter().map(|c| c.team.as_str()).collect(),
    };
    for (name, t) in &teams {
        let limited = t.daily_budget_micros.is_some()
            || t.monthly_budget_micros.is_some()
            || t.requests_per_minute.is_some();
        if limited && !named.contains(name.as_str()) {
            problems.push(Problem::new(
                format!("teams.{name}"),
                "no consumer has this team (team names are case-sensitive)",
            ));
        }
    }
    // A certificate that identifies a consumer without a key must name only one.
    let mut certificates = HashSet::new();
    for (i, c) in consumers.iter().enumerate() {
        if c.keys.is_empty() && !certificates.insert(&c.client_cert) {
            problems.push(Problem::new(
                format!("consumers[{i}].client_cert"),
                format!(
                    "consumer {} has the same certificate as another consumer without a key",
                    c.id
                ),
            ));
        }
    }
    let backends: Vec<Arc<Backend>> = file
        .backends
        .iter()
        .filter_map(|(i, b)| {
            backend::build_backend(
                b,
                &format!("backends[{i}]"),
                server_timeouts.as_ref(),
                env,
                problems,
            )
        })
        .map(Arc::new)
        .collect();

    match &sections {
        Some(s) => check_unique(
            s.iter().map(|(i, c)| (*i, c.id.as_str())),
            "consumers",
            problems,
        ),
        None => check_unique(
            consumers
                .iter()
                .enumerate()
                .map(|(i, c)| (i, c.id.as_str())),
            "consumers",
            problems,
        ),
    }
    check_unique(
        file.backends.iter().map(|(i, b)| (*i, b.id.as_str())),
        "backends",
        problems,
    );
    let digests = match (built_digests, &sections) {
        (Some(d), _) => d,
        (None, Some(s)) => key_digests(s, problems),
        (None, None) => HashMap::new(),
    };
    if let Some(server) = &server {
        if let Some(i) = digests.get(&server.admin.token) {
            problems.push(Problem::new(
                "server.admin",
                format!("the admin token must differ from consumers[{i}]'s key"),
            ));
        }
    }
    check_weights(&file.backends, problems);

    let mut pricing = BTreeMap::new();
    for (model, p) in &file.pricing {
        let path = format!("pricing.{model}");
        let input = parse_usd(&p.input_per_million_usd)
            .map_err(|e| problems.push(Problem::new(format!("{path}.input_per_million_usd"), e)));
        let output = parse_usd(&p.output_per_million_usd)
            .map_err(|e| problems.push(Problem::new(format!("{path}.output_per_million_usd"), e)));
        let mut optional = |name: &str, v: &Option<serde_yaml::Value>| match v {
            None => Ok(None),
            Some(v) => parse_usd(v)
                .map(Some)
                .map_err(|e| problems.push(Problem::new(format!("{path}.{name}"), e))),
        };
        let cached = optional(
            "cached_input_per_million_usd",
            &p.cached_input_per_million_usd,
        );
        let write = optional(
            "cache_write_per_million_usd",
            &p.cache_write_per_million_usd,
        );
        let reasoning = optional("reasoning_per_million_usd", &p.reasoning_per_million_usd);
        if let (Ok(i), Ok(o), Ok(cached), Ok(write), Ok(reasoning)) =
            (input, output, cached, write, reasoning)
        {
            pricing.insert(
                model.clone(),
                Price {
                    input_micros_per_million: i,
                    output_micros_per_million: o,
                    cached_input_micros_per_million: cached,
                    cache_write_micros_per_million: write,
                    reasoning_micros_per_million: reasoning,
                },
            );
        }
    }

    if !pricing.contains_key("default") && !file.pricing.contains_key("default") {
        problems.push(Problem::new(
            "pricing.default",
            "a `default` price is required: it prices every model not listed",
        ));
    }

    let mut per_model = BTreeMap::new();
    let mut default_cap = OutputCaps::BUILT_IN_DEFAULT;
    for (model, cap) in &file.max_output_tokens {
        if *cap == 0 {
            problems.push(Problem::new(
                format!("max_output_tokens.{model}"),
                "must be greater than 0",
            ));
        } else if model == "default" {
            default_cap = *cap;
        } else {
            per_model.insert(model.clone(), *cap);
        }
    }

    let filter = super::filter::build(&file.content_filter, &file.rules, env, problems);
    let cache = build_cache(&file.cache, problems);
    if file.state.database.trim().is_empty() {
        problems.push(Problem::new("state.database", "must not be empty"));
    }
    let durability = match file.state.durability.as_str() {
        "process" => Durability::Process,
        "machine" => Durability::Machine,
        _ => {
            problems.push(Problem::new(
                "state.durability",
                "must be `process` or `machine`",
            ));
            Durability::Process
        }
    };

    Some(Config {
        server: server?,
        consumers,
        backends,
        pricing,
        output_caps: OutputCaps {
            per_model,
            default: default_cap,
        },
        filter: filter?,
        cache: cache?,
        state: StateConfig {
            database: PathBuf::from(&file.state.database),
            ledger: file.state.ledger,
            durability,
            shared: shared_state(&file.state, env, problems),
        },
        routing: backend::routing(&file.routing, problems),
        access_log: match file.access_log.to.trim() {
            "stdout" => LogDestination::Stdout,
            "off" => LogDestination::Off,
            "" => {
                problems.push(Problem::new(
                    "access_log.to",
                    "must be stdout, off or a file path",
                ));
                LogDestination::Off
            }
            path => LogDestination::File(PathBuf::from(path)),
        },
        access_log_queue: file.access_log.queue.max(1),
        tracing: super::tracing::build(&file.tracing, env, problems),
        keys: keys_config(&file.keys, problems),
        teams,
        alerts: Arc::new(super::budgets::build_alerts(&file.alerts, problems)),
    })
}

fn keys_config(k: &super::file::KeysSection, problems: &mut Vec<Problem>) -> KeysConfig {
    if k.rotation_overlap_seconds > KeysConfig::MAX_OVERLAP_SECONDS {
        problems.push(Problem::new(
            "keys.rotation_overlap_seconds",
            format!(
                "must be at most {} (30 days)",
                KeysConfig::MAX_OVERLAP_SECONDS
            ),
        ));
    }
    KeysConfig {
        rotation_overlap_seconds: k
            .rotation_overlap_seconds
            .min(KeysConfig::MAX_OVERLAP_SECONDS),
    }
}

fn build_cache(c: &CacheSection, problems: &mut Vec<Problem>) -> Option<CacheConfig> {
    let before = problems.len();
    let scope = match c.scope.as_str() {
        "consumer" => Some(CacheScope::Consumer),
        "team" => Some(CacheScope::Team),
        "global" => Some(CacheScope::Global),
        other => {
            problems.push(Problem::new(
                "cache.scope",
                format!("`{other}` is not one of consumer, team, global"),
            ));
            None
        }
    };
    for (name, v) in [
        ("ttl_seconds", c.ttl_seconds as usize),
        ("max_entries", c.max_entries),
        ("max_bytes", c.max_bytes),
        ("max_entry_bytes", c.max_entry_bytes),
    ] {
        if v == 0 {
            problems.push(Problem::new(
                format!("cache.{name}"),
                "must be greater than 0",
            ));
        }
    }
    if c.max_entry_bytes > c.max_bytes {
        problems.push(Problem::new(
            "cache.max_entry_bytes",
            "must not exceed cache.max_bytes",
        ));
    }
    if problems.len() != before {
        return None;
    }
    Some(CacheConfig {
        enabled: c.enabled,
        scope: scope?,
        ttl: duration(c.ttl_seconds, 1, "cache.ttl_seconds", problems),
        max_entries: c.max_entries,
        max_bytes: c.max_bytes,
        max_entry_bytes: c.max_entry_bytes,
    })
}

fn build_server(
    s: &ServerSection,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<ServerConfig> {
    let listen = parse_addr(&s.listen, "server.listen", problems);
    let admin_listen = parse_addr(&s.admin.listen, "server.admin.listen", problems);
    if let (Some(a), Some(b)) = (listen, admin_listen) {
        if a == b {
            problems.push(Problem::new(
                "server.admin.listen",
                "must differ from server.listen",
            ));
        }
    }
    if s.threads == 0 || s.threads > 1024 {
        problems.push(Problem::new("server.threads", "must be between 1 and 1024"));
    }
    const MAX_BODY: u64 = 1 << 30;
    for (path, v) in [
        ("server.max_body_bytes", s.max_body_bytes),
        ("server.max_response_bytes", s.max_response_bytes),
    ] {
        if v == 0 || v > MAX_BODY {
            problems.push(Problem::new(
                path,
                format!("must be between 1 and {MAX_BODY}"),
            ));
        }
    }
    if s.max_in_flight == 0 || s.max_in_flight > 1_000_000 {
        problems.push(Problem::new(
            "server.max_in_flight",
            "must be between 1 and 1000000",
        ));
    }
    if s.max_idle_connections == 0 || s.max_idle_connections > 1_000_000 {
        problems.push(Problem::new(
            "server.max_idle_connections",
            "must be between 1 and 1000000",
        ));
    }
    if s.max_choices == 0 || s.max_choices > 128 {
        problems.push(Problem::new(
            "server.max_choices",
            "must be between 1 and 128",
        ));
    }
    let t = &s.timeouts;
    for (name, v) in [
        ("connect_ms", t.connect_ms),
        ("read_ms", t.read_ms),
        ("write_ms", t.write_ms),
        ("client_header_ms", t.client_header_ms),
        ("client_body_ms", t.client_body_ms),
        ("client_body_total_ms", t.client_body_total_ms),
        ("upstream_idle_ms", t.upstream_idle_ms),
    ] {
        if v == 0 {
            problems.push(Problem::new(
                format!("server.timeouts.{name}"),
                "must be greater than 0",
            ));
        }
    }
    let token = match (&s.admin.token_sha256, &s.admin.token_env) {
        (Some(hex), None) => KeyDigest::from_hex(hex).or_else(|| {
            problems.push(Problem::new(
                "server.admin.token_sha256",
                "must be 64 hexadecimal characters (see `tollgate hash-key`)",
            ));
            None
        }),
        (None, Some(var)) => match env(var) {
            Some(v) if v.len() >= 16 => Some(KeyDigest::of(v.as_bytes())),
            Some(_) => {
                problems.push(Problem::new(
                    "server.admin.token_env",
                    format!("the token in ${var} must be at least 16 characters"),
                ));
                None
            }
            None => {
                problems.push(Problem::new(
                    "server.admin.token_env",
                    format!("environment variable {var} is not set"),
                ));
                None
            }
        },
        (Some(_), Some(_)) => {
            problems.push(Problem::new(
                "server.admin",
                "set token_sha256 or token_env, not both",
            ));
            None
        }
        (None, None) => {
            problems.push(Problem::new(
                "server.admin",
                "an admin token is required: set token_sha256 or token_env",
            ));
            None
        }
    };
    let mut ms =
        |name: &str, v: u64| duration(v, 1_000, &format!("server.timeouts.{name}"), problems);
    let timeouts = Timeouts {
        connect: ms("connect_ms", t.connect_ms),
        read: ms("read_ms", t.read_ms),
        write: ms("write_ms", t.write_ms),
        client_header: ms("client_header_ms", t.client_header_ms),
        client_body: ms("client_body_ms", t.client_body_ms),
        client_body_total: ms("client_body_total_ms", t.client_body_total_ms),
        upstream_idle: ms("upstream_idle_ms", t.upstream_idle_ms),
    };
    duration(
        s.grace_period_seconds,
        1,
        "server.grace_period_seconds",
        problems,
    );
    let tls = s
        .tls
        .as_ref()
        .map(|t| super::tls::build(t, "server.tls", problems));
    let admin_tls =
        (s.admin.tls.as_ref()).map(|t| super::tls::build(t, "server.admin.tls", problems));
    if s.h2c && s.tls.is_some() {
        problems.push(Problem::new(
            "server.h2c",
            "is for a plain listener; with tls, HTTP/2 is offered by ALPN (server.http2)",
        ));
    }
    let trusted_proxies =
        super::cidr::parse_list(&s.trusted_proxies, "server.trusted_proxies", problems);
    let deny_ips = super::cidr::parse_list(&s.deny_ips, "server.deny_ips", problems);
    if s.proxy_protocol && trusted_proxies.is_empty() {
        problems.push(Problem::new(
            "server.proxy_protocol",
            "needs server.trusted_proxies: a PROXY header is read only from a trusted peer",
        ));
    }
    Some(ServerConfig {
        listen: listen?,
        threads: s.threads,
        max_body_bytes: usize::try_from(s.max_body_bytes).ok()?,
        max_choices: s.max_choices,
        max_in_flight: usize::try_from(s.max_in_flight).unwrap_or(usize::MAX),
        max_idle_connections: usize::try_from(s.max_idle_connections).unwrap_or(usize::MAX),
        max_response_bytes: usize::try_from(s.max_response_bytes).ok()?,
        grace_period_seconds: s.grace_period_seconds,
        timeouts,
        admin: AdminConfig {
            listen: admin_listen?,
            token: token?,
            tls: loaded(admin_tls)?,
        },
        lab_endpoints: s.lab_endpoints,
        tls: loaded(tls)?,
        http2: s.http2,
        h2c: s.h2c,
        trusted_proxies,
        proxy_protocol: s.proxy_protocol,
        deny_ips,
        forward_client_address: s.forward_client_address,
    })
}

/// An optional section that was loaded: `None` when it was given and failed (its problems are
/// reported), else what it holds.
fn loaded<T>(section: Option<Option<T>>) -> Option<Option<T>> {
    match section {
        Some(None) => None,
        s => Some(s.flatten()),
    }
}

/// Unix seconds of a UTC date (`2027-01-31`, its first second) or time (`2027-01-31T12:00:00Z`);
/// `None` for anything else, a day the month does not have included (`2027-02-31`).
pub fn utc_seconds(text: &str) -> Option<u64> {
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (text, None),
    };
    let mut d = date.splitn(3, '-').map(|p| p.parse::<u32>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in_month = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=days_in_month).contains(&day)
    {
        return None;
    }
    let (hh, mm, ss) = match time {
        None => (0, 0, 0),
        Some(t) => {
            let mut p = t.splitn(3, ':').map(|p| p.parse::<u64>().ok());
            let v = (p.next()??, p.next()??, p.next()??);
            if v.0 > 23 || v.1 > 59 || v.2 > 59 {
                return None;
            }
            v
        }
    };
    // Days from 1970-01-01 to the date (Howard Hinnant's days_from_civil).
    let (y, m) = (i64::from(y) - i64::from(m <= 2), i64::from(m));
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(days * 86_400 + hh * 3_600 + mm * 60 + ss)
}

/// Every model must have some backend with a non-zero weight, or it could never be served.
fn check_weights(backends: &[(usize, BackendSection)], problems: &mut Vec<Problem>) {
    let mut models: BTreeMap<&str, bool> = BTreeMap::new();
    for (_, b) in backends {
        for m in &b.models {
            *models.entry(m.as_str()).or_insert(false) |= b.weight > 0;
        }
    }
    for (model, any_weight) in models {
        if !any_weight {
            problems.push(Problem::new(
                "backends",
                format!("every backend serving `{model}` has weight 0; at least one must be > 0"),
            ));
        }
    }
}

pub(super) fn check_id(id: &str, path: &str, problems: &mut Vec<Problem>) {
    if !valid_id(id) {
        problems.push(Problem::new(
            path,
            "must be 1–64 characters of letters, digits, `-`, `_` or `.`",
        ));
    }
}

/// 1–64 letters, digits, `-`, `_` or `.`.
pub(super) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_unique<'a>(
    ids: impl Iterator<Item = (usize, &'a str)>,
    section: &str,
    problems: &mut Vec<Problem>,
) {
    let mut seen = HashSet::new();
    for (i, id) in ids {
        if !seen.insert(id) {
            problems.push(Problem::new(
                format!("{section}[{i}].id"),
                format!("`{id}` is used twice"),
            ));
        }
    }
}

fn parse_addr(s: &str, path: &str, problems: &mut Vec<Problem>) -> Option<SocketAddr> {
    s.parse()
        .map_err(|_| {
            problems.push(Problem::new(
                path,
                format!("`{s}` is not an ip:port address"),
            ))
        })
        .ok()
}

#[cfg(test)]
mod tests;

/// `state.backend` and its Redis settings.
fn shared_state(
    s: &crate::config::file::StateSection,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<crate::config::types::SharedStateConfig> {
    match s.backend.as_str() {
        "memory" => return None,
        "redis" => {}
        other => {
            problems.push(Problem::new(
                "state.backend",
                format!("`{other}` is not one of memory, redis"),
            ));
            return None;
        }
    }
    let mode = |path: &str, v: &str, problems: &mut Vec<Problem>| match v {
        "closed" => false,
        "open" => true,
        other => {
            problems.push(Problem::new(
                path,
                format!("`{other}` is not one of closed, open"),
            ));
            false
        }
    };
    // Checked first, so every problem of the section is reported at once.
    let limits_fail_open = mode("state.limits_on_error", &s.limits_on_error, problems);
    let budget_fail_open = mode("state.budget_on_error", &s.budget_on_error, problems);
    if s.redis_timeout_ms == 0 {
        problems.push(Problem::new(
            "state.redis_timeout_ms",
            "must be greater than 0",
        ));
    }
    let url = match (&s.redis_url, &s.redis_url_env) {
        (Some(u), None) => Some(u.clone()),
        (None, Some(var)) => env(var).or_else(|| {
            problems.push(Problem::new(
                "state.redis_url_env",
                format!("environment variable {var} is not set"),
            ));
            None
        }),
        (Some(_), Some(_)) => {
            problems.push(Problem::new(
                "state",
                "set redis_url or redis_url_env, not both",
            ));
            None
        }
        (None, None) => {
            problems.push(Problem::new(
                "state",
                "backend: redis needs redis_url or redis_url_env",
            ));
            None
        }
    }?;
    if redis::Client::open(url.as_str()).is_err() {
        // The URL is not repeated: it may carry a password.
        problems.push(Problem::new(
            if s.redis_url.is_some() {
                "state.redis_url"
            } else {
                "state.redis_url_env"
            },
            "not a Redis URL (redis://host:port/db or rediss://…)",
        ));
        return None;
    }
    Some(crate::config::types::SharedStateConfig {
        url,
        key_prefix: s.key_prefix.clone(),
        timeout: duration(
            s.redis_timeout_ms.max(1),
            1_000,
            "state.redis_timeout_ms",
            problems,
        ),
        cache: s.shared_cache,
        limits_fail_open,
        budget_fail_open,
    })
}
