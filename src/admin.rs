//! The admin plane: a separate listener (default `127.0.0.1:9001`) for operators.
//!
//! `GET /health` answers without authentication (liveness; the consumer listener answers it
//! too). Everything else needs
//! `Authorization: Bearer <admin token>`, checked against the configured digest in constant time;
//! consumer keys never open it. Answers are JSON: `/ready`, `/costs` (spend per consumer today
//! and all time, with recent requests), `/stats` (the seed's aggregate), `/cache/stats`, `GET /admin/config` (active version,
//! load time; no secrets), `POST /admin/reload` (the problems as JSON when rejected);
//! `/metrics` in the Prometheus text format; and the issued API keys under `/keys`
//! ([`crate::admin_keys`]).

use crate::digest::KeyDigest;
use crate::metrics;
use crate::reload::Reloader;
use crate::reports;
use crate::runtime::LiveState;
use crate::state::{unix_now, utc_day, State};
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

pub struct Admin {
    live: LiveState,
    state: Arc<State>,
    reloader: Arc<Reloader>,
}

impl Admin {
    pub fn new(live: LiveState, state: Arc<State>, reloader: Arc<Reloader>) -> Self {
        Admin {
            live,
            state,
            reloader,
        }
    }

    /// Routes one admin request to its JSON answer; `token` is the presented bearer token, if
    /// any. (`GET /metrics`, the one text answer, is served by `response`.)
    pub fn answer(
        &self,
        method: &http::Method,
        path: &str,
        token: Option<&[u8]>,
    ) -> (StatusCode, Value) {
        let rt = self.live.current();
        if path == "/health" {
            return (StatusCode::OK, reports::health(&self.state, &rt));
        }
        if !is_admin(&rt, token) {
            return (
                StatusCode::UNAUTHORIZED,
                json!({"error": "admin token required: Authorization: Bearer <token>"}),
            );
        }
        match (method.as_str(), path) {
            ("GET", "/ready") => (
                StatusCode::OK,
                json!({
                    "status": "ready",
                    "consumers": rt.config.consumers.len(),
                    "backends": rt.config.backends.len(),
                }),
            ),
            ("GET", "/costs") => (StatusCode::OK, reports::costs(&self.state, &rt)),
            ("GET", "/stats") => (StatusCode::OK, self.state.stats.report()),
            ("GET", "/admin/config") => (
                StatusCode::OK,
                json!({
                    "path": self.reloader.path().display().to_string(),
                    "version": rt.version,
                    "loaded_at": rt.loaded_at,
                    "consumers": rt.config.consumers.len(),
                    "backends": rt.config.backends.len(),
                    "rules": rt.filter.rule_count(),
                    "classifier": rt.filter.classifier.as_ref().map(|c| json!({
                        "model": c.source,
                        "mode": c.mode.as_str(),
                        "thresholds": crate::config::Role::ALL
                            .map(|r| (r.as_str(), c.threshold(r)))
                            .into_iter()
                            .collect::<std::collections::BTreeMap<_, _>>(),
                    })),
                    "answer_rules": crate::config::Role::ALL
                        .iter()
                        .filter_map(|r| rt.filter.output[r.index()].as_ref().map(|o| (r.as_str(), json!({
                            "hold_back_bytes": o.hold_back(),
                            "capped": o.unbounded,
                        }))))
                        .collect::<std::collections::BTreeMap<_, _>>(),
                    "guardrail": rt.config.filter.guardrail.as_ref().map(|g| json!({
                        "preset": g.preset.as_str(),
                        "host": g.url.authority(),
                        "timeout_ms": g.timeout.as_millis() as u64,
                        "mode": g.mode.as_str(),
                    })),
                }),
            ),
            ("POST", "/admin/reload") => match self.reloader.reload() {
                Ok(done) => (
                    StatusCode::OK,
                    json!({
                        "result": "ok",
                        "version": done.version,
                        "not_applied": problems_json(&done.not_applied),
                    }),
                ),
                Err(problems) => (
                    StatusCode::BAD_REQUEST,
                    json!({"result": "error", "problems": problems_json(&problems)}),
                ),
            },
            ("GET", "/cache/stats") => (StatusCode::OK, reports::cache_stats(&self.state, &rt)),
            (
                _,
                "/ready" | "/metrics" | "/costs" | "/spend" | "/stats" | "/cache/stats"
                | "/admin/config" | "/admin/reload",
            ) => (StatusCode::METHOD_NOT_ALLOWED, json!({"error": "use GET"})),
            _ => (
                StatusCode::NOT_FOUND,
                json!({"error": "no such admin endpoint"}),
            ),
        }
    }
}

fn problems_json(problems: &[crate::config::Problem]) -> Value {
    problems
        .iter()
        .map(|p| json!({"path": p.path, "message": p.message}))
        .collect()
}

/// The admin plane's bearer token, parsed as the consumer plane parses `Authorization`.
fn bearer(session: &ServerSession) -> Option<&[u8]> {
    let v = session
        .req_header()
        .headers
        .get(http::header::AUTHORIZATION)?;
    crate::stages::auth::bearer_token(v.as_bytes())
}

/// Whether `token` is the admin token (constant-time comparison of digests).
fn is_admin(rt: &crate::runtime::Runtime, token: Option<&[u8]>) -> bool {
    token.is_some_and(|t| KeyDigest::of(t).ct_eq(&rt.config.server.admin.token))
}

