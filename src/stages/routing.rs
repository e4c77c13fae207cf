//! Backend selection: which backend serves this request.
//!
//! Input: the configured backends and routing rules, the consumer, the requested model and route,
//! the request's estimated prompt tokens, a predicate saying which backends are usable now
//! (healthy, circuit closed, not already tried) and a tick from a shared counter.
//! Decision: the candidates are the backends that serve the model (directly, by alias, or as
//! `default`) over a protocol the route can use, with a non-zero weight, without those a
//! matching routing rule's `require` excludes. At each pick, among the usable candidates (healthy,
//! circuit closed, not tried), every matching rule's `prefer` in turn keeps only the ones with
//! its attributes when there are any (the lab's "prefer among healthy backends": a preferred
//! backend that is down hands over to the others instead of failing the request). Then the
//! lowest priority number wins; inside that group the pick is weighted round-robin by `weight`.
//! Lower-priority groups get traffic only while every higher one is unusable. No usable
//! candidate → `None`.

use crate::config::{Backend, Consumer, RouteRule, Want};
use crate::protocol::Route;
use std::sync::Arc;

/// What selection needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub model: &'a str,
    pub route: Route,
    pub consumer: &'a Consumer,
    /// Estimated prompt tokens.
    pub estimated_tokens: u64,
}

fn satisfies(b: &Backend, want: &Want, estimate: u64) -> bool {
    want.cost_tier.is_none_or(|t| b.cost_tier == t)
        && want
            .context_factor
            .is_none_or(|k| b.max_context_tokens >= estimate.saturating_mul(k))
}

fn applies(rule: &RouteRule, ask: &Ask) -> bool {
    let w = &rule.when;
    w.team.as_deref().is_none_or(|t| t == ask.consumer.team)
        && w.role.is_none_or(|r| r == ask.consumer.role)
        && w.consumer.as_deref().is_none_or(|c| c == ask.consumer.id)
        && w.model.as_deref().is_none_or(|m| m == ask.model)
        && w.estimated_tokens_over
            .is_none_or(|n| ask.estimated_tokens > n)
}

/// Whether `b` serves `model` over a protocol `route` can use (weights and rules aside).
fn can_serve(b: &Backend, model: &str, route: Route) -> bool {
    b.serves(model) && route.accepts(b.protocol)
}

/// The largest context of the backends that can serve `model` on `route`, if any can: a prompt
/// larger than it fits nowhere.
pub fn largest_context(backends: &[Arc<Backend>], model: &str, route: Route) -> Option<u64> {
    backends
        .iter()
        .filter(|b| can_serve(b, model, route))
        .map(|b| b.max_context_tokens)
        .max()
}

/// The backends that may serve a request, and the preferences applied at each pick.
#[derive(Debug)]
pub struct Candidates<'a> {
    /// In configuration order.
    pub backends: Vec<&'a Arc<Backend>>,
    /// The `prefer` of each matching rule, in rule order.
    prefer: Vec<&'a Want>,
    estimated_tokens: u64,
}

/// The backends that may serve `ask`, before health is considered: every matching rule's
/// `require` applied; its `prefer` is applied among the usable ones by [`pick`].
pub fn candidates<'a>(
    backends: &'a [Arc<Backend>],
    rules: &'a [RouteRule],
    ask: &Ask,
) -> Candidates<'a> {
    let matching: Vec<&RouteRule> = rules.iter().filter(|r| applies(r, ask)).collect();
    let backends = backends
        .iter()
        .filter(|b| b.weight > 0 && can_serve(b, ask.model, ask.route))
        .filter(|b| {
            matching
                .iter()
                .all(|r| satisfies(b, &r.require, ask.estimated_tokens))
        })
        .collect();
    Candidates {
        backends,
        prefer: matching.iter().map(|r| &r.prefer).collect(),
        estimated_tokens: ask.estimated_tokens,
    }
}

