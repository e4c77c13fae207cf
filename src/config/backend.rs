//! Building backends and the routing section: URLs, providers, private CAs, per-backend
//! timeouts, health checks, the circuit breaker and routing rules.

use super::build::check_id;
use super::file::{
    AwsSection, BackendSection, HealthCheckSection, RouteWantSection, RoutingSection,
};
use super::types::*;
use super::Problem;
use crate::digest::Secret;
use pingora::utils::tls::{parse_x509, WrappedX509};
use std::sync::Arc;
use std::time::Duration;

pub(super) fn build_backend(
    b: &BackendSection,
    path: &str,
    server: Option<&Timeouts>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Backend> {
    let before = problems.len();
    check_id(&b.id, &format!("{path}.id"), problems);
    let protocol = match b.protocol.as_str() {
        "openai" => Some(Protocol::OpenAi),
        "anthropic" => Some(Protocol::Anthropic),
        "gemini" => Some(Protocol::Gemini),
        "bedrock" => Some(Protocol::Bedrock),
        "lab-agent" => Some(Protocol::LabAgent),
        other => {
            problems.push(Problem::new(
                format!("{path}.protocol"),
                format!("`{other}` is not one of openai, anthropic, gemini, bedrock, lab-agent"),
            ));
            None
        }
    };
    let aws = match protocol {
        Some(Protocol::Bedrock) => aws_auth(b.aws.as_ref(), path, env, problems),
        _ => {
            if b.aws.is_some() {
                problems.push(Problem::new(
                    format!("{path}.aws"),
                    "is for `bedrock` backends only",
                ));
            }
            None
        }
    };
    let url = if b.url.trim().is_empty() {
        let preset = protocol.and_then(|p| preset_url(p, &b.provider, aws.as_ref()));
        // A bedrock backend without its region has been told so already.
        let told = protocol == Some(Protocol::Bedrock) && aws.is_none();
        if preset.is_none() && !told {
            problems.push(Problem::new(
                format!("{path}.url"),
                "must not be empty (only a provider's own API has a preset URL)",
            ));
        }
        preset
    } else {
        BackendUrl::parse(b.url.trim())
            .map_err(|e| {
                problems.push(Problem::new(
                    format!("{path}.url"),
                    format!("`{}` {e}", b.url),
                ))
            })
            .ok()
    };
    if b.models.is_empty() {
        problems.push(Problem::new(
            format!("{path}.models"),
            "must name at least one model",
        ));
    }
    for (i, m) in b.models.iter().enumerate() {
        if m.trim().is_empty() {
            problems.push(Problem::new(
                format!("{path}.models[{i}]"),
                "must not be empty",
            ));
        }
    }
    if b.max_context_tokens == 0 {
        problems.push(Problem::new(
            format!("{path}.max_context_tokens"),
            "must be greater than 0",
        ));
    }
    let cost_tier = cost_tier(&b.cost_tier, &format!("{path}.cost_tier"), problems);
    let provider = provider(b, path, problems);
    let ca = match &b.ca_file {
        None => None,
        Some(file) => match read_pem_certs(file) {
            Ok(certs) => Some(certs),
            Err(e) => {
                problems.push(Problem::new(format!("{path}.ca_file"), e));
                None
            }
        },
    };
    for (public, own) in &b.aliases {
        if public.trim().is_empty() || own.trim().is_empty() {
            problems.push(Problem::new(
                format!("{path}.aliases"),
                "alias names must not be empty",
            ));
        }
    }
    let forward_headers = forward_headers(
        &b.forward_headers,
        &format!("{path}.forward_headers"),
        problems,
    );
    let timeouts = backend_timeouts(b, path, server, problems);
    let health_check = b
        .health_check
        .as_ref()
        .and_then(|h| health_check(h, &format!("{path}.health_check"), problems));
    let credential = credential(b.credential_env.as_deref(), path, env, problems);
    if problems.len() != before {
        return None;
    }
    Some(Backend {
        id: b.id.clone(),
        url: url?,
        protocol: protocol?,
        models: b.models.clone(),
        priority: b.priority,
        weight: b.weight,
        max_context_tokens: b.max_context_tokens,
        cost_tier: cost_tier?,
        credential,
        default: b.default,
        aliases: b.aliases.clone(),
        provider: provider?,
        ca,
        timeouts,
        health_check,
        anthropic_version: b.anthropic_version.clone(),
        forward_headers,
        aws,
        drop_unsupported: b.drop_unsupported.clone(),
    })
}

/// The base URL of a provider's own API, for a backend that names none.
fn preset_url(protocol: Protocol, provider: &str, aws: Option<&AwsAuth>) -> Option<BackendUrl> {
    let url = match (protocol, provider) {
        (Protocol::OpenAi, "openai") => "https://api.openai.com".to_string(),
        (Protocol::Anthropic, _) => "https://api.anthropic.com".to_string(),
        (Protocol::Gemini, _) => "https://generativelanguage.googleapis.com/v1beta".to_string(),
        (Protocol::Bedrock, _) => {
            format!("https://bedrock-runtime.{}.amazonaws.com", aws?.region)
        }
        _ => return None,
    };
    BackendUrl::parse(&url).ok()
}

/// A `bedrock` backend's region and credentials: from its `aws` section, else the standard AWS
/// environment variables.
fn aws_auth(
    section: Option<&AwsSection>,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<AwsAuth> {
    let default = AwsSection::standard();
    let a = section.unwrap_or(&default);
    let set = |var: &str| env(var).filter(|v| !v.is_empty());
    let region = a
        .region
        .clone()
        .or_else(|| set("AWS_REGION"))
        .or_else(|| set("AWS_DEFAULT_REGION"));
    let valid_region = |r: &String| {
        !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let region = match region {
        Some(r) if valid_region(&r) => Some(r),
        Some(r) => {
            problems.push(Problem::new(
                format!("{path}.aws.region"),
                format!("`{r}` is not an AWS region name"),
            ));
            None
        }
        None => {
            problems.push(Problem::new(
                format!("{path}.aws.region"),
                "is required (or AWS_REGION / AWS_DEFAULT_REGION in the environment)",
            ));
            None
        }
    };
    let key_id = a
        .access_key_id
        .clone()
        .or_else(|| set(&a.access_key_id_env));
    if key_id.is_none() {
        problems.push(Problem::new(
            format!("{path}.aws.access_key_id_env"),
            format!("environment variable {} is not set", a.access_key_id_env),
        ));
    }
    let secret = a
        .secret_access_key
        .clone()
        .or_else(|| set(&a.secret_access_key_env));
    if secret.is_none() {
        problems.push(Problem::new(
            format!("{path}.aws.secret_access_key_env"),
            format!(
                "environment variable {} is not set",
                a.secret_access_key_env
            ),
        ));
    }
    Some(AwsAuth {
        region: region?,
        access_key_id: key_id?,
        secret_access_key: Secret::new(secret?),
        session_token: set(&a.session_token_env).map(Secret::new),
    })
}

/// Header names a client may not have forwarded whatever the configuration says: credentials,
/// the gateway's own framing and hop-by-hop headers.
const NEVER_FORWARDED: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "cookie",
    "proxy-authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "anthropic-version",
];

/// `forward_headers`: lower-case header names or prefixes ending in `*`, none of them a
/// credential or a header the gateway owns.
fn forward_headers(raw: &[String], path: &str, problems: &mut Vec<Problem>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        let lower = entry.trim().to_ascii_lowercase();
        let name = lower.strip_suffix('*').unwrap_or(&lower);
        let valid = !name.is_empty() && http::HeaderName::from_bytes(name.as_bytes()).is_ok();
        if !valid {
            problems.push(Problem::new(
                format!("{path}[{i}]"),
                format!("`{entry}` is not a header name (or a prefix ending in `*`)"),
            ));
        } else if NEVER_FORWARDED
            .iter()
            .any(|n| super::types::header_pattern_matches(&lower, n))
        {
            problems.push(Problem::new(
                format!("{path}[{i}]"),
                format!("`{entry}` would forward a credential or a header the gateway sets"),
            ));
        } else {
            out.push(lower);
        }
    }
    out
}

pub(super) fn cost_tier(s: &str, path: &str, problems: &mut Vec<Problem>) -> Option<CostTier> {
    match s {
        "low" => Some(CostTier::Low),
        "medium" => Some(CostTier::Medium),
        "high" => Some(CostTier::High),
        other => {
            problems.push(Problem::new(
                path,
                format!("`{other}` is not one of low, medium, high"),
            ));
            None
        }
    }
}

fn provider(b: &BackendSection, path: &str, problems: &mut Vec<Problem>) -> Option<Provider> {
    match b.provider.as_str() {
        "openai" => Some(Provider::OpenAi),
        "compatible" => Some(Provider::Compatible),
        "azure" => match (&b.azure_deployment, &b.azure_api_version) {
            (Some(d), Some(v)) if !d.is_empty() && !v.is_empty() => Some(Provider::Azure {
                deployment: d.clone(),
                api_version: v.clone(),
            }),
            _ => {
                problems.push(Problem::new(
                    path,
                    "provider azure needs azure_deployment and azure_api_version",
                ));
                None
            }
        },
        other => {
            problems.push(Problem::new(
                format!("{path}.provider"),
                format!("`{other}` is not one of openai, azure, compatible"),
            ));
            None
        }
    }
}

fn backend_timeouts(
    b: &BackendSection,
    path: &str,
    server: Option<&Timeouts>,
    problems: &mut Vec<Problem>,
) -> BackendTimeouts {
    let base = server.copied().unwrap_or(Timeouts {
        connect: Duration::from_secs(2),
        read: Duration::from_secs(120),
        write: Duration::from_secs(30),
        client_header: Duration::from_secs(10),
        client_body: Duration::from_secs(30),
        client_body_total: Duration::from_secs(120),
        upstream_idle: Duration::from_secs(60),
    });
    let mut t = BackendTimeouts {
        connect: base.connect,
        first_byte: base.read,
        idle: base.read,
        total: None,
        write: base.write,
        pool_idle: base.upstream_idle,
    };
    if let Some(o) = &b.timeouts {
        for (name, v) in [
            ("connect_ms", o.connect_ms),
            ("first_byte_ms", o.first_byte_ms),
            ("idle_ms", o.idle_ms),
            ("total_ms", o.total_ms),
        ] {
            if v == Some(0) {
                problems.push(Problem::new(
                    format!("{path}.timeouts.{name}"),
                    "must be greater than 0",
                ));
            }
        }
        let mut ms = |name: &str, v: u64| {
            super::build::duration(v, 1_000, &format!("{path}.timeouts.{name}"), problems)
        };
        t.connect = o
            .connect_ms
            .map(|v| ms("connect_ms", v))
            .unwrap_or(t.connect);
        t.first_byte = o
            .first_byte_ms
            .map(|v| ms("first_byte_ms", v))
            .unwrap_or(t.first_byte);
        t.idle = o.idle_ms.map(|v| ms("idle_ms", v)).unwrap_or(t.idle);
        t.total = o.total_ms.map(|v| ms("total_ms", v));
    }
    t
}

fn health_check(
    h: &HealthCheckSection,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<HealthCheck> {
    let before = problems.len();
    let kind = match h.kind.as_str() {
        "http" => {
            if !h.path.starts_with('/') {
                problems.push(Problem::new(format!("{path}.path"), "must start with /"));
            }
            Some(CheckKind::Http {
                path: h.path.clone(),
                expected_status: h.expected_status,
            })
        }
        "tcp" => Some(CheckKind::Tcp),
        other => {
            problems.push(Problem::new(
                format!("{path}.kind"),
                format!("`{other}` is not one of http, tcp"),
            ));
            None
        }
    };
    for (name, v) in [
        ("interval_ms", h.interval_ms),
        ("timeout_ms", h.timeout_ms),
        ("unhealthy_threshold", u64::from(h.unhealthy_threshold)),
        ("healthy_threshold", u64::from(h.healthy_threshold)),
    ] {
        if v == 0 {
            problems.push(Problem::new(
                format!("{path}.{name}"),
                "must be greater than 0",
            ));
        }
    }
    let interval = super::build::duration(
        h.interval_ms,
        1_000,
        &format!("{path}.interval_ms"),
        problems,
    );
    let timeout =
        super::build::duration(h.timeout_ms, 1_000, &format!("{path}.timeout_ms"), problems);
    if problems.len() != before {
        return None;
    }
    Some(HealthCheck {
        kind: kind?,
        interval,
        timeout,
        unhealthy_threshold: h.unhealthy_threshold,
        healthy_threshold: h.healthy_threshold,
    })
}

/// The routing section.
pub(super) fn routing(r: &RoutingSection, problems: &mut Vec<Problem>) -> RoutingConfig {
    if r.max_attempts == 0 || r.max_attempts > 10 {
        problems.push(Problem::new(
            "routing.max_attempts",
            "must be between 1 and 10",
        ));
    }
    let cb = &r.circuit_breaker;
    for (name, v) in [
        ("failure_threshold", u64::from(cb.failure_threshold)),
        ("window_seconds", cb.window_seconds),
        ("open_seconds", cb.open_seconds),
    ] {
        if v == 0 {
            problems.push(Problem::new(
                format!("routing.circuit_breaker.{name}"),
                "must be greater than 0",
            ));
        }
    }
    let rules = r
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let path = format!("routing.rules[{i}]");
            let role = rule.when.role.as_deref().and_then(|role| {
                Role::parse(role).or_else(|| {
                    problems.push(Problem::new(
                        format!("{path}.when.role"),
                        format!("`{role}` is not one of standard, elevated, admin"),
                    ));
                    None
                })
            });
            RouteRule {
                name: rule.name.clone(),
                when: RouteMatch {
                    team: rule.when.team.clone(),
                    role,
                    consumer: rule.when.consumer.clone(),
                    model: rule.when.model.clone(),
                    estimated_tokens_over: rule.when.estimated_tokens_over,
                },
                prefer: want(&rule.prefer, &format!("{path}.prefer"), problems),
                require: want(&rule.require, &format!("{path}.require"), problems),
            }
        })
        .collect();
    RoutingConfig {
        max_attempts: r.max_attempts,
        fallback_to_unusable: r.fallback_to_unusable,
        circuit: CircuitConfig {
            failure_threshold: cb.failure_threshold,
            window: super::build::duration(
                cb.window_seconds,
                1,
                "routing.circuit_breaker.window_seconds",
                problems,
            ),
            open_for: super::build::duration(
                cb.open_seconds,
                1,
                "routing.circuit_breaker.open_seconds",
                problems,
            ),
        },
        rules,
    }
}

