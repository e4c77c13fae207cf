//! First pass over the YAML tree: every unknown key anywhere is reported with its path (serde
//! alone stops at the first one), then each section item is deserialized on its own so one bad
//! item does not hide the problems of the next. The typed parse ([`super::typed`]) reads a file
//! it can vouch for without the tree, into the same [`Parsed`] (see [`Parsed::from_file`]);
//! this pass reads every other file and names the problems of any file that has some.

use super::consumers::Consumers;
use super::file::{
    AccessLogSection, AlertsSection, BackendSection, CacheSection, ConsumerSection, FileConfig,
    FilterSection, KeysSection, PriceSection, RoutingSection, RuleSection, ServerSection,
    StateSection, TeamSection, TracingSection,
};
use super::Problem;
use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;

pub(crate) const TOP_KEYS: &[&str] = &[
    "server",
    "consumers",
    "backends",
    "pricing",
    "max_output_tokens",
    "content_filter",
    "cache",
    "state",
    "routing",
    "access_log",
    "tracing",
    "keys",
    "teams",
    "alerts",
];
pub(crate) const KEYS_SECTION_KEYS: &[&str] = &["rotation_overlap_seconds"];
pub(crate) const TEAM_KEYS: &[&str] = &[
    "daily_budget_usd",
    "monthly_budget_usd",
    "requests_per_minute",
];
pub(crate) const ALERTS_KEYS: &[&str] = &["thresholds", "webhook"];
pub(crate) const WEBHOOK_KEYS: &[&str] = &["url", "timeout_ms"];
pub(crate) const ACCESS_LOG_KEYS: &[&str] = &["to", "queue"];
pub(crate) const TRACING_KEYS: &[&str] = &[
    "enabled",
    "endpoint",
    "protocol",
    "sample_ratio",
    "service_name",
    "queue",
    "export_timeout_ms",
    "headers",
    "headers_env",
];
pub(crate) const ROUTING_KEYS: &[&str] = &[
    "max_attempts",
    "fallback_to_unusable",
    "circuit_breaker",
    "rules",
];
pub(crate) const CIRCUIT_KEYS: &[&str] = &["failure_threshold", "window_seconds", "open_seconds"];
pub(crate) const ROUTE_RULE_KEYS: &[&str] = &["name", "when", "prefer", "require"];
pub(crate) const ROUTE_MATCH_KEYS: &[&str] =
    &["team", "role", "consumer", "model", "estimated_tokens_over"];
pub(crate) const ROUTE_WANT_KEYS: &[&str] = &["cost_tier", "context_factor"];
pub(crate) const AWS_KEYS: &[&str] = &[
    "region",
    "access_key_id",
    "access_key_id_env",
    "secret_access_key_env",
    "secret_access_key",
    "session_token_env",
];
pub(crate) const BACKEND_TIMEOUT_KEYS: &[&str] =
    &["connect_ms", "first_byte_ms", "idle_ms", "total_ms"];
pub(crate) const HEALTH_KEYS: &[&str] = &[
    "kind",
    "path",
    "expected_status",
    "interval_ms",
    "timeout_ms",
    "unhealthy_threshold",
    "healthy_threshold",
];
pub(crate) const FILTER_KEYS: &[&str] = &[
    "rules",
    "policy",
    "always_block_severity",
    "base64_min_len",
    "classifier",
    "guardrail",
    "mode",
    "max_hold_back_bytes",
];
pub(crate) const CLASSIFIER_KEYS: &[&str] =
    &["enabled", "model", "threshold", "thresholds", "mode"];
