//! State that outlives a configuration reload: token windows, request rates, spend, the
//! response cache and issued API keys ([`keys`]), keyed by stable ids (consumer id, team name,
//! key id), and the budget alerts' queue. This is the embedded (`memory`) implementation; what
//! must survive a restart (the spend ledger, daily spend, issued keys) is in the embedded
//! database ([`store`]). With `state.backend: redis`, limits and budgets
//! (and optionally the cache) are decided by [`redis`] for every instance at once.

pub mod alerts;
pub mod budget;
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
    /// Budget threshold alerts, and the queue of their webhook posts.
    pub alerts: alerts::Alerts,
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
    let (y, m, d) = civil(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The UTC calendar month a day number falls in, as months since the Unix epoch (1970-01 is
/// 0): the period monthly budgets count in.
pub fn utc_month(day: u64) -> u64 {
    let (y, m, _) = civil(day);
    // Day numbers start at 1970-01-01, so the year is never below 1970.
    ((y - 1970) * 12 + (m - 1)) as u64
}

/// The day number of a month's first day (`month` as [`utc_month`] counts it).
pub fn utc_month_start(month: u64) -> u64 {
    let (y, m) = (1970 + (month / 12) as i64, (month % 12) as i64 + 1);
    // Howard Hinnant's days_from_civil, with March as the first month of the computing year.
    let y = y - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as u64
}

/// `YYYY-MM` of a month as [`utc_month`] counts it.
pub fn utc_month_label(month: u64) -> String {
    format!("{:04}-{:02}", 1970 + month / 12, month % 12 + 1)
}

/// Seconds from `now` to the end of its UTC day (the next midnight).
pub fn secs_to_day_end(now: u64) -> u64 {
    86_400 - now % 86_400
}

/// Seconds from `now` to the end of its UTC month (the first of the next month, 00:00).
pub fn secs_to_month_end(now: u64) -> u64 {
    let next = utc_month_start(utc_month(utc_day(now)) + 1);
    next.saturating_mul(86_400).saturating_sub(now)
}

/// Year, month (1–12) and day (1–31) of a day number since the Unix epoch (Howard Hinnant's
/// civil_from_days).
fn civil(day: u64) -> (i64, i64, i64) {
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
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

    /// The day number of `YYYY-MM-DD`, by counting from the epoch (independent of the formulas).
    fn day_of(date: &str) -> u64 {
        (0..60_000).find(|d| utc_date(*d) == date).unwrap()
    }

    #[test]
    fn months_turn_at_year_ends() {
        let dec31 = day_of("1999-12-31");
        assert_eq!(utc_month(dec31 + 1), utc_month(dec31) + 1);
        assert_eq!(utc_month_label(utc_month(dec31)), "1999-12");
        assert_eq!(utc_month_label(utc_month(dec31 + 1)), "2000-01");
        assert_eq!(utc_month_start(utc_month(dec31 + 1)), dec31 + 1);
        assert_eq!(utc_month(0), 0, "1970-01 is month 0");
        assert_eq!(utc_month_start(0), 0);
        assert_eq!(utc_month_label(utc_month(day_of("2026-12-31"))), "2026-12");
        assert_eq!(
            utc_month_start(utc_month(day_of("2026-12-31")) + 1),
            day_of("2027-01-01")
        );
    }

    #[test]
    fn february_has_29_days_in_leap_years_only() {
        for (year, leap) in [
            (2000, true),
            (2024, true),
            (2100, false),
            (2025, false),
            (1996, true),
        ] {
            let march = day_of(&format!("{year}-03-01"));
            let feb = utc_month(march) - 1;
            assert_eq!(
                march - utc_month_start(feb),
                if leap { 29 } else { 28 },
                "{year}"
            );
            assert_eq!(
                utc_month(march - 1),
                feb,
                "{year}-02's last day is in February"
            );
        }
        let feb29 = day_of("2024-02-29");
        assert_eq!(utc_month_label(utc_month(feb29)), "2024-02");
        assert_eq!(utc_month_start(utc_month(feb29)), day_of("2024-02-01"));
    }

    #[test]
    fn every_day_lies_in_its_month() {
        for day in 0..30_000 {
            let m = utc_month(day);
            assert!(
                utc_month_start(m) <= day && day < utc_month_start(m + 1),
                "{day}"
            );
            assert_eq!(utc_date(day)[..7], utc_month_label(m), "{day}");
        }
    }

    #[test]
    fn periods_end_at_midnight_and_on_the_first_of_the_next_month() {
        let jan31 = day_of("2025-01-31") * 86_400;
        assert_eq!(secs_to_day_end(jan31 + 10), 86_390);
        assert_eq!(
            secs_to_month_end(jan31 + 10),
            86_390,
            "February starts at the next midnight"
        );
        let dec1 = day_of("2024-12-01") * 86_400;
        assert_eq!(secs_to_month_end(dec1), 31 * 86_400);
        let feb1 = day_of("2024-02-01") * 86_400;
        assert_eq!(secs_to_month_end(feb1), 29 * 86_400, "a leap February");
    }
}
