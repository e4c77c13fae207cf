//! The cache policy: whether a request may be answered from the response cache and stored in it,
//! and under which key.
//!
//! Input: the cache configuration, the consumer, the route and model, the request's headers
//! (`Cache-Control`, and those a backend forwards, which may change the answer) and its identity
//! (the canonical body, from the protocol's view).
//! Decision: off (disabled, a stream, `no-store`, a body that cannot be canonicalised), store only
//! (`no-cache`: never answered from the cache, the fresh answer is kept), or look up and store.
//! Keys are SHA-256 over the scope (the consumer id by default, the team, or nothing for
//! `global`), the route, the model and the identity, each length-prefixed so no two scopes can
//! share a key. The API key is never part of it.

use crate::config::types::header_pattern_matches;
use crate::config::{CacheConfig, CacheScope, Consumer};
use crate::protocol::Route;
use crate::state::cache::CacheKey;
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// Whether and how a request uses the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePlan {
    Off,
    /// Look up and store under this key.
    Use(CacheKey),
    /// `Cache-Control: no-cache`: do not answer from the cache, but store the fresh answer.
    StoreOnly(CacheKey),
}

impl CachePlan {
    /// The key to look up under, if the request may be answered from the cache.
    pub fn lookup_key(&self) -> Option<&CacheKey> {
        match self {
            CachePlan::Use(k) => Some(k),
            CachePlan::Off | CachePlan::StoreOnly(_) => None,
        }
    }

    /// The key to store a fresh answer under, if any.
    pub fn store_key(&self) -> Option<CacheKey> {
        match self {
            CachePlan::Off => None,
            CachePlan::Use(k) | CachePlan::StoreOnly(k) => Some(*k),
        }
    }
}

/// What the policy needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub consumer: &'a Consumer,
    pub route: Route,
    pub model: &'a str,
    pub streaming: bool,
    pub headers: &'a HeaderMap,
    /// Header names (or prefixes ending in `*`) some backend forwards: their values are part
    /// of the key.
    pub vary: &'a [String],
}

/// Decides how a request uses the cache. `identity` computes the request's canonical content
/// (only called when the cache may be used: it walks the whole body).
pub fn plan(
    cfg: &CacheConfig,
    req: Request<'_>,
    identity: impl FnOnce() -> Option<Vec<u8>>,
) -> CachePlan {
    if !cfg.enabled || req.streaming {
        return CachePlan::Off;
    }
    let directives: Vec<String> = req
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
    let Some(mut canonical) = identity() else {
        return CachePlan::Off;
    };
    canonical.extend_from_slice(&varying(req.headers, req.vary));
    let (kind, scope) = match cfg.scope {
        CacheScope::Consumer => ("consumer", req.consumer.id.as_str()),
        CacheScope::Team => ("team", req.consumer.team.as_str()),
        CacheScope::Global => ("global", ""),
    };
    let key = key(kind, scope, req.route.as_str(), req.model, &canonical);
    if directives.iter().any(|d| d == "no-cache") {
        CachePlan::StoreOnly(key)
    } else {
        CachePlan::Use(key)
    }
}

