//! The consumer plane: the `ProxyHttp` implementation. It only sequences the pipeline stages;
//! every decision is a plain function in its stage module.
//!
//! `request_filter` answers every request itself (returning `Ok(true)`): it reads the body,
//! authenticates, checks the model, picks a backend and forwards through [`crate::forward`].
//! `logging` runs on every exit path and writes the one diagnostic line per request.

use crate::auth;
use crate::body;
use crate::error::GatewayError;
use crate::forward::{Forwarder, MidStream, PipeEnd};
use crate::request::{self, RequestView, Route};
use crate::routing;
use crate::runtime::{LiveState, Runtime};
use crate::upstream;
use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long an early answer waits, discarding, for a client still sending its body.
const LINGER: Duration = Duration::from_secs(1);

/// The gateway's proxy service.
pub struct Gateway {
    live: LiveState,
    forwarder: Forwarder,
    round_robin: AtomicU64,
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

impl Gateway {
    pub fn new(live: LiveState) -> Self {
        Gateway {
            live,
            forwarder: Forwarder::default(),
            round_robin: AtomicU64::new(0),
        }
    }

    /// The pipeline, in order. Returns once the response has been written.
    async fn handle(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
    ) -> Result<(), Failure> {
        let server = &rt.config.server;
        let req = session.req_header();
        let route = Route::resolve(&req.method, req.uri.path())?;
        ctx.route = Some(route);

        // Size first: an oversized upload is refused before anything is read or continued.
        let declared = body::check_declared(
            req.headers
                .get(http::header::CONTENT_LENGTH)
                .map(|v| v.as_bytes()),
            server.max_body_bytes,
        )?;

        // 1. authenticate
        let consumer = auth::presented_key(&req.headers)
            .and_then(|key| rt.keys.authenticate(key))
            .cloned()
            .ok_or(GatewayError::Unauthorized)?;
        ctx.consumer = Some(consumer.id.clone());

        // Read and parse the body.
        let raw = body::read_bounded(
            session,
            declared,
            server.max_body_bytes,
            server.timeouts.client_body,
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

        // Route.
        let tick = self.round_robin.fetch_add(1, Ordering::Relaxed);
        let backend = routing::select(&rt.config.backends, &model, route, tick)
            .cloned()
            .ok_or(GatewayError::ModelNotServed {
                model: model.clone(),
            })?;
        ctx.backend = Some(backend.id.clone());

        let out = request::outbound(&view, raw, backend.protocol);
        let header = upstream::request_header(
            &backend,
            out.path,
            &session.req_header().headers,
            out.body.len(),
            out.rewritten,
        )?;
        let peer = upstream::peer(&backend, &server.timeouts).await?;

        let sent = Instant::now();
        let upstream = self
            .forwarder
            .send(
                peer,
                header,
                out.body,
                server.timeouts.upstream_idle,
                session,
            )
            .await?;
        let status = upstream.status();

        match &view {
            RequestView::Chat(_) => {
                if status >= 500 {
                    upstream.discard().await;
                    return Err(GatewayError::UpstreamFailed(format!("status {status}")).into());
                }
                let client_header = upstream.client_header(&backend.id)?;
                ctx.status = status;
                let end = upstream.pipe(client_header, session).await?;
                ctx.backend_ms = Some(ms_since(sent));
                if end == PipeEnd::ClientGone {
                    ctx.error = Some(GatewayError::ClientGone.label());
                }
                Ok(())
            }
            RequestView::Lab(_) => {
                if !(200..300).contains(&status) {
                    upstream.discard().await;
                    return Err(GatewayError::UpstreamFailed(status.to_string()).into());
                }
                let body = upstream
                    .read_all(server.max_response_bytes, session)
                    .await?;
                let backend_ms = ms_since(sent);
                ctx.backend_ms = Some(backend_ms);
                let text = request::lab_response_text(&body, backend.protocol)?;
                let answer = json!({
                    "response": text,
                    "gateway_metadata": {
                        "consumer_id": consumer.id,
                        "consumer_team": consumer.team,
                        "model": model,
                        "routed_to": backend.id,
                        "latency_ms": round1(ms_since(ctx.started)),
                        "backend_latency_ms": round1(backend_ms),
                    }
                });
                let extra = [("x-tollgate-backend", backend.id.as_str())];
                write_json(session, 200, answer.to_string().into(), &extra)
                    .await
                    .map_err(|_| Failure::Respond(GatewayError::ClientGone))?;
                ctx.status = 200;
                Ok(())
            }
        }
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn round1(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// Writes a complete JSON response.
async fn write_json(
    session: &mut Session,
    status: u16,
    body: Bytes,
    extra: &[(&'static str, &str)],
) -> pingora::Result<()> {
    let mut h = ResponseHeader::build(status, Some(3 + extra.len()))?;
    h.insert_header("content-type", "application/json")?;
    h.insert_header("content-length", body.len().to_string())?;
    for (k, v) in extra {
        h.insert_header(*k, *v)?;
    }
    session.write_response_header(Box::new(h), false).await?;
    session.write_response_body(Some(body), true).await
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
        }
    }

    /// Runs the whole pipeline and answers; always `Ok(true)` unless a response that already
    /// started must be aborted, in which case the error makes Pingora drop the connection.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let rt = self.live.current();
        // The client socket is watched while the backend works (see `forward`). Bytes of a next
        // request seen by that watch are kept for the next request instead of being lost.
        session.set_pipelining_enabled(true);
        match self.handle(session, ctx, &rt).await {
            Ok(()) => Ok(true),
            Err(Failure::Respond(e)) => {
                ctx.status = e.status();
                ctx.error = Some(e.label());
                if e == GatewayError::ClientGone {
                    return Error::e_explain(ErrorType::ConnectionClosed, "client went away");
                }
                // A body we did not read to the end must not be parsed as the next request.
                let unread = !session.is_body_done();
                if unread {
                    session.set_keepalive(None);
                }
                let dialect = Route::dialect_for_path(session.req_header().uri.path());
                if write_json(session, e.status(), e.body(dialect), &[])
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

    async fn logging(&self, _session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        // Consumer id only: never the key, never prompt or response text.
        log::info!(
            target: "tollgate::request",
            "route={} consumer={} model={} backend={} status={} error={} latency_ms={:.1} backend_ms={}",
            ctx.route.map(Route::as_str).unwrap_or("-"),
            ctx.consumer.as_deref().unwrap_or("-"),
            ctx.model.as_deref().map(log_safe).unwrap_or_else(|| "-".into()),
            ctx.backend.as_deref().unwrap_or("-"),
            ctx.status,
            ctx.error.unwrap_or("-"),
            ms_since(ctx.started),
            ctx.backend_ms.map(|m| format!("{m:.1}")).unwrap_or_else(|| "-".into()),
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
