//! The cache phase of `request_filter`: decide how the request uses the response cache (the
//! policy in `stages::cache`), look it up in both tiers, and answer a hit, which costs nothing
//! and releases the request's reservation.

use super::admit::Admitted;
use super::ctx::{client_gone, CacheOutcome, Failure, RequestCtx};
use super::record;
use super::Gateway;
use crate::downstream::response;
use crate::error::GatewayError;
use crate::protocol::{lab, RequestView};
use crate::runtime::Runtime;
use crate::stages::cache::{self, CachePlan};
use crate::state::cache::{Entry, Tiers};
use pingora::proxy::Session;

impl Gateway {
    /// Looks the request up; `None` when a hit answered it, else the plan for storing the fresh
    /// answer. The outcome is recorded and sent with the answer (`x-tollgate-cache`).
    pub(super) async fn cache_phase(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        req: &mut Admitted,
    ) -> Result<Option<CachePlan>, Failure> {
        let plan = plan(session, rt, req);
        if self
            .serve_cached(session, ctx, rt, req, &plan, Tiers::All)
            .await?
        {
            return Ok(None);
        }
        ctx.cache = match plan {
            CachePlan::Off => CacheOutcome::Bypass,
            CachePlan::Use(_) | CachePlan::StoreOnly(_) => CacheOutcome::Miss,
        };
        req.extra.cache(ctx.cache.as_str());
        ctx.phase("cache");
        Ok(Some(plan))
    }

    /// Limits and budgets could not be decided (`e`: the shared state is unavailable), but an
    /// answer this instance already holds costs nothing and reserves nothing: the cache fails
    /// open. Any other refusal stands.
    pub(super) async fn fail_open_to_cache(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        req: &Admitted,
        e: GatewayError,
    ) -> Result<(), Failure> {
        if matches!(e, GatewayError::StateUnavailable { .. }) {
            let plan = plan(session, rt, req);
            if self
                .serve_cached(session, ctx, rt, req, &plan, Tiers::Local)
                .await?
            {
                return Ok(());
            }
        }
        Err(e.into())
    }

    /// Answers from the cache when the plan allows a lookup and the tiers hold an answer.
    async fn serve_cached(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        req: &Admitted,
        plan: &CachePlan,
        tiers: Tiers,
    ) -> Result<bool, Failure> {
        let Some(key) = plan.lookup_key() else {
            return Ok(false);
        };
        let Some(hit) = self.state.cache.lookup(key, &rt.config.cache, tiers).await else {
            return Ok(false);
        };
        self.release_for_hit(ctx).await;
        serve_hit(session, ctx, req, hit).await?;
        Ok(true)
    }
}

/// How the request uses the cache (the cache policy stage, on the request's headers).
fn plan(session: &Session, rt: &Runtime, req: &Admitted) -> CachePlan {
    let request = cache::Request {
        consumer: &req.consumer,
        route: req.route,
        model: req.view.model(),
        streaming: req.view.streaming(),
        headers: &session.req_header().headers,
        vary: &rt.vary,
    };
    cache::plan(&rt.config.cache, request, || {
        req.view.cache_identity(&req.raw, req.cap.inject)
    })
}

/// Answers with a cached entry: counted as a hit, costing nothing.
async fn serve_hit(
    session: &mut Session,
    ctx: &mut RequestCtx,
    req: &Admitted,
    hit: Entry,
) -> Result<(), Failure> {
    ctx.cache = CacheOutcome::Hit;
    ctx.cost_nanos = Some(0);
    ctx.status = 200;
    let mut extra = req.extra.clone();
    extra.cache(ctx.cache.as_str());
    extra.cost(0);
    // Every answer names what answered it; here, no backend did.
    extra.push("x-tollgate-backend", "cache".into());
    let body = match &req.view {
        RequestView::Lab(_) => {
            let text = String::from_utf8_lossy(&hit.body).into_owned();
            let meta = record::metadata(ctx, &req.consumer, None, 0.0, &extra);
            lab::answer(&text, meta)
        }
        _ => hit.body,
    };
    response::write_json(session, 200, body, &extra)
        .await
        .map_err(client_gone)
}