/// The headers in `vary` present in `headers`, sorted, as bytes to add to the key (each name and
/// value length-prefixed; nothing when there are none).
fn varying(headers: &HeaderMap, vary: &[String]) -> Vec<u8> {
    if vary.is_empty() {
        return Vec::new();
    }
    let mut found: Vec<(&str, &[u8])> = headers
        .iter()
        .filter(|(n, _)| vary.iter().any(|p| header_pattern_matches(p, n.as_str())))
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    found.sort_unstable();
    let mut out = Vec::new();
    for (name, value) in found {
        for part in [name.as_bytes(), value] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

/// The cache key for a request: `scope` is the consumer id, the team, or `""` (global).
pub fn key(scope_kind: &str, scope: &str, route: &str, model: &str, canonical: &[u8]) -> CacheKey {
    let mut h = Sha256::new();
    for part in [
        scope_kind.as_bytes(),
        scope.as_bytes(),
        route.as_bytes(),
        model.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(canonical);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::Duration;

    fn cfg(scope: CacheScope) -> CacheConfig {
        CacheConfig {
            enabled: true,
            scope,
            ttl: Duration::from_secs(60),
            max_entries: 10,
            max_bytes: 1 << 20,
            max_entry_bytes: 1 << 20,
        }
    }

    fn consumer(id: &str, team: &str) -> Consumer {
        Consumer::basic(id, team, id.as_bytes())
    }

    fn plan_for(c: &CacheConfig, who: &Consumer, cache_control: Option<&'static str>) -> CachePlan {
        let mut headers = HeaderMap::new();
        if let Some(v) = cache_control {
            headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static(v));
        }
        let req = Request {
            consumer: who,
            route: Route::ChatCompletions,
            model: "m",
            streaming: false,
            headers: &headers,
            vary: &[],
        };
        plan(c, req, || Some(b"{}".to_vec()))
    }

    #[test]
    fn scopes_never_share_keys() {
        assert_ne!(
            key("consumer", "a", "r", "m", b"{}"),
            key("consumer", "b", "r", "m", b"{}")
        );
        assert_ne!(
            key("consumer", "ab", "r", "", b"{}"),
            key("consumer", "a", "br", "", b"{}")
        );
    }

    #[test]
    fn consumers_share_entries_only_in_a_wider_scope() {
        let (a, b) = (consumer("a", "t"), consumer("b", "t"));
        let own = cfg(CacheScope::Consumer);
        assert_ne!(plan_for(&own, &a, None), plan_for(&own, &b, None));
        let team = cfg(CacheScope::Team);
        assert_eq!(plan_for(&team, &a, None), plan_for(&team, &b, None));
        let other_team = consumer("c", "u");
        assert_ne!(
            plan_for(&team, &a, None),
            plan_for(&team, &other_team, None)
        );
    }

    #[test]
    fn cache_control_turns_lookup_or_both_off() {
        let c = cfg(CacheScope::Consumer);
        let a = consumer("a", "t");
        assert!(plan_for(&c, &a, None).lookup_key().is_some());
        let fresh = plan_for(&c, &a, Some("max-age=0, No-Cache"));
        assert!(fresh.lookup_key().is_none() && fresh.store_key().is_some());
        assert_eq!(plan_for(&c, &a, Some("no-store")), CachePlan::Off);
    }

    #[test]
    fn streams_and_a_disabled_cache_never_use_it_nor_compute_the_identity() {
        let a = consumer("a", "t");
        let headers = HeaderMap::new();
        let stream = Request {
            consumer: &a,
            route: Route::ChatCompletions,
            model: "m",
            streaming: true,
            headers: &headers,
            vary: &[],
        };
        let never = || -> Option<Vec<u8>> { panic!("identity computed") };
        assert_eq!(
            plan(&cfg(CacheScope::Consumer), stream, never),
            CachePlan::Off
        );
        let disabled = CacheConfig {
            enabled: false,
            ..cfg(CacheScope::Consumer)
        };
        let req = Request {
            streaming: false,
            ..stream
        };
        assert_eq!(plan(&disabled, req, never), CachePlan::Off);
    }

    #[test]
    fn headers_a_backend_forwards_change_the_key_and_others_do_not() {
        let c = cfg(CacheScope::Consumer);
        let a = consumer("a", "t");
        let vary = ["x-mock-*".to_string(), "x-tenant".to_string()];
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (k, v) in pairs {
                headers.append(*k, HeaderValue::from_static(v));
            }
            let req = Request {
                consumer: &a,
                route: Route::ChatCompletions,
                model: "m",
                streaming: false,
                headers: &headers,
                vary: &vary,
            };
            plan(&c, req, || Some(b"{}".to_vec()))
        };
        let plain = with(&[]);
        assert_eq!(plain, with(&[("x-request-id", "1"), ("user-agent", "sdk")]));
        assert_ne!(plain, with(&[("x-mock-chunks", "2")]));
        assert_ne!(
            with(&[("x-mock-chunks", "2")]),
            with(&[("x-mock-chunks", "3")])
        );
        assert_eq!(
            with(&[("x-tenant", "1"), ("x-mock-a", "2")]),
            with(&[("x-mock-a", "2"), ("x-tenant", "1")]),
            "order does not matter"
        );
    }
}
