//! A finished request's spans, built at once in `logging` from what the request context kept:
//! no span object lives while the request runs, only instants and outcomes (see `trace`).
//!
//! One SERVER span per model request (`{gen_ai.operation.name} {gen_ai.request.model}`), a child
//! of the client's span when its `traceparent` was valid; INTERNAL children for the pipeline's
//! phases (`auth`, `content filter`, `guardrail`, `admission`, `cache lookup`, `routing`,
//! `settlement`); one CLIENT child per upstream attempt, whose id the backend received as the
//! parent in its `traceparent`. Attributes follow OpenTelemetry's GenAI semantic conventions
//! (`gen_ai.*`, `server.*`, `error.type`, `http.*`) plus `tollgate.*` (consumer, team, cache,
//! cost in nano-dollars, filter outcome). Never prompt or answer text, never a key.
//!
//! The gateway's own pages and `GET /v1/models` are not model operations: they get no spans.

use super::admit::Admitted;
use super::ctx::RequestCtx;
use super::record::log_safe;
use crate::config::{Backend, Consumer, Protocol, Provider};
use crate::protocol::translate::Finish;
use crate::protocol::Route;
use crate::trace::{new_span_id, AttemptTrace, RequestTrace, Tracer};
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The consumer is known (for the team on the request's span, refusals included).
pub(super) fn note_consumer(ctx: &mut RequestCtx, consumer: &Arc<Consumer>) {
    if let Some(t) = ctx.trace.as_deref_mut() {
        t.consumer = Some(Arc::clone(consumer));
    }
}

/// Admission let the request through: the output cap the backend is sent.
pub(super) fn note_admitted(ctx: &mut RequestCtx, req: &Admitted) {
    if let Some(t) = ctx.trace.as_deref_mut() {
        if req.route != Route::Embeddings {
            t.max_tokens = req.view.client_output_cap().or(req.cap.inject);
        }
    }
}

/// A decoded answer named its model and why it stopped.
pub(super) fn note_answer(ctx: &mut RequestCtx, model: &str, finish: Finish) {
    if let Some(t) = ctx.trace.as_deref_mut() {
        if !model.is_empty() {
            t.response_model = Some(log_safe(model));
        }
        t.finish_reason = Some(finish_reason(finish));
    }
}

/// Builds the request's spans and queues them for export, when its trace is recorded and it
/// was a model operation.
pub(super) fn export(tracer: &Tracer, ctx: &RequestCtx, trace: &RequestTrace) {
    if let Some(spans) = build(tracer, ctx, trace) {
        tracer.submit(spans);
    }
}

/// The request's spans; `None` when its trace is not recorded or it was no model operation.
fn build(tracer: &Tracer, ctx: &RequestCtx, trace: &RequestTrace) -> Option<Vec<SpanData>> {
    let operation = ctx.route.and_then(operation)?;
    if !trace.sampled {
        return None;
    }
    let model: Option<Arc<str>> = ctx.model.as_deref().map(|m| Arc::from(log_safe(m)));
    let b = Builder {
        tracer,
        trace,
        server: new_span_id(),
        clock: Clock::now(),
    };
    let mut spans = Vec::with_capacity(ctx.phases.len() + trace.attempts.len() + 2);
    for p in &ctx.phases {
        let attrs = vec![KeyValue::new("tollgate.phase", p.name)];
        spans.push(b.child(phase_span(p.name), p.start, p.end, attrs));
    }
    if let Some(s) = trace.settlement {
        spans.push(b.child("settlement".into(), s.start, s.end, Vec::new()));
    }
    let last = trace.attempts.len().saturating_sub(1);
    for (i, a) in trace.attempts.iter().enumerate() {
        spans.push(b.attempt(a, i == last, operation, model.as_ref()));
    }
    spans.push(b.request(ctx, operation, model.as_ref()));
    Some(spans)
}

/// Turns instants into wall-clock times, from one reading of both clocks.
struct Clock {
    wall: SystemTime,
    mono: Instant,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    fn at(&self, t: Instant) -> SystemTime {
        let ago = self.mono.saturating_duration_since(t);
        self.wall.checked_sub(ago).unwrap_or(self.wall)
    }
}

/// Builds the spans of one trace.
struct Builder<'a> {
    tracer: &'a Tracer,
    trace: &'a RequestTrace,
    /// The request's (SERVER) span: the parent of every other.
    server: SpanId,
    clock: Clock,
}

