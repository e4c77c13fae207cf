//! API keys issued at runtime (the admin API's `POST /keys`): state, like spend, kept apart from
//! the keys the configuration lists. YAML stays the source of truth for consumers: an issued key
//! names a configured consumer, and is refused once that consumer is no longer configured.
//!
//! The request path asks [`IssuedKeys::find`] for a digest: one lookup in an in-memory index
//! behind an atomic pointer (no lock, no await, no allocation for a known key). Expiry and
//! revocation are then checked against the clock on every request (`stages::auth`).
//!
//! Where the keys live, and how fast a change reaches every request:
//! - embedded (`state.backend: memory`): in the SQLite store ([`sql`]), loaded into the index at
//!   start; the admin API changes the store, then the index, one change at a time, so this
//!   process refuses a revoked key as soon as the API has answered;
//! - shared (`state.backend: redis`): in Redis ([`shared`] has the layout). Every instance polls
//!   a generation counter every [`POLL_EVERY`] and reloads its index when it moved, so a revoked
//!   or expired key is refused everywhere within about 200 ms; a digest unknown to the local
//!   index is looked up in Redis directly (then kept), so a key made on another instance works at
//!   once.
//!
//! Failure (shared): when Redis cannot answer a lookup, or the index has not been refreshed for
//! [`STALE_AFTER`], issued keys are refused with 503 (fail closed: a revocation might be
//! missed) — unless `state.limits_on_error: open`, where the last index keeps serving and an
//! unknown key is refused as unknown (401). Keys from the configuration never depend on Redis.
//!
//! `last_used` is kept in memory (an atomic per key) and written out every [`FLUSH_USED_EVERY`]
//! and at shutdown, never per request. Nothing here ever holds or logs a key: only digests.

pub mod shared;
pub mod sql;

use super::redis::{RedisStore, Unavailable};
use super::store::{Store, StoreError};
use crate::digest::KeyDigest;
use arc_swap::ArcSwap;
use lru::LruCache;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often each instance asks Redis whether the keys changed.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// With Redis, an index not refreshed for this long no longer vouches for a key (fail closed).
pub const STALE_AFTER: Duration = Duration::from_secs(2);
/// How often `last_used` is written out.
pub const FLUSH_USED_EVERY: Duration = Duration::from_secs(10);
/// Digests found in neither the index nor Redis, remembered until the keys next change (a client
/// retrying a wrong key costs one Redis lookup, not one per request).
const UNKNOWN_REMEMBERED: usize = 4_096;

/// One issued key, as stored: never the key, only its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// `key_` and 16 hex digits.
    pub id: Arc<str>,
    /// A configured consumer's id.
    pub consumer: Arc<str>,
    pub label: Option<String>,
    pub digest: KeyDigest,
    /// Unix seconds.
    pub created: u64,
    /// Refused from this second on.
    pub expires: Option<u64>,
    /// When it was revoked: refused from then on.
    pub revoked: Option<u64>,
    /// The models the key may use, within its consumer's allowlist; empty: all the consumer may.
    pub models: Arc<[String]>,
    /// Last request it authenticated (as last written out; see [`Entry::last_used`]).
    pub last_used: Option<u64>,
}

impl KeyRecord {
    /// Whether the key works at `now` (Unix seconds): not revoked, not expired.
    pub fn valid_at(&self, now: u64) -> bool {
        self.revoked.is_none() && self.expires.is_none_or(|e| now < e)
    }

    /// Whether the key's own allowlist lets it ask for `model` (the consumer's is checked too).
    /// `default` (the lab agent's model) is always allowed, as consumers' allowlists do.
    pub fn allows(&self, model: &str) -> bool {
        model == "default" || self.models.is_empty() || self.models.iter().any(|m| m == model)
    }
}

/// A key in the index, with its use since it was last written out.
#[derive(Debug)]
pub struct Entry {
    pub record: KeyRecord,
    /// Unix seconds of the last request it authenticated; 0: never.
    last_used: AtomicU64,
    /// What the store holds.
    flushed: AtomicU64,
}