pub(crate) const GUARDRAIL_KEYS: &[&str] = &[
    "preset",
    "url",
    "credential_env",
    "api_version",
    "ca_file",
    "timeout_ms",
    "fail",
    "mode",
];
pub(crate) const RULE_KEYS: &[&str] = &[
    "id",
    "category",
    "pattern",
    "patterns",
    "keywords",
    "severity",
    "reason",
    "mode",
    "applies_to",
    "case_sensitive",
    "action",
];
pub(crate) const CACHE_KEYS: &[&str] = &[
    "enabled",
    "scope",
    "ttl_seconds",
    "max_entries",
    "max_bytes",
    "max_entry_bytes",
];
pub(crate) const STATE_KEYS: &[&str] = &[
    "database",
    "ledger",
    "durability",
    "backend",
    "redis_url",
    "redis_url_env",
    "key_prefix",
    "redis_timeout_ms",
    "shared_cache",
    "limits_on_error",
    "budget_on_error",
];
pub(crate) const SERVER_KEYS: &[&str] = &[
    "listen",
    "threads",
    "max_body_bytes",
    "max_response_bytes",
    "max_choices",
    "max_in_flight",
    "max_idle_connections",
    "grace_period_seconds",
    "timeouts",
    "admin",
    "lab_endpoints",
    "tls",
    "http2",
    "h2c",
    "trusted_proxies",
    "proxy_protocol",
    "deny_ips",
    "forward_client_address",
];
pub(crate) const TIMEOUT_KEYS: &[&str] = &[
    "connect_ms",
    "read_ms",
    "write_ms",
    "client_header_ms",
    "client_body_ms",
    "client_body_total_ms",
    "upstream_idle_ms",
];
pub(crate) const ADMIN_KEYS: &[&str] = &["listen", "token_sha256", "token_env", "tls"];
pub(crate) const CLIENT_CERT_KEYS: &[&str] = &["subject", "uri"];
pub(crate) const TLS_KEYS: &[&str] = &["cert_file", "key_file", "client_ca_file", "client_auth"];
pub(crate) const CONSUMER_KEYS: &[&str] = &[
    "id",
    "team",
    "role",
    "key_sha256",
    "keys",
    "daily_budget_usd",
    "monthly_budget_usd",
    "requests_per_minute",
    "allowed_ips",
    "client_cert",
    "allowed_models",
    "tokens_per_minute",
    "tokens_per_hour",
    "tokens_per_day",
    "description",
];
pub(crate) const BACKEND_KEYS: &[&str] = &[
    "id",
    "url",
    "protocol",
    "models",
    "priority",
    "weight",
    "max_context_tokens",
    "cost_tier",
    "credential_env",
    "aws",
    "drop_unsupported",
    "default",
    "aliases",
    "provider",
    "azure_deployment",
    "azure_api_version",
    "ca_file",
    "timeouts",
    "health_check",
    "anthropic_version",
    "forward_headers",
];
pub(crate) const PRICE_KEYS: &[&str] = &[
    "input_per_million_usd",
    "output_per_million_usd",
    "cached_input_per_million_usd",
    "cache_write_per_million_usd",
    "reasoning_per_million_usd",
];

/// The file, parsed item by item. Items that failed to parse are left out (their problems are
/// recorded) so the remaining ones can still be validated; indexes are the original positions.
#[derive(Debug)]
pub struct Parsed {
    pub server: ServerSection,
    pub consumers: Consumers,
    pub backends: Vec<(usize, BackendSection)>,
    pub pricing: BTreeMap<String, PriceSection>,
    pub max_output_tokens: BTreeMap<String, u64>,
    pub content_filter: FilterSection,
    /// Filter rules, by original index (parsed apart so one bad rule hides nothing).
    pub rules: Vec<(usize, RuleSection)>,
    pub cache: CacheSection,
    pub state: StateSection,
    pub routing: RoutingSection,
    pub access_log: AccessLogSection,
    pub tracing: TracingSection,
    pub keys: KeysSection,
    pub teams: BTreeMap<String, TeamSection>,
    pub alerts: AlertsSection,
}

impl Parsed {
    /// The typed parse's result in the shape the value-tree pass gives: each list item with its
    /// position, the filter's rules apart.
    pub(crate) fn from_file<C: Into<Consumers>>(f: FileConfig<C>) -> Parsed {
        let mut content_filter = f.content_filter;
        let rules = std::mem::take(&mut content_filter.rules);
        Parsed {
            server: f.server,
            consumers: f.consumers.into(),
            backends: f.backends.into_iter().enumerate().collect(),
            pricing: f.pricing,
            max_output_tokens: f.max_output_tokens,
            content_filter,
            rules: rules.into_iter().enumerate().collect(),
            cache: f.cache,
            state: f.state,
            routing: f.routing,
            access_log: f.access_log,
            tracing: f.tracing,
            keys: f.keys,
            teams: f.teams,
            alerts: f.alerts,
        }
    }
}

