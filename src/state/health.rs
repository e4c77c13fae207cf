//! Backend health: the active checks' verdict (with hysteresis) and the passive circuit breaker,
//! per backend id (they outlive configuration reloads).
//!
//! Circuit breaker: `failure_threshold` failures within `window` open the circuit for `open_for`
//! (a backend 429 with `Retry-After` opens it for that long instead). When it has been open long
//! enough it turns half-open: exactly one request (the probe) may go; its success closes the
//! circuit, its failure re-opens it. The probe slot is held by a [`Permit`] and released when the
//! permit is dropped, whatever happened to the probe. Failures that count: connect errors,
//! timeouts, 5xx, 429; a client disconnect or a 4xx caused by the request does not. A backend
//! that the active checks see recover (unhealthy → healthy) starts with a closed circuit.

use super::PerConsumer;
use crate::config::CircuitConfig;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Circuit {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Entry {
    /// The active check's verdict (true until a check says otherwise).
    healthy: bool,
    consecutive_ok: u32,
    consecutive_fail: u32,
    circuit: Circuit,
    /// Times of recent failures inside the window (at most `failure_threshold` kept).
    failures: VecDeque<Instant>,
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            healthy: true,
            consecutive_ok: 0,
            consecutive_fail: 0,
            circuit: Circuit::Closed,
            failures: VecDeque::new(),
        }
    }
}

/// A circuit's state as reports show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    /// Open long enough: the next request probes.
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    /// The value of the `tollgate_backend_circuit_state` gauge (0 closed, 1 half-open, 2 open).
    pub fn gauge(self) -> i64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::HalfOpen => 1,
            CircuitState::Open => 2,
        }
    }
}

/// Whether a backend may take a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Usable,
    /// Not now; it may be again in this long (open circuit) or after the next health checks.
    Unusable {
        retry_in: Duration,
    },
}

/// Health of every backend, keyed by backend id.
#[derive(Debug, Default)]
pub struct Health {
    backends: PerConsumer<Entry>,
}

/// The right to send one request to a backend; for a half-open circuit, the probe slot.
#[derive(Debug)]
pub struct Permit {
    health: Arc<Health>,
    backend: String,
    probe: bool,
    settled: bool,
}

/// What an attempt's outcome means for the circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Connect error, timeout or 5xx.
    Failure,
    /// The backend asked us to back off (429 with `Retry-After`).
    BackOff(Duration),
    /// Says nothing about the backend (client disconnect, a 4xx the request caused).
    Neutral,
}

impl Permit {
    /// Records the attempt's outcome (once); the probe slot is released.
    pub fn record(mut self, outcome: Outcome, cfg: &CircuitConfig) {
        self.settled = true;
        let now = Instant::now();
        let probe = self.probe;
        self.health.backends.with(&self.backend, |e| match outcome {
            Outcome::Success => {
                e.failures.clear();
                e.circuit = Circuit::Closed;
            }
            Outcome::BackOff(d) => {
                e.circuit = Circuit::Open { until: now + d };
                e.failures.clear();
            }
            Outcome::Failure => {
                if probe || matches!(e.circuit, Circuit::HalfOpen { .. }) {
                    e.circuit = Circuit::Open {
                        until: now + cfg.open_for,
                    };
                    e.failures.clear();
                    return;
                }
                while e
                    .failures
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > cfg.window)
                {
                    e.failures.pop_front();
                }
                e.failures.push_back(now);
                if e.failures.len() >= cfg.failure_threshold as usize {
                    e.circuit = Circuit::Open {
                        until: now + cfg.open_for,
                    };
                    e.failures.clear();
                }
            }
            Outcome::Neutral => {
                if probe {
                    e.circuit = Circuit::HalfOpen { probing: false };
                }
            }
        });
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            // The probe ended without a verdict (dropped, cancelled): free the slot so the
            // next request can probe.
            self.health.backends.with(&self.backend, |e| {
                if e.circuit == (Circuit::HalfOpen { probing: true }) {
                    e.circuit = Circuit::HalfOpen { probing: false };
                }
            });
        }
    }
}

impl Health {
    /// Whether `backend` could take a request now (without taking the probe slot).
    pub fn availability(&self, backend: &str, now: Instant) -> Availability {
        self.backends.with(backend, |e| {
            if !e.healthy {
                return Availability::Unusable {
                    retry_in: Duration::from_secs(1),
                };
            }
            match e.circuit {
                Circuit::Closed => Availability::Usable,
                Circuit::Open { until } if now >= until => Availability::Usable,
                Circuit::Open { until } => Availability::Unusable {
                    retry_in: until - now,
                },
                Circuit::HalfOpen { probing: false } => Availability::Usable,
                Circuit::HalfOpen { probing: true } => Availability::Unusable {
                    retry_in: Duration::from_secs(1),
                },
            }
        })
    }

    /// Takes the right to send a request to `backend`, or `None` if it is not usable now
    /// (unless `force`, the configured fallback into unusable backends).
    pub fn acquire(self: &Arc<Self>, backend: &str, now: Instant, force: bool) -> Option<Permit> {
        let probe = self.backends.with(backend, |e| {
            let probe = match e.circuit {
                Circuit::Closed => false,
                Circuit::Open { until } if now >= until => true,
                Circuit::HalfOpen { probing: false } => true,
                _ if force => false,
                _ => return None,
            };
            if !e.healthy && !force {
                return None;
            }
            if probe {
                e.circuit = Circuit::HalfOpen { probing: true };
            }
            Some(probe)
        })?;
        Some(Permit {
            health: Arc::clone(self),
            backend: backend.to_string(),
            probe,
            settled: false,
        })
    }

