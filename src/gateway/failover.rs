//! Choosing the upstream and forwarding to it: the work `upstream_peer` does in a textbook
//! Pingora proxy, plus failover. The candidates come from `stages::routing`; each attempt picks
//! a usable one (healthy, circuit closed or half-open with its probe slot free, not tried yet;
//! lowest priority group, weighted round-robin), sends, and on a connect failure, a timeout, a
//! 5xx or a 429 tries another with the same body, whatever its size, as long as
//! `routing.max_attempts` allows and nothing has reached the client.

use super::admit::Admitted;
use super::ctx::{Failure, RequestCtx};
use super::Gateway;
use crate::config::Backend;
use crate::error::{Fault, GatewayError};
use crate::metrics;
use crate::runtime::Runtime;
use crate::stages::routing::{self, Candidates};
use crate::state::health::{Availability, Health, Outcome, Permit};
use crate::trace::RequestTrace;
use crate::upstream::forward::Upstream;
use crate::upstream::peer;
use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::upstreams::peer::HttpPeer;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The attempt that got an answer header.
pub(super) struct Attempt<'a> {
    pub upstream: Upstream<'a>,
    pub backend: Arc<Backend>,
    pub permit: Permit,
    pub sent: Instant,
    /// End of the backend's `total` timeout, when it has one.
    pub deadline: Option<Instant>,
}

/// What an answer's status means for the backend's circuit.
pub(super) fn outcome_of_status(status: u16, retry_after: Option<std::time::Duration>) -> Outcome {
    match status {
        429 => match retry_after {
            Some(d) => Outcome::BackOff(d),
            None => Outcome::Failure,
        },
        500..=599 => Outcome::Failure,
        200..=299 => Outcome::Success,
        _ => Outcome::Neutral,
    }
}

/// Whether an answer with `status` is worth another backend (nothing has reached the client).
fn retryable(status: u16) -> bool {
    status >= 500 || status == 429
}

/// Runs `work` before `deadline` (if any), else `UpstreamTimeout`.
pub(super) async fn within<T>(
    deadline: Option<Instant>,
    work: impl Future<Output = Result<T, GatewayError>>,
) -> Result<T, GatewayError> {
    match deadline {
        None => work.await,
        Some(d) => tokio::time::timeout_at(d.into(), work)
            .await
            .unwrap_or(Err(GatewayError::UpstreamTimeout)),
    }
}