/// Parses the text through its YAML value tree, collecting every problem it can find, each at
/// its path. `None` only when the file or its `server` section cannot be read at all.
pub fn parse(text: &str, problems: &mut Vec<Problem>) -> Option<Parsed> {
    let mut root: Value = match serde_yaml::from_str(text) {
        Ok(Value::Null) => Value::Mapping(Mapping::new()),
        Ok(v) => v,
        Err(e) => {
            problems.push(Problem::new("", format!("invalid YAML: {e}")));
            return None;
        }
    };
    let Value::Mapping(top) = &mut root else {
        problems.push(Problem::new("", "the file must be a mapping of sections"));
        return None;
    };
    prune_unknown(top, "", TOP_KEYS, problems);

    let server = match top.remove("server") {
        Some(mut v) => {
            if let Value::Mapping(m) = &mut v {
                prune_unknown(m, "server", SERVER_KEYS, problems);
                if let Some(Value::Mapping(t)) = m.get_mut("timeouts") {
                    prune_unknown(t, "server.timeouts", TIMEOUT_KEYS, problems);
                }
                if let Some(Value::Mapping(t)) = m.get_mut("tls") {
                    prune_unknown(t, "server.tls", TLS_KEYS, problems);
                }
                if let Some(Value::Mapping(a)) = m.get_mut("admin") {
                    prune_unknown(a, "server.admin", ADMIN_KEYS, problems);
                    if let Some(Value::Mapping(t)) = a.get_mut("tls") {
                        prune_unknown(t, "server.admin.tls", TLS_KEYS, problems);
                    }
                }
            }
            item::<ServerSection>(&v, "server", problems)
        }
        None => Some(ServerSection::default()),
    };

    let consumers = Consumers::Sections(list_nested::<ConsumerSection>(
        top.remove("consumers"),
        "consumers",
        CONSUMER_KEYS,
        &[("client_cert", CLIENT_CERT_KEYS)],
        problems,
    ));
    let backends = list_nested::<BackendSection>(
        top.remove("backends"),
        "backends",
        BACKEND_KEYS,
        &[
            ("timeouts", BACKEND_TIMEOUT_KEYS),
            ("health_check", HEALTH_KEYS),
            ("aws", AWS_KEYS),
        ],
        problems,
    );

    let mut pricing = BTreeMap::new();
    match top.remove("pricing") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(m)) => {
            for (k, mut v) in m {
                let Value::String(model) = k else {
                    problems.push(Problem::new("pricing", "model names must be strings"));
                    continue;
                };
                let path = format!("pricing.{model}");
                if let Value::Mapping(pm) = &mut v {
                    prune_unknown(pm, &path, PRICE_KEYS, problems);
                }
                if let Some(p) = item::<PriceSection>(&v, &path, problems) {
                    pricing.insert(model, p);
                }
            }
        }
        Some(_) => {
            problems.push(Problem::new(
                "pricing",
                "expected a mapping of model name to prices",
            ));
        }
    }

    let max_output_tokens = match top.remove("max_output_tokens") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(v) => {
            item::<BTreeMap<String, u64>>(&v, "max_output_tokens", problems).unwrap_or_default()
        }
    };

    let (content_filter, rules) = match top.remove("content_filter") {
        None | Some(Value::Null) => (FilterSection::default(), Vec::new()),
        Some(mut v) => {
            let mut rules = Vec::new();
            if let Value::Mapping(m) = &mut v {
                prune_unknown(m, "content_filter", FILTER_KEYS, problems);
                for (key, keys) in [
                    ("classifier", CLASSIFIER_KEYS),
                    ("guardrail", GUARDRAIL_KEYS),
                ] {
                    if let Some(Value::Mapping(sub)) = m.get_mut(key) {
                        prune_unknown(sub, &format!("content_filter.{key}"), keys, problems);
                    }
                }
                rules = list::<RuleSection>(
                    m.remove("rules"),
                    "content_filter.rules",
                    RULE_KEYS,
                    problems,
                );
            }
            let section = item::<FilterSection>(&v, "content_filter", problems).unwrap_or_default();
            (section, rules)
        }
    };
    let cache = section::<CacheSection>(top.remove("cache"), "cache", CACHE_KEYS, problems);
    let state = section::<StateSection>(top.remove("state"), "state", STATE_KEYS, problems);
    let access_log = section::<AccessLogSection>(
        top.remove("access_log"),
        "access_log",
        ACCESS_LOG_KEYS,
        problems,
    );
    let tracing =
        section::<TracingSection>(top.remove("tracing"), "tracing", TRACING_KEYS, problems);
    let keys = section::<KeysSection>(top.remove("keys"), "keys", KEYS_SECTION_KEYS, problems);
    let teams = teams(top.remove("teams"), problems);
    let alerts = match top.remove("alerts") {
        Some(Value::Mapping(mut m)) => {
            if let Some(Value::Mapping(w)) = m.get_mut("webhook") {
                prune_unknown(w, "alerts.webhook", WEBHOOK_KEYS, problems);
            }
            section::<AlertsSection>(Some(Value::Mapping(m)), "alerts", ALERTS_KEYS, problems)
        }
        other => section::<AlertsSection>(other, "alerts", ALERTS_KEYS, problems),
    };
    let routing = match top.remove("routing") {
        None | Some(Value::Null) => Some(RoutingSection::default()),
        Some(mut v) => {
            if let Value::Mapping(m) = &mut v {
                prune_unknown(m, "routing", ROUTING_KEYS, problems);
                if let Some(Value::Mapping(cb)) = m.get_mut("circuit_breaker") {
                    prune_unknown(cb, "routing.circuit_breaker", CIRCUIT_KEYS, problems);
                }
                if let Some(Value::Sequence(rules)) = m.get_mut("rules") {
                    for (i, r) in rules.iter_mut().enumerate() {
                        let p = format!("routing.rules[{i}]");
                        if let Value::Mapping(rm) = r {
                            prune_unknown(rm, &p, ROUTE_RULE_KEYS, problems);
                            for (key, keys) in [
                                ("when", ROUTE_MATCH_KEYS),
                                ("prefer", ROUTE_WANT_KEYS),
                                ("require", ROUTE_WANT_KEYS),
                            ] {
                                if let Some(Value::Mapping(sub)) = rm.get_mut(key) {
                                    prune_unknown(sub, &format!("{p}.{key}"), keys, problems);
                                }
                            }
                        }
                    }
                }
            }
            item::<RoutingSection>(&v, "routing", problems)
        }
    };

    Some(Parsed {
        server: server?,
        consumers,
        backends,
        pricing,
        max_output_tokens,
        content_filter,
        rules,
        cache: cache?,
        state: state?,
        routing: routing?,
        access_log: access_log?,
        tracing: tracing?,
        keys: keys?,
        teams,
        alerts: alerts?,
    })
}