    /// Feeds one active-check result; the verdict flips only after the thresholds.
    pub fn check_result(&self, backend: &str, ok: bool, healthy_after: u32, unhealthy_after: u32) {
        self.backends.with(backend, |e| {
            if ok {
                e.consecutive_ok += 1;
                e.consecutive_fail = 0;
                if !e.healthy && e.consecutive_ok >= healthy_after {
                    // Recovery proven by the checks also ends what the outage opened.
                    e.healthy = true;
                    e.circuit = Circuit::Closed;
                    e.failures.clear();
                    log::info!("backend {backend} is healthy again");
                }
            } else {
                e.consecutive_fail += 1;
                e.consecutive_ok = 0;
                if e.healthy && e.consecutive_fail >= unhealthy_after {
                    e.healthy = false;
                    log::warn!(
                        "backend {backend} failed {unhealthy_after} health checks: unhealthy"
                    );
                }
            }
        })
    }

    /// The circuit's state and the active checks' verdict, for reports.
    pub fn describe(&self, backend: &str, now: Instant) -> (CircuitState, bool) {
        self.backends.with(backend, |e| {
            let c = match e.circuit {
                Circuit::Closed => CircuitState::Closed,
                Circuit::Open { until } if now < until => CircuitState::Open,
                Circuit::Open { .. } | Circuit::HalfOpen { .. } => CircuitState::HalfOpen,
            };
            (c, e.healthy)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CircuitConfig {
        CircuitConfig {
            failure_threshold: 5,
            window: Duration::from_secs(60),
            open_for: Duration::from_secs(30),
        }
    }

    fn fail(h: &Arc<Health>, now: Instant) {
        h.acquire("b", now, false)
            .unwrap()
            .record(Outcome::Failure, &cfg());
    }

    #[test]
    fn opens_after_five_failures_in_the_window() {
        let h = Arc::new(Health::default());
        let now = Instant::now();
        for _ in 0..4 {
            fail(&h, now);
        }
        assert_eq!(h.availability("b", now), Availability::Usable);
        fail(&h, now);
        assert!(matches!(
            h.availability("b", now),
            Availability::Unusable { .. }
        ));
        assert!(h.acquire("b", now, false).is_none());
    }

    #[test]
    fn half_open_allows_exactly_one_probe_and_success_closes() {
        let h = Arc::new(Health::default());
        let t0 = Instant::now();
        for _ in 0..5 {
            fail(&h, t0);
        }
        let later = t0 + Duration::from_secs(31);
        let probe = h.acquire("b", later, false).unwrap();
        assert!(h.acquire("b", later, false).is_none(), "only one probe");
        probe.record(Outcome::Success, &cfg());
        assert!(h.acquire("b", later, false).is_some());
        assert_eq!(h.describe("b", later).0, CircuitState::Closed);
    }

    #[test]
    fn a_failed_probe_reopens_the_circuit() {
        let h = Arc::new(Health::default());
        let t0 = Instant::now();
        for _ in 0..5 {
            fail(&h, t0);
        }
        let later = t0 + Duration::from_secs(31);
        h.acquire("b", later, false)
            .unwrap()
            .record(Outcome::Failure, &cfg());
        assert_eq!(h.describe("b", Instant::now()).0, CircuitState::Open);
    }

    #[test]
    fn the_probe_slot_is_released_whatever_happens_to_the_probe() {
        let h = Arc::new(Health::default());
        let t0 = Instant::now();
        for _ in 0..5 {
            fail(&h, t0);
        }
        let later = t0 + Duration::from_secs(31);
        drop(h.acquire("b", later, false).unwrap()); // the probe vanished without a verdict
        assert!(
            h.acquire("b", later, false).is_some(),
            "the slot is free again"
        );
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let h = Arc::new(Health::default());
        let t0 = Instant::now();
        for i in 0..10 {
            fail(&h, t0 + Duration::from_secs(i * 20));
        }
        assert_eq!(
            h.availability("b", t0 + Duration::from_secs(200)),
            Availability::Usable
        );
    }

    #[test]
    fn a_back_off_keeps_the_backend_out_for_that_long() {
        let h = Arc::new(Health::default());
        let t0 = Instant::now();
        h.acquire("b", t0, false)
            .unwrap()
            .record(Outcome::BackOff(Duration::from_secs(7)), &cfg());
        assert!(h
            .acquire("b", Instant::now() + Duration::from_secs(6), false)
            .is_none());
        assert!(h
            .acquire("b", Instant::now() + Duration::from_secs(8), false)
            .is_some());
    }

    #[test]
    fn neutral_outcomes_never_open_the_circuit() {
        let h = Arc::new(Health::default());
        let now = Instant::now();
        for _ in 0..20 {
            h.acquire("b", now, false)
                .unwrap()
                .record(Outcome::Neutral, &cfg());
        }
        assert_eq!(h.availability("b", now), Availability::Usable);
    }

    #[test]
    fn health_checks_flip_only_after_the_thresholds() {
        let h = Arc::new(Health::default());
        let now = Instant::now();
        h.check_result("b", false, 2, 3);
        h.check_result("b", false, 2, 3);
        assert_eq!(
            h.availability("b", now),
            Availability::Usable,
            "no flapping"
        );
        h.check_result("b", false, 2, 3);
        assert!(h.acquire("b", now, false).is_none());
        h.check_result("b", true, 2, 3);
        assert!(h.acquire("b", now, false).is_none());
        h.check_result("b", true, 2, 3);
        assert!(h.acquire("b", now, false).is_some());
    }
}
