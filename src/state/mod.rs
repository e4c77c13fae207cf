//! State that outlives a configuration reload: token windows, spend and the response cache,
//! keyed by stable ids (consumer id). This is the embedded (`memory`) implementation; spend is
//! persisted to a local state file by [`persist`].

pub mod cache;
pub mod limits;
pub mod persist;
pub mod spend;

use std::time::{SystemTime, UNIX_EPOCH};

/// Everything the request path shares.
#[derive(Debug, Default)]
pub struct State {
    pub limiter: limits::Limiter,
    pub spend: spend::Ledger,
    pub cache: cache::Cache,
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