/// `teams:`, a mapping of team name to its limits; a bad entry is reported and left out.
fn teams(value: Option<Value>, problems: &mut Vec<Problem>) -> BTreeMap<String, TeamSection> {
    let mut out = BTreeMap::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(m)) => {
            for (k, mut v) in m {
                let Value::String(name) = k else {
                    problems.push(Problem::new("teams", "team names must be strings"));
                    continue;
                };
                let path = format!("teams.{name}");
                if v.is_null() {
                    // `teams: {payments: }` lists a team with no limits yet.
                    out.insert(name, TeamSection::default());
                    continue;
                }
                if let Value::Mapping(tm) = &mut v {
                    prune_unknown(tm, &path, TEAM_KEYS, problems);
                }
                if let Some(t) = item::<TeamSection>(&v, &path, problems) {
                    out.insert(name, t);
                }
            }
        }
        Some(_) => problems.push(Problem::new(
            "teams",
            "expected a mapping of team name to its limits",
        )),
    }
    out
}

/// A plain mapping section: unknown keys reported, defaults when absent.
fn section<T: DeserializeOwned + Default>(
    value: Option<Value>,
    path: &str,
    keys: &[&str],
    problems: &mut Vec<Problem>,
) -> Option<T> {
    match value {
        None | Some(Value::Null) => Some(T::default()),
        Some(mut v) => {
            if let Value::Mapping(m) = &mut v {
                prune_unknown(m, path, keys, problems);
            }
            item::<T>(&v, path, problems)
        }
    }
}

