//! The consumer plane: the `ProxyHttp` implementation. It only sequences the pipeline stages;
//! every decision is a plain function in its stage module.
//!
//! `request_filter` answers every request itself (returning `Ok(true)`): route, size, auth, body,
//! model allowlist, content filter, reservation (tokens and dollars), cache lookup, backend
//! selection, forwarding (see [`crate::forward`]), settlement and cache store. `logging` runs on
//! every exit path: it settles whatever reservation is still open (a stream, a disconnect, an
//! upstream failure) and writes the one diagnostic line per request.

use crate::access_log::AccessLog;
use crate::accounting::{self, Reservation, Usage};
use crate::body;
use crate::config::{Backend, CacheScope, Consumer};
use crate::error::GatewayError;
use crate::forward::{Forwarder, MidStream, PipeEnd};
use crate::request::{self, RequestView, Route};
use crate::response::{self, Extra};
use crate::runtime::{LiveState, Runtime};
use crate::sse::SseTap;
use crate::state::cache::{self, CacheKey, Entry};
use crate::state::health::{Availability, Outcome, Permit};
use crate::state::limits::Headroom;
use crate::state::spend::usd;
use crate::state::{unix_now, State};
use crate::upstream::Resolver;
use crate::{auth, upstream};
use crate::{metrics, routing};
use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use serde_json::json;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod attempt;
mod cache_plan;
mod report;
mod stages;

use self::cache_plan::{cache_plan, CachePlan};
use attempt::{outcome_of_status, within, Attempt};
use report::{model_label, models_for};

/// How long an early answer waits, discarding, for a client still sending its body.
const LINGER: Duration = Duration::from_secs(1);
/// Largest body read off a request refused as overloaded so its connection can be kept.
const OVERLOAD_DISCARD_BYTES: u64 = 64 * 1024;

/// The gateway's proxy service.
pub struct Gateway {
    live: LiveState,
    state: Arc<State>,
    forwarder: Forwarder,
    resolver: Arc<Resolver>,
    round_robin: AtomicU64,
    access_log: Arc<AccessLog>,
    /// Random per process, so request ids from different instances differ.
    id_seed: u64,
    /// Request-id sequence (separate from the round-robin tick, which must only count picks).
    ids: AtomicU64,
    /// Requests inside `request_filter` now (compared with `server.max_in_flight`).
    active: AtomicUsize,
}

/// Per-request state, read by `logging`.
pub struct RequestCtx {
    started: Instant,
    route: Option<Route>,
    consumer: Option<String>,
    model: Option<String>,
    backend: Option<String>,
    status: u16,
    error: Option<&'static str>,
    backend_ms: Option<f64>,
    filter: &'static str,
    filter_rule: Option<String>,
    cache: &'static str,
    /// Open until settled; `logging` settles what is left.
    reservation: Option<Reservation>,
    /// The request reached a backend, so it may have consumed tokens.
    upstream_called: bool,
    headroom: Option<Headroom>,
    usage: Option<Usage>,
    cost_nanos: Option<u64>,
    /// Backends tried, in order (the last one answered, if any did).
    tried: Vec<String>,
    /// Counted in the in-flight gauge.
    in_flight: bool,
    request_id: String,
    ttft_ms: Option<f64>,
    /// Gateway time per pipeline phase (auth, filter, limits, cache, routing), seconds.
    phases: Vec<(&'static str, f64)>,
    /// Refused by a policy (filter, allowlist, limits, budget), for `/stats`.
    blocked: bool,
}

impl RequestCtx {
    /// Records the time since `mark` for `phase` and moves the mark to now.
    fn phase(&mut self, phase: &'static str, mark: &mut Instant) {
        let now = Instant::now();
        self.phases
            .push((phase, now.duration_since(*mark).as_secs_f64()));
        *mark = now;
    }
}

/// How a request that could not complete normally ends.
enum Failure {
    /// Nothing final was sent yet: answer with this error as JSON.
    Respond(GatewayError),
    /// A response was already under way: abort the client connection.
    Abort(GatewayError),
}

impl From<GatewayError> for Failure {
    fn from(e: GatewayError) -> Self {
        Failure::Respond(e)
    }
}

impl From<MidStream> for Failure {
    fn from(e: MidStream) -> Self {
        Failure::Abort(e.0)
    }
}

/// One request counted in [`Gateway::active`] for as long as it is handled.
struct Active<'a> {
    counter: &'a AtomicUsize,
    /// Requests in flight including this one.
    count: usize,
}