impl Entry {
    fn new(record: KeyRecord) -> Entry {
        let stored = record.last_used.unwrap_or(0);
        Entry {
            record,
            last_used: AtomicU64::new(stored),
            flushed: AtomicU64::new(stored),
        }
    }

    /// Records a request authenticated at `now` (one atomic, no lock).
    pub fn touch(&self, now: u64) {
        self.last_used.fetch_max(now, Ordering::Relaxed);
    }

    /// The last request it authenticated, written out or not.
    pub fn last_used(&self) -> Option<u64> {
        Some(self.last_used.load(Ordering::Relaxed)).filter(|t| *t > 0)
    }

    /// The record with the use this process saw.
    pub fn snapshot(&self) -> KeyRecord {
        KeyRecord {
            last_used: self.last_used().max(self.record.last_used),
            ..self.record.clone()
        }
    }

    /// Keeps the use `old` (the entry this one replaces) saw and has not written out.
    fn inherit(&self, old: &Entry) {
        self.last_used
            .fetch_max(old.last_used.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// The keys by digest and by id: immutable once built, replaced whole.
#[derive(Debug, Default)]
struct Index {
    by_digest: HashMap<KeyDigest, Arc<Entry>>,
    by_id: HashMap<Arc<str>, Arc<Entry>>,
}

impl Index {
    /// An index of `records`, keeping the unwritten use `old` holds for the same ids.
    fn build(records: Vec<KeyRecord>, old: &Index) -> Index {
        let mut next = Index::default();
        for r in records {
            next.insert(r, old);
        }
        next
    }

    /// A copy with `record` added or replaced.
    fn with(&self, record: KeyRecord) -> Index {
        let mut next = Index {
            by_digest: self.by_digest.clone(),
            by_id: self.by_id.clone(),
        };
        next.insert(record, self);
        next
    }

    fn insert(&mut self, record: KeyRecord, old: &Index) {
        let entry = Arc::new(Entry::new(record));
        if let Some(prev) = old.by_id.get(&entry.record.id) {
            entry.inherit(prev);
        }
        if let Some(prev) = self
            .by_id
            .insert(Arc::clone(&entry.record.id), Arc::clone(&entry))
        {
            if prev.record.digest != entry.record.digest {
                self.by_digest.remove(&prev.record.digest);
            }
        }
        self.by_digest.insert(entry.record.digest, entry);
    }
}

/// Why an admin change could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysError {
    /// No key has that id.
    NotFound,
    /// The change does not fit the key's state (e.g. rotating a revoked key).
    Conflict(String),
    /// The store could not be written or read (SQLite or Redis); nothing was changed, or it is
    /// unknown whether it was.
    Unavailable(String),
}

impl From<StoreError> for KeysError {
    fn from(e: StoreError) -> Self {
        KeysError::Unavailable(e.0)
    }
}

impl From<Unavailable> for KeysError {
    fn from(e: Unavailable) -> Self {
        KeysError::Unavailable(e.0)
    }
}

/// Where the keys are kept.
enum Backend {
    /// In this process only (unit tests, benchmarks).
    Memory,
    Embedded(Arc<Store>),
    Shared(shared::SharedKeys),
}

/// The issued keys of this gateway: the index the request path reads, and the admin changes.
pub struct IssuedKeys {
    index: ArcSwap<Index>,
    backend: Backend,
    /// Admin changes one at a time, so the store and the index never disagree.
    changes: tokio::sync::Mutex<()>,
    /// Shared: when the index was last known to match Redis (ms since `started`, plus one; 0:
    /// never), and the generation it matched.
    started: Instant,
    synced_ms: AtomicU64,
    generation: Mutex<Option<u64>>,
    /// Counts the changes made to the index. What was read from Redis before a change (a poll's
    /// reload, a looked-up key, a digest found unknown) is not applied after it: it might undo
    /// it (a revocation). Lock order: `epoch`, then `unknown`.
    epoch: Mutex<u64>,
    unknown: Mutex<LruCache<KeyDigest, ()>>,
}

impl std::fmt::Debug for IssuedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.backend {
            Backend::Memory => "memory",
            Backend::Embedded(_) => "embedded",
            Backend::Shared(_) => "redis",
        };
        f.debug_struct("IssuedKeys")
            .field("backend", &backend)
            .field("keys", &self.index.load().by_id.len())
            .finish()
    }
}