fn want(w: &RouteWantSection, path: &str, problems: &mut Vec<Problem>) -> Want {
    if w.context_factor == Some(0) {
        problems.push(Problem::new(
            format!("{path}.context_factor"),
            "must be greater than 0",
        ));
    }
    Want {
        cost_tier: w
            .cost_tier
            .as_deref()
            .and_then(|t| cost_tier(t, &format!("{path}.cost_tier"), problems)),
        context_factor: w.context_factor,
    }
}

/// The secret in the environment variable `var` (a `credential_env` setting of the section at
/// `path`); unset or empty is a problem.
pub(super) fn credential(
    var: Option<&str>,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Secret> {
    let var = var?;
    match env(var) {
        Some(v) if !v.is_empty() => Some(Secret::new(v)),
        _ => {
            problems.push(Problem::new(
                format!("{path}.credential_env"),
                format!("environment variable {var} is not set"),
            ));
            None
        }
    }
}

/// The certificates in a PEM file, each checked to be a valid X.509 certificate.
pub(super) fn read_pem_certs(file: &str) -> Result<Arc<[WrappedX509]>, String> {
    let chain = super::tls::read_chain(file)?;
    Ok(chain
        .into_iter()
        // Parsing cannot fail: `read_chain` checked each certificate.
        .map(|der| WrappedX509::new(der.to_vec(), parse_x509))
        .collect())
}