impl<'a> Active<'a> {
    fn enter(counter: &'a AtomicUsize) -> Active<'a> {
        let count = counter.fetch_add(1, Ordering::AcqRel) + 1;
        Active { counter, count }
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gateway {
    pub fn new(
        live: LiveState,
        state: Arc<State>,
        resolver: Arc<Resolver>,
        access_log: Arc<AccessLog>,
    ) -> Self {
        let mut seed = [0u8; 8];
        let _ = getrandom::getrandom(&mut seed);
        Gateway {
            live,
            state,
            forwarder: Forwarder::default(),
            resolver,
            round_robin: AtomicU64::new(0),
            access_log,
            id_seed: u64::from_le_bytes(seed),
            ids: AtomicU64::new(0),
            active: AtomicUsize::new(0),
        }
    }

    /// The client's `x-request-id` when it is short and printable, else a fresh one.
    fn request_id(&self, session: &Session) -> String {
        if let Some(v) = session.req_header().headers.get("x-request-id") {
            let b = v.as_bytes();
            if !b.is_empty() && b.len() <= 64 && b.iter().all(|c| c.is_ascii_graphic()) {
                return String::from_utf8_lossy(b).into_owned();
            }
        }
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format!(
            "tg-{:016x}",
            self.id_seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        )
    }

    /// The pipeline, in order. Returns once the response has been written.
    async fn handle(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
    ) -> Result<(), Failure> {
        let cfg = &rt.config;
        let server = &cfg.server;
        let req = session.req_header();
        let route = Route::resolve(&req.method, req.uri.path())?;
        ctx.route = Some(route);

        // Framing first: smuggling shapes and oversized header blocks are refused, and the
        // connection is not reused after the answer.
        let raw_head = || {
            session
                .as_downstream()
                .as_http1()
                .map(|h| h.get_headers_raw_bytes())
        };
        if let Err(e) = body::check_framing(&req.headers, raw_head) {
            session.set_keepalive(None);
            return Err(e.into());
        }
        // Size next: an oversized upload is refused before anything is read or continued.
        let declared = body::check_declared(
            req.headers
                .get(http::header::CONTENT_LENGTH)
                .map(|v| v.as_bytes()),
            server.max_body_bytes,
        )?;

        // 1. authenticate
        let mut mark = Instant::now();
        let consumer = auth::presented_key(&req.headers)
            .and_then(|key| rt.keys.authenticate(key))
            .cloned()
            .ok_or(GatewayError::Unauthorized)?;
        ctx.consumer = Some(consumer.id.clone());
        ctx.phase("auth", &mut mark);
        if route == Route::Models {
            ctx.status = 200;
            let list = models_for(cfg, &consumer);
            return response::write_json(session, 200, list.to_string().into(), &Extra::default())
                .await
                .map_err(|_| Failure::Respond(GatewayError::ClientGone));
        }

        let raw = body::read_bounded(
            session,
            declared,
            server.max_body_bytes,
            server.timeouts.client_body,
            server.timeouts.client_body_total,
        )
        .await?;
        let view = request::parse(route, &raw)?;
        let model = view.model().to_string();
        ctx.model = Some(model.clone());

        // 2. model allowed?
        if !consumer.may_use(&model) {
            return Err(GatewayError::ModelNotAllowed {
                consumer: consumer.id.clone(),
                model,
            }
            .into());
        }

        // Counted once: it walks every text of the prompt.
        let prompt_estimate = view.prompt_estimate();
        // A prompt no backend for this model can hold is refused before anything else looks at
        // it: the filter's cost grows with the text, so this bounds it too.
        let largest_context = cfg
            .backends
            .iter()
            .filter(|b| b.serves(&model) && route.accepts(b.protocol))
            .map(|b| b.max_context_tokens)
            .max();
        if let Some(largest) = largest_context.filter(|l| prompt_estimate > *l) {
            return Err(GatewayError::BadRequest(format!(
                "the prompt is about {prompt_estimate} tokens, more than the context of any \
                 backend serving '{model}' ({largest} tokens)"
            ))
            .into());
        }

        // 3. content filter (the body upload before it is the client's time, not ours)
        let mut mark = Instant::now();
        let mut extra = Extra::default();
        self.content_filter(rt, &consumer, &view, ctx, &mut extra)?;
        ctx.phase("filter", &mut mark);

        // 4. reserve the worst case: tokens in every window, dollars against today's budget
        let client_cap = view.client_output_cap();
        let choices = view.choices();
        if choices > server.max_choices {
            return Err(GatewayError::BadRequest(format!(
                "`n` is {choices}; this gateway allows at most {} choices per request",
                server.max_choices
            ))
            .into());
        }
        // The gateway's cap applies per choice; the worst case is every choice using it all.
        let per_choice = cfg.output_caps.cap_for(&model);
        let cap = client_cap.unwrap_or_else(|| per_choice.saturating_mul(choices));
        // The body the backend will get: the gateway adds its cap when the client set none.
        let inject = client_cap.is_none().then_some(per_choice);
        let admitted = match accounting::admit(
            &self.state,
            &consumer,
            &model,
            cfg.price_for(&model),
            prompt_estimate,
            cap,
            unix_now(),
        )
        .await
        {
            Ok(a) => a,
            Err(GatewayError::StateUnavailable { retry_after }) => {
                // Limits and budgets cannot be decided, but an answer this instance already holds
                // costs nothing and reserves nothing: the cache fails open.
                let plan = cache_plan(rt, &consumer, route, &view, session, &raw, inject);
                if let CachePlan::Use(key) = &plan {
                    if let Some(hit) = self.state.cache.get(key, Instant::now()) {
                        return self
                            .serve_hit(session, ctx, &consumer, &view, hit, extra)
                            .await;
                    }
                }
                return Err(GatewayError::StateUnavailable { retry_after }.into());
            }
            Err(e) => return Err(e.into()),
        };
        ctx.headroom = Some(admitted.headroom);
        extra.rate_limit(&admitted.headroom);
        if admitted.standing.warn() {
            extra.budget_warning(&admitted.standing);
        }
        ctx.reservation = Some(admitted.reservation);

        ctx.phase("limits", &mut mark);

        // 5. cache
        let plan = cache_plan(rt, &consumer, route, &view, session, &raw, inject);
        if let CachePlan::Use(key) = &plan {
            let mut found = self.state.cache.lookup(key, Instant::now());
            if found.is_none() {
                found = self.shared_cache_get(key, &cfg.cache).await;
            }
            self.state.cache.record(found.is_some());
            if let Some(hit) = found {
                if let Some(r) = ctx.reservation.take() {
                    accounting::release(&self.state, &r, unix_now()).await;
                }
                return self
                    .serve_hit(session, ctx, &consumer, &view, hit, extra)
                    .await;
            }
        }
        ctx.cache = if matches!(plan, CachePlan::Off) {
            "BYPASS"
        } else {
            "MISS"
        };
        extra.cache(ctx.cache);
        ctx.phase("cache", &mut mark);

        // Route and forward, failing over before any byte reached the client.
        let ask = routing::Ask {
            model: &model,
            route,
            consumer: &consumer,
            estimated_tokens: prompt_estimate,
        };
        let candidates = routing::candidates(&cfg.backends, &cfg.routing.rules, &ask);
        if candidates.is_empty() {
            return Err(GatewayError::ModelNotServed {
                model: model.clone(),
            }
            .into());
        }
        let Attempt {
            upstream,
            backend,
            permit,
            sent,
            deadline,
        } = self
            .attempt_until_answered(session, ctx, rt, &candidates, &view, &raw, inject)
            .await?;
        let status = upstream.status();
        if !(200..300).contains(&status) {
            // Providers do not bill failed or refused requests.
            ctx.usage = Some(Usage::default());
        }
        let circuit = &cfg.routing.circuit;
        permit.record(outcome_of_status(status, &upstream), circuit);

        if view.streaming() {
            if status >= 500 {
                upstream.discard().await;
                return Err(GatewayError::UpstreamFailed(format!("status {status}")).into());
            }
            let mut header = upstream.client_header(&backend.id)?;
            extra.apply(&mut header)?;
            ctx.status = status;
            // The gateway asked for usage when the client did not: that event is removed.
            let mut tap = match &view {
                RequestView::Messages(_) => SseTap::anthropic(),
                RequestView::Chat(c) => SseTap::new(!c.wants_usage()),
                _ => SseTap::new(false),
            };
            let piped = upstream.pipe(header, session, &mut tap).await;
            ctx.backend_ms = Some(ms_since(sent));
            if let Some(first) = tap.first_chunk {
                let ttft = first.duration_since(sent).as_secs_f64();
                ctx.ttft_ms = Some(ttft * 1000.0);
                if let Some(m) = metrics::get() {
                    m.ttft
                        .with_label_values(&[backend.id.as_str()])
                        .observe(ttft);
                }
            }
            // What was consumed, settled in `logging`: the stream's own usage, else the prompt
            // plus the text delivered so far, marked estimated. Never zero.
            if ctx.usage.is_none() {
                ctx.usage = Some(tap.usage.unwrap_or_else(|| {
                    if matches!(piped, Ok(PipeEnd::Complete)) {
                        if let Some(m) = metrics::get() {
                            m.streams_without_usage
                                .with_label_values(&[backend.id.as_str()])
                                .inc();
                        }
                        log::warn!(
                            target: "tollgate::usage",
                            "backend {} ended a stream without usage; settling on an estimate",
                            backend.id
                        );
                    }
                    Usage {
                        input: prompt_estimate,
                        output: tap.delivered_chars.div_ceil(4),
                        estimated: true,
                        ..Usage::default()
                    }
                }));
            }
            if piped? == PipeEnd::ClientGone {
                ctx.error = Some(GatewayError::ClientGone.label());
            }
            return Ok(());
        }

        // `/chat` is rewritten, so only a 2xx can become its answer; the other routes pass the
        // backend's own 4xx through.
        let lab = matches!(&view, RequestView::Lab(_));
        let ok = if lab {
            (200..300).contains(&status)
        } else {
            status < 500
        };
        if !ok {
            upstream.discard().await;
            return Err(GatewayError::UpstreamFailed(if lab {
                status.to_string()
            } else {
                format!("status {status}")
            })
            .into());
        }
        let mut header = upstream.client_header(&backend.id)?;
        let body = within(
            deadline,
            upstream.read_all(server.max_response_bytes, session),
        )
        .await?;
        let backend_ms = ms_since(sent);
        ctx.backend_ms = Some(backend_ms);

        // Settle with the reported usage (or an estimate, marked so).
        let reported = ctx
            .usage
            .or_else(|| request::reported_usage(&view, backend.protocol, &body));
        let (usage, answer_text) = match &view {
            RequestView::Lab(_) => {
                let text = request::lab_response_text(&body, backend.protocol)?;
                let usage = reported.unwrap_or_else(|| Usage {
                    input: prompt_estimate,
                    output: accounting::estimate_tokens(&text),
                    estimated: true,
                    ..Usage::default()
                });
                (usage, Some(text))
            }
            _ => (reported.unwrap_or_else(|| estimated(ctx)), None),
        };
        let cost = self.settle_now(ctx, usage).await;
        extra.cost(cost);
        if let Some(h) = ctx.headroom {
            // Report the window after settlement, when the real usage replaced the reservation.
            let c = &consumer;
            let limits = [c.tokens_per_minute, c.tokens_per_hour, c.tokens_per_day];
            let now = self.state.limiter.headroom(&c.id, limits, unix_now());
            extra.rate_limit(&Headroom {
                window: h.window,
                ..now
            });
            ctx.headroom = Some(now);
        }

        // Store successful complete answers.
        let stored_body = answer_text
            .clone()
            .map(bytes::Bytes::from)
            .unwrap_or(body.clone());
        if status == 200 {
            if let Some(key) = plan.store_key() {
                let entry = Entry {
                    body: stored_body,
                    expires: Instant::now() + cfg.cache.ttl,
                    input_tokens: usage.input,
                    output_tokens: usage.output,
                };
                self.shared_cache_put(&key, &entry, &cfg.cache);
                self.state.cache.put(key, entry, &cfg.cache);
            }
        }

        ctx.status = status;
        match answer_text {
            None => {
                header.remove_header("transfer-encoding");
                header
                    .insert_header("content-length", body.len().to_string())
                    .map_err(|_| GatewayError::Internal)?;
                extra.apply(&mut header)?;
                response::write_whole(session, header, body)
                    .await
                    .map_err(|_| Failure::Respond(GatewayError::ClientGone))
            }
            Some(text) => {
                let meta = self.metadata(ctx, &consumer, Some(&backend.id), backend_ms, &extra);
                let answer = json!({"response": text, "gateway_metadata": meta});
                extra.push("x-tollgate-backend", backend.id.clone());
                response::write_json(session, 200, answer.to_string().into(), &extra)
                    .await
                    .map_err(|_| Failure::Respond(GatewayError::ClientGone))
            }
        }
    }
}

/// The usage to settle on when a non-streamed OpenAI answer reports none.
fn estimated(ctx: &RequestCtx) -> Usage {
    ctx.reservation
        .as_ref()
        .map(Reservation::worst_case)
        .unwrap_or_default()
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn round1(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            route: None,
            consumer: None,
            model: None,
            backend: None,
            status: 0,
            error: None,
            backend_ms: None,
            filter: "-",
            filter_rule: None,
            cache: "-",
            reservation: None,
            upstream_called: false,
            headroom: None,
            usage: None,
            cost_nanos: None,
            tried: Vec::new(),
            in_flight: false,
            request_id: String::new(),
            ttft_ms: None,
            phases: Vec::new(),
            blocked: false,
        }
    }

    /// The first hook after Pingora parsed the header: the connection is in a request now.
    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        if !crate::connections::request_started(session.as_downstream()) {
            return Error::e_explain(
                ErrorType::ConnectionClosed,
                "the connection was closed by the idle-connection cap",
            );
        }
        Ok(())
    }

    /// Runs the whole pipeline and answers; always `Ok(true)` unless a response that already
    /// started must be aborted, in which case the error makes Pingora drop the connection.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let rt = self.live.current();
        ctx.request_id = self.request_id(session);
        if let Some(m) = metrics::get() {
            m.in_flight.inc();
            ctx.in_flight = true;
        }
        // The client socket is watched while the backend works (see `forward`). Bytes of a next
        // request seen by that watch are kept for the next request instead of being lost.
        session.set_pipelining_enabled(true);
        // Requests beyond the cap are refused at once, before their body is read: memory stays
        // bounded and clients learn when to come back.
        let _active = Active::enter(&self.active);
        let outcome = if _active.count > rt.config.server.max_in_flight {
            // A small body already sent is read off so the connection survives the refusal.
            body::discard_small(session, OVERLOAD_DISCARD_BYTES, LINGER).await;
            Err(Failure::Respond(GatewayError::Overloaded {
                retry_after: 1,
            }))
        } else {
            self.handle(session, ctx, &rt).await
        };
        match outcome {
            Ok(()) => Ok(true),
            Err(Failure::Respond(e)) => {
                ctx.status = e.status();
                ctx.error = Some(e.label());
                ctx.blocked = e.is_policy_refusal();
                // Settle before answering, so what the client sees and `/costs` agree.
                self.settle_open(ctx).await;
                if let (Some(m), Some(c)) = (metrics::get(), ctx.consumer.as_deref()) {
                    match &e {
                        GatewayError::RateLimited { window, .. } => {
                            m.rejections.with_label_values(&[c, window]).inc()
                        }
                        GatewayError::BudgetExceeded { .. } => {
                            m.rejections.with_label_values(&[c, "budget"]).inc()
                        }
                        _ => {}
                    }
                }
                if e == GatewayError::ClientGone {
                    return Error::e_explain(ErrorType::ConnectionClosed, "client went away");
                }
                // A body we did not read to the end must not be parsed as the next request.
                let unread = !session.is_body_done();
                if unread {
                    session.set_keepalive(None);
                }
                let mut extra = Extra::for_error(&e);
                if let (Some(h), GatewayError::BudgetExceeded { .. }) = (&ctx.headroom, &e) {
                    extra.rate_limit(h);
                }
                let dialect = Route::dialect_for_path(session.req_header().uri.path());
                if response::write_json(session, e.status(), e.body(dialect), &extra)
                    .await
                    .is_err()
                {
                    ctx.error = Some(GatewayError::ClientGone.label());
                } else if unread {
                    let limit = rt.config.server.max_body_bytes.saturating_mul(2);
                    body::linger(session, LINGER, limit).await;
                }
                Ok(true)
            }
            Err(Failure::Abort(e)) => {
                ctx.error = Some(e.label());
                Error::e_explain(
                    ErrorType::HTTPStatus(e.status()),
                    "upstream failed mid-response",
                )
            }
        }
    }

