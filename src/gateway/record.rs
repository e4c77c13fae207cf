//! What a finished request leaves behind, written once from `logging`: the metrics, the access-log
//! line, the aggregate statistics and a diagnostic line; plus what the gateway answers about
//! itself (the `gateway_metadata` of `/chat` answers, `GET /v1/models`). Labels and keys come
//! from configured sets only; never prompt or response text, never keys.

use super::ctx::{client_gone, ms_since, round1, Failure, RequestCtx};
use super::Gateway;
use crate::config::{Config, Consumer};
use crate::downstream::response::{self, Extra};
use crate::error::GatewayError;
use crate::metrics;
use crate::protocol::{Page, Route};
use crate::reports;
use crate::runtime::Runtime;
use crate::state::spend::usd;
use crate::state::State;
use pingora::proxy::Session;
use serde_json::json;

impl Gateway {
    /// Records a finished request: metrics, the access-log line and statistics, a debug line.
    pub(super) fn record(&self, ctx: &RequestCtx, cfg: &Config) {
        // The gateway's own pages (probes, the lab's reports) are counted, not logged: they are
        // not model traffic, and the lab's statistics count only model traffic.
        if matches!(ctx.route, Some(Route::Page(_))) {
            record_metrics(ctx, "-");
            return;
        }
        // The model as a label from the configuration (`other` for names it does not know).
        let model = ctx
            .model
            .as_deref()
            .map(|m| model_label(cfg, m))
            .unwrap_or("-");
        record_metrics(ctx, model);
        self.write_access_log(ctx, model);
        debug_line(ctx);
    }

    /// Queues the request's access-log line (ids, counts and decisions; never text or keys).
    fn write_access_log(&self, ctx: &RequestCtx, model_label: &str) {
        let latency = ms_since(ctx.started);
        let usage = ctx.usage.unwrap_or_default();
        let model = ctx.model.as_deref().map(log_safe);
        let entry = crate::access_log::Entry {
            timestamp: crate::access_log::timestamp(),
            request_id: &ctx.request_id,
            route: ctx.route.map(Route::as_str).unwrap_or("-"),
            consumer_id: ctx.consumer.as_deref().unwrap_or("-"),
            model: model.as_deref().unwrap_or("-"),
            backend: ctx.backend.as_deref().unwrap_or("-"),
            attempts: ctx.tried.len(),
            status: ctx.status,
            error: ctx.error.unwrap_or("-"),
            input_tokens: usage.input,
            output_tokens: usage.output,
            estimated: usage.estimated,
            cost_usd: usd(ctx.cost_nanos.unwrap_or(0), 6),
            cost_nanos: ctx.cost_nanos.unwrap_or(0),
            latency_ms: round1(latency),
            overhead_ms: round1((latency - ctx.backend_ms.unwrap_or(0.0)).max(0.0)),
            ttft_ms: ctx.ttft_ms.map(round1),
            cache_hit: ctx.cache.is_hit(),
            content_filter_result: ctx.filter.as_str(),
            content_filter_reason: ctx.filter_rule.as_deref(),
            content_filter_stage: ctx.filter_stage,
            content_filter_shadow: ctx.filter_shadow.as_deref(),
            response_filter: ctx.output_rules.as_deref(),
            request_redacted: ctx.request_redacted.as_deref(),
            classifier: ctx.classifier.as_ref(),
            guardrail: ctx.guardrail.as_ref(),
            rate_limit_remaining: ctx.headroom.map(|h| h.remaining),
            client_ip: ctx.client,
            http_version: ctx.http_version,
            tls: ctx.tls,
        };
        // Serialised once, for the log line and for `recent_entries`.
        let line = serde_json::to_string(&entry).unwrap_or_default();
        self.access_log.record(&line);
        // The seed's aggregate statistics, keyed by configured names only.
        self.state.stats.record(crate::state::stats::Sample {
            consumer: ctx.consumer.as_deref().unwrap_or("-"),
            model: model_label,
            blocked: ctx.blocked,
            cache_hit: ctx.cache.is_hit(),
            input_tokens: usage.input,
            output_tokens: usage.output,
            cost_nanos: ctx.cost_nanos.unwrap_or(0),
            latency_us: (latency * 1000.0) as u64,
            entry: line,
        });
    }
}

/// Counts one finished request. Labels come from configured sets only.
fn record_metrics(ctx: &RequestCtx, model: &str) {
    let Some(m) = metrics::get() else {
        return;
    };
    if ctx.in_flight {
        m.in_flight.dec();
    }
    let consumer = ctx.consumer.as_deref().unwrap_or("-");
    let route = ctx.route.map(Route::as_str).unwrap_or("other");
    m.requests
        .with_label_values(&[consumer, model, route, metrics::status_class(ctx.status)])
        .inc();
    if let Some(u) = ctx.usage {
        m.tokens
            .with_label_values(&[consumer, model, "input"])
            .inc_by(u.input);
        m.tokens
            .with_label_values(&[consumer, model, "output"])
            .inc_by(u.output);
        if u.estimated {
            m.estimated.inc();
        }
    }
    if let Some(c) = ctx.cost_nanos {
        m.cost_nanos.with_label_values(&[consumer, model]).inc_by(c);
    }
    let total = ctx.started.elapsed().as_secs_f64();
    m.duration.with_label_values(&[route]).observe(total);
    let backend = ctx.backend_ms.unwrap_or(0.0) / 1000.0;
    m.overhead
        .with_label_values(&[route])
        .observe((total - backend).max(0.0));
    for phase in &ctx.phases {
        m.phases
            .with_label_values(&[phase.name])
            .observe(phase.seconds());
    }
}

