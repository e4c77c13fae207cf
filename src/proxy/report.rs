//! What a finished request leaves behind: the access-log line, the aggregate statistics, the
//! metrics, and the `gateway_metadata` of `/chat` answers. Labels and keys come from configured
//! sets only; never prompt or response text, never keys.

use super::*;

impl Gateway {
    /// Queues the request's access-log line (ids, counts and decisions; never text or keys).
    pub(super) fn write_access_log(&self, ctx: &RequestCtx, model_label: &str) {
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
            cache_hit: ctx.cache == "HIT",
            content_filter_result: ctx.filter,
            content_filter_reason: ctx.filter_rule.as_deref(),
            rate_limit_remaining: ctx.headroom.map(|h| h.remaining),
        };
        // Serialised once, for the log line and for `recent_entries`.
        let line = serde_json::to_string(&entry).unwrap_or_default();
        self.access_log.record(&line);
        // The seed's aggregate statistics, keyed by configured names only.
        self.state.stats.record(crate::state::stats::Sample {
            consumer: ctx.consumer.as_deref().unwrap_or("-"),
            model: model_label,
            blocked: ctx.blocked,
            cache_hit: ctx.cache == "HIT",
            input_tokens: usage.input,
            output_tokens: usage.output,
            cost_nanos: ctx.cost_nanos.unwrap_or(0),
            latency_us: (latency * 1000.0) as u64,
            entry: line,
        });
    }

    /// Counts one finished request. Labels come from configured sets only.
    pub(super) fn record_metrics(&self, ctx: &RequestCtx, model: &str) {
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
        for (phase, secs) in &ctx.phases {
            m.phases.with_label_values(&[phase]).observe(*secs);
        }
    }

    /// `gateway_metadata` for `/chat` answers.
    pub(super) fn metadata(
        &self,
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
            "content_filter": ctx.filter,
            "rate_limit_remaining": ctx.headroom.map(|h| h.remaining),
            "cache_hit": ctx.cache == "HIT",
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
        if let (Some(obj), Some(w)) = (meta.as_object_mut(), extra.get("x-tollgate-budget-warning"))
        {
            obj.insert("budget_warning".into(), json!(w));
        }
        meta
    }
}

/// The model as a metric label: a name the configuration knows, else `other`.
pub(super) fn model_label<'a>(cfg: &crate::config::Config, model: &'a str) -> &'a str {
    let known = cfg.backends.iter().any(|b| b.serves(model)) || cfg.pricing.contains_key(model);
    if known {
        model
    } else {
        "other"
    }
}

/// `GET /v1/models`: what this consumer may ask for (served models, aliases and `default`,
/// narrowed by its allowlist), in OpenAI's list shape.
pub(super) fn models_for(cfg: &crate::config::Config, consumer: &Consumer) -> serde_json::Value {
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
        .map(|m| json!({"id": m, "object": "model", "owned_by": "tollgate"}))
        .collect();
    json!({"object": "list", "data": data})
}
