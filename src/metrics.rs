//! Prometheus metrics, through `pingora-prometheus`'s re-exported `prometheus` (one registry for
//! Pingora's and ours). Served as text on the admin plane at `GET /metrics`.
//!
//! Label values come only from configured sets — consumer ids, configured model names, backend
//! ids, rule ids, fixed words — so an attacker-chosen string can never create a new series: a
//! model name no backend serves is reported as `other`, an unauthenticated caller as `-`.

use pingora_prometheus::prometheus::{
    self, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, TextEncoder,
};
use std::sync::OnceLock;

pub struct Metrics {
    pub requests: IntCounterVec,
    pub tokens: IntCounterVec,
    pub cost_nanos: IntCounterVec,
    pub duration: HistogramVec,
    pub overhead: HistogramVec,
    pub phases: HistogramVec,
    pub ttft: HistogramVec,
    pub cache: IntCounterVec,
    pub filter: IntCounterVec,
    pub classifier: IntCounterVec,
    pub classifier_score: HistogramVec,
    pub guardrail: IntCounterVec,
    pub guardrail_seconds: HistogramVec,
    pub guardrail_errors: IntCounterVec,
    pub hold_back: Histogram,
    pub rejections: IntCounterVec,
    pub retries: IntCounterVec,
    pub reloads: IntCounterVec,
    pub in_flight: IntGauge,
    pub idle_connections: IntGauge,
    /// Settlements waiting for Redis to take them.
    pub redis_pending: IntGauge,
    pub connections_closed: IntCounterVec,
    pub streams_without_usage: IntCounterVec,
    pub budget_spent: IntGaugeVec,
    pub budget_remaining: IntGaugeVec,
    pub backend_healthy: IntGaugeVec,
    pub backend_circuit: IntGaugeVec,
    pub estimated: IntCounter,
    pub access_log_dropped: IntCounter,
    /// Commits of the embedded store that failed (their ledger rows are lost; spend in memory
    /// still counts).
    pub store_errors: IntCounter,
    /// Spans that did not fit the trace queue (`tracing.queue`).
    pub trace_spans_dropped: IntCounter,
    /// Span exports to the collector, by outcome (exported, failed).
    pub trace_batches: IntCounterVec,
    pub redis_seconds: HistogramVec,
    pub redis_errors: IntCounterVec,
    /// Budget thresholds crossed, by scope and threshold (percent).
    pub budget_alerts: IntCounterVec,
    /// Alert posts that failed or were dropped.
    pub budget_alert_webhook_failures: IntCounter,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> Option<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels).ok()?;
    register(Box::new(c.clone()));
    Some(c)
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> Option<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).ok()?;
    register(Box::new(g.clone()));
    Some(g)
}

fn histogram(name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> Option<HistogramVec> {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).ok()?;
    register(Box::new(h.clone()));
    Some(h)
}

fn register(c: Box<dyn prometheus::core::Collector>) {
    if let Err(e) = prometheus::register(c) {
        log::error!("metric registration failed: {e}");
    }
}