impl Builder<'_> {
    /// A finished span of this trace: the request's own (its parent the client's span, when
    /// one was named) or a child of it.
    fn span(
        &self,
        id: SpanId,
        kind: SpanKind,
        name: Cow<'static, str>,
        (start, end): (Instant, Instant),
        attributes: Vec<KeyValue>,
        status: Status,
    ) -> SpanData {
        let t = self.trace;
        let (parent, remote) = if id == self.server {
            (t.parent.unwrap_or(SpanId::INVALID), t.parent.is_some())
        } else {
            (self.server, false)
        };
        SpanData {
            span_context: SpanContext::new(
                t.trace_id,
                id,
                TraceFlags::SAMPLED,
                false,
                t.trace_state.clone(),
            ),
            parent_span_id: parent,
            parent_span_is_remote: remote,
            span_kind: kind,
            name,
            start_time: self.clock.at(start),
            end_time: self.clock.at(end),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.tracer.scope().clone(),
        }
    }

    /// A phase of the pipeline, inside the request's span.
    fn child(
        &self,
        name: Cow<'static, str>,
        start: Instant,
        end: Instant,
        attrs: Vec<KeyValue>,
    ) -> SpanData {
        let (id, status) = (new_span_id(), Status::Unset);
        self.span(id, SpanKind::Internal, name, (start, end), attrs, status)
    }

    /// One upstream attempt (CLIENT). The last one that got an answer carries the usage.
    fn attempt(
        &self,
        a: &AttemptTrace,
        last: bool,
        operation: &'static str,
        model: Option<&Arc<str>>,
    ) -> SpanData {
        let backend = &a.backend;
        let asked = model.map(|m| backend_model(backend, m));
        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", operation),
            KeyValue::new("gen_ai.provider.name", provider(backend)),
            KeyValue::new("server.address", backend.url.host.clone()),
            KeyValue::new("server.port", i64::from(backend.url.port)),
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("tollgate.backend.id", backend.id.clone()),
        ];
        if let Some(m) = &asked {
            attrs.push(KeyValue::new(
                "gen_ai.request.model",
                Value::from(m.clone()),
            ));
        }
        let t = self.trace;
        if let Some(n) = t.max_tokens {
            attrs.push(KeyValue::new("gen_ai.request.max_tokens", saturating(n)));
        }
        if let Some(status) = a.status {
            attrs.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        let answered = last && a.status.is_some_and(|s| (200..300).contains(&s));
        if answered {
            answer_attributes(t, t.answer_usage, &mut attrs);
        }
        let failure: Option<Cow<'static, str>> = match (a.error, a.status) {
            (Some(e), _) => Some(e.into()),
            (None, Some(s)) if s >= 400 => Some(s.to_string().into()),
            _ => None,
        };
        let status = match failure {
            Some(why) => {
                attrs.push(KeyValue::new("error.type", why.clone()));
                Status::error(why)
            }
            None => Status::Unset,
        };
        let name = match &asked {
            Some(m) => format!("{operation} {m}").into(),
            None => operation.into(),
        };
        let end = a.end.unwrap_or(self.clock.mono);
        self.span(
            a.span_id,
            SpanKind::Client,
            name,
            (a.start, end),
            attrs,
            status,
        )
    }

    /// The request's own span (SERVER), a child of the client's span when it named one.
    fn request(
        &self,
        ctx: &RequestCtx,
        operation: &'static str,
        model: Option<&Arc<str>>,
    ) -> SpanData {
        let t = self.trace;
        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", operation),
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("tollgate.request_id", ctx.request_id.clone()),
            KeyValue::new("tollgate.attempts", saturating(ctx.tried.len() as u64)),
        ];
        if let Some(route) = ctx.route.and_then(path) {
            attrs.push(KeyValue::new("http.route", route));
        }
        if let Some(m) = model {
            attrs.push(KeyValue::new(
                "gen_ai.request.model",
                Value::from(Arc::clone(m)),
            ));
        }
        if let Some(n) = t.max_tokens {
            attrs.push(KeyValue::new("gen_ai.request.max_tokens", saturating(n)));
        }
        // What was settled: the answer's usage, plus any failed attempt charged on top.
        answer_attributes(t, ctx.usage, &mut attrs);
        if let Some(u) = ctx.usage {
            attrs.push(KeyValue::new("tollgate.usage.estimated", u.estimated));
        }
        if ctx.status != 0 {
            attrs.push(KeyValue::new(
                "http.response.status_code",
                i64::from(ctx.status),
            ));
        }
        if let Some(c) = &ctx.consumer {
            attrs.push(KeyValue::new("tollgate.consumer.id", c.clone()));
        }
        if let Some(c) = &t.consumer {
            attrs.push(KeyValue::new("tollgate.consumer.team", c.team.clone()));
        }
        if let Some(b) = &ctx.backend {
            attrs.push(KeyValue::new("tollgate.backend.id", b.clone()));
        }
        if let Some(cache) = cache_outcome(ctx) {
            attrs.push(KeyValue::new("tollgate.cache", cache));
        }
        if let Some(nanos) = ctx.cost_nanos {
            attrs.push(KeyValue::new(
                "tollgate.cost_nanodollars",
                saturating(nanos),
            ));
        }
        if ctx.filter != super::ctx::FilterOutcome::NotRun {
            attrs.push(KeyValue::new("tollgate.filter", ctx.filter.as_str()));
        }
        if let Some(rules) = &ctx.filter_rule {
            attrs.push(KeyValue::new("tollgate.filter.rule", rules.clone()));
        }
        if let Some(e) = ctx.error {
            attrs.push(KeyValue::new("error.type", e));
        }
        // A server span is in error for a 5xx or an aborted answer; a refusal is the client's.
        let failed = ctx.status >= 500 || (ctx.status == 0 && ctx.error.is_some());
        let status = match (failed, ctx.error) {
            (true, Some(e)) => Status::error(e),
            (true, None) => Status::error("server error"),
            _ => Status::Unset,
        };
        let name = match model {
            Some(m) => format!("{operation} {m}").into(),
            None => operation.into(),
        };
        let when = (ctx.started, self.clock.mono);
        self.span(self.server, SpanKind::Server, name, when, attrs, status)
    }
}

