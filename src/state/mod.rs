//! State that outlives a configuration reload: token windows, spend, the response cache and
//! issued API keys ([`keys`]), keyed by stable ids (consumer id, key id). This is the embedded
//! (`memory`) implementation; spend is persisted to a local state file by [`persist`]. With `state.backend: redis`, limits and budgets
//! (and optionally the cache) are decided by [`redis`] for every instance at once.

pub mod cache;
pub mod health;
pub mod keys;
pub mod limits;
pub mod redis;
pub mod spend;
pub mod spend_report;
pub mod stats;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// One lock per id (consumer or backend), created on first use: different ids never contend.
#[derive(Debug)]
pub struct PerConsumer<T>(RwLock<HashMap<String, Arc<Mutex<T>>>>);

impl<T> Default for PerConsumer<T> {
    fn default() -> Self {
        PerConsumer(RwLock::new(HashMap::new()))
    }
}

impl<T: Default> PerConsumer<T> {
    /// The consumer's entry (a poisoned lock still hands it out: the data are plain counters).
    pub fn get(&self, consumer: &str) -> Arc<Mutex<T>> {
        if let Some(e) = self.0.read().ok().and_then(|m| m.get(consumer).cloned()) {
            return e;
        }
        let mut m = self.0.write().unwrap_or_else(|p| p.into_inner());
        m.entry(consumer.to_string()).or_default().clone()
    }

    /// Runs `f` on the consumer's entry under its lock.
    pub fn with<R>(&self, consumer: &str, f: impl FnOnce(&mut T) -> R) -> R {
        let entry = self.get(consumer);
        let mut guard = entry.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Replaces (or adds) a consumer's entry.
    pub fn insert(&self, consumer: String, value: T) {
        let mut m = self.0.write().unwrap_or_else(|p| p.into_inner());
        m.insert(consumer, Arc::new(Mutex::new(value)));
    }

    /// Every entry, for snapshots.
    pub fn for_each(&self, mut f: impl FnMut(&str, &T)) {
        let m = self.0.read().unwrap_or_else(|p| p.into_inner());
        for (id, e) in m.iter() {
            let guard = e.lock().unwrap_or_else(|p| p.into_inner());
            f(id, &guard);
        }
    }
}

/// Everything the request path shares.
#[derive(Debug, Default)]
pub struct State {
    pub health: Arc<health::Health>,
    pub limiter: limits::Limiter,
    pub spend: spend::Ledger,
    pub cache: cache::Cache,
    pub stats: stats::Stats,
    /// Limits, budgets (and optionally the cache) shared through Redis (`state.backend: redis`).
    pub shared: Option<Shared>,
    /// The embedded database: the spend ledger, daily spend, issued keys (`None` only in unit
    /// tests and benchmarks that need no persistence).
    pub store: Option<Arc<store::Store>>,
    /// API keys issued at runtime: in Redis when `shared`, else in `store`.
    pub keys: Arc<keys::IssuedKeys>,
}

impl State {
    /// The state of a gateway; with `shared`, limits and budgets are decided in Redis, and the
    /// response cache gets its shared tier when `shared.cache` is set.
    pub fn new(shared: Option<Shared>) -> State {
        let cache = match &shared {
            Some(s) if s.cache => cache::Cache::new(Some(Arc::clone(&s.store))),
            _ => cache::Cache::default(),
        };
        let keys = match &shared {
            Some(s) => keys::IssuedKeys::shared(Arc::clone(&s.store), s.limits_fail_open),
            None => keys::IssuedKeys::default(),
        };
        State {
            cache,
            shared,
            keys: Arc::new(keys),
            ..State::default()
        }
    }

    /// With the embedded database (which keeps the issued keys too, unless Redis does).
    pub fn with_store(self, store: Arc<store::Store>) -> State {
        let keys = if self.keys.is_memory() {
            Arc::new(keys::IssuedKeys::embedded(Arc::clone(&store)))
        } else {
            self.keys
        };
        State {
            store: Some(store),
            keys,
            ..self
        }
    }
}

/// The Redis store and how each control behaves when it cannot answer.
#[derive(Debug)]
pub struct Shared {
    pub store: Arc<redis::RedisStore>,
    /// The response cache has a tier in Redis too.
    pub cache: bool,
    pub limits_fail_open: bool,
    pub budget_fail_open: bool,
}

impl Shared {
    pub fn new(cfg: &crate::config::types::SharedStateConfig) -> Result<Shared, String> {
        Ok(Shared {
            store: Arc::new(redis::RedisStore::new(
                &cfg.url,
                &cfg.key_prefix,
                cfg.timeout,
            )?),
            cache: cfg.cache,
            limits_fail_open: cfg.limits_fail_open,
            budget_fail_open: cfg.budget_fail_open,
        })
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Days since the Unix epoch (the UTC day budgets count in).
pub fn utc_day(unix: u64) -> u64 {
    unix / 86_400
}

/// `YYYY-MM-DD` of a day number since the Unix epoch (civil calendar, proleptic Gregorian).
pub fn utc_date(day: u64) -> String {
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (RFC 3339, UTC).
pub fn utc_time(unix: u64) -> String {
    let s = unix % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        utc_date(utc_day(unix)),
        s / 3_600,
        s % 3_600 / 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_are_rfc3339() {
        assert_eq!(utc_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_time(20_418 * 86_400 + 3_723), "2025-11-26T01:02:03Z");
    }

    #[test]
    fn utc_dates_come_from_day_numbers() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(20_418), "2025-11-26");
        assert_eq!(utc_date(11_016), "2000-02-29");
    }
}