impl Admin {
    /// The Prometheus text, with the gauges that mirror state brought up to date first.
    fn metrics_text(&self) -> String {
        let rt = self.live.current();
        if let Some(m) = metrics::get() {
            let now = unix_now();
            let day = utc_day(now);
            // With very many consumers, only those that spent today have the two series (the
            // others' are removed): 100,000 consumers would otherwise hold 200,000 series and
            // write them all at every scrape.
            let every = rt.config.consumers.len() <= metrics::PRIME_CONSUMERS_UP_TO;
            for c in &rt.config.consumers {
                let budget = c.daily_budget_micros.saturating_mul(1000);
                let s = self.state.spend.standing(&c.id, budget, day);
                if !every && s.spent == 0 {
                    let _ = m.budget_spent.remove_label_values(&[c.id.as_str()]);
                    let _ = m.budget_remaining.remove_label_values(&[c.id.as_str()]);
                    continue;
                }
                let spent = i64::try_from(s.spent).unwrap_or(i64::MAX);
                let left = i64::try_from(budget.saturating_sub(s.spent)).unwrap_or(i64::MAX);
                m.budget_spent
                    .with_label_values(&[c.id.as_str()])
                    .set(spent);
                m.budget_remaining
                    .with_label_values(&[c.id.as_str()])
                    .set(left);
            }
            let instant = Instant::now();
            for b in &rt.config.backends {
                let (circuit, healthy) = self.state.health.describe(&b.id, instant);
                m.backend_healthy
                    .with_label_values(&[b.id.as_str()])
                    .set(i64::from(healthy));
                m.backend_circuit
                    .with_label_values(&[b.id.as_str()])
                    .set(circuit.gauge());
            }
        }
        metrics::render()
    }
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        // A connection the idle cap closed meanwhile cannot carry the answer; it is dropped.
        let _ = crate::downstream::connections::request_started(session);
        let req = session.req_header();
        let (method, path) = (req.method.clone(), req.uri.path().to_string());
        let token = bearer(session);
        let rt = self.live.current();
        let (status, content_type, body) = match (method.as_str(), path.as_str()) {
            ("GET", "/metrics") if is_admin(&rt, token) => (
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics_text().into_bytes(),
            ),
            // With shared state, today's figures come from Redis (an await `answer` cannot do).
            ("GET", "/costs") if is_admin(&rt, token) => {
                let v = reports::page(crate::protocol::Page::Costs, &self.state, &rt).await;
                (
                    StatusCode::OK,
                    "application/json",
                    v.to_string().into_bytes(),
                )
            }
            ("GET", "/spend") if is_admin(&rt, token) => {
                let query = session.req_header().uri.query();
                let (status, content_type, body) = reports::spend(&self.state, query).await;
                (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    content_type,
                    body,
                )
            }
            // Issued API keys: their own module (it reads the request body).
            _ if crate::admin_keys::is_keys_path(&path) && is_admin(&rt, token) => {
                let (status, v) = crate::admin_keys::serve(&self.state.keys, &rt, session).await;
                (status, "application/json", v.to_string().into_bytes())
            }
            _ => {
                let (status, v) = self.answer(&method, &path, token);
                (status, "application/json", v.to_string().into_bytes())
            }
        };
        let len = body.len();
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .header("content-length", len)
            .body(body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::{AccessLog, Destination};
    use crate::runtime::Runtime;
    use http::Method;

    const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml");
    const TOKEN: &[u8] = b"demo-admin-token";

    fn admin() -> Admin {
        let rt: Runtime = crate::runtime::load_file(std::path::Path::new(DEMO)).unwrap();
        let live = LiveState::new(rt);
        let log = Arc::new(AccessLog::start(Destination::Off, 1));
        let reloader = Arc::new(Reloader::new(DEMO.into(), live.clone(), log));
        Admin::new(live, Arc::new(State::default()), reloader)
    }

    #[test]
    fn health_is_open_and_everything_else_needs_the_admin_token() {
        let a = admin();
        assert_eq!(a.answer(&Method::GET, "/health", None).0, StatusCode::OK);
        for path in [
            "/ready",
            "/costs",
            "/stats",
            "/cache/stats",
            "/admin/config",
        ] {
            assert_eq!(
                a.answer(&Method::GET, path, None).0,
                StatusCode::UNAUTHORIZED,
                "{path}"
            );
            assert_eq!(
                a.answer(&Method::GET, path, Some(b"key-team-support")).0,
                StatusCode::UNAUTHORIZED,
                "a consumer key never opens {path}"
            );
            assert_eq!(
                a.answer(&Method::GET, path, Some(TOKEN)).0,
                StatusCode::OK,
                "{path}"
            );
        }
    }

    #[test]
    fn the_keys_routes_need_the_admin_token_too() {
        let a = admin();
        assert_eq!(
            a.answer(&Method::GET, "/keys", None).0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            a.answer(&Method::POST, "/keys", Some(b"key-team-support"))
                .0,
            StatusCode::UNAUTHORIZED,
            "a consumer key never issues keys"
        );
    }

    #[test]
    fn wrong_methods_and_unknown_paths_are_told_apart() {
        let a = admin();
        let (status, body) = a.answer(&Method::POST, "/costs", Some(TOKEN));
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
        let (status, body) = a.answer(&Method::GET, "/nothing", Some(TOKEN));
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }

    #[test]
    fn costs_and_config_report_every_consumer_and_no_secret() {
        let a = admin();
        let (_, costs) = a.answer(&Method::GET, "/costs", Some(TOKEN));
        let consumers = costs["consumers"].as_object().unwrap();
        assert!(consumers.contains_key("team-support"), "{costs}");
        assert_eq!(consumers["team-support"]["spent_today_usd"], "0.000000");
        let (_, config) = a.answer(&Method::GET, "/admin/config", Some(TOKEN));
        assert!(config["rules"].as_u64().unwrap() > 0, "{config}");
        assert!(!config.to_string().contains("demo-admin-token"));
    }
}