/// `gen_ai.usage.*` from `usage`, and the answer's model and finish reason when decoded.
fn answer_attributes(
    t: &RequestTrace,
    usage: Option<crate::usage::Usage>,
    attrs: &mut Vec<KeyValue>,
) {
    if let Some(u) = usage {
        attrs.push(KeyValue::new(
            "gen_ai.usage.input_tokens",
            saturating(u.input),
        ));
        attrs.push(KeyValue::new(
            "gen_ai.usage.output_tokens",
            saturating(u.output),
        ));
    }
    if let Some(m) = &t.response_model {
        attrs.push(KeyValue::new("gen_ai.response.model", m.clone()));
    }
    if let Some(f) = t.finish_reason {
        let reasons = Array::String(vec![StringValue::from(f)]);
        attrs.push(KeyValue::new(
            "gen_ai.response.finish_reasons",
            Value::Array(reasons),
        ));
    }
}

/// `gen_ai.operation.name` of a model route; `None` for the gateway's own pages.
fn operation(route: Route) -> Option<&'static str> {
    match route {
        Route::ChatCompletions | Route::Messages | Route::Responses | Route::LabChat => {
            Some("chat")
        }
        Route::Embeddings => Some("embeddings"),
        Route::Models | Route::Page(_) => None,
    }
}

/// `http.route`: the route's path.
fn path(route: Route) -> Option<&'static str> {
    Some(match route {
        Route::ChatCompletions => "/v1/chat/completions",
        Route::LabChat => "/chat",
        Route::Messages => "/v1/messages",
        Route::Embeddings => "/v1/embeddings",
        Route::Responses => "/v1/responses",
        Route::Models | Route::Page(_) => return None,
    })
}

