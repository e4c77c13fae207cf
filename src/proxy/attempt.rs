//! Backend attempts: pick a usable backend, send, and fail over before any byte reached the
//! client (connect failure, timeout, 5xx, 429), resending the same body, up to
//! `routing.max_attempts`.

use super::*;

/// The attempt that got an answer header.
pub(super) struct Attempt<'a> {
    pub(super) upstream: crate::forward::Upstream<'a>,
    pub(super) backend: Arc<Backend>,
    pub(super) permit: Permit,
    pub(super) sent: Instant,
    /// End of the backend's `total` timeout, when it has one.
    pub(super) deadline: Option<Instant>,
}

/// What an answer's status means for the backend's circuit.
pub(super) fn outcome_of_status(status: u16, upstream: &crate::forward::Upstream<'_>) -> Outcome {
    match status {
        429 => match upstream.retry_after() {
            Some(d) => Outcome::BackOff(d),
            None => Outcome::Failure,
        },
        500..=599 => Outcome::Failure,
        200..=299 => Outcome::Success,
        _ => Outcome::Neutral,
    }
}

/// Runs `work` before `deadline` (if any), else `UpstreamTimeout`.
pub(super) async fn within<T>(
    deadline: Option<Instant>,
    work: impl std::future::Future<Output = Result<T, GatewayError>>,
) -> Result<T, GatewayError> {
    match deadline {
        None => work.await,
        Some(d) => tokio::time::timeout_at(d.into(), work)
            .await
            .unwrap_or(Err(GatewayError::UpstreamTimeout)),
    }
}

impl Gateway {
    /// Picks a backend, sends, and fails over to another usable one on a connect failure, a
    /// timeout or a retryable status (5xx, 429) — all before any byte reached the client, with
    /// the same body whatever its size — up to `routing.max_attempts`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn attempt_until_answered<'s>(
        &'s self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        candidates: &[&Arc<Backend>],
        view: &RequestView,
        raw: &bytes::Bytes,
        inject: Option<u64>,
    ) -> Result<Attempt<'s>, Failure> {
        let routing_cfg = &rt.config.routing;
        let health = &self.state.health;
        let mut last_error: Option<GatewayError> = None;
        let max = routing_cfg.max_attempts as usize;
        let mut routing_mark = Instant::now();
        while ctx.tried.len() < max {
            let now = Instant::now();
            let tick = self.round_robin.fetch_add(1, Ordering::Relaxed);
            let usable = |b: &Backend| {
                !ctx.tried.contains(&b.id)
                    && health.availability(&b.id, now) == Availability::Usable
            };
            let chosen = routing::pick(candidates, usable, tick).and_then(|b| {
                health
                    .acquire(&b.id, now, false)
                    .map(|p| (Arc::clone(b), p))
            });
            let (backend, permit) = match chosen {
                Some(c) => c,
                None if routing_cfg.fallback_to_unusable => {
                    let forced = candidates
                        .iter()
                        .filter(|b| !ctx.tried.contains(&b.id))
                        .min_by_key(|b| b.priority)
                        .and_then(|b| health.acquire(&b.id, now, true).map(|p| (Arc::clone(b), p)));
                    match forced {
                        Some(c) => c,
                        None => break,
                    }
                }
                None => break,
            };
            ctx.tried.push(backend.id.clone());
            ctx.backend = Some(backend.id.clone());
            let rename = backend.renamed(view.model());
            let out = request::outbound(view, raw.clone(), backend.protocol, inject, rename);
            let header = upstream::request_header(
                &backend,
                out.path,
                &session.req_header().headers,
                out.body.len(),
                out.rewritten,
            )?;
            let peer = upstream::peer(&backend, &self.resolver).await?;
            if ctx.tried.len() == 1 {
                ctx.phase("routing", &mut routing_mark);
            }
            let sent = Instant::now();
            let deadline = backend.timeouts.total.map(|t| sent + t);
            // From here the backend may be working on the request, unless it was never reached.
            ctx.upstream_called = true;
            let result = within(
                deadline,
                self.forwarder
                    .send(peer, header, out.body, backend.timeouts.idle, session),
            )
            .await;
            let attempts_left = ctx.tried.len() < max;
            match result {
                Ok(up) => {
                    let status = up.status();
                    let retryable = status >= 500 || status == 429;
                    if retryable && attempts_left && self.another_usable(candidates, ctx, now) {
                        log::warn!("backend {} answered {status}; trying another", backend.id);
                        permit.record(outcome_of_status(status, &up), &routing_cfg.circuit);
                        up.discard().await;
                        if let Some(m) = metrics::get() {
                            m.retries.with_label_values(&[backend.id.as_str()]).inc();
                        }
                        ctx.upstream_called = false;
                        last_error = Some(GatewayError::UpstreamFailed(format!("status {status}")));
                        continue;
                    }
                    return Ok(Attempt {
                        upstream: up,
                        backend,
                        permit,
                        sent,
                        deadline,
                    });
                }
                Err(GatewayError::ClientGone) => {
                    permit.record(Outcome::Neutral, &routing_cfg.circuit);
                    return Err(GatewayError::ClientGone.into());
                }
                Err(e) => {
                    log::warn!("backend {} failed: {}", backend.id, e.label());
                    permit.record(Outcome::Failure, &routing_cfg.circuit);
                    if let Some(m) = metrics::get() {
                        m.retries.with_label_values(&[backend.id.as_str()]).inc();
                    }
                    // A backend that was never reached consumed nothing.
                    ctx.upstream_called = e != GatewayError::UpstreamUnreachable;
                    last_error = Some(e);
                }
            }
        }
        Err(match last_error {
            Some(e) => e,
            None => GatewayError::NoBackendAvailable {
                retry_after: self.retry_in(candidates),
            },
        }
        .into())
    }

    pub(super) fn another_usable(
        &self,
        candidates: &[&Arc<Backend>],
        ctx: &RequestCtx,
        now: Instant,
    ) -> bool {
        candidates.iter().any(|b| {
            !ctx.tried.contains(&b.id)
                && self.state.health.availability(&b.id, now) == Availability::Usable
        })
    }

    /// Seconds until some candidate may be usable again (at least 1).
    pub(super) fn retry_in(&self, candidates: &[&Arc<Backend>]) -> u64 {
        let now = Instant::now();
        candidates
            .iter()
            .filter_map(|b| match self.state.health.availability(&b.id, now) {
                Availability::Unusable { retry_in } => Some(retry_in.as_secs_f64().ceil() as u64),
                Availability::Usable => None,
            })
            .min()
            .unwrap_or(1)
            .max(1)
    }
}
