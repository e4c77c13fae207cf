//! Active health checks: a background service that probes every backend with a `health_check`
//! at its interval and feeds the results to [`crate::state::health::Health`], which flips a
//! backend only after the consecutive-failure / consecutive-success thresholds (no flapping).
//!
//! The probes are `pingora-load-balancing`'s own ([`HttpHealthCheck`]: `GET path` expecting a
//! status, over TLS with the backend's SNI and CA when it is `https://`; [`TcpHealthCheck`]: a
//! connect), one per backend, built from its configuration and rebuilt when a reload changes it.
//! The schedule, the hysteresis and the per-backend state stay here: that crate's
//! `LoadBalancer` keys backends by address (several backends on one host, as Azure deployments
//! are, would merge) and knows nothing of priorities or circuits (`docs/architecture.md`).
//! Each probe is bounded by the check's timeout; a name that does not resolve fails the check.

use super::peer::{self, Resolver};
use crate::config::{Backend, CheckKind, HealthCheck as CheckConfig};
use crate::runtime::LiveState;
use crate::state::State;
use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::lb::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::upstreams::peer::BasicPeer;
use pingora::{Error, ErrorType};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the service looks for checks that are due.
const TICK: Duration = Duration::from_millis(100);

/// One backend's probe, with the configuration it was built from.
struct Probe {
    backend: Arc<Backend>,
    check: Arc<dyn HealthCheck + Send + Sync>,
}

pub struct HealthChecker {
    live: LiveState,
    state: Arc<State>,
    resolver: Arc<Resolver>,
    /// Backend id → when its next check is due, and whether one is running.
    schedule: Mutex<HashMap<String, (Instant, bool)>>,
    /// Backend id → its probe.
    probes: Mutex<HashMap<String, Probe>>,
}

impl HealthChecker {
    pub fn new(live: LiveState, state: Arc<State>, resolver: Arc<Resolver>) -> Arc<Self> {
        Arc::new(HealthChecker {
            live,
            state,
            resolver,
            schedule: Mutex::new(HashMap::new()),
            probes: Mutex::new(HashMap::new()),
        })
    }

    /// Backends whose check is due now; marks them running.
    fn due(&self, now: Instant) -> Vec<Arc<Backend>> {
        let rt = self.live.current();
        let mut schedule = self.schedule.lock().unwrap_or_else(|p| p.into_inner());
        let mut due = Vec::new();
        for b in rt
            .config
            .backends
            .iter()
            .filter(|b| b.health_check.is_some())
        {
            let entry = schedule.entry(b.id.clone()).or_insert((now, false));
            if !entry.1 && entry.0 <= now {
                entry.1 = true;
                due.push(Arc::clone(b));
            }
        }
        due
    }

    fn finished(&self, id: &str, next: Instant) {
        let mut schedule = self.schedule.lock().unwrap_or_else(|p| p.into_inner());
        schedule.insert(id.to_string(), (next, false));
    }

    /// The probe for `b`, built anew when its configuration changed (a reload).
    fn probe_for(&self, b: &Arc<Backend>, hc: &CheckConfig) -> Arc<dyn HealthCheck + Send + Sync> {
        let mut probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        match probes.get(&b.id) {
            Some(p) if Arc::ptr_eq(&p.backend, b) => Arc::clone(&p.check),
            _ => {
                let check = build_probe(b, hc);
                probes.insert(
                    b.id.clone(),
                    Probe {
                        backend: Arc::clone(b),
                        check: Arc::clone(&check),
                    },
                );
                check
            }
        }
    }

    async fn check(&self, b: &Arc<Backend>) -> bool {
        let Some(hc) = &b.health_check else {
            return true;
        };
        let probe = self.probe_for(b, hc);
        let run = async {
            let addrs = self
                .resolver
                .resolve(&b.url.host, b.url.port, hc.timeout)
                .await;
            let target = pingora::lb::Backend::new(&addrs.ok()?.first()?.to_string()).ok()?;
            Some(probe.check(&target).await.is_ok())
        };
        matches!(tokio::time::timeout(hc.timeout, run).await, Ok(Some(true)))
    }
}