fn build() -> Option<Metrics> {
    let latency = vec![
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    ];
    let in_flight =
        IntGauge::new("tollgate_in_flight_requests", "Requests being handled now.").ok()?;
    register(Box::new(in_flight.clone()));
    let idle_connections = IntGauge::new(
        "tollgate_idle_connections",
        "Client connections idle now (no request yet, or a header still arriving).",
    )
    .ok()?;
    register(Box::new(idle_connections.clone()));
    let redis_pending = IntGauge::new(
        "tollgate_redis_pending_settlements",
        "Settlements kept for retrying until Redis takes them (state.backend: redis).",
    )
    .ok()?;
    register(Box::new(redis_pending.clone()));
    let estimated = IntCounter::new(
        "tollgate_estimated_settlements_total",
        "Requests settled on an estimate because the backend reported no usage.",
    )
    .ok()?;
    register(Box::new(estimated.clone()));
    let access_log_dropped = IntCounter::new(
        "tollgate_access_log_dropped_total",
        "Access-log lines dropped because the writer's queue was full.",
    )
    .ok()?;
    register(Box::new(access_log_dropped.clone()));
    let store_errors = IntCounter::new(
        "tollgate_store_errors_total",
        "Commits of the embedded store (ledger rows, daily spend, issued keys) that failed.",
    )
    .ok()?;
    register(Box::new(store_errors.clone()));
    let trace_spans_dropped = IntCounter::new(
        "tollgate_trace_spans_dropped_total",
        "Trace spans dropped because the exporter's queue was full (tracing.queue).",
    )
    .ok()?;
    register(Box::new(trace_spans_dropped.clone()));
    let budget_alert_webhook_failures = IntCounter::new(
        "tollgate_budget_alert_webhook_failures_total",
        "Budget alert posts to alerts.webhook that failed (unreachable, timeout, not 2xx) or \
         were dropped because their queue was full.",
    )
    .ok()?;
    register(Box::new(budget_alert_webhook_failures.clone()));
    Some(Metrics {
        requests: counter(
            "tollgate_requests_total",
            "Requests by consumer, model, route and status class.",
            &["consumer", "model", "route", "status"],
        )?,
        tokens: counter(
            "tollgate_tokens_total",
            "Tokens settled, by consumer, model and direction (input/output).",
            &["consumer", "model", "direction"],
        )?,
        cost_nanos: counter(
            "tollgate_cost_nanodollars_total",
            "Cost settled, in nano-dollars, by consumer and model.",
            &["consumer", "model"],
        )?,
        duration: histogram(
            "tollgate_request_duration_seconds",
            "Whole request time, by route.",
            &["route"],
            latency.clone(),
        )?,
        overhead: histogram(
            "tollgate_gateway_overhead_seconds",
            "Request time minus backend time, by route.",
            &["route"],
            latency.clone(),
        )?,
        phases: histogram(
            "tollgate_phase_seconds",
            "Gateway time per pipeline phase (auth, filter, limits, cache, routing).",
            &["phase"],
            latency.clone(),
        )?,
        ttft: histogram(
            "tollgate_time_to_first_token_seconds",
            "From sending a streamed request to its first event, by backend.",
            &["backend"],
            latency.clone(),
        )?,
        redis_seconds: histogram(
            "tollgate_redis_seconds",
            "Shared-state calls to Redis, by operation (state.backend: redis).",
            &["op"],
            latency.clone(),
        )?,
        redis_errors: counter(
            "tollgate_redis_errors_total",
            "Shared-state calls that failed or timed out, by operation.",
            &["op"],
        )?,
        cache: counter(
            "tollgate_cache_events_total",
            "Cache lookups and evictions (event: hit, miss, eviction).",
            &["event"],
        )?,
        filter: counter(
            "tollgate_filter_decisions_total",
            "Content-filter rule matches by stage (request, response), rule, action (block, warn, \
             audit, redact; allow too in shadow) and mode (enforce, shadow: what the rule would \
             have done).",
            &["stage", "rule", "action", "mode"],
        )?,
        classifier: counter(
            "tollgate_classifier_decisions_total",
            "Injection-classifier verdicts by role, action (pass below the threshold, else the \
             role's injection action) and mode (enforce, shadow: counted, never acted on).",
            &["role", "action", "mode"],
        )?,
        classifier_score: histogram(
            "tollgate_classifier_score",
            "The injection classifier's score of each request (its highest text), by role.",
            &["role"],
            (1..=20).map(|i| f64::from(i) * 0.05).collect(),
        )?,
        guardrail: counter(
            "tollgate_guardrail_decisions_total",
            "External-guardrail verdicts by role, action (pass, the role's injection action when \
             flagged, fail_open, fail_closed) and mode.",
            &["role", "action", "mode"],
        )?,
        guardrail_seconds: histogram(
            "tollgate_guardrail_seconds",
            "External-guardrail call time, connect to verdict (failed calls included).",
            &[],
            vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ],
        )?,
        guardrail_errors: counter(
            "tollgate_guardrail_errors_total",
            "External-guardrail calls without a verdict, by reason (timeout, unreachable, status, \
             answer).",
            &["reason"],
        )?,
        hold_back: {
            let h = Histogram::with_opts(
                HistogramOpts::new(
                    "tollgate_output_hold_back_seconds",
                    "How long streamed answer text was held back for the answer rules before it \
                     was released (one observation per release after a hold).",
                )
                .buckets(latency),
            )
            .ok()?;
            register(Box::new(h.clone()));
            h
        },
        rejections: counter(
            "tollgate_limit_rejections_total",
            "Requests refused by a token window (minute, hour, day), the request rate (requests, \
             team_requests) or a budget (budget: the consumer's daily or monthly; team_budget: \
             its team's), by consumer.",
            &["consumer", "limit"],
        )?,
        retries: counter(
            "tollgate_retries_total",
            "Failovers away from a backend, by backend.",
            &["backend"],
        )?,
        reloads: counter(
            "tollgate_config_reloads_total",
            "Configuration reloads by result (ok, error).",
            &["result"],
        )?,
        in_flight,
        idle_connections,
        redis_pending,
        connections_closed: counter(
            "tollgate_connections_closed_total",
            "Client connections closed by the gateway below HTTP (reason: header_timeout, \
             idle_cap, unparsable_request).",
            &["reason"],
        )?,
        streams_without_usage: counter(
            "tollgate_streams_without_usage_total",
            "Streams that ended normally without reporting usage (settled on an estimate).",
            &["backend"],
        )?,
        budget_spent: gauge(
            "tollgate_budget_spent_nanodollars",
            "Spent today, by consumer.",
            &["consumer"],
        )?,
        budget_remaining: gauge(
            "tollgate_budget_remaining_nanodollars",
            "Budget left today, by consumer.",
            &["consumer"],
        )?,
        backend_healthy: gauge(
            "tollgate_backend_healthy",
            "1 when the active health checks consider the backend healthy.",
            &["backend"],
        )?,
        backend_circuit: gauge(
            "tollgate_backend_circuit_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open.",
            &["backend"],
        )?,
        trace_batches: counter(
            "tollgate_trace_batches_total",
            "Span exports to the OTLP collector, by outcome (exported, failed).",
            &["outcome"],
        )?,
        budget_alerts: counter(
            "tollgate_budget_alerts_total",
            "Budget thresholds crossed by settled spend, once per budget, period and threshold, by \
             scope (consumer_daily, consumer_monthly, team_daily, team_monthly) and threshold \
             (percent).",
            &["scope", "threshold"],
        )?,
        budget_alert_webhook_failures,
        estimated,
        access_log_dropped,
        store_errors,
        trace_spans_dropped,
    })
}

