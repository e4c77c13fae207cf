//! Shared state on Redis, for several gateway instances behind one load balancer: token windows,
//! budget spend and, optionally, the response cache.
//!
//! An admission (tokens in three windows and the worst-case cost, all or nothing) and a settlement
//! are one Lua script each, run atomically by Redis: the check and the increment can never be
//! separated by another instance, so N instances admit exactly what one would; two round trips
//! per request. Keys carry the consumer id as a hash tag (`{id}`), so one consumer's keys share a
//! cluster slot, and expire with their window or day.
//!
//! Keys, under the configured prefix `P`:
//! - `P{id}:t:m:<minute>`, `P{id}:t:h:<hour>`, `P{id}:t:d:<day>` — tokens used + reserved;
//! - `P{id}:b:<day>` — nano-dollars spent + reserved today; `P{id}:s:<day>` — spent only;
//! - `Pcache:<key>` — a cached answer (when the cache is shared);
//! - `P{@keys}:…` — API keys issued through the admin API (layout in `state::keys::shared`).
//!
//! Failure: every call is bounded by the configured timeout, and so is the wait for the first
//! connection: it is made in the background, once however many requests want it, and each
//! request waits for it at most the timeout. Limits and budgets then fail closed (the caller
//! answers 503 with `Retry-After`), the cache fails open (a miss). The connection manager
//! reconnects by itself once Redis is back.