/// A phase's span name (the phase's metric label, for the one whose name says less).
fn phase_span(phase: &'static str) -> Cow<'static, str> {
    Cow::Borrowed(match phase {
        "filter" => "content filter",
        "limits" => "admission",
        "cache" => "cache lookup",
        other => other,
    })
}

/// `gen_ai.provider.name`, in the convention's values.
fn provider(b: &Backend) -> &'static str {
    match (b.protocol, &b.provider) {
        (Protocol::OpenAi, Provider::Azure { .. }) => "azure.ai.openai",
        (Protocol::OpenAi, _) => "openai",
        (Protocol::Anthropic, _) => "anthropic",
        (Protocol::Gemini, _) => "gcp.gemini",
        (Protocol::Bedrock, _) => "aws.bedrock",
        (Protocol::LabAgent, _) => "tollgate.lab_agent",
    }
}

/// The model `backend` was asked for: an alias's target, else the public name.
fn backend_model(backend: &Backend, model: &Arc<str>) -> Arc<str> {
    match backend.renamed(model) {
        Some(own) => Arc::from(log_safe(own)),
        None => Arc::clone(model),
    }
}

fn cache_outcome(ctx: &RequestCtx) -> Option<&'static str> {
    use super::ctx::CacheOutcome;
    match ctx.cache {
        CacheOutcome::NotReached => None,
        CacheOutcome::Hit => Some("hit"),
        CacheOutcome::Miss => Some("miss"),
        CacheOutcome::Bypass => Some("bypass"),
    }
}

/// `gen_ai.response.finish_reasons`, as OpenAI names them (the convention's examples).
fn finish_reason(f: Finish) -> &'static str {
    match f {
        Finish::Stop | Finish::StopSequence => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
        Finish::ContentFilter => "content_filter",
    }
}