/// `pingora-load-balancing`'s probe for a backend's configured check, with the check's timeout
/// on every step and, for HTTP over TLS, the backend's SNI, CA and verification.
fn build_probe(b: &Backend, hc: &CheckConfig) -> Arc<dyn HealthCheck + Send + Sync> {
    match &hc.kind {
        CheckKind::Tcp => {
            let mut tcp = TcpHealthCheck::new();
            let mut template = BasicPeer::new("0.0.0.0:1");
            template.options.connection_timeout = Some(hc.timeout);
            template.options.total_connection_timeout = Some(hc.timeout);
            tcp.peer_template = template;
            Arc::from(tcp as Box<dyn HealthCheck + Send + Sync>)
        }
        CheckKind::Http {
            path,
            expected_status,
        } => {
            let mut http = HttpHealthCheck::new(&b.url.host, b.url.tls);
            let unspecified = std::net::SocketAddr::from(([0, 0, 0, 0], 1));
            let mut template = peer::peer_at(b, unspecified);
            let o = &mut template.options;
            o.connection_timeout = Some(hc.timeout);
            o.total_connection_timeout = Some(hc.timeout);
            o.read_timeout = Some(hc.timeout);
            o.write_timeout = Some(hc.timeout);
            http.peer_template = template;
            if let Some(req) = probe_request(b, path) {
                http.req = req;
            }
            let expected = *expected_status;
            http.validator = Some(Box::new(move |resp: &ResponseHeader| {
                if resp.status.as_u16() == expected {
                    Ok(())
                } else {
                    Error::e_explain(
                        ErrorType::CustomCode("unexpected status", resp.status.as_u16()),
                        "during the health check",
                    )
                }
            }));
            Arc::new(http)
        }
    }
}

/// `GET {prefix}{path}` with the backend's `Host`, naming the gateway as the agent.
fn probe_request(b: &Backend, path: &str) -> Option<RequestHeader> {
    let full = format!("{}{}", b.url.path_prefix, path);
    let mut req = RequestHeader::build("GET", full.as_bytes(), Some(2)).ok()?;
    req.insert_header("host", b.url.authority()).ok()?;
    req.insert_header("user-agent", "tollgate-health-check")
        .ok()?;
    Some(req)
}

/// The service wrapper Pingora runs.
pub struct HealthService(pub Arc<HealthChecker>);

#[async_trait]
impl BackgroundService for HealthService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            for b in self.0.due(Instant::now()) {
                let checker = Arc::clone(&self.0);
                tokio::spawn(async move {
                    let ok = checker.check(&b).await;
                    log::debug!(
                        "health check of {}: {}",
                        b.id,
                        if ok { "ok" } else { "failed" }
                    );
                    if let Some(hc) = &b.health_check {
                        checker.state.health.check_result(
                            &b.id,
                            ok,
                            hc.healthy_threshold,
                            hc.unhealthy_threshold,
                        );
                        checker.finished(&b.id, Instant::now() + hc.interval);
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackendUrl, Protocol};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn backend(port: u16, kind: CheckKind) -> Arc<Backend> {
        let mut b = Backend::basic("b", Protocol::OpenAi, &["m"], 1, 1);
        b.url = BackendUrl::parse(&format!("http://127.0.0.1:{port}/api")).unwrap();
        b.health_check = Some(CheckConfig {
            kind,
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            unhealthy_threshold: 1,
            healthy_threshold: 1,
        });
        Arc::new(b)
    }

    fn checker() -> Arc<HealthChecker> {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml"))
            .unwrap();
        let rt = crate::runtime::load_str(&text, &|_| None).unwrap();
        HealthChecker::new(
            LiveState::new(rt),
            Arc::new(State::default()),
            Arc::new(Resolver::default()),
        )
    }

    /// A server answering every request with `status`, recording the request lines.
    async fn server(status: u16) -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                log.lock().unwrap().push(head);
                let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        (port, seen)
    }

    #[tokio::test]
    async fn an_http_check_passes_on_the_expected_status_only() {
        let (port, seen) = server(204).await;
        let http = |expected| CheckKind::Http {
            path: "/health".into(),
            expected_status: expected,
        };
        let c = checker();
        assert!(c.check(&backend(port, http(204))).await);
        assert!(!c.check(&backend(port, http(200))).await);
        let head = seen.lock().unwrap()[0].clone();
        assert!(head.starts_with("GET /api/health HTTP/1.1"), "{head}");
        assert!(head
            .to_ascii_lowercase()
            .contains(&format!("host: 127.0.0.1:{port}")));
    }

    #[tokio::test]
    async fn a_tcp_check_passes_while_something_listens() {
        let (port, _) = server(200).await;
        let c = checker();
        assert!(c.check(&backend(port, CheckKind::Tcp)).await);
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert!(!c.check(&backend(closed, CheckKind::Tcp)).await);
    }

    #[tokio::test]
    async fn a_probe_is_rebuilt_when_a_reload_changes_the_backend() {
        let c = checker();
        let a = backend(1, CheckKind::Tcp);
        let hc = a.health_check.clone().unwrap();
        let first = c.probe_for(&a, &hc);
        assert!(Arc::ptr_eq(&first, &c.probe_for(&a, &hc)));
        let reloaded = backend(1, CheckKind::Tcp);
        assert!(!Arc::ptr_eq(&first, &c.probe_for(&reloaded, &hc)));
    }
}