impl Default for IssuedKeys {
    fn default() -> Self {
        IssuedKeys::with_backend(Backend::Memory)
    }
}

impl IssuedKeys {
    fn with_backend(backend: Backend) -> IssuedKeys {
        IssuedKeys {
            index: ArcSwap::from_pointee(Index::default()),
            backend,
            changes: tokio::sync::Mutex::new(()),
            started: Instant::now(),
            synced_ms: AtomicU64::new(0),
            generation: Mutex::new(None),
            epoch: Mutex::new(0),
            unknown: Mutex::new(LruCache::new(
                NonZeroUsize::new(UNKNOWN_REMEMBERED).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// Keys kept in the embedded store; [`IssuedKeys::load_now`] reads them in.
    pub fn embedded(store: Arc<Store>) -> IssuedKeys {
        IssuedKeys::with_backend(Backend::Embedded(store))
    }

    /// Keys kept in Redis, shared by every instance; `fail_open` keeps the last index serving
    /// when Redis cannot answer.
    pub fn shared(redis: Arc<RedisStore>, fail_open: bool) -> IssuedKeys {
        IssuedKeys::with_backend(Backend::Shared(shared::SharedKeys::new(redis, fail_open)))
    }

    /// Whether the keys are kept in process memory only (nothing persists them).
    pub fn is_memory(&self) -> bool {
        matches!(self.backend, Backend::Memory)
    }

    /// Reads the embedded store's keys into the index (at start); returns how many. With Redis
    /// the background upkeep loads them instead.
    pub fn load_now(&self) -> Result<usize, StoreError> {
        let Backend::Embedded(store) = &self.backend else {
            return Ok(0);
        };
        let records = store.read_now(sql::load_all)?;
        let n = records.len();
        self.replace_if(None, records);
        Ok(n)
    }

    fn epoch(&self) -> u64 {
        *self.epoch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the whole index, unless it changed since epoch `seen`; returns whether it did.
    fn replace_if(&self, seen: Option<u64>, records: Vec<KeyRecord>) -> bool {
        let mut epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        if seen.is_some_and(|s| s != *epoch) {
            return false;
        }
        let old = self.index.load();
        self.index.store(Arc::new(Index::build(records, &old)));
        *epoch += 1;
        if let Ok(mut u) = self.unknown.lock() {
            u.clear();
        }
        true
    }

    /// Adds or replaces one key, unless the index changed since epoch `seen`.
    fn put_if(&self, seen: Option<u64>, record: KeyRecord) -> bool {
        let mut epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        if seen.is_some_and(|s| s != *epoch) {
            return false;
        }
        let next = self.index.load().with(record);
        self.index.store(Arc::new(next));
        *epoch += 1;
        true
    }

    /// An admin change, stored: the index follows at once.
    fn put(&self, record: KeyRecord) {
        self.put_if(None, record);
    }

    /// The issued key with this digest, if any, for the request path. `Err` when the shared
    /// store cannot vouch for it (see the module's failure mode).
    pub async fn find(&self, digest: &KeyDigest) -> Result<Option<Arc<Entry>>, Unavailable> {
        if let Some(e) = self.index.load().by_digest.get(digest) {
            if let Backend::Shared(s) = &self.backend {
                if !s.fail_open && self.stale(self.now_ms()) {
                    return Err(Unavailable(
                        "the issued keys are not in sync with Redis".into(),
                    ));
                }
            }
            return Ok(Some(Arc::clone(e)));
        }
        let Backend::Shared(s) = &self.backend else {
            return Ok(None);
        };
        if self.unknown.lock().is_ok_and(|u| u.contains(digest)) {
            return Ok(None);
        }
        let seen = self.epoch();
        match s.find(digest).await {
            Ok(Some(record)) => {
                // Kept for the next requests unless the index changed meanwhile (then the next
                // request looks it up again); this one is decided on what Redis just said.
                let entry = Arc::new(Entry::new(record.clone()));
                self.put_if(Some(seen), record);
                Ok(Some(
                    self.index
                        .load()
                        .by_digest
                        .get(digest)
                        .filter(|e| e.record.id == entry.record.id)
                        .cloned()
                        .unwrap_or(entry),
                ))
            }
            Ok(None) => {
                let epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
                if *epoch == seen {
                    if let Ok(mut u) = self.unknown.lock() {
                        u.put(*digest, ());
                    }
                }
                drop(epoch);
                Ok(None)
            }
            Err(_) if s.fail_open => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the index has not matched Redis for [`STALE_AFTER`] at `now_ms`.
    fn stale(&self, now_ms: u64) -> bool {
        match self.synced_ms.load(Ordering::Acquire) {
            0 => true,
            at => now_ms.saturating_sub(at - 1) > STALE_AFTER.as_millis() as u64,
        }
    }

    fn synced(&self) {
        self.synced_ms
            .store(self.now_ms().saturating_add(1), Ordering::Release);
    }

    /// Adds a new key (its digest must be new).
    pub async fn create(&self, record: KeyRecord) -> Result<(), KeysError> {
        let _one = self.changes.lock().await;
        match &self.backend {
            Backend::Memory => {}
            Backend::Embedded(store) => {
                let r = record.clone();
                store.write(move |c| sql::insert(c, &r)).await?;
            }
            Backend::Shared(s) => s.create(&record).await?,
        }
        self.put(record);
        Ok(())
    }

    /// The key with this id, as the store holds it now (with the use this process saw).
    pub async fn get(&self, id: &str) -> Result<Option<KeyRecord>, KeysError> {
        let local = self.index.load().by_id.get(id).cloned();
        match &self.backend {
            Backend::Shared(s) => {
                let Some(mut r) = s.get(id).await? else {
                    return Ok(None);
                };
                r.last_used = r.last_used.max(local.and_then(|e| e.last_used()));
                Ok(Some(r))
            }
            _ => Ok(local.map(|e| e.snapshot())),
        }
    }

    /// Every key, oldest first, as the store holds it now.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, KeysError> {
        let index = self.index.load_full();
        let mut all: Vec<KeyRecord> = match &self.backend {
            // Redis is the truth (other instances' changes may not have reached the index yet);
            // the index adds the use this process saw.
            Backend::Shared(s) => {
                let mut records = s.load_all().await?;
                for r in &mut records {
                    let seen = index.by_id.get(&r.id).and_then(|e| e.last_used());
                    r.last_used = r.last_used.max(seen);
                }
                records
            }
            _ => index.by_id.values().map(|e| e.snapshot()).collect(),
        };
        all.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        Ok(all)
    }

    /// Revokes a key at `now`: refused from then on. Revoking a revoked key changes nothing.
    pub async fn revoke(&self, id: &str, now: u64) -> Result<KeyRecord, KeysError> {
        let _one = self.changes.lock().await;
        let mut record = self.current(id).await?.ok_or(KeysError::NotFound)?;
        if record.revoked.is_some() {
            return Ok(record);
        }
        match &self.backend {
            Backend::Memory => {}
            Backend::Embedded(store) => {
                let id = record.id.clone();
                store.write(move |c| sql::revoke(c, &id, now)).await?;
            }
            Backend::Shared(s) => s.revoke(&record.id, now).await?,
        }
        record.revoked = Some(now);
        self.put(record.clone());
        Ok(record)
    }

    /// Rotates a key: `plan` sees the key as stored and returns when it should expire and the
    /// key that replaces it (or why it cannot be rotated); both are stored in one change.
    /// Returns the old key as it is now.
    pub async fn rotate(
        &self,
        id: &str,
        plan: impl FnOnce(&KeyRecord) -> Result<(u64, KeyRecord), KeysError>,
    ) -> Result<KeyRecord, KeysError> {
        let _one = self.changes.lock().await;
        let mut old = self.current(id).await?.ok_or(KeysError::NotFound)?;
        let (old_expires, new) = plan(&old)?;
        match &self.backend {
            Backend::Memory => {}
            Backend::Embedded(store) => {
                let (id, n) = (old.id.clone(), new.clone());
                store
                    .write(move |c| sql::rotate(c, &id, old_expires, &n))
                    .await?;
            }
            Backend::Shared(s) => s.rotate(&old.id, old_expires, &new).await?,
        }
        old.expires = Some(old_expires);
        self.put(old.clone());
        self.put(new);
        Ok(old)
    }

    /// The key as the store holds it (Redis: read now; embedded: the index is the store's).
    async fn current(&self, id: &str) -> Result<Option<KeyRecord>, KeysError> {
        match &self.backend {
            Backend::Shared(s) => Ok(s.get(id).await?),
            _ => Ok(self.index.load().by_id.get(id).map(|e| e.record.clone())),
        }
    }

    /// Writes out the use seen since the last flush; returns how many keys it covered.
    pub async fn flush_used(&self) -> Result<usize, KeysError> {
        let index = self.index.load_full();
        let due: Vec<(Arc<Entry>, u64)> = index
            .by_id
            .values()
            .filter_map(|e| {
                let used = e.last_used.load(Ordering::Relaxed);
                (used > e.flushed.load(Ordering::Relaxed)).then(|| (Arc::clone(e), used))
            })
            .collect();
        if due.is_empty() {
            return Ok(0);
        }
        let rows: Vec<(Arc<str>, u64)> = due
            .iter()
            .map(|(e, t)| (Arc::clone(&e.record.id), *t))
            .collect();
        match &self.backend {
            Backend::Memory => {}
            Backend::Embedded(store) => store.write(move |c| sql::flush_used(c, &rows)).await?,
            Backend::Shared(s) => s.flush_used(&rows).await?,
        }
        for (e, t) in &due {
            e.flushed.fetch_max(*t, Ordering::Relaxed);
        }
        Ok(due.len())
    }

    /// Shared: reloads the index when the keys changed in Redis (any instance). Returns whether
    /// it reloaded; an error leaves the index as it was (and ageing towards stale).
    pub async fn poll(&self) -> Result<bool, Unavailable> {
        let Backend::Shared(s) = &self.backend else {
            return Ok(false);
        };
        let generation = s.generation().await?;
        let known = self.generation.lock().map(|g| *g).unwrap_or(None);
        if known == Some(generation) {
            self.synced();
            return Ok(false);
        }
        let seen = self.epoch();
        let records = s.load_all().await?;
        if !self.replace_if(Some(seen), records) {
            // A change landed meanwhile; the next poll reloads (the generation is not recorded).
            return Ok(false);
        }
        if let Ok(mut g) = self.generation.lock() {
            *g = Some(generation);
        }
        self.synced();
        Ok(true)
    }
}

/// The issued keys' upkeep, in the background: with Redis, the index follows the shared keys
/// (polled every [`POLL_EVERY`]); in every mode, `last_used` is written out every
/// [`FLUSH_USED_EVERY`] and once more when the server stops.
pub struct Upkeep(pub Arc<IssuedKeys>);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for Upkeep {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let shared = matches!(self.0.backend, Backend::Shared(_));
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut flush = tokio::time::interval(FLUSH_USED_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = poll.tick(), if shared => match self.0.poll().await {
                    Ok(_) if failing => {
                        failing = false;
                        log::info!("issued keys: in sync with Redis again");
                    }
                    Ok(_) => {}
                    Err(e) if !failing => {
                        failing = true;
                        log::warn!("issued keys: cannot sync with Redis: {}", e.0);
                    }
                    Err(_) => {}
                },
                _ = flush.tick() => self.flush().await,
                _ = shutdown.changed() => break,
            }
        }
        self.flush().await;
    }
}

impl Upkeep {
    async fn flush(&self) {
        if let Err(e) = self.0.flush_used().await {
            log::warn!("issued keys: cannot write out last_used: {e:?}");
        }
    }
}

#[cfg(test)]
mod tests;