    /// Never reached: `request_filter` answers every request itself (see `forward`).
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        Error::e_explain(
            ErrorType::InternalError,
            "request_filter answers every request",
        )
    }

    /// Reached only to abort a response already under way: nothing more may be written.
    async fn fail_to_proxy(
        &self,
        _session: &mut Session,
        _e: &Error,
        _ctx: &mut RequestCtx,
    ) -> FailToProxy {
        FailToProxy {
            error_code: 0,
            can_reuse_downstream: false,
        }
    }

    /// Runs last on every path: settles what is still reserved, then logs one line.
    async fn logging(&self, _session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        self.settle_open(ctx).await;
        // The model as a label from the configuration (`other` for names it does not know).
        let rt = self.live.current();
        let model = ctx
            .model
            .as_deref()
            .map(|m| model_label(&rt.config, m))
            .unwrap_or("-");
        self.record_metrics(ctx, model);
        self.write_access_log(ctx, model);
        // Consumer id only: never the key, never prompt or response text.
        // At debug: the access log is the per-request record; this line is for diagnosis.
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
            ctx.filter,
            ctx.filter_rule.as_deref().unwrap_or("-"),
            ctx.cache,
            ctx.usage.map(|u| u.input).unwrap_or(0),
            ctx.usage.map(|u| u.output).unwrap_or(0),
            ctx.usage.is_some_and(|u| u.estimated),
            usd(ctx.cost_nanos.unwrap_or(0), 6),
            ctx.cost_nanos.unwrap_or(0),
            ctx.tried.len(),
            if ctx.tried.is_empty() { "-".to_string() } else { ctx.tried.join(",") },
            ms_since(ctx.started),
            ctx.backend_ms
                .map(|m| format!("{m:.1}"))
                .unwrap_or_else(|| "-".into()),
        );
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        // `logging` already reports every request with its outcome.
        true
    }
}

/// A client-chosen model name, made safe for a log line: bounded, printable, no spaces.
fn log_safe(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}