/// A list whose items have nested mapping sections with their own key lists.
fn list_nested<T: DeserializeOwned>(
    value: Option<Value>,
    path: &str,
    keys: &[&str],
    nested: &[(&str, &[&str])],
    problems: &mut Vec<Problem>,
) -> Vec<(usize, T)> {
    let value = value.map(|mut v| {
        if let Value::Sequence(items) = &mut v {
            for (i, item) in items.iter_mut().enumerate() {
                if let Value::Mapping(m) = item {
                    for (key, sub_keys) in nested {
                        if let Some(Value::Mapping(sub)) = m.get_mut(*key) {
                            prune_unknown(sub, &format!("{path}[{i}].{key}"), sub_keys, problems);
                        }
                    }
                }
            }
        }
        v
    });
    list(value, path, keys, problems)
}

fn list<T: DeserializeOwned>(
    value: Option<Value>,
    path: &str,
    keys: &[&str],
    problems: &mut Vec<Problem>,
) -> Vec<(usize, T)> {
    let items = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Sequence(items)) => items,
        Some(_) => {
            problems.push(Problem::new(path, "expected a list"));
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, mut v) in items.into_iter().enumerate() {
        let p = format!("{path}[{i}]");
        if let Value::Mapping(m) = &mut v {
            prune_unknown(m, &p, keys, problems);
        }
        if let Some(t) = item::<T>(&v, &p, problems) {
            out.push((i, t));
        }
    }
    out
}

/// Removes (and reports) keys not in `allowed`, so the typed pass sees only known keys.
fn prune_unknown(map: &mut Mapping, path: &str, allowed: &[&str], problems: &mut Vec<Problem>) {
    let unknown: Vec<Value> = map
        .keys()
        .filter(|k| !k.as_str().is_some_and(|s| allowed.contains(&s)))
        .cloned()
        .collect();
    for k in unknown {
        let name = match &k {
            Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other)
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
        };
        let hint = closest(&name, allowed)
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        problems.push(Problem::new(
            join(path, &name),
            format!("unknown key `{name}`{hint}"),
        ));
        map.remove(&k);
    }
}

/// Deserializes one item; a type error is reported at the field's path.
fn item<T: DeserializeOwned>(value: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<T> {
    // Round-trip through text: serde_yaml names the failing field only when it reads text.
    let text = match serde_yaml::to_string(value) {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem::new(path, e.to_string()));
            return None;
        }
    };
    match serde_yaml::from_str::<T>(&text) {
        Ok(t) => Some(t),
        Err(e) => {
            let msg = e.to_string();
            let msg = match msg.rfind(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            // "field.sub: message" → path + field.sub
            let (sub, msg) = match msg.split_once(": ") {
                Some((p, m)) if !p.contains(' ') => (p.to_string(), m.to_string()),
                _ => (String::new(), msg),
            };
            problems.push(Problem::new(join(path, &sub), msg));
            None
        }
    }
}

fn join(path: &str, key: &str) -> String {
    match (path.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (_, true) => path.to_string(),
        _ => format!("{path}.{key}"),
    }
}

