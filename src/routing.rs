//! Backend selection: which backend serves this request.
//!
//! Input: the configured backends, the requested model, the route and a tick from a shared
//! counter. Decision: among backends that serve the model and speak a protocol the route can use,
//! the lowest priority number with any non-zero weight wins; inside that group the pick is
//! weighted round-robin by `weight` (the seed's 3:1 primary/secondary). No candidate → `None`.
//! Health, circuit state and routing rules join this function in later stages.

use crate::config::Backend;
use crate::request::Route;
use std::sync::Arc;

/// Picks a backend for `model` on `route`; `tick` advances the round-robin.
pub fn select<'a>(
    backends: &'a [Arc<Backend>],
    model: &str,
    route: Route,
    tick: u64,
) -> Option<&'a Arc<Backend>> {
    let usable = |b: &&Arc<Backend>| b.weight > 0 && b.serves(model) && route.accepts(b.protocol);
    let priority = backends.iter().filter(usable).map(|b| b.priority).min()?;
    let group = || {
        backends
            .iter()
            .filter(usable)
            .filter(move |b| b.priority == priority)
    };
    let total: u64 = group().map(|b| u64::from(b.weight)).sum();
    let mut slot = tick % total;
    for b in group() {
        let w = u64::from(b.weight);
        if slot < w {
            return Some(b);
        }
        slot -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackendUrl, CostTier, Protocol};

    fn backend(
        id: &str,
        protocol: Protocol,
        models: &[&str],
        priority: u32,
        weight: u32,
    ) -> Arc<Backend> {
        Arc::new(Backend {
            id: id.into(),
            url: BackendUrl::parse("http://127.0.0.1:1").unwrap(),
            protocol,
            models: models.iter().map(|m| m.to_string()).collect(),
            priority,
            weight,
            max_context_tokens: 1000,
            cost_tier: CostTier::Medium,
            credential: None,
        })
    }

    fn picks(backends: &[Arc<Backend>], model: &str, route: Route, n: u64) -> Vec<String> {
        (0..n)
            .map(|t| {
                select(backends, model, route, t)
                    .map(|b| b.id.clone())
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn weights_split_traffic_three_to_one_within_a_priority_group() {
        let bs = [
            backend("primary", Protocol::LabAgent, &["default"], 1, 3),
            backend("also-primary", Protocol::LabAgent, &["default"], 1, 1),
        ];
        let got = picks(&bs, "default", Route::LabChat, 400);
        assert_eq!(got.iter().filter(|id| *id == "primary").count(), 300);
        assert_eq!(got.iter().filter(|id| *id == "also-primary").count(), 100);
    }

    #[test]
    fn lower_priority_groups_get_nothing_while_a_higher_one_exists() {
        let bs = [
            backend("secondary", Protocol::LabAgent, &["default"], 2, 1),
            backend("primary", Protocol::LabAgent, &["default"], 1, 3),
        ];
        assert!(picks(&bs, "default", Route::LabChat, 50)
            .iter()
            .all(|id| id == "primary"));
    }

    #[test]
    fn never_picks_a_zero_weight_backend() {
        let bs = [
            backend("drained", Protocol::OpenAi, &["gpt-4"], 1, 0),
            backend("live", Protocol::OpenAi, &["gpt-4"], 2, 1),
        ];
        assert!(picks(&bs, "gpt-4", Route::ChatCompletions, 20)
            .iter()
            .all(|id| id == "live"));
    }

    #[test]
    fn only_backends_serving_the_model_and_route_protocol_are_candidates() {
        let bs = [
            backend("agent", Protocol::LabAgent, &["default"], 1, 1),
            backend("oai", Protocol::OpenAi, &["gpt-4"], 1, 1),
        ];
        assert!(select(&bs, "default", Route::ChatCompletions, 0).is_none());
        assert_eq!(select(&bs, "gpt-4", Route::LabChat, 0).unwrap().id, "oai");
        assert!(select(&bs, "nope", Route::LabChat, 0).is_none());
    }
}