use super::limits::{tightest, Headroom, Refusal, TokenTicket, WINDOWS};
use super::spend::{OverBudget, SpendTicket, Standing};
use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Lua: gives back the reservations of one consumer that expired (their requests never settled:
/// the gateway holding them crashed, or they outlived [`RESERVATION_TTL`]). ARGV[`p`] is the
/// consumer's key prefix (`P{id}:`), ARGV[`p`+1] the time (Unix seconds). Each reservation is a
/// member of the `res` sorted set, `id|tokens|minute|hour|day-window|day|cost`, scored by when it
/// expires.
const REAP_FN: &str = r"
local function reap(res, prefix, now)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', res, '-inf', now)) do
    local f = {}
    for part in string.gmatch(m, '([^|]+)') do f[#f + 1] = part end
    local tokens = tonumber(f[2])
    for i, w in ipairs({'m', 'h', 'd'}) do
      local k = prefix .. 't:' .. w .. ':' .. f[2 + i]
      if redis.call('EXISTS', k) == 1 and redis.call('DECRBY', k, tokens) < 0 then
        redis.call('SET', k, 0, 'KEEPTTL')
      end
    end
    local b = prefix .. 'b:' .. f[6]
    if redis.call('EXISTS', b) == 1 and redis.call('DECRBY', b, tonumber(f[7])) < 0 then
      redis.call('SET', b, 0, 'KEEPTTL')
    end
    redis.call('ZREM', res, m)
  end
end
";

/// Admit a request: reserve its worst-case tokens in three windows and its worst-case cost
/// against today's budget, all or nothing, in one round trip, recording the reservation by id.
/// KEYS: the minute, hour and day window keys; committed (spent + reserved) today; spent today;
/// the reservations.
/// ARGV: the three limits, the tokens, the three window TTLs (s), the budget, the cost, the day
/// TTL (s), the consumer's key prefix, now, the reservation's expiry, the reservation.
/// Returns {1, used_m, used_h, used_d, spent, committed} when admitted, {0, window (1-based),
/// used} when a window is full, {2, spent, committed} when the budget is.
const ADMIT: &str = r"
reap(KEYS[6], ARGV[11], tonumber(ARGV[12]))
local need = tonumber(ARGV[4])
local used = {}
for i = 1, 3 do
  used[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used[i] + need > tonumber(ARGV[i]) then return {0, i, used[i]} end
end
local committed = tonumber(redis.call('GET', KEYS[4]) or '0')
local spent = tonumber(redis.call('GET', KEYS[5]) or '0')
if committed + tonumber(ARGV[9]) > tonumber(ARGV[8]) then return {2, spent, committed} end
for i = 1, 3 do
  used[i] = redis.call('INCRBY', KEYS[i], need)
  redis.call('EXPIRE', KEYS[i], ARGV[4 + i])
end
committed = redis.call('INCRBY', KEYS[4], ARGV[9])
redis.call('EXPIRE', KEYS[4], ARGV[10])
redis.call('ZADD', KEYS[6], ARGV[13], ARGV[14])
redis.call('EXPIRE', KEYS[6], ARGV[10])
return {1, used[1], used[2], used[3], spent, committed}
";

/// Settle a request: replace its reservation with the real usage and cost, once. A settlement
/// whose reservation is still held takes it back and adds the usage; one whose reservation
/// expired (or whose admission never ran) adds the usage alone; a settlement already applied
/// (a retry whose first answer was lost) does nothing.
/// KEYS: the reservation's minute, hour and day windows; committed and spent on its day; the
/// reservations; the settled ids.
/// ARGV: reserved tokens, actual tokens, reserved cost, actual cost, day TTL (s), the
/// reservation, its id, now.
/// Returns the three windows' use after it.
const SETTLE: &str = r"
local now = tonumber(ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - 86400)
if redis.call('ZSCORE', KEYS[7], ARGV[7]) == false then
  local held = redis.call('ZREM', KEYS[6], ARGV[6]) == 1
  local dt, dc = tonumber(ARGV[2]), tonumber(ARGV[4])
  if held then
    dt = dt - tonumber(ARGV[1])
    dc = dc - tonumber(ARGV[3])
  end
  for i = 1, 3 do
    if redis.call('EXISTS', KEYS[i]) == 1 then
      if redis.call('INCRBY', KEYS[i], dt) < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
    end
  end
  if redis.call('INCRBY', KEYS[4], dc) < 0 then redis.call('SET', KEYS[4], 0, 'KEEPTTL') end
  redis.call('EXPIRE', KEYS[4], ARGV[5])
  redis.call('INCRBY', KEYS[5], ARGV[4])
  redis.call('EXPIRE', KEYS[5], ARGV[5])
  redis.call('ZADD', KEYS[7], now, ARGV[7])
  redis.call('EXPIRE', KEYS[7], 86400)
end
local out = {}
for i = 1, 3 do out[i] = tonumber(redis.call('GET', KEYS[i]) or '0') end
return out
";

/// Lua: reaps one consumer's expired reservations. KEYS: the reservations. ARGV: the consumer's
/// key prefix, now.
const REAP: &str = r"
reap(KEYS[1], ARGV[1], tonumber(ARGV[2]))
return 1
";

/// Day keys outlive their day by this much, so a settlement just after midnight still finds them.
const DAY_TTL: u64 = 2 * 86_400;

/// How long a reservation is held before it expires on its own (the last resort for one whose
/// settlement never arrives). A request still running then is settled on its real usage alone.
pub const RESERVATION_TTL: u64 = 3_600;

/// Settlements kept for retrying while Redis cannot take them; beyond this the oldest is
/// dropped (its reservation then expires on its own).
pub const MAX_PENDING: usize = 100_000;

/// A reservation held in Redis: everything needed to settle or release it, on any attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub consumer: String,
    /// Random, unique per admission.
    pub id: String,
    pub window_ids: [u64; 3],
    pub tokens: u64,
    /// The UTC day it was made on (budgets count in it).
    pub day: u64,
    pub cost: u64,
    /// When it expires on its own (Unix seconds).
    pub expires: u64,
}

impl Held {
    /// A new reservation of `tokens` and `cost` for `consumer`, made at `now`.
    pub fn new(consumer: &str, tokens: u64, cost: u64, now: u64) -> Held {
        let mut id = [0u8; 12];
        let _ = getrandom::getrandom(&mut id);
        Held {
            consumer: consumer.to_string(),
            id: crate::digest::to_hex(&id),
            window_ids: WINDOWS.map(|w| w.id(now)),
            tokens,
            day: super::utc_day(now),
            cost,
            expires: now.saturating_add(RESERVATION_TTL),
        }
    }

    /// Its member of the consumer's reservations set.
    fn member(&self) -> String {
        let [m, h, d] = self.window_ids;
        format!(
            "{}|{}|{m}|{h}|{d}|{}|{}",
            self.id, self.tokens, self.day, self.cost
        )
    }
}

/// A settlement not yet applied.
#[derive(Debug, Clone)]
struct Pending {
    held: Held,
    actual_tokens: u64,
    actual_cost: u64,
}

/// What an admission holds and reports.
#[derive(Debug)]
pub struct Admission {
    pub tokens: TokenTicket,
    pub headroom: Headroom,
    pub spend: SpendTicket,
    pub standing: Standing,
}

/// A consumer's standing today, as Redis holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Today {
    /// Nano-dollars spent today.
    pub spent: u64,
    /// Spent plus reserved.
    pub committed: u64,
    /// Tokens used (settled plus reserved) in the current minute, hour and day.
    pub tokens: [u64; 3],
}

/// Why an admission was refused.
#[derive(Debug)]
pub enum Refused {
    Tokens(Refusal),
    Budget(OverBudget),
}

/// Redis could not be asked (unreachable, too slow, or an error reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// The connection, made in the background on first use.
struct Link {
    client: redis::Client,
    timeout: Duration,
    /// The connection once made (it reconnects by itself after that).
    ready: watch::Sender<Option<ConnectionManager>>,
    /// A connection attempt is under way.
    connecting: AtomicBool,
}

impl Link {
    /// Starts one connection attempt in the background unless one is under way.
    fn start(link: &Arc<Link>) {
        if link.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let link = Arc::clone(link);
        tokio::spawn(async move {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(link.timeout)
                .set_response_timeout(link.timeout)
                .set_number_of_retries(1);
            let made = tokio::time::timeout(
                link.timeout,
                ConnectionManager::new_with_config(link.client.clone(), config),
            )
            .await;
            match made {
                Ok(Ok(c)) => {
                    link.ready.send_replace(Some(c));
                }
                Ok(Err(e)) => log::warn!("cannot connect to Redis: {}", redis_kind(&e)),
                Err(_) => log::warn!("connecting to Redis timed out"),
            }
            link.connecting.store(false, Ordering::Release);
        });
    }
}

/// The Redis side of shared state.
pub struct RedisStore {
    link: Arc<Link>,
    prefix: String,
    timeout: Duration,
    admit: Script,
    settle: Script,
    reap: Script,
    /// Settlements Redis could not take yet, oldest first.
    pending: std::sync::Mutex<std::collections::VecDeque<Pending>>,
    /// Consumers this instance reserved for, and when last: their expired reservations are
    /// reaped in the background.
    touched: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never printed.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `url` (`redis://host:port/db`, `rediss://` for TLS); nothing is connected yet.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<RedisStore, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
        Ok(RedisStore {
            link: Arc::new(Link {
                client,
                timeout,
                ready: watch::channel(None).0,
                connecting: AtomicBool::new(false),
            }),
            prefix: prefix.to_string(),
            timeout,
            admit: Script::new(&format!("{REAP_FN}{ADMIT}")),
            settle: Script::new(SETTLE),
            reap: Script::new(&format!("{REAP_FN}{REAP}")),
            pending: std::sync::Mutex::new(std::collections::VecDeque::new()),
            touched: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The shared connection; the first is made in the background, and this waits for it at
    /// most the timeout, however many requests are waiting.
    async fn connection(&self) -> Result<ConnectionManager, Unavailable> {
        let mut ready = self.link.ready.subscribe();
        if let Some(c) = ready.borrow().clone() {
            return Ok(c);
        }
        Link::start(&self.link);
        let waited = tokio::time::timeout(self.timeout, ready.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(c)) => c
                .clone()
                .ok_or_else(|| Unavailable("not connected to Redis".into())),
            _ => Err(Unavailable("not connected to Redis yet".into())),
        }
    }

    /// Runs one call within the timeout, counting its latency and errors.
    pub(crate) async fn call<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let started = Instant::now();
        let result = match self.connection().await {
            Ok(conn) => match tokio::time::timeout(self.timeout, f(conn)).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(Unavailable(format!("Redis error: {}", redis_kind(&e)))),
                Err(_) => Err(Unavailable("Redis did not answer in time".into())),
            },
            Err(e) => Err(e),
        };
        if let Some(m) = crate::metrics::get() {
            m.redis_seconds
                .with_label_values(&[op])
                .observe(started.elapsed().as_secs_f64());
            if result.is_err() {
                m.redis_errors.with_label_values(&[op]).inc();
            }
        }
        if let Err(e) = &result {
            log::warn!("shared state: {op}: {}", e.0);
        }
        result
    }

    /// The prefix of every key this store writes.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The consumer's key prefix, `P{id}:` (its keys share one cluster slot).
    fn consumer_prefix(&self, consumer: &str) -> String {
        format!("{}{{{consumer}}}:", self.prefix)
    }

    /// The three window keys, committed and spent on `day`, the reservations, the settled ids.
    fn keys(&self, consumer: &str, window_ids: [u64; 3], day: u64) -> [String; 7] {
        let p = self.consumer_prefix(consumer);
        let [committed, spent] = self.spend_keys(consumer, day);
        [
            format!("{p}t:m:{}", window_ids[0]),
            format!("{p}t:h:{}", window_ids[1]),
            format!("{p}t:d:{}", window_ids[2]),
            committed,
            spent,
            format!("{p}res"),
            format!("{p}settled"),
        ]
    }

    fn spend_keys(&self, consumer: &str, day: u64) -> [String; 2] {
        let p = self.consumer_prefix(consumer);
        [format!("{p}b:{day}"), format!("{p}s:{day}")]
    }

    /// As the in-memory limiter and ledger together, across every instance sharing this Redis,
    /// in one atomic script: `held` (its tokens in every window of `limits` ([minute, hour,
    /// day]), its cost against `budget` for its day), recorded by its id so it can be settled
    /// or released exactly once. `Ok(Err(_))` is a refusal; `Err(_)` means Redis could not
    /// decide, and the reservation may or may not have been made: release it
    /// ([`RedisStore::release_later`]).
    pub async fn admit(
        &self,
        held: &Held,
        limits: [u64; 3],
        budget: u64,
        now: u64,
    ) -> Result<Result<Admission, Refused>, Unavailable> {
        let tokens = held.tokens;
        for (i, w) in WINDOWS.into_iter().enumerate() {
            if tokens > limits[i] {
                return Ok(Err(Refused::Tokens(Refusal::TooLarge {
                    window: w,
                    limit: limits[i],
                    needed: tokens,
                })));
            }
        }
        self.touch(&held.consumer, now);
        let keys = self.keys(&held.consumer, held.window_ids, held.day);
        // A window's key lives until its window ends, plus a minute for late settlements.
        let ttls = WINDOWS.map(|w| w.resets_in(now) + 60);
        let prefix = self.consumer_prefix(&held.consumer);
        let member = held.member();
        let reply: Vec<u64> = self
            .call("admit", |mut conn| {
                let mut inv = self.admit.prepare_invoke();
                for k in &keys[..6] {
                    inv.key(k);
                }
                inv.arg(limits[0])
                    .arg(limits[1])
                    .arg(limits[2])
                    .arg(tokens)
                    .arg(ttls[0])
                    .arg(ttls[1])
                    .arg(ttls[2])
                    .arg(budget)
                    .arg(held.cost)
                    .arg(DAY_TTL)
                    .arg(&prefix)
                    .arg(now)
                    .arg(held.expires)
                    .arg(&member);
                async move { inv.invoke_async(&mut conn).await }
            })
            .await?;
        let standing = |spent: u64, committed: u64| Standing {
            spent,
            reserved: committed.saturating_sub(spent),
            budget,
        };
        match reply.as_slice() {
            [1, m, h, d, spent, committed] => Ok(Ok(Admission {
                tokens: TokenTicket::new(held.window_ids, tokens),
                headroom: tightest(limits, [*m, *h, *d], now),
                spend: SpendTicket {
                    reserved: held.cost,
                    day: held.day,
                },
                standing: standing(*spent, *committed),
            })),
            [0, i, used] => {
                let i = (*i as usize).clamp(1, 3) - 1;
                let w = WINDOWS[i];
                Ok(Err(Refused::Tokens(Refusal::Full {
                    window: w,
                    limit: limits[i],
                    used: *used,
                    needed: tokens,
                    retry_after: w.resets_in(now),
                })))
            }
            [2, spent, committed] => Ok(Err(Refused::Budget(OverBudget {
                standing: standing(*spent, *committed),
                needed: held.cost,
            }))),
            _ => Err(Unavailable(
                "unexpected reply from the admission script".into(),
            )),
        }
    }

    /// Replaces `held` with the real usage and cost, once, in the windows and on the day it
    /// was made in. Returns the windows' use afterwards; when Redis cannot take it now, the
    /// settlement is kept and retried ([`RedisStore::retry_pending`]) and `None` is returned.
    pub async fn settle(
        &self,
        held: &Held,
        actual_tokens: u64,
        actual_cost: u64,
    ) -> Option<[u64; 3]> {
        let pending = Pending {
            held: held.clone(),
            actual_tokens,
            actual_cost,
        };
        match self.apply(&pending).await {
            Ok(used) => Some(used),
            Err(_) => {
                self.keep(pending);
                None
            }
        }
    }

    /// Releases `held` later: its admission's answer was lost, so it may or may not have been
    /// made; releasing one that was not is harmless.
    pub fn release_later(&self, held: Held) {
        self.keep(Pending {
            held,
            actual_tokens: 0,
            actual_cost: 0,
        });
    }

    /// Settlements waiting for Redis.
    pub fn pending(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Tries every waiting settlement once, oldest first; those that fail again stay, in order.
    /// Returns how many are still waiting.
    pub async fn retry_pending(&self) -> usize {
        let batch: Vec<Pending> = match self.pending.lock() {
            Ok(mut p) => p.drain(..).collect(),
            Err(_) => return 0,
        };
        let mut failed = Vec::new();
        let mut reachable = true;
        for p in batch {
            if reachable && self.apply(&p).await.is_ok() {
                continue;
            }
            // One failure is enough to know Redis is still away: keep the rest for later.
            reachable = false;
            failed.push(p);
        }
        let mut queue = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for p in failed.into_iter().rev() {
            queue.push_front(p);
        }
        self.count_pending(queue.len());
        queue.len()
    }

    /// Gives back the expired reservations of the consumers this instance reserved for within
    /// the last [`RESERVATION_TTL`] twice over.
    pub async fn reap_touched(&self, now: u64) {
        let consumers: Vec<String> = match self.touched.lock() {
            Ok(mut t) => {
                t.retain(|_, last| now.saturating_sub(*last) <= 2 * RESERVATION_TTL);
                t.keys().cloned().collect()
            }
            Err(_) => return,
        };
        for consumer in consumers {
            let prefix = self.consumer_prefix(&consumer);
            let res = format!("{prefix}res");
            let reaped = self
                .call("reap", |mut conn| {
                    let mut inv = self.reap.prepare_invoke();
                    inv.key(&res).arg(&prefix).arg(now);
                    async move { inv.invoke_async::<i64>(&mut conn).await }
                })
                .await;
            if reaped.is_err() {
                return;
            }
        }
    }

    fn touch(&self, consumer: &str, now: u64) {
        if let Ok(mut t) = self.touched.lock() {
            t.insert(consumer.to_string(), now);
        }
    }

    fn keep(&self, pending: Pending) {
        let mut queue = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if queue.len() >= MAX_PENDING {
            queue.pop_front();
            log::warn!("shared state: too many settlements waiting; the oldest is left to expire");
        }
        queue.push_back(pending);
        self.count_pending(queue.len());
    }

    fn count_pending(&self, n: usize) {
        if let Some(m) = crate::metrics::get() {
            m.redis_pending.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Runs the settlement script for `p`.
    async fn apply(&self, p: &Pending) -> Result<[u64; 3], Unavailable> {
        let held = &p.held;
        let keys = self.keys(&held.consumer, held.window_ids, held.day);
        let member = held.member();
        let now = super::unix_now();
        let used: Vec<u64> = self
            .call("settle", |mut conn| {
                let mut inv = self.settle.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(held.tokens)
                    .arg(p.actual_tokens)
                    .arg(held.cost)
                    .arg(p.actual_cost)
                    .arg(DAY_TTL)
                    .arg(&member)
                    .arg(&held.id)
                    .arg(now);
                async move { inv.invoke_async(&mut conn).await }
            })
            .await?;
        match used.as_slice() {
            [m, h, d] => Ok([*m, *h, *d]),
            _ => Err(Unavailable(
                "unexpected reply from the settlement script".into(),
            )),
        }
    }

    /// Where each consumer stands now, as every instance sees it, in one round trip: spent and
    /// committed (spent + reserved) today, and the tokens used in the current minute, hour and
    /// day.
    pub async fn standing_now(
        &self,
        consumers: &[&str],
        now: u64,
    ) -> Result<Vec<Today>, Unavailable> {
        if consumers.is_empty() {
            return Ok(Vec::new());
        }
        let ids = WINDOWS.map(|w| w.id(now));
        let day = super::utc_day(now);
        let keys: Vec<String> = consumers
            .iter()
            .flat_map(|c| {
                let [m, h, d, committed, spent, _, _] = self.keys(c, ids, day);
                [committed, spent, m, h, d]
            })
            .collect();
        let values: Vec<Option<u64>> = self
            .call("read_spend", |mut conn| async move {
                redis::cmd("MGET").arg(&keys).query_async(&mut conn).await
            })
            .await?;
        Ok(values
            .chunks(5)
            .map(|v| {
                let at = |i: usize| v.get(i).copied().flatten().unwrap_or(0);
                Today {
                    committed: at(0),
                    spent: at(1),
                    tokens: [at(2), at(3), at(4)],
                }
            })
            .collect())
    }

    /// A cached answer stored by any instance (`None` on a miss or when Redis is unavailable:
    /// the cache fails open).
    pub async fn cache_get(&self, key: &str) -> Option<Vec<u8>> {
        let k = format!("{}cache:{key}", self.prefix);
        self.call("cache_get", |mut conn| async move {
            redis::cmd("GET").arg(&k).query_async(&mut conn).await
        })
        .await
        .ok()
        .flatten()
    }

    /// Stores an answer for every instance for `ttl` (best effort).
    pub async fn cache_put(&self, key: &str, value: &[u8], ttl: Duration) {
        let k = format!("{}cache:{key}", self.prefix);
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let _ = self
            .call("cache_put", |mut conn| async move {
                redis::cmd("SET")
                    .arg(&k)
                    .arg(value)
                    .arg("PX")
                    .arg(ms)
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await;
    }
}

/// The shared store's upkeep, in the background: settlements Redis could not take are retried
/// every half second, and once more (for a few seconds) when the server stops; the expired
/// reservations of the consumers this instance reserved for are given back every 30 seconds.
pub struct Upkeep(pub Arc<RedisStore>);

/// How often waiting settlements are retried.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// How often expired reservations are reaped.
const REAP_EVERY: Duration = Duration::from_secs(30);
/// How long the retries may go on after the server was told to stop.
const FLUSH_AT_SHUTDOWN: Duration = Duration::from_secs(3);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for Upkeep {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let mut retry = tokio::time::interval(RETRY_EVERY);
        let mut reap = tokio::time::interval(REAP_EVERY);
        loop {
            tokio::select! {
                _ = retry.tick() => {
                    if self.0.pending() > 0 {
                        self.0.retry_pending().await;
                    }
                }
                _ = reap.tick() => self.0.reap_touched(super::unix_now()).await,
                _ = shutdown.changed() => break,
            }
        }
        let deadline = tokio::time::Instant::now() + FLUSH_AT_SHUTDOWN;
        while self.0.pending() > 0 && tokio::time::Instant::now() < deadline {
            if self.0.retry_pending().await == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let left = self.0.pending();
        if left > 0 {
            log::warn!("{left} settlement(s) could not reach Redis before shutdown; their reservations expire on their own");
        }
    }
}

/// The class of a Redis error, for logs and errors: never the URL (it may carry a password).
fn redis_kind(e: &redis::RedisError) -> String {
    format!("{:?}", e.kind())
}