static METRICS: OnceLock<Option<Metrics>> = OnceLock::new();

/// The process's metrics (`None` only if their definitions were rejected, which tests rule out).
pub fn get() -> Option<&'static Metrics> {
    METRICS.get_or_init(build).as_ref()
}

/// Creates the series the configuration implies, at zero, so dashboards and alerts see them
/// before the first event (and a counter's first increment is visible as a rate). Called at
/// start-up and after each reload; label values come from the configuration only.
/// Above this many consumers, per-consumer series are not created ahead of use.
pub(crate) const PRIME_CONSUMERS_UP_TO: usize = 1_000;

pub fn prime(cfg: &crate::config::Config) {
    let Some(m) = get() else {
        return;
    };
    for event in ["hit", "miss", "eviction"] {
        m.cache.with_label_values(&[event]);
    }
    for result in ["ok", "error"] {
        m.reloads.with_label_values(&[result]);
    }
    if cfg.tracing.enabled {
        for outcome in ["exported", "failed"] {
            m.trace_batches.with_label_values(&[outcome]);
        }
    }
    for b in &cfg.backends {
        m.retries.with_label_values(&[b.id.as_str()]);
        m.streams_without_usage.with_label_values(&[b.id.as_str()]);
    }
    // Zero series per consumer make dashboards show 0 instead of "no data"; with very many
    // consumers they would cost memory for series that may never count (5 to 7 per consumer), so
    // those are created on first use instead.
    if cfg.consumers.len() <= PRIME_CONSUMERS_UP_TO {
        for c in &cfg.consumers {
            for limit in ["minute", "hour", "day", "requests", "budget"] {
                m.rejections.with_label_values(&[c.id.as_str(), limit]);
            }
            if c.team_limits.is_some() {
                for limit in ["team_requests", "team_budget"] {
                    m.rejections.with_label_values(&[c.id.as_str(), limit]);
                }
            }
        }
    }
    // The configured thresholds are a short list (at most 16): every scope's series exist.
    for scope in crate::state::budget::Scope::ALL {
        for t in &cfg.alerts.thresholds {
            m.budget_alerts
                .with_label_values(&[scope.label(), &t.to_string()]);
        }
    }
    for rule in &cfg.filter.rules {
        for action in ["block", "warn", "audit"] {
            if rule.on_request {
                m.filter.with_label_values(&[
                    "request",
                    rule.id.as_str(),
                    action,
                    rule.mode.as_str(),
                ]);
            }
        }
    }
}

/// The status class label: `2xx` … `5xx`, or `499` for a client that left.
pub fn status_class(status: u16) -> &'static str {
    match status {
        499 => "499",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// Every metric in the Prometheus text format.
pub fn render() -> String {
    let mut out = Vec::new();
    let families = prometheus::gather();
    if TextEncoder::new().encode(&families, &mut out).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_defined_and_exported() {
        let m = get().expect("metric definitions are valid");
        m.requests
            .with_label_values(&["c", "m", "chat", "2xx"])
            .inc();
        m.in_flight.set(0);
        let text = render();
        for name in ["tollgate_requests_total", "tollgate_in_flight_requests"] {
            assert!(text.contains(name), "{name} missing");
        }
    }

    #[test]
    fn status_classes_are_a_fixed_set() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(499), "499");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(42), "other");
    }
}