fn saturating(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::{build, operation, phase_span, provider, Clock};
    use crate::config::{Backend, Protocol, Provider, TracingConfig};
    use crate::gateway::ctx::{CacheOutcome, RequestCtx};
    use crate::protocol::{Page, Route};
    use crate::trace::Tracer;
    use crate::usage::Usage;
    use opentelemetry::trace::{SpanId, SpanKind, Status};
    use opentelemetry::Value;
    use opentelemetry_sdk::trace::SpanData;
    use std::sync::Arc;
    use std::time::Duration;

    fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn providers_and_operations_use_the_conventions_values() {
        let mut b = Backend::basic("b", Protocol::OpenAi, &["m"], 1, 1);
        assert_eq!(provider(&b), "openai");
        b.provider = Provider::Azure {
            deployment: "d".into(),
            api_version: "v".into(),
        };
        assert_eq!(provider(&b), "azure.ai.openai");
        for (p, name) in [
            (Protocol::Anthropic, "anthropic"),
            (Protocol::Gemini, "gcp.gemini"),
            (Protocol::Bedrock, "aws.bedrock"),
        ] {
            assert_eq!(provider(&Backend::basic("b", p, &["m"], 1, 1)), name);
        }
        assert_eq!(operation(Route::Messages), Some("chat"));
        assert_eq!(operation(Route::Embeddings), Some("embeddings"));
        assert_eq!(operation(Route::Page(Page::Health)), None);
        assert_eq!(phase_span("limits"), "admission");
    }

    #[test]
    fn instants_become_wall_clock_times_in_the_same_order() {
        let clock = Clock::now();
        let earlier = clock.mono - Duration::from_millis(250);
        let gap = clock.wall.duration_since(clock.at(earlier)).unwrap();
        assert_eq!(gap, Duration::from_millis(250));
        assert_eq!(clock.at(clock.mono + Duration::from_secs(1)), clock.wall);
    }

    fn tracer() -> Arc<Tracer> {
        let cfg = TracingConfig {
            enabled: true,
            ..TracingConfig::default()
        };
        Tracer::start(&cfg).unwrap()
    }

    #[test]
    fn pages_and_unrecorded_requests_get_no_spans() {
        let tracer = tracer();
        let mut ctx = RequestCtx::new();
        let trace = tracer.begin(&http::HeaderMap::new());
        ctx.route = Some(Route::Page(Page::Health));
        assert!(build(&tracer, &ctx, &trace).is_none());
        ctx.route = Some(Route::ChatCompletions);
        let mut unrecorded = tracer.begin(&http::HeaderMap::new());
        unrecorded.sampled = false;
        assert!(build(&tracer, &ctx, &unrecorded).is_none());
        // Refused before anything was parsed: the request's span alone, named by its operation.
        let spans = build(&tracer, &ctx, &trace).unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].name, "chat");
    }

    #[test]
    fn a_failed_over_request_has_phase_children_and_a_client_span_per_attempt() {
        let tracer = tracer();
        let mut headers = http::HeaderMap::new();
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", parent.parse().unwrap());
        let mut trace = tracer.begin(&headers);
        let mut ctx = RequestCtx::new();
        ctx.route = Some(Route::ChatCompletions);
        ctx.model = Some("gpt-4o".into());
        ctx.consumer = Some("tester".into());
        ctx.status = 200;
        ctx.cache = CacheOutcome::Miss;
        ctx.cost_nanos = Some(1_234);
        ctx.usage = Some(Usage::estimate(12, 16));
        ctx.mark();
        ctx.phase("auth");
        ctx.phase("limits");
        let dead = Arc::new(Backend::basic("dead", Protocol::OpenAi, &["gpt-4o"], 1, 1));
        let live = Arc::new(Backend::basic(
            "live",
            Protocol::Anthropic,
            &["gpt-4o"],
            2,
            1,
        ));
        trace.begin_attempt(&dead);
        trace.attempt_failed("upstream_unreachable");
        trace.begin_attempt(&live);
        trace.attempt_answered(200);
        trace.answer_usage = ctx.usage;
        let spans = build(&tracer, &ctx, &trace).unwrap();
        let server = spans
            .iter()
            .find(|s| s.span_kind == SpanKind::Server)
            .unwrap();
        assert_eq!(server.name, "chat gpt-4o");
        assert_eq!(
            server.parent_span_id,
            SpanId::from_hex("00f067aa0ba902b7").unwrap()
        );
        assert!(server.parent_span_is_remote);
        assert_eq!(
            attr(server, "gen_ai.usage.output_tokens"),
            Some(&Value::I64(16))
        );
        assert_eq!(
            attr(server, "tollgate.cost_nanodollars"),
            Some(&Value::I64(1_234))
        );
        assert_eq!(attr(server, "tollgate.cache"), Some(&"miss".into()));
        let me = server.span_context.span_id();
        assert!(spans
            .iter()
            .all(|s| s.span_context.trace_id() == trace.trace_id));
        assert!(spans
            .iter()
            .filter(|s| s.span_kind != SpanKind::Server)
            .all(|s| s.parent_span_id == me && !s.parent_span_is_remote));
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "auth",
                "admission",
                "chat gpt-4o",
                "chat gpt-4o",
                "chat gpt-4o"
            ]
        );
        let clients: Vec<&SpanData> = spans
            .iter()
            .filter(|s| s.span_kind == SpanKind::Client)
            .collect();
        assert_eq!(clients[0].span_context.span_id(), trace.attempts[0].span_id);
        assert_eq!(
            attr(clients[0], "error.type"),
            Some(&"upstream_unreachable".into())
        );
        assert!(matches!(clients[0].status, Status::Error { .. }));
        assert_eq!(attr(clients[0], "gen_ai.usage.input_tokens"), None);
        assert_eq!(
            attr(clients[1], "gen_ai.provider.name"),
            Some(&"anthropic".into())
        );
        assert_eq!(
            attr(clients[1], "gen_ai.usage.input_tokens"),
            Some(&Value::I64(12))
        );
        assert_eq!(
            attr(clients[1], "http.response.status_code"),
            Some(&Value::I64(200))
        );
        for s in &spans {
            assert!(s.start_time <= s.end_time, "{}", s.name);
        }
    }
}