/// `gateway_metadata` for `/chat` answers.
pub(super) fn metadata(
    ctx: &RequestCtx,
    consumer: &Consumer,
    routed_to: Option<&str>,
    backend_ms: f64,
    extra: &Extra,
) -> serde_json::Value {
    let mut meta = json!({
        "consumer_id": consumer.id,
        "consumer_team": consumer.team,
        "model": ctx.model,
        "content_filter": ctx.filter.as_str(),
        "rate_limit_remaining": ctx.headroom.map(|h| h.remaining),
        "cache_hit": ctx.cache.is_hit(),
        "estimated_cost": format!("${}", usd(ctx.cost_nanos.unwrap_or(0), 6)),
        "latency_ms": round1(ms_since(ctx.started)),
    });
    if let (Some(obj), Some(b)) = (meta.as_object_mut(), routed_to) {
        obj.insert("routed_to".into(), json!(b));
        obj.insert("backend_latency_ms".into(), json!(round1(backend_ms)));
    }
    if let (Some(obj), Some(u)) = (meta.as_object_mut(), ctx.usage) {
        obj.insert(
            "usage".into(),
            json!({"input_tokens": u.input, "output_tokens": u.output, "estimated": u.estimated}),
        );
    }
    if let (Some(obj), Some(w)) = (meta.as_object_mut(), extra.get("x-tollgate-budget-warning")) {
        obj.insert("budget_warning".into(), json!(w));
    }
    meta
}

/// The model as a metric label: a name the configuration knows, else `other`.
fn model_label<'a>(cfg: &Config, model: &'a str) -> &'a str {
    let known = cfg.backends.iter().any(|b| b.serves(model)) || cfg.pricing.contains_key(model);
    if known {
        model
    } else {
        "other"
    }
}

/// `GET /v1/models`: what this consumer may ask for (served models, aliases and `default`,
/// narrowed by its allowlist), in OpenAI's list shape.
/// The models `consumer` may use (narrowed to `key_models` when its key is), as `/v1/models`
/// lists them.
fn models_for(
    cfg: &Config,
    consumer: &Consumer,
    key_models: Option<&[String]>,
) -> serde_json::Value {
    let mut names = std::collections::BTreeSet::new();
    for b in &cfg.backends {
        names.extend(b.models.iter().cloned());
        names.extend(b.aliases.keys().cloned());
        if b.default {
            names.insert("default".to_string());
        }
    }
    let data: Vec<serde_json::Value> = names
        .into_iter()
        .filter(|m| consumer.may_use(m))
        .filter(|m| key_models.is_none_or(|k| k.is_empty() || m == "default" || k.contains(m)))
        .map(|m| json!({"id": m, "object": "model", "owned_by": "tollgate"}))
        .collect();
    json!({"object": "list", "data": data})
}

/// Answers `GET /v1/models` for `consumer`.
pub(super) async fn answer_models(
    session: &mut Session,
    ctx: &mut RequestCtx,
    cfg: &Config,
    consumer: &Consumer,
) -> Result<(), Failure> {
    ctx.status = 200;
    let list = models_for(cfg, consumer, ctx.key_models.as_deref());
    response::write_json(session, 200, list.to_string().into(), &Extra::default())
        .await
        .map_err(client_gone)
}

/// Answers one of the gateway's own pages (`/health` always; the lab's reports when
/// `server.lab_endpoints` is on, else a 404 that names the admin plane).
pub(super) async fn answer_page(
    session: &mut Session,
    ctx: &mut RequestCtx,
    state: &State,
    rt: &Runtime,
    page: Page,
) -> Result<(), Failure> {
    if page != Page::Health && !rt.config.server.lab_endpoints {
        return Err(GatewayError::AdminOnly { path: page.path() }.into());
    }
    let body = reports::page(page, state, rt).await;
    ctx.status = 200;
    response::write_json(session, 200, body.to_string().into(), &Extra::default())
        .await
        .map_err(client_gone)
}

/// Counts a refusal by a token window, a request rate or a budget, per consumer.
pub(super) fn count_refusal(ctx: &RequestCtx, e: &GatewayError) {
    let (Some(m), Some(c)) = (metrics::get(), ctx.consumer.as_deref()) else {
        return;
    };
    match e {
        GatewayError::RateLimited { window, .. } => {
            m.rejections.with_label_values(&[c, window]).inc()
        }
        GatewayError::RequestRateLimited { who, .. } => {
            let limit = if *who == "team" {
                "team_requests"
            } else {
                "requests"
            };
            m.rejections.with_label_values(&[c, limit]).inc()
        }
        GatewayError::BudgetExceeded { team, .. } => {
            let limit = if team.is_some() {
                "team_budget"
            } else {
                "budget"
            };
            m.rejections.with_label_values(&[c, limit]).inc()
        }
        _ => {}
    }
}