/// Picks among the candidates `usable` allows: each preference in turn narrows them when some
/// have it; then the lowest priority group, weighted round-robin.
pub fn pick<'a>(
    candidates: &Candidates<'a>,
    usable: impl Fn(&Backend) -> bool,
    tick: u64,
) -> Option<&'a Arc<Backend>> {
    let mut live: Vec<&Arc<Backend>> = candidates
        .backends
        .iter()
        .copied()
        .filter(|b| usable(b))
        .collect();
    for want in &candidates.prefer {
        let estimate = candidates.estimated_tokens;
        if live.iter().any(|b| satisfies(b, want, estimate)) {
            live.retain(|b| satisfies(b, want, estimate));
        }
    }
    let priority = live.iter().map(|b| b.priority).min()?;
    let group: Vec<&Arc<Backend>> = live
        .into_iter()
        .filter(|b| b.priority == priority)
        .collect();
    let total: u64 = group.iter().map(|b| u64::from(b.weight)).sum();
    let mut slot = tick.checked_rem(total)?;
    for b in group {
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
    use crate::config::{CostTier, Protocol, RouteMatch};

    fn backend(
        id: &str,
        protocol: Protocol,
        models: &[&str],
        priority: u32,
        weight: u32,
    ) -> Arc<Backend> {
        Arc::new(Backend::basic(id, protocol, models, priority, weight))
    }

    fn consumer(team: &str) -> Consumer {
        Consumer::basic("c", team, b"k")
    }

    fn picks(bs: &[Arc<Backend>], model: &str, route: Route, n: u64) -> Vec<String> {
        let c = consumer("t");
        let ask = Ask {
            model,
            route,
            consumer: &c,
            estimated_tokens: 10,
        };
        let cands = candidates(bs, &[], &ask);
        (0..n)
            .map(|t| {
                pick(&cands, |_| true, t)
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
    fn lower_priority_groups_get_nothing_while_a_higher_one_is_usable() {
        let bs = [
            backend("secondary", Protocol::LabAgent, &["default"], 2, 1),
            backend("primary", Protocol::LabAgent, &["default"], 1, 3),
        ];
        assert!(picks(&bs, "default", Route::LabChat, 50)
            .iter()
            .all(|id| id == "primary"));
        let c = consumer("t");
        let ask = Ask {
            model: "default",
            route: Route::LabChat,
            consumer: &c,
            estimated_tokens: 1,
        };
        let cands = candidates(&bs, &[], &ask);
        let got = pick(&cands, |b| b.id != "primary", 0).unwrap();
        assert_eq!(got.id, "secondary", "an unusable primary group hands over");
        assert!(pick(&cands, |_| false, 0).is_none());
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
        assert!(picks(&bs, "default", Route::ChatCompletions, 1)[0].is_empty());
        assert_eq!(picks(&bs, "gpt-4", Route::LabChat, 1)[0], "oai");
        assert!(picks(&bs, "nope", Route::LabChat, 1)[0].is_empty());
    }

    #[test]
    fn aliases_and_the_default_flag_make_a_backend_serve_a_model() {
        let mut b = Backend::basic("azure", Protocol::OpenAi, &["gpt4o-deployment"], 1, 1);
        b.aliases.insert("gpt-4o".into(), "gpt4o-deployment".into());
        b.default = true;
        assert!(b.serves("gpt-4o") && b.serves("default") && b.serves("gpt4o-deployment"));
        assert_eq!(b.renamed("gpt-4o"), Some("gpt4o-deployment"));
        assert!(!b.serves("gpt-3"));
    }

    #[test]
    fn rules_prefer_a_cost_tier_and_require_a_context_size() {
        let mut cheap = Backend::basic("cheap", Protocol::LabAgent, &["default"], 3, 1);
        cheap.cost_tier = CostTier::Low;
        cheap.max_context_tokens = 8_000;
        let mut big = Backend::basic("big", Protocol::LabAgent, &["default"], 1, 1);
        big.max_context_tokens = 200_000;
        let bs = [Arc::new(cheap), Arc::new(big)];
        let rules = [
            RouteRule {
                name: "interns".into(),
                when: RouteMatch {
                    team: Some("Intern Program".into()),
                    ..RouteMatch::default()
                },
                prefer: Want {
                    cost_tier: Some(CostTier::Low),
                    context_factor: None,
                },
                require: Want::default(),
            },
            RouteRule {
                name: "long".into(),
                when: RouteMatch {
                    estimated_tokens_over: Some(5_000),
                    ..RouteMatch::default()
                },
                prefer: Want::default(),
                require: Want {
                    cost_tier: None,
                    context_factor: Some(2),
                },
            },
        ];
        let intern = consumer("Intern Program");
        let other = consumer("Support");
        // The backend picked for `c` with `est` tokens when `down` is unusable (`-`: none).
        let chosen = |rules: &[RouteRule], c: &Consumer, est: u64, down: &str| -> String {
            let ask = Ask {
                model: "default",
                route: Route::LabChat,
                consumer: c,
                estimated_tokens: est,
            };
            let cands = candidates(&bs, rules, &ask);
            pick(&cands, |b| b.id != down, 0).map_or("-".into(), |b| b.id.clone())
        };
        assert_eq!(chosen(&rules, &intern, 100, ""), "cheap");
        assert_eq!(
            chosen(&rules, &intern, 100, "cheap"),
            "big",
            "preferred among the usable: an intern is not refused while the cheap tier is down"
        );
        assert_eq!(chosen(&rules, &other, 100, ""), "big", "by priority");
        assert_eq!(
            chosen(&rules, &intern, 6_000, ""),
            "big",
            "required context wins over the preference"
        );
        assert_eq!(
            chosen(&rules, &intern, 6_000, "big"),
            "-",
            "a requirement is not relaxed"
        );
        // The lab's large-context rule prefers: a large context when one is usable, else any.
        let mut lab = rules.clone();
        lab[1].prefer = lab[1].require;
        lab[1].require = Want::default();
        assert_eq!(chosen(&lab, &other, 6_000, ""), "big");
        assert_eq!(chosen(&lab, &other, 6_000, "big"), "cheap");
        assert_eq!(chosen(&lab, &intern, 6_000, "cheap"), "big");
    }

    #[test]
    fn the_largest_context_counts_only_backends_that_can_serve_the_request() {
        let mut small = Backend::basic("small", Protocol::OpenAi, &["m"], 1, 1);
        small.max_context_tokens = 8_000;
        let mut big = Backend::basic("big", Protocol::OpenAi, &["m"], 2, 0);
        big.max_context_tokens = 200_000;
        let mut other = Backend::basic("other", Protocol::LabAgent, &["m"], 1, 1);
        other.max_context_tokens = 1_000_000;
        let bs = [Arc::new(small), Arc::new(big), Arc::new(other)];
        assert_eq!(
            largest_context(&bs, "m", Route::ChatCompletions),
            Some(200_000),
            "a zero weight still bounds the context, as before"
        );
        assert_eq!(largest_context(&bs, "m", Route::LabChat), Some(1_000_000));
        assert_eq!(largest_context(&bs, "x", Route::ChatCompletions), None);
    }
}
