//! The consumer plane: the `ProxyHttp` implementation. Its hooks are the table of contents of
//! the pipeline; each calls named phases, every decision is a plain function in a stage module
//! (`stages`) and every wire format lives in `protocol`.
//!
//! Why `request_filter` forwards: the body must be read before the upstream is chosen (the
//! consumer's model, the texts to filter and the token estimate are in it), and Pingora 0.9.1
//! then resends a body only from its retry buffer, capped at 64 KiB. So `request_filter` answers
//! every request itself (`Ok(true)`): it forwards with Pingora's pooled connector
//! (`upstream::forward`), which keeps bodies of any size intact, notices a departing client at
//! once, and was the cheapest path measured. `upstream_peer` is therefore never reached, and the
//! work Pingora's upstream and response hooks would do is done by the phases named after them
//! (see `docs/architecture.md`).
//!
//! `request_filter`, in order:
//! 1. [`admit`]: accept (route, framing, declared size) → authenticate → read the body →
//!    admit (parse, model allowlist, context, content filter, output cap) → reserve the worst
//!    case in every token window and against the budget;
//! 2. [`lookup`]: the response cache (a hit answers and releases the reservation);
//! 3. [`failover`]: choose the upstream (the work `upstream_peer` does in a textbook Pingora
//!    proxy) and forward, failing over before any byte reached the client;
//! 4. [`finish`]: finish the response (the work `response_filter` / `response_body_filter` would
//!    do): a stream event by event, or a whole answer with its usage, cost and cache store.
//!
//! `logging` runs on every exit path: it settles whatever is still reserved ([`settle`]), then
//! records the request once ([`record`]: metrics, statistics, one access-log line) and, with
//! tracing on, builds its spans from the instants the phases kept ([`spans`]).

mod admit;
mod answer;
mod ctx;
mod failover;
mod finish;
mod lookup;
mod record;
mod settle;
mod spans;

pub use ctx::{CacheOutcome, FilterOutcome, RequestCtx};

use crate::access_log::AccessLog;
use crate::downstream::body;
use crate::downstream::response::{self, Extra};
use crate::error::GatewayError;
use crate::metrics;
use crate::protocol::{self, Route};
use crate::runtime::{LiveState, Runtime};
use crate::state::State;
use crate::trace::Tracer;
use crate::upstream::forward::Forwarder;
use crate::upstream::guardrail::Guardrail;
use crate::upstream::peer::Resolver;
use async_trait::async_trait;
use ctx::Failure;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    /// The external guardrail's client (its own connection pool).
    guardrail: Guardrail,
    /// The weighted round-robin tick shared by every pick.
    round_robin: AtomicU64,
    access_log: Arc<AccessLog>,
    ids: RequestIds,
    /// Requests inside `request_filter` now (compared with `server.max_in_flight`).
    active: AtomicUsize,
    /// Traces, when `tracing.enabled` (fixed at start).
    tracer: Option<Arc<Tracer>>,
}

impl Gateway {
    pub fn new(
        live: LiveState,
        state: Arc<State>,
        resolver: Arc<Resolver>,
        access_log: Arc<AccessLog>,
        tracer: Option<Arc<Tracer>>,
    ) -> Self {
        Gateway {
            live,
            state,
            forwarder: Forwarder::default(),
            guardrail: Guardrail::new(Arc::clone(&resolver)),
            resolver,
            round_robin: AtomicU64::new(0),
            access_log,
            ids: RequestIds::new(),
            active: AtomicUsize::new(0),
            tracer,
        }
    }

    /// `request_filter`'s pipeline, in order; returns once the answer has been written.
    async fn run(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
    ) -> Result<(), Failure> {
        let server = &rt.config.server;
        admit::check_denied(server, ctx)?;
        let (route, declared) = admit::accept(session, ctx, server.max_body_bytes)?;
        if let Route::Page(page) = route {
            return record::answer_page(session, ctx, &self.state, rt, page).await;
        }
        let consumer = admit::authenticate(session, rt, &self.state.keys, ctx).await?;
        spans::note_consumer(ctx, &consumer);
        admit::check_address(&consumer, ctx)?;
        if route == Route::Models {
            return record::answer_models(session, ctx, &rt.config, &consumer).await;
        }
        let raw = body::read_bounded(
            session,
            declared,
            server.max_body_bytes,
            server.timeouts.client_body,
            server.timeouts.client_body_total,
        )
        .await?;
        let mut req = admit::screen(rt, ctx, consumer, route, raw)?;
        spans::note_admitted(ctx, &req);
        self.guard(rt, ctx, &mut req).await?;
        if let Err(e) = self.reserve(rt, ctx, &mut req).await {
            return self.fail_open_to_cache(session, ctx, rt, &req, e).await;
        }
        let Some(plan) = self.cache_phase(session, ctx, rt, &mut req).await? else {
            return Ok(());
        };
        let attempt = self.forward(session, ctx, rt, &req).await?;
        self.finish(session, ctx, rt, req, plan, attempt).await
    }