/// The diagnostic line per request, at debug: consumer id only, never the key, never prompt or
/// response text (the access log is the per-request record; this is for diagnosis).
fn debug_line(ctx: &RequestCtx) {
    log::debug!(
        target: "tollgate::request",
        "route={} consumer={} model={} backend={} status={} error={} filter={} rule={} cache={} \
         tokens_in={} tokens_out={} estimated={} cost_usd={} cost_nanos={} attempts={} tried={} \
         latency_ms={:.1} \
         backend_ms={}",
        ctx.route.map(Route::as_str).unwrap_or("-"),
        ctx.consumer.as_deref().unwrap_or("-"),
        ctx.model.as_deref().map(log_safe).unwrap_or_else(|| "-".into()),
        ctx.backend.as_deref().unwrap_or("-"),
        ctx.status,
        ctx.error.unwrap_or("-"),
        ctx.filter.as_str(),
        ctx.filter_rule.as_deref().unwrap_or("-"),
        ctx.cache.as_str(),
        ctx.usage.map(|u| u.input).unwrap_or(0),
        ctx.usage.map(|u| u.output).unwrap_or(0),
        ctx.usage.is_some_and(|u| u.estimated),
        usd(ctx.cost_nanos.unwrap_or(0), 6),
        ctx.cost_nanos.unwrap_or(0),
        ctx.tried.len(),
        if ctx.tried.is_empty() { "-".to_string() } else { ctx.tried.join(",") },
        ctx.elapsed_ms(),
        ctx.backend_ms
            .map(|m| format!("{m:.1}"))
            .unwrap_or_else(|| "-".into()),
    );
}

/// A client-chosen model name, made safe for a log line: bounded, printable, no spaces.
pub(super) fn log_safe(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{log_safe, metadata, model_label, models_for};
    use crate::downstream::response::Extra;
    use crate::gateway::ctx::RequestCtx;
    use crate::gateway::ctx::{CacheOutcome, FilterOutcome};
    use crate::usage::Usage;

    fn demo() -> crate::runtime::Runtime {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml"))
            .unwrap();
        crate::runtime::load_str(&text, &|_| None).unwrap()
    }

    #[test]
    fn unknown_model_names_never_become_metric_labels() {
        let rt = demo();
        assert_eq!(model_label(&rt.config, "gpt-4"), "gpt-4");
        assert_eq!(model_label(&rt.config, "default"), "default");
        assert_eq!(model_label(&rt.config, "attacker-chosen-\n-name"), "other");
    }

    #[test]
    fn the_model_list_is_narrowed_by_the_consumers_allowlist() {
        let rt = demo();
        let names = |key: &str| -> Vec<String> {
            let c = rt.keys.authenticate(key.as_bytes()).unwrap();
            models_for(&rt.config, c, None)["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect()
        };
        let everything = names("key-team-engineering");
        assert!(everything.len() > 2, "{everything:?}");
        assert_eq!(names("key-team-support"), ["default", "gpt-4"]);
        assert_eq!(names("key-team-intern"), ["default", "haiku"]);
        let engineering = rt.keys.authenticate(b"key-team-engineering").unwrap();
        let narrowed = models_for(&rt.config, engineering, Some(&["gpt-4".to_string()]));
        assert_eq!(
            narrowed["data"].as_array().unwrap().len(),
            2,
            "an issued key's own allowlist narrows it further: {narrowed}"
        );
    }

    #[test]
    fn chat_metadata_carries_outcomes_and_usage_but_never_text() {
        let rt = demo();
        let consumer = rt.keys.authenticate(b"key-team-support").unwrap();
        let mut ctx = RequestCtx::new();
        ctx.model = Some("gpt-4".into());
        ctx.filter = FilterOutcome::Warned;
        ctx.cache = CacheOutcome::Miss;
        ctx.cost_nanos = Some(1_500);
        ctx.usage = Some(Usage::estimate(3, 4));
        let mut extra = Extra::default();
        extra.push("x-tollgate-budget-warning", "At 80%".into());
        let meta = metadata(&ctx, consumer, Some("b1"), 12.34, &extra);
        assert_eq!(meta["content_filter"], "warned");
        assert_eq!(meta["cache_hit"], false);
        assert_eq!(meta["routed_to"], "b1");
        assert_eq!(meta["backend_latency_ms"], 12.3);
        assert_eq!(meta["estimated_cost"], "$0.000002");
        assert_eq!(meta["usage"]["estimated"], true);
        assert_eq!(meta["budget_warning"], "At 80%");
    }

    #[test]
    fn log_lines_get_a_bounded_printable_model_name() {
        assert_eq!(log_safe("gpt 4\n"), "gpt?4?");
        assert_eq!(log_safe(&"m".repeat(100)).len(), 64);
    }
}