impl Gateway {
    /// Chooses an upstream for `req` and forwards it, failing over as the module header says.
    pub(super) async fn forward<'s>(
        &'s self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        req: &Admitted,
    ) -> Result<Attempt<'s>, Failure> {
        let candidates = candidates(rt, req)?;
        let circuit = &rt.config.routing.circuit;
        let max = rt.config.routing.max_attempts as usize;
        let mut last_error = None;
        // Backends that could not take the request in their dialect: not attempts.
        let (mut skipped, mut refused) = (0, None);
        while ctx.tried.len() - skipped < max {
            let now = Instant::now();
            let Some((backend, permit)) = self.choose(&candidates, ctx, rt, now) else {
                break;
            };
            let (result, sent, deadline) = self.send(session, ctx, req, &backend).await;
            if let Some(t) = ctx.trace.as_deref_mut() {
                match &result {
                    Ok(upstream) => t.attempt_answered(upstream.status()),
                    Err(e) => t.attempt_failed(e.label()),
                }
            }
            let error = match result {
                Ok(upstream) => {
                    let status = upstream.status();
                    let again = retryable(status)
                        && ctx.tried.len() - skipped < max
                        && another_usable(&self.state.health, &candidates.backends, ctx, now);
                    if !again {
                        return Ok(Attempt {
                            upstream,
                            backend,
                            permit,
                            sent,
                            deadline,
                        });
                    }
                    log::warn!("backend {} answered {status}; trying another", backend.id);
                    permit.record(outcome_of_status(status, upstream.retry_after()), circuit);
                    upstream.discard().await;
                    if let Some(t) = ctx.trace.as_deref_mut() {
                        t.attempt_ended();
                    }
                    ctx.upstream_called = false;
                    GatewayError::UpstreamFailed(format!("status {status}"))
                }
                Err(e @ (GatewayError::ClientGone | GatewayError::Internal)) => {
                    permit.record(Outcome::Neutral, circuit);
                    return Err(e.into());
                }
                // The request cannot be put in this backend's dialect: another backend of the
                // pool may take it; if none does, the client learns which field.
                Err(e @ GatewayError::Untranslatable { .. }) => {
                    permit.record(Outcome::Neutral, circuit);
                    skipped += 1;
                    refused = Some(e);
                    continue;
                }
                // A body no dialect can carry (a tool call's arguments that are not JSON): the
                // same for every backend.
                Err(e) if e.fault() == Fault::Client => {
                    permit.record(Outcome::Neutral, circuit);
                    return Err(e.into());
                }
                Err(e) => {
                    log::warn!("backend {} failed: {}", backend.id, e.label());
                    permit.record(Outcome::Failure, circuit);
                    // A backend that was never reached consumed nothing; one that was may have
                    // (a timeout, a broken exchange), and is charged even if another answers.
                    if e != GatewayError::UpstreamUnreachable {
                        ctx.orphaned += 1;
                    }
                    ctx.upstream_called = false;
                    e
                }
            };
            if let Some(m) = metrics::get() {
                m.retries.with_label_values(&[backend.id.as_str()]).inc();
            }
            last_error = Some(error);
        }
        // An upstream failure of a backend that could take the request says more than the
        // refusal of one that could not.
        Err(last_error
            .or(refused)
            .unwrap_or_else(|| GatewayError::NoBackendAvailable {
                retry_after: retry_in(&self.state.health, &candidates.backends),
            })
            .into())
    }

    /// The next backend to try and the right to send to it: a usable candidate not tried yet,
    /// else (with `routing.fallback_to_unusable`) the untried one with the best priority.
    fn choose(
        &self,
        candidates: &Candidates,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        now: Instant,
    ) -> Option<(Arc<Backend>, Permit)> {
        let health = &self.state.health;
        let tick = self.round_robin.fetch_add(1, Ordering::Relaxed);
        let usable = |b: &Backend| {
            !ctx.tried.contains(&b.id) && health.availability(&b.id, now) == Availability::Usable
        };
        let acquire = |b: &&Arc<Backend>, force| {
            health
                .acquire(&b.id, now, force)
                .map(|p| (Arc::clone(b), p))
        };
        let chosen = routing::pick(candidates, usable, tick)
            .and_then(|b| acquire(&b, false))
            .or_else(|| {
                if !rt.config.routing.fallback_to_unusable {
                    return None;
                }
                candidates
                    .backends
                    .iter()
                    .filter(|b| !ctx.tried.contains(&b.id))
                    .min_by_key(|b| b.priority)
                    .and_then(|b| acquire(b, true))
            })?;
        ctx.tried.push(chosen.0.id.clone());
        ctx.backend = Some(chosen.0.id.clone());
        Some(chosen)
    }

    /// Sends `req` to `backend` and waits for its answer's header within the backend's total
    /// timeout; also returns when it was sent and that deadline. A name that does not resolve
    /// is `UpstreamUnreachable`, a backend failure like a refused connection.
    async fn send<'s>(
        &'s self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        req: &Admitted,
        backend: &Arc<Backend>,
    ) -> (Result<Upstream<'s>, GatewayError>, Instant, Option<Instant>) {
        let prepared = self.prepare(session, ctx, req, backend).await;
        let sent = Instant::now();
        let deadline = backend.timeouts.total.map(|t| sent + t);
        let result = match prepared {
            Ok(p) => {
                // From here the backend may be working on the request, unless it was never
                // reached.
                ctx.upstream_called = true;
                let idle = backend.timeouts.idle;
                within(deadline, self.send_to_any(p, idle, session)).await
            }
            Err(e) => Err(e),
        };
        (result, sent, deadline)
    }

    /// What goes to `backend`: the request header (hygiene, credential, with tracing on the
    /// attempt's `traceparent`), its peers (one per address its name resolves to, with their
    /// timeouts and TLS) and the body as that backend's protocol wants it.
    async fn prepare(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        req: &Admitted,
        backend: &Arc<Backend>,
    ) -> Result<Prepared, GatewayError> {
        let out = req
            .view
            .outbound(req.raw.clone(), backend, req.cap.inject, &req.neutral)?;
        let mut header = peer::request_header(
            backend,
            &out.path,
            &session.req_header().headers,
            &out.body,
            out.rewritten,
            ctx.forwarded_for.as_deref(),
        )?;
        if let Some(t) = ctx.trace.as_deref_mut() {
            propagate(&mut header, t, backend)?;
        }
        if ctx.tried.len() == 1 {
            ctx.phase("routing");
        }
        let turn = self.round_robin.load(Ordering::Relaxed) as usize;
        let peers = peer::peers(backend, &self.resolver, turn).await?;
        Ok(Prepared {
            header,
            peers,
            body: out.body,
        })
    }

    /// Sends to the backend's first address that accepts the connection.
    async fn send_to_any<'s>(
        &'s self,
        prepared: Prepared,
        idle: std::time::Duration,
        session: &mut Session,
    ) -> Result<Upstream<'s>, GatewayError> {
        let Prepared {
            header,
            peers,
            body,
        } = prepared;
        let last = peers.len().saturating_sub(1);
        for (i, peer) in peers.into_iter().enumerate() {
            let sent = self
                .forwarder
                .send(peer, header.clone(), body.clone(), idle, session)
                .await;
            match sent {
                Err(GatewayError::UpstreamUnreachable) if i < last => continue,
                other => return other,
            }
        }
        Err(GatewayError::UpstreamUnreachable)
    }
}

