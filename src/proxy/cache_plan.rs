//! How a request uses the response cache: whether to look up and store, the key, and answering
//! a hit.

use super::*;

/// Whether and how a request uses the cache.
pub(super) enum CachePlan {
    Off,
    /// Look up and store under this key.
    Use(CacheKey),
    /// `Cache-Control: no-cache`: do not answer from the cache, but store the fresh answer.
    StoreOnly(CacheKey),
}

impl CachePlan {
    pub(super) fn store_key(&self) -> Option<CacheKey> {
        match self {
            CachePlan::Off => None,
            CachePlan::Use(k) | CachePlan::StoreOnly(k) => Some(*k),
        }
    }
}

/// Decides how a request uses the cache and computes its key.
pub(super) fn cache_plan(
    rt: &Runtime,
    consumer: &Consumer,
    route: Route,
    view: &RequestView,
    session: &Session,
    raw: &bytes::Bytes,
    inject: Option<u64>,
) -> CachePlan {
    let c = &rt.config.cache;
    if !c.enabled || view.streaming() {
        return CachePlan::Off;
    }
    let directives: Vec<String> = session
        .req_header()
        .headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    if directives.iter().any(|d| d == "no-store") {
        return CachePlan::Off;
    }
    let canonical = match view {
        RequestView::Chat(_) | RequestView::Messages(_) | RequestView::Embeddings(_) => {
            let cap = inject.map(|cap| ("max_tokens", json!(cap)));
            cache::canonical_json_with(raw, cap)
        }
        RequestView::Lab(l) => Some(
            json!({"message": l.message, "session_id": l.session_id})
                .to_string()
                .into_bytes(),
        ),
    };
    let Some(canonical) = canonical else {
        return CachePlan::Off;
    };
    let (kind, scope) = match c.scope {
        CacheScope::Consumer => ("consumer", consumer.id.as_str()),
        CacheScope::Team => ("team", consumer.team.as_str()),
        CacheScope::Global => ("global", ""),
    };
    let key = cache::key(kind, scope, route.as_str(), view.model(), &canonical);
    if directives.iter().any(|d| d == "no-cache") {
        CachePlan::StoreOnly(key)
    } else {
        CachePlan::Use(key)
    }
}

impl Gateway {
    /// Answers with a cached entry: counted as a hit, costing nothing.
    pub(super) async fn serve_hit(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        consumer: &Consumer,
        view: &RequestView,
        hit: Entry,
        mut extra: Extra,
    ) -> Result<(), Failure> {
        ctx.cache = "HIT";
        ctx.cost_nanos = Some(0);
        ctx.status = 200;
        extra.cache("HIT");
        extra.cost(0);
        let gone = |_| Failure::Respond(GatewayError::ClientGone);
        match view {
            RequestView::Chat(_) | RequestView::Messages(_) | RequestView::Embeddings(_) => {
                response::write_json(session, 200, hit.body, &extra)
                    .await
                    .map_err(gone)
            }
            RequestView::Lab(_) => {
                let text = String::from_utf8_lossy(&hit.body).into_owned();
                let meta = self.metadata(ctx, consumer, None, 0.0, &extra);
                let answer = json!({"response": text, "gateway_metadata": meta});
                response::write_json(session, 200, answer.to_string().into(), &extra)
                    .await
                    .map_err(gone)
            }
        }
    }
}
