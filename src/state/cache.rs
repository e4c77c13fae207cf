//! The response cache, both tiers: this instance's (exact match, TTL, LRU with entry and byte
//! bounds) and, with `state.backend: redis` and `state.shared_cache`, the one every instance
//! shares in Redis.
//!
//! A lookup tries this instance first, then the shared tier, and copies a shared hit here; it
//! counts one hit or one miss whichever tier answered. A store writes here at once and to the
//! shared tier in the background (the client's answer never waits for Redis). The shared tier
//! fails open: Redis unavailable is a miss. Keys come from the cache policy stage
//! (`stages::cache`); only successful, complete responses are stored. Bounds come from the live
//! configuration at each call, so a reload takes effect without losing entries.

use super::redis::RedisStore;
use crate::config::CacheConfig;
use bytes::Bytes;
use lru::LruCache;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A SHA-256 over the request's scope and canonical content.
pub type CacheKey = [u8; 32];

/// Which tiers a lookup may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tiers {
    /// This instance's, then the shared one.
    All,
    /// This instance's only: the shared store just failed to answer (the cache fails open, and
    /// a second wait for it would only add latency).
    Local,
}

/// A stored answer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The response body as the client receives it (OpenAI JSON, or the `/chat` answer text).
    pub body: Bytes,
    pub expires: Instant,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Entry {
    fn size(&self) -> usize {
        self.body.len() + 64
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An entry as stored in Redis for the other instances: expiry (Unix ms), input and output
/// tokens (each 8 bytes, big-endian), then the body.
fn encode_shared(entry: &Entry, ttl: std::time::Duration) -> Vec<u8> {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let expires_ms = unix_millis().saturating_add(ttl_ms);
    let mut out = Vec::with_capacity(24 + entry.body.len());
    out.extend_from_slice(&expires_ms.to_be_bytes());
    out.extend_from_slice(&entry.input_tokens.to_be_bytes());
    out.extend_from_slice(&entry.output_tokens.to_be_bytes());
    out.extend_from_slice(&entry.body);
    out
}

/// The entry `raw` holds, expiring when it does for the instance that stored it; `None` when it
/// is malformed or already expired.
fn decode_shared(raw: &[u8], now: Instant) -> Option<Entry> {
    let word =
        |i: usize| -> Option<u64> { Some(u64::from_be_bytes(raw.get(i..i + 8)?.try_into().ok()?)) };
    let expires_ms = word(0)?;
    let left = expires_ms.checked_sub(unix_millis()).filter(|l| *l > 0)?;
    Some(Entry {
        body: Bytes::copy_from_slice(raw.get(24..)?),
        expires: now + std::time::Duration::from_millis(left),
        input_tokens: word(8)?,
        output_tokens: word(16)?,
    })
}

struct Inner {
    lru: LruCache<CacheKey, Entry>,
    bytes: usize,
}

pub struct Cache {
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    /// The tier every instance shares, when configured.
    shared: Option<Arc<RedisStore>>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new(None)
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache with this instance's tier, and the shared tier in `shared` when given.
    pub fn new(shared: Option<Arc<RedisStore>>) -> Cache {
        Cache {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            shared,
        }
    }

    /// The request path's lookup: a live entry for `key` from the tiers allowed, counted once as
    /// a hit or a miss. A shared hit is copied into this instance's tier.
    pub async fn lookup(&self, key: &CacheKey, cfg: &CacheConfig, tiers: Tiers) -> Option<Entry> {
        let mut found = self.local(key, Instant::now());
        if found.is_none() && tiers == Tiers::All {
            found = self.shared_get(key, cfg).await;
        }
        self.record(found.is_some());
        found
    }

    /// The request path's store: this instance's tier now, the shared tier in the background
    /// (best effort; the client's answer never waits for it).
    pub fn store(&self, key: CacheKey, entry: Entry, cfg: &CacheConfig) {
        if let Some(shared) = &self.shared {
            if entry.body.len() <= cfg.max_entry_bytes {
                let raw = encode_shared(&entry, cfg.ttl);
                let hex = crate::digest::to_hex(&key);
                let ttl = cfg.ttl;
                let shared = Arc::clone(shared);
                tokio::spawn(async move { shared.cache_put(&hex, &raw, ttl).await });
            }
        }
        self.put(key, entry, cfg);
    }

    /// An entry another instance stored, copied into this tier; `None` on a miss or when Redis
    /// is unavailable.
    async fn shared_get(&self, key: &CacheKey, cfg: &CacheConfig) -> Option<Entry> {
        let shared = self.shared.as_ref()?;
        let raw = shared.cache_get(&crate::digest::to_hex(key)).await?;
        let entry = decode_shared(&raw, Instant::now())?;
        self.put(*key, entry.clone(), cfg);
        Some(entry)
    }

    /// Counts a lookup's outcome, here (`/cache/stats`) and in Prometheus: the one place, so a
    /// lookup that missed here and hit in the shared tier counts once, as a hit.
    fn record(&self, hit: bool) {
        let (counter, event) = if hit {
            (&self.hits, "hit")
        } else {
            (&self.misses, "miss")
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = crate::metrics::get() {
            m.cache.with_label_values(&[event]).inc();
        }
    }

    /// A live entry for `key` in this instance's tier, without counting (see [`Cache::record`]).
    fn local(&self, key: &CacheKey, now: Instant) -> Option<Entry> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let found = match inner.lru.get(key) {
            Some(e) if e.expires > now => Some(e.clone()),
            Some(_) => {
                if let Some(old) = inner.lru.pop(key) {
                    inner.bytes -= old.size();
                }
                None
            }
            None => None,
        };
        drop(inner);
        found
    }

    /// Stores an entry in this instance's tier, evicting least recently used ones to respect
    /// the bounds.
    pub fn put(&self, key: CacheKey, entry: Entry, cfg: &CacheConfig) {
        if entry.body.len() > cfg.max_entry_bytes {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = inner.lru.pop(&key) {
            inner.bytes -= old.size();
        }
        inner.bytes += entry.size();
        inner.lru.put(key, entry);
        while inner.lru.len() > cfg.max_entries || inner.bytes > cfg.max_bytes {
            match inner.lru.pop_lru() {
                Some((_, old)) => {
                    inner.bytes -= old.size();
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                    if let Some(m) = crate::metrics::get() {
                        m.cache.with_label_values(&["eviction"]).inc();
                    }
                }
                None => break,
            }
        }
    }

    /// The seed's `/cache/stats` fields.
    pub fn stats(&self, cfg: &CacheConfig, now: Instant) -> Value {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let entries = inner.lru.len();
        let active = inner.lru.iter().filter(|(_, e)| e.expires > now).count();
        let bytes = inner.bytes;
        drop(inner);
        let hits = self.hits.load(Ordering::Relaxed);
        let misses = self.misses.load(Ordering::Relaxed);
        let lookups = hits + misses;
        // Percent with one decimal, from integers.
        let hit_rate_permille = (hits * 1000).checked_div(lookups).unwrap_or(0);
        json!({
            "enabled": cfg.enabled,
            "entries": entries,
            "active": active,
            "max": cfg.max_entries,
            "bytes": bytes,
            "max_bytes": cfg.max_bytes,
            "hits": hits,
            "misses": misses,
            "hit_rate": format!("{}.{}%", hit_rate_permille / 10, hit_rate_permille % 10),
            "evictions": self.evictions.load(Ordering::Relaxed),
            "ttl_seconds": cfg.ttl.as_secs(),
            // The lab's names for the same figures.
            "total_entries": entries,
            "active_entries": active,
            "max_entries": cfg.max_entries,
            "total_hits": hits,
            "total_misses": misses,
            "hit_rate_percent": hit_rate_permille as f64 / 10.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CacheScope;
    use std::time::Duration;

    fn cfg(max_entries: usize, max_bytes: usize) -> CacheConfig {
        CacheConfig {
            enabled: true,
            scope: CacheScope::Consumer,
            ttl: Duration::from_secs(300),
            max_entries,
            max_bytes,
            max_entry_bytes: max_bytes,
        }
    }

    fn entry(body: &str, expires: Instant) -> Entry {
        Entry {
            body: Bytes::from(body.to_string()),
            expires,
            input_tokens: 1,
            output_tokens: 1,
        }
    }

    #[test]
    fn hits_until_the_ttl_then_misses() {
        let c = Cache::default();
        let now = Instant::now();
        let k = [1u8; 32];
        c.put(
            k,
            entry("x", now + Duration::from_secs(1)),
            &cfg(10, 1 << 20),
        );
        assert!(c.local(&k, now).is_some());
        assert!(c.local(&k, now + Duration::from_secs(2)).is_none());
    }

    #[test]
    fn evicts_least_recently_used_past_max_entries_and_bytes() {
        let c = Cache::default();
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let k = |i: u8| [i; 32];
        let small = cfg(2, 1 << 20);
        c.put(k(1), entry("a", later), &small);
        c.put(k(2), entry("b", later), &small);
        assert!(c.local(&k(1), now).is_some()); // 1 is now the most recent
        c.put(k(3), entry("c", later), &small);
        assert!(c.local(&k(2), now).is_none(), "2 was least recently used");
        assert!(c.local(&k(1), now).is_some() && c.local(&k(3), now).is_some());
        let tiny = cfg(100, 200);
        c.put(k(4), entry(&"z".repeat(120), later), &tiny);
        assert!(c.local(&k(1), now).is_none(), "bytes bound evicts too");
    }

    #[tokio::test]
    async fn a_lookup_counts_one_hit_or_one_miss() {
        let c = Cache::default();
        let cfg = cfg(10, 1 << 20);
        let k = [7u8; 32];
        assert!(c.lookup(&k, &cfg, Tiers::All).await.is_none());
        c.store(
            k,
            entry("x", Instant::now() + Duration::from_secs(60)),
            &cfg,
        );
        assert!(c.lookup(&k, &cfg, Tiers::Local).await.is_some());
        let stats = c.stats(&cfg, Instant::now());
        assert_eq!(
            (stats["hits"].as_u64(), stats["misses"].as_u64()),
            (Some(1), Some(1))
        );
        // The lab's names carry the same figures; its hit rate is a number.
        assert_eq!(stats["total_hits"], stats["hits"]);
        assert_eq!(stats["total_misses"], stats["misses"]);
        assert_eq!(stats["hit_rate_percent"], 50.0);
        assert_eq!(stats["hit_rate"], "50.0%");
        assert_eq!(
            (
                stats["total_entries"].as_u64(),
                stats["active_entries"].as_u64()
            ),
            (Some(1), Some(1))
        );
        assert_eq!(stats["max_entries"], 10);
    }
}