/// The allowed key nearest to a misspelt one (edit distance ≤ 3).
fn closest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (levenshtein(name, a), *a))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, a)| a)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::super::file::AwsSection;
    use super::super::file::{
        AdminSection, ClientCertSection, FileConfig, TimeoutsSection, TlsSection,
    };
    use super::super::file::{
        BackendTimeoutsSection, CircuitSection, HealthCheckSection, RouteMatchSection,
        RouteRuleSection, RouteWantSection,
    };
    use super::*;
    use super::{CacheSection, FilterSection, RoutingSection, RuleSection, StateSection};

    /// The key lists above must name exactly the struct fields; serde's own "expected" list is
    /// the truth.
    fn serde_fields<T: DeserializeOwned>() -> Vec<String> {
        let err = serde_yaml::from_str::<T>("__not_a_field__: 1")
            .err()
            .unwrap();
        let msg = err.to_string();
        let list = msg.split("expected ").nth(1).unwrap();
        let list = list.split(" at line").next().unwrap();
        let mut v: Vec<String> = list
            .split([',', ' '])
            .filter(|s| s.starts_with('`'))
            .map(|s| s.trim_matches('`').to_string())
            .collect();
        v.sort();
        v
    }

    fn sorted(keys: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn key_lists_match_the_structs() {
        assert_eq!(serde_fields::<FileConfig>(), sorted(TOP_KEYS));
        assert_eq!(serde_fields::<ServerSection>(), sorted(SERVER_KEYS));
        assert_eq!(serde_fields::<TimeoutsSection>(), sorted(TIMEOUT_KEYS));
        assert_eq!(serde_fields::<AdminSection>(), sorted(ADMIN_KEYS));
        assert_eq!(serde_fields::<TlsSection>(), sorted(TLS_KEYS));
        assert_eq!(
            serde_fields::<ClientCertSection>(),
            sorted(CLIENT_CERT_KEYS)
        );
        assert_eq!(serde_fields::<ConsumerSection>(), sorted(CONSUMER_KEYS));
        assert_eq!(serde_fields::<BackendSection>(), sorted(BACKEND_KEYS));
        assert_eq!(serde_fields::<PriceSection>(), sorted(PRICE_KEYS));
        assert_eq!(serde_fields::<FilterSection>(), sorted(FILTER_KEYS));
        assert_eq!(serde_fields::<RuleSection>(), sorted(RULE_KEYS));
        assert_eq!(serde_fields::<CacheSection>(), sorted(CACHE_KEYS));
        assert_eq!(serde_fields::<StateSection>(), sorted(STATE_KEYS));
        assert_eq!(serde_fields::<AccessLogSection>(), sorted(ACCESS_LOG_KEYS));
        assert_eq!(serde_fields::<TracingSection>(), sorted(TRACING_KEYS));
        assert_eq!(serde_fields::<KeysSection>(), sorted(KEYS_SECTION_KEYS));
        assert_eq!(serde_fields::<RoutingSection>(), sorted(ROUTING_KEYS));
        assert_eq!(serde_fields::<CircuitSection>(), sorted(CIRCUIT_KEYS));
        assert_eq!(serde_fields::<RouteRuleSection>(), sorted(ROUTE_RULE_KEYS));
        assert_eq!(
            serde_fields::<RouteMatchSection>(),
            sorted(ROUTE_MATCH_KEYS)
        );
        assert_eq!(serde_fields::<RouteWantSection>(), sorted(ROUTE_WANT_KEYS));
        assert_eq!(
            serde_fields::<BackendTimeoutsSection>(),
            sorted(BACKEND_TIMEOUT_KEYS)
        );
        assert_eq!(serde_fields::<HealthCheckSection>(), sorted(HEALTH_KEYS));
        assert_eq!(serde_fields::<AwsSection>(), sorted(AWS_KEYS));
        assert_eq!(serde_fields::<TeamSection>(), sorted(TEAM_KEYS));
        assert_eq!(serde_fields::<AlertsSection>(), sorted(ALERTS_KEYS));
        assert_eq!(
            serde_fields::<super::super::file::WebhookSection>(),
            sorted(WEBHOOK_KEYS)
        );
    }

    #[test]
    fn misspelt_keys_get_a_suggestion() {
        assert_eq!(
            closest("tokens_per_minit", CONSUMER_KEYS),
            Some("tokens_per_minute")
        );
        assert_eq!(closest("zzzzzzzz", CONSUMER_KEYS), None);
    }
}
