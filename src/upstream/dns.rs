//! Resolving backend host names. Pingora's own resolution blocks the worker and panics when it
//! fails, so names are resolved here, asynchronously, with these guarantees:
//!
//! - a lookup is bounded by the caller's timeout (the backend's connect timeout), so a resolver
//!   outage costs each request at most that long, never the system's own timeout;
//! - one lookup is in flight per name: the requests that need it meanwhile wait for that one
//!   (within their own timeout) instead of each asking the resolver;
//! - every address is kept, so the caller can try the next when one refuses;
//! - answers are reused for [`DNS_TTL`]; when a refresh fails the last good answer is kept (and
//!   the failure logged), and a name that just failed is not asked again for
//!   [`RETRY_AFTER_FAILURE`];
//! - a name that resolves to nothing is `UpstreamUnreachable`: a backend failure, which the
//!   caller fails over from and counts against the backend's circuit.

use crate::error::GatewayError;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a resolved answer is reused.
pub const DNS_TTL: Duration = Duration::from_secs(30);

/// How long a name whose lookup failed is not looked up again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Looks a name up: the system resolver, or a stand-in in tests.
pub type Lookup = Arc<
    dyn Fn(String, u16) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

#[derive(Debug, Default)]
struct Answer {
    addrs: Vec<SocketAddr>,
    /// When `addrs` was looked up.
    at: Option<Instant>,
    /// When the last lookup failed.
    failed_at: Option<Instant>,
}

/// A name's answer, locked while its lookup is in flight.
type Slot = Arc<tokio::sync::Mutex<Answer>>;

/// The gateway's resolver.
pub struct Resolver {
    names: Mutex<HashMap<(String, u16), Slot>>,
    lookup: Lookup,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Default for Resolver {
    /// The system's resolver.
    fn default() -> Self {
        Resolver::with_lookup(Arc::new(|host: String, port: u16| {
            Box::pin(async move {
                tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map(Iterator::collect)
            })
        }))
    }
}

impl Resolver {
    pub fn with_lookup(lookup: Lookup) -> Self {
        Resolver {
            names: Mutex::new(HashMap::new()),
            lookup,
        }
    }

    /// Every address of `host` (an IP literal is its own answer), within `timeout`.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<Vec<SocketAddr>, GatewayError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let entry = {
            let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(names.entry((host.to_string(), port)).or_default())
        };
        let deadline = tokio::time::Instant::now() + timeout;
        // Waiting here is waiting for the one lookup in flight.
        let mut answer = tokio::time::timeout_at(deadline, entry.lock())
            .await
            .map_err(|_| GatewayError::UpstreamUnreachable)?;
        let now = Instant::now();
        let fresh = answer.at.is_some_and(|at| now.duration_since(at) < DNS_TTL);
        let just_failed = answer
            .failed_at
            .is_some_and(|at| now.duration_since(at) < RETRY_AFTER_FAILURE);
        if !fresh && !just_failed {
            let lookup = (self.lookup)(host.to_string(), port);
            match tokio::time::timeout_at(deadline, lookup).await {
                Ok(Ok(addrs)) if !addrs.is_empty() => {
                    answer.addrs = addrs;
                    answer.at = Some(now);
                    answer.failed_at = None;
                }
                failed => {
                    answer.failed_at = Some(now);
                    let why = match failed {
                        Ok(Err(e)) => e.to_string(),
                        Ok(Ok(_)) => "no addresses".into(),
                        Err(_) => format!("no answer within {timeout:?}"),
                    };
                    match answer.addrs.first() {
                        Some(kept) => log::warn!("cannot resolve {host}: {why}; keeping {kept}"),
                        None => log::warn!("cannot resolve {host}: {why}"),
                    }
                }
            }
        }
        if answer.addrs.is_empty() {
            return Err(GatewayError::UpstreamUnreachable);
        }
        Ok(answer.addrs.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A resolver whose lookups take `delay` and answer `addrs`, counting them.
    fn fake(delay: Duration, addrs: Vec<SocketAddr>) -> (Resolver, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let lookup: Lookup = Arc::new(move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            let addrs = addrs.clone();
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(addrs)
            })
        });
        (Resolver::with_lookup(lookup), calls)
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn ip_literals_resolve_without_a_lookup_and_unknown_hosts_fail_cleanly() {
        let r = Resolver::default();
        let one = r.resolve("127.0.0.1", 80, Duration::from_secs(2)).await;
        assert_eq!(one, Ok(vec![addr("127.0.0.1:80")]));
        assert_eq!(
            r.resolve("no-such-host.invalid", 80, Duration::from_secs(2))
                .await,
            Err(GatewayError::UpstreamUnreachable)
        );
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_lookup_and_keep_every_address() {
        let both = vec![addr("10.0.0.1:443"), addr("10.0.0.2:443")];
        let (r, calls) = fake(Duration::from_millis(50), both.clone());
        let r = Arc::new(r);
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let r = Arc::clone(&r);
                tokio::spawn(
                    async move { r.resolve("api.example", 443, Duration::from_secs(1)).await },
                )
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(both.clone()));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one lookup in flight per name"
        );
    }

    #[tokio::test]
    async fn a_stalled_resolver_costs_each_request_at_most_its_timeout() {
        let (r, calls) = fake(Duration::from_secs(30), vec![addr("10.0.0.1:443")]);
        let r = Arc::new(r);
        let started = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let r = Arc::clone(&r);
                tokio::spawn(async move {
                    r.resolve("slow.example", 443, Duration::from_millis(100))
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Err(GatewayError::UpstreamUnreachable));
        }
        assert!(
            started.elapsed() < Duration::from_millis(600),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