    /// Answers a request the pipeline could not complete: the error as JSON in the route's
    /// dialect (after settling, so what the client sees and `/costs` agree), or an abort when a
    /// response was already under way.
    async fn conclude(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        failure: Failure,
    ) -> Result<bool> {
        let e = match failure {
            Failure::Respond(e) => e,
            Failure::Abort(e) => {
                ctx.error = Some(e.label());
                return Error::e_explain(
                    ErrorType::HTTPStatus(e.status()),
                    "upstream failed mid-response",
                );
            }
        };
        ctx.status = e.status();
        ctx.error = Some(e.label());
        ctx.blocked = e.is_policy_refusal();
        self.settle_open(ctx).await;
        record::count_refusal(ctx, &e);
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
        let body = protocol::error_body(&e, dialect);
        if response::write_json(session, e.status(), body, &extra)
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
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    /// The first hook after Pingora parsed the header: the connection is in a request now.
    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        if !crate::downstream::connections::request_started(session.as_downstream()) {
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
        ctx.request_id = self.ids.for_request(session.req_header());
        if let Some(tracer) = &self.tracer {
            ctx.trace = Some(tracer.begin(&session.req_header().headers));
        }
        admit::identify(session, &rt.config.server, ctx);
        if let Some(m) = metrics::get() {
            m.in_flight.inc();
            ctx.in_flight = true;
        }
        // The client socket is watched while the backend works (see `upstream::forward`). Bytes
        // of a next request seen by that watch are kept for the next request, not lost.
        session.set_pipelining_enabled(true);
        // A client that stops reading its answer holds nothing for long: a write that stalls
        // past `write_ms` fails, the connection is closed and what it reserved is settled.
        session
            .as_downstream_mut()
            .set_write_timeout(Some(rt.config.server.timeouts.write));
        // Requests beyond the cap are refused at once, before their body is read: memory stays
        // bounded and clients learn when to come back.
        // The slot is held while the pipeline works and given back before any refusal is
        // written and its unread body lingered over: a flood of refusals cannot fill the cap.
        let slot = Slot::take(&self.active);
        let outcome = if slot.count > rt.config.server.max_in_flight {
            drop(slot);
            // A small body already sent is read off so the connection survives the refusal.
            body::discard_small(session, OVERLOAD_DISCARD_BYTES, LINGER).await;
            Err(Failure::Respond(GatewayError::Overloaded {
                retry_after: 1,
            }))
        } else {
            let outcome = self.run(session, ctx, &rt).await;
            drop(slot);
            outcome
        };
        match outcome {
            Ok(()) => Ok(true),
            Err(failure) => self.conclude(session, ctx, &rt, failure).await,
        }
    }

    /// Never reached: `request_filter` answers every request itself (see the module header).
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

    /// Runs last on every path: settles what is still reserved, then records the request once
    /// (and, with tracing on, its spans).
    async fn logging(&self, _session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        self.settle_open(ctx).await;
        let rt = self.live.current();
        self.record(ctx, &rt.config);
        if let (Some(tracer), Some(trace)) = (&self.tracer, &ctx.trace) {
            spans::export(tracer, ctx, trace);
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        // `logging` already reports every request with its outcome.
        true
    }
}

/// One request counted in [`Gateway::active`] for as long as it is handled.
struct Slot<'a> {
    counter: &'a AtomicUsize,
    /// Requests in flight including this one.
    count: usize,
}

impl<'a> Slot<'a> {
    fn take(counter: &'a AtomicUsize) -> Slot<'a> {
        let count = counter.fetch_add(1, Ordering::AcqRel) + 1;
        Slot { counter, count }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Request ids: the client's `x-request-id` when it is short and printable, else a fresh one.
struct RequestIds {
    /// Random per process, so ids from different instances differ.
    seed: u64,
    /// Sequence (separate from the round-robin tick, which must only count picks).
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let mut seed = [0u8; 8];
        let _ = getrandom::getrandom(&mut seed);
        RequestIds {
            seed: u64::from_le_bytes(seed),
            next: AtomicU64::new(0),
        }
    }

    fn for_request(&self, req: &RequestHeader) -> String {
        if let Some(v) = req.headers.get("x-request-id") {
            let b = v.as_bytes();
            if !b.is_empty() && b.len() <= 64 && b.iter().all(|c| c.is_ascii_graphic()) {
                return String::from_utf8_lossy(b).into_owned();
            }
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!(
            "tg-{:016x}",
            self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{RequestIds, Slot};
    use pingora::http::RequestHeader;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_in_flight_slot_is_given_back_however_the_request_ends() {
        let active = AtomicUsize::new(0);
        {
            let a = Slot::take(&active);
            let b = Slot::take(&active);
            assert_eq!((a.count, b.count), (1, 2));
        }
        assert_eq!(active.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_clean_client_request_id_is_kept_and_others_replaced() {
        let ids = RequestIds::new();
        let with = |v: &str| {
            let mut req = RequestHeader::build("POST", b"/chat", None).unwrap();
            req.insert_header("x-request-id", v).unwrap();
            ids.for_request(&req)
        };
        assert_eq!(with("abc-123"), "abc-123");
        assert!(with("has space").starts_with("tg-"));
        assert!(with(&"x".repeat(65)).starts_with("tg-"));
        let fresh = RequestHeader::build("POST", b"/chat", None).unwrap();
        assert_ne!(ids.for_request(&fresh), ids.for_request(&fresh));
    }
}
