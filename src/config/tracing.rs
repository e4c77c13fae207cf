//! The `tracing:` section, validated: where OpenTelemetry spans go (an OTLP/HTTP endpoint, its
//! encoding and headers), how many new traces are recorded, and how many spans may wait for the
//! exporter. Every problem is reported at its YAML path; a header's value (a secret) never
//! appears in a problem, in `Debug` or in a log line.
//!
//! Read when the gateway starts: the exporter and its queue are built once, so a reload that
//! changes the section is reported (`restart_only_changes`) and the running value stays.

use super::build::duration;
use super::file::TracingSection;
use super::Problem;
use crate::digest::Secret;
use std::time::Duration;

/// How spans are encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceProtocol {
    /// `http/protobuf`: the OTLP protobuf messages.
    HttpProtobuf,
    /// `http/json`: OTLP's JSON mapping.
    HttpJson,
}

/// The validated `tracing:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    pub enabled: bool,
    /// The OTLP/HTTP traces URL, used as given.
    pub endpoint: String,
    pub protocol: TraceProtocol,
    /// Share of new traces recorded (0.0 to 1.0).
    pub sample_ratio: f64,
    pub service_name: String,
    /// Spans that may wait for the exporter.
    pub queue: usize,
    pub export_timeout: Duration,
    /// Sent with every export; `Secret` keeps the values out of `Debug`.
    pub headers: Vec<(String, Secret)>,
}

impl Default for TracingConfig {
    fn default() -> Self {
        let mut problems = Vec::new();
        build(&TracingSection::default(), &|_| None, &mut problems)
    }
}

/// Fewest spans the queue may hold: one request's spans (a dozen with failover) go in whole.
const MIN_QUEUE: usize = 16;
/// Most spans the queue may hold: beyond, a mistake (each span is a few hundred bytes).
const MAX_QUEUE: usize = 1_000_000;

/// Validates `s`; `env` looks up the variables `headers_env` names.
pub fn build(
    s: &TracingSection,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> TracingConfig {
    let protocol = match s.protocol.as_str() {
        "http/protobuf" => TraceProtocol::HttpProtobuf,
        "http/json" => TraceProtocol::HttpJson,
        other => {
            problems.push(Problem::new(
                "tracing.protocol",
                format!("`{other}` is not one of http/protobuf, http/json"),
            ));
            TraceProtocol::HttpProtobuf
        }
    };
    if let Err(why) = check_endpoint(&s.endpoint) {
        problems.push(Problem::new("tracing.endpoint", why));
    }
    if !(0.0..=1.0).contains(&s.sample_ratio) {
        problems.push(Problem::new(
            "tracing.sample_ratio",
            "must be between 0.0 and 1.0",
        ));
    }
    if s.service_name.trim().is_empty() {
        problems.push(Problem::new("tracing.service_name", "must not be empty"));
    }
    if !(MIN_QUEUE..=MAX_QUEUE).contains(&s.queue) {
        problems.push(Problem::new(
            "tracing.queue",
            format!("must be between {MIN_QUEUE} (a request's spans go in whole) and {MAX_QUEUE}"),
        ));
    }
    if s.export_timeout_ms == 0 {
        problems.push(Problem::new(
            "tracing.export_timeout_ms",
            "must be greater than 0",
        ));
    }
    let export_timeout = duration(
        s.export_timeout_ms,
        1_000,
        "tracing.export_timeout_ms",
        problems,
    );
    let mut headers = Vec::new();
    for (name, value) in &s.headers {
        let path = format!("tracing.headers.{name}");
        if header_ok(name, value, &path, problems) {
            headers.push((name.to_ascii_lowercase(), Secret::new(value.clone())));
        }
    }
    for (name, var) in &s.headers_env {
        let path = format!("tracing.headers_env.{name}");
        if s.headers.keys().any(|n| n.eq_ignore_ascii_case(name)) {
            problems.push(Problem::new(&path, "also set in tracing.headers"));
            continue;
        }
        match env(var) {
            Some(value) if header_ok(name, &value, &path, problems) => {
                headers.push((name.to_ascii_lowercase(), Secret::new(value)));
            }
            Some(_) => {}
            // Only an error when the exporter will run: a disabled section may name variables
            // this machine does not set.
            None if s.enabled => problems.push(Problem::new(
                &path,
                format!("the environment variable {var} is not set"),
            )),
            None => {}
        }
    }
    TracingConfig {
        enabled: s.enabled,
        endpoint: s.endpoint.trim().to_string(),
        protocol,
        sample_ratio: s.sample_ratio.clamp(0.0, 1.0),
        service_name: s.service_name.trim().to_string(),
        queue: s.queue.clamp(MIN_QUEUE, MAX_QUEUE),
        export_timeout: export_timeout.max(Duration::from_millis(1)),
        headers,
    }
}

/// An `http://` URL with a host. TLS to the collector is not built in (the gateway carries one
/// TLS stack, Pingora's): a collector agent on the host or beside it takes plain OTLP/HTTP.
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let endpoint = endpoint.trim();
    if endpoint.starts_with("https://") {
        return Err(
            "https:// is not supported: send to a collector over http:// (a local \
                    agent or sidecar) and let it forward over TLS"
                .into(),
        );
    }
    if !endpoint.starts_with("http://") {
        return Err("must start with http://".into());
    }
    match endpoint.parse::<http::Uri>() {
        // `Debug` and the logs print the endpoint: credentials go in `headers_env`.
        Ok(uri) if uri.authority().is_some_and(|a| a.as_str().contains('@')) => {
            Err("must not carry credentials (user:password@); use headers_env".into())
        }
        Ok(uri) if uri.host().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) => Err("has no host".into()),
        Err(e) => Err(format!("is not a URL: {e}")),
    }
}

