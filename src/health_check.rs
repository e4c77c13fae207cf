//! Active health checks: a background service that probes every backend with a `health_check`
//! at its interval (HTTP `GET path` expecting a status, or a TCP connect), each probe bounded by
//! its timeout, and feeds the results to [`crate::state::health::Health`], which flips a backend
//! only after the consecutive-failure / consecutive-success thresholds (no flapping).
//! Backends come from the live configuration at every tick, so a reload takes effect.

use crate::config::{Backend, CheckKind};
use crate::forward::Forwarder;
use crate::runtime::LiveState;
use crate::state::State;
use crate::upstream::{self, Resolver};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the service looks for checks that are due.
const TICK: Duration = Duration::from_millis(100);

pub struct HealthChecker {
    live: LiveState,
    state: Arc<State>,
    resolver: Arc<Resolver>,
    forwarder: Arc<Forwarder>,
    /// Backend id → when its next check is due, and whether one is running.
    schedule: Mutex<HashMap<String, (Instant, bool)>>,
}

impl HealthChecker {
    pub fn new(live: LiveState, state: Arc<State>, resolver: Arc<Resolver>) -> Arc<Self> {
        Arc::new(HealthChecker {
            live,
            state,
            resolver,
            forwarder: Arc::new(Forwarder::default()),
            schedule: Mutex::new(HashMap::new()),
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

    async fn check(&self, b: &Backend) -> bool {
        let Some(hc) = &b.health_check else {
            return true;
        };
        let probe = async {
            match &hc.kind {
                CheckKind::Tcp => {
                    let addr = self.resolver.resolve(&b.url.host, b.url.port).await.ok()?;
                    tokio::net::TcpStream::connect(addr)
                        .await
                        .ok()
                        .map(|_| true)
                }
                CheckKind::Http {
                    path,
                    expected_status,
                } => {
                    let mut peer = upstream::peer(b, &self.resolver).await.ok()?;
                    peer.options.connection_timeout = Some(hc.timeout);
                    peer.options.total_connection_timeout = Some(hc.timeout);
                    peer.options.read_timeout = Some(hc.timeout);
                    peer.options.write_timeout = Some(hc.timeout);
                    let full = format!("{}{}", b.url.path_prefix, path);
                    let status = self
                        .forwarder
                        .probe(&peer, &b.url.authority(), &full)
                        .await
                        .ok()?;
                    Some(status == *expected_status)
                }
            }
        };
        matches!(
            tokio::time::timeout(hc.timeout, probe).await,
            Ok(Some(true))
        )
    }
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
