//! The response cache: exact match, TTL, LRU with entry and byte bounds.
//!
//! Keys are SHA-256 over the scope (consumer id, team, or nothing for `global`), the route, the
//! model and the canonical request content (every generation parameter; never the key). Only
//! successful, complete responses are stored. Bounds come from the live configuration at each
//! call, so a reload takes effect without losing entries.

use crate::config::CacheConfig;
use bytes::Bytes;
use lru::LruCache;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub type CacheKey = [u8; 32];

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
pub fn encode_shared(entry: &Entry, ttl: std::time::Duration) -> Vec<u8> {
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
pub fn decode_shared(raw: &[u8], now: Instant) -> Option<Entry> {
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
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
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

/// The canonical bytes of a JSON body: object keys sorted, no insignificant whitespace, so the
/// same request written differently hits the same entry.
pub fn canonical_json(body: &[u8]) -> Option<Vec<u8>> {
    canonical_json_with(body, None)
}

/// As [`canonical_json`], with one member set on the top-level object first (the output cap the
/// gateway adds), so the key matches the body actually sent without copying it to build that.
pub fn canonical_json_with(body: &[u8], member: Option<(&str, Value)>) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    if let (Some((name, value)), Some(obj)) = (member, v.as_object_mut()) {
        obj.insert(name.to_string(), value);
    }
    let mut out = Vec::with_capacity(body.len());
    write_canonical(&v, &mut out);
    Some(out)
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
                out.push(b':');
                if let Some(val) = m.get(k) {
                    write_canonical(val, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

impl Cache {
    /// A live entry for `key`; counts a hit or a miss.
    pub fn get(&self, key: &CacheKey, now: Instant) -> Option<Entry> {
        let found = self.lookup(key, now);
        self.record(found.is_some());
        found
    }

    /// Counts a lookup's outcome, here (`/cache/stats`) and in Prometheus: the one place, so a
    /// lookup that missed here and hit in the shared tier counts once, as a hit.
    pub fn record(&self, hit: bool) {
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

    /// A live entry for `key`, without counting (see [`Cache::record`]).
    pub fn lookup(&self, key: &CacheKey, now: Instant) -> Option<Entry> {
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

    /// Stores an entry, evicting least recently used ones to respect the bounds.
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
        let k = key("consumer", "a", "r", "m", b"{}");
        c.put(
            k,
            entry("x", now + Duration::from_secs(1)),
            &cfg(10, 1 << 20),
        );
        assert!(c.get(&k, now).is_some());
        assert!(c.get(&k, now + Duration::from_secs(2)).is_none());
    }

    #[test]
    fn evicts_least_recently_used_past_max_entries_and_bytes() {
        let c = Cache::default();
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let k = |i: u8| key("global", "", "r", "m", &[i]);
        let small = cfg(2, 1 << 20);
        c.put(k(1), entry("a", later), &small);
        c.put(k(2), entry("b", later), &small);
        assert!(c.get(&k(1), now).is_some()); // 1 is now the most recent
        c.put(k(3), entry("c", later), &small);
        assert!(c.get(&k(2), now).is_none(), "2 was least recently used");
        assert!(c.get(&k(1), now).is_some() && c.get(&k(3), now).is_some());
        let tiny = cfg(100, 200);
        c.put(k(4), entry(&"z".repeat(120), later), &tiny);
        assert!(c.get(&k(1), now).is_none(), "bytes bound evicts too");
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
    fn canonical_form_ignores_key_order_and_whitespace() {
        let a = canonical_json(
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":0}"#,
        );
        let b = canonical_json(br#"{ "temperature": 0, "messages": [ {"content":"x", "role":"user"} ], "model": "m" }"#);
        assert_eq!(a, b);
        let c = canonical_json(
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":1}"#,
        );
        assert_ne!(a, c, "generation parameters are part of the key");
    }
}