/// Whether `name: value` can be sent as an HTTP header; the problem never quotes the value.
fn header_ok(name: &str, value: &str, path: &str, problems: &mut Vec<Problem>) -> bool {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        problems.push(Problem::new(path, "is not a valid header name"));
        return false;
    }
    if http::HeaderValue::from_str(value).is_err() {
        problems.push(Problem::new(
            path,
            "the value is not a valid header value (printable characters only)",
        ));
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{build, TraceProtocol, TracingConfig};
    use crate::config::file::TracingSection;
    use crate::config::Problem;

    fn section(yaml: &str) -> TracingSection {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn built(yaml: &str, env: &dyn Fn(&str) -> Option<String>) -> (TracingConfig, Vec<Problem>) {
        let mut problems = Vec::new();
        let c = build(&section(yaml), env, &mut problems);
        (c, problems)
    }

    #[test]
    fn tracing_is_off_by_default_with_the_otlp_defaults() {
        let c = TracingConfig::default();
        assert!(!c.enabled);
        assert_eq!(c.endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(c.protocol, TraceProtocol::HttpProtobuf);
        assert_eq!(c.sample_ratio, 1.0);
        assert_eq!(c.service_name, "tollgate");
        assert_eq!(c.queue, 2048);
        assert!(c.headers.is_empty());
    }

    #[test]
    fn every_bad_setting_is_reported_at_its_path() {
        let (_, problems) = built(
            "enabled: true\nendpoint: https://collector:4318/v1/traces\nprotocol: grpc\n\
             sample_ratio: 1.5\nservice_name: ' '\nqueue: 0\nexport_timeout_ms: 0\n\
             headers: {'bad name': x}\nheaders_env: {x-token: TG_UNSET}",
            &|_| None,
        );
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "tracing.protocol",
            "tracing.endpoint",
            "tracing.sample_ratio",
            "tracing.service_name",
            "tracing.queue",
            "tracing.export_timeout_ms",
            "tracing.headers.bad name",
            "tracing.headers_env.x-token",
        ] {
            assert!(paths.contains(&want), "{want} missing from {paths:?}");
        }
    }

    #[test]
    fn header_values_are_secrets_never_shown() {
        let (c, problems) = built(
            "enabled: true\nprotocol: http/json\nheaders: {Authorization: Bearer s3cret}\n\
             headers_env: {x-api-key: TG_KEY}",
            &|v| (v == "TG_KEY").then(|| "env-s3cret".to_string()),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.protocol, TraceProtocol::HttpJson);
        assert_eq!(c.headers.len(), 2);
        assert_eq!(c.headers[0].0, "authorization");
        assert_eq!(c.headers[1].1.expose(), "env-s3cret");
        let shown = format!("{c:?} {:?}", section("headers: {a: s3cret}"));
        assert!(!shown.contains("s3cret"), "{shown}");
        let (_, problems) = built("headers: {a: \"s3cret\\nx\"}", &|_| None);
        assert!(!format!("{problems:?}").contains("s3cret"), "{problems:?}");
    }

    #[test]
    fn a_reload_that_changes_tracing_is_reported_as_needing_a_restart() {
        let base = "server:\n  admin:\n    token_sha256: \"91c16f0d6cc1bec3c3603972182a07c66ff4fa71618a975e963d6dbe42b6dd37\"\npricing:\n  default: {input_per_million_usd: 1, output_per_million_usd: 2}\n";
        let load =
            |extra: &str| crate::config::load_str(&format!("{base}{extra}"), &|_| None).unwrap();
        let off = load("");
        let on = load("tracing:\n  enabled: true\n  sample_ratio: 0.5\n");
        let changes = crate::config::restart_only_changes(&off, &on);
        let paths: Vec<&str> = changes.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["tracing"]);
        assert!(crate::config::restart_only_changes(
            &on,
            &load("tracing: {enabled: true, sample_ratio: 0.5}")
        )
        .is_empty());
    }

    #[test]
    fn a_disabled_section_may_name_variables_this_machine_lacks() {
        let (_, problems) = built("headers_env: {x-token: TG_UNSET}", &|_| None);
        assert!(problems.is_empty(), "{problems:?}");
    }
}