/// Opens the attempt's span and names it to the backend: the client's `traceparent` is
/// replaced by this trace and the attempt's span; its `tracestate`, forwarded with a valid
/// parent, is dropped with an invalid one (it belonged to a trace this request does not join).
fn propagate(
    header: &mut RequestHeader,
    trace: &mut RequestTrace,
    backend: &Arc<Backend>,
) -> Result<(), GatewayError> {
    let traceparent = trace.begin_attempt(backend);
    header
        .insert_header("traceparent", traceparent)
        .map_err(|_| GatewayError::Internal)?;
    if trace.parent.is_none() {
        header.remove_header("tracestate");
    }
    Ok(())
}

/// A request ready for one backend.
struct Prepared {
    header: RequestHeader,
    peers: Vec<HttpPeer>,
    body: Bytes,
}

/// The backends that may serve `req` (`stages::routing`), or 404 when none does.
fn candidates<'r>(rt: &'r Runtime, req: &Admitted) -> Result<Candidates<'r>, GatewayError> {
    let cfg = &rt.config;
    let ask = routing::Ask {
        model: req.view.model(),
        route: req.route,
        consumer: &req.consumer,
        estimated_tokens: req.prompt_estimate,
    };
    let candidates = routing::candidates(&cfg.backends, &cfg.routing.rules, &ask);
    if candidates.backends.is_empty() {
        return Err(GatewayError::ModelNotServed {
            model: ask.model.to_string(),
        });
    }
    Ok(candidates)
}

/// Whether a candidate not tried yet is usable now.
fn another_usable(
    health: &Health,
    candidates: &[&Arc<Backend>],
    ctx: &RequestCtx,
    now: Instant,
) -> bool {
    candidates.iter().any(|b| {
        !ctx.tried.contains(&b.id) && health.availability(&b.id, now) == Availability::Usable
    })
}

/// Seconds until some candidate may be usable again (at least 1).
fn retry_in(health: &Health, candidates: &[&Arc<Backend>]) -> u64 {
    let now = Instant::now();
    candidates
        .iter()
        .filter_map(|b| match health.availability(&b.id, now) {
            Availability::Unusable { retry_in } => Some(retry_in.as_secs_f64().ceil() as u64),
            Availability::Usable => None,
        })
        .min()
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::{another_usable, outcome_of_status, retry_in, retryable, within};
    use crate::config::Backend;
    use crate::config::{CircuitConfig, Protocol};
    use crate::error::GatewayError;
    use crate::gateway::ctx::RequestCtx;
    use crate::state::health::{Health, Outcome};
    use std::sync::Arc;
    use std::time::Duration;
    use std::time::Instant;

    fn cfg() -> CircuitConfig {
        CircuitConfig {
            failure_threshold: 1,
            window: Duration::from_secs(60),
            open_for: Duration::from_secs(30),
        }
    }

    #[test]
    fn server_errors_and_rate_limits_fail_over_and_client_errors_do_not() {
        assert!(retryable(500) && retryable(503) && retryable(429));
        assert!(!retryable(200) && !retryable(400) && !retryable(404));
    }

    #[test]
    fn statuses_count_for_the_circuit_as_the_breaker_expects() {
        let back_off = Some(Duration::from_secs(7));
        assert_eq!(
            outcome_of_status(429, back_off),
            Outcome::BackOff(Duration::from_secs(7))
        );
        assert_eq!(outcome_of_status(429, None), Outcome::Failure);
        assert_eq!(outcome_of_status(502, None), Outcome::Failure);
        assert_eq!(outcome_of_status(201, None), Outcome::Success);
        assert_eq!(
            outcome_of_status(400, None),
            Outcome::Neutral,
            "the request's fault"
        );
    }

    #[test]
    fn only_untried_usable_backends_count_as_another_and_retry_in_is_the_nearest_reopening() {
        let health = Arc::new(Health::default());
        let a = Arc::new(Backend::basic("a", Protocol::OpenAi, &["m"], 1, 1));
        let b = Arc::new(Backend::basic("b", Protocol::OpenAi, &["m"], 1, 1));
        let candidates = [&a, &b];
        let mut ctx = RequestCtx::new();
        ctx.tried.push("a".into());
        assert!(another_usable(&health, &candidates, &ctx, Instant::now()));
        // One failure opens b's circuit for 30 s with this breaker.
        health
            .acquire("b", Instant::now(), false)
            .unwrap()
            .record(Outcome::Failure, &cfg());
        assert!(!another_usable(&health, &candidates, &ctx, Instant::now()));
        let wait = retry_in(&health, &candidates);
        assert!((29..=30).contains(&wait), "{wait}");
        assert_eq!(retry_in(&health, &[&a]), 1, "at least a second");
    }

    #[tokio::test]
    async fn a_deadline_turns_slow_work_into_a_timeout() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, GatewayError>(())
        };
        let soon = Some(Instant::now() + Duration::from_millis(20));
        assert_eq!(within(soon, slow).await, Err(GatewayError::UpstreamTimeout));
        assert_eq!(
            within(None, async { Ok::<_, GatewayError>(1) }).await,
            Ok(1)
        );
    }
}
