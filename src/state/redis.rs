//! Shared state on Redis, for several gateway instances behind one load balancer: token windows,
//! budget spend and, optionally, the response cache.
//!
//! Every reservation and settlement is one Lua script, run atomically by Redis: the check and the
//! increment can never be separated by another instance, so N instances admit exactly what one
//! would. Keys carry the consumer id as a hash tag (`{id}`), so one consumer's keys share a
//! cluster slot, and expire with their window or day.
//!
//! Keys, under the configured prefix `P`:
//! - `P{id}:t:m:<minute>`, `P{id}:t:h:<hour>`, `P{id}:t:d:<day>` — tokens used + reserved;
//! - `P{id}:b:<day>` — nano-dollars spent + reserved today; `P{id}:s:<day>` — spent only;
//! - `Pcache:<key>` — a cached answer (when the cache is shared).
//!
//! Failure: every call is bounded by the configured timeout. Limits and budgets then fail closed
//! (the caller answers 503 with `Retry-After`), the cache fails open (a miss). The connection
//! manager reconnects by itself once Redis is back.

use super::limits::{Headroom, Refusal, TokenTicket, Window, WINDOWS};
use super::spend::{OverBudget, SpendTicket, Standing};
use redis::aio::ConnectionManager;
use redis::Script;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Reserve tokens in three windows: all or nothing.
/// KEYS: the three window keys. ARGV: the three limits, the tokens, the three TTLs (s).
/// Returns {1, used_m, used_h, used_d} or {0, window index (1-based), used}.
const RESERVE_TOKENS: &str = r"
local need = tonumber(ARGV[4])
local used = {}
for i = 1, 3 do
  used[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used[i] + need > tonumber(ARGV[i]) then return {0, i, used[i]} end
end
for i = 1, 3 do
  used[i] = redis.call('INCRBY', KEYS[i], need)
  redis.call('EXPIRE', KEYS[i], ARGV[4 + i])
end
return {1, used[1], used[2], used[3]}
";

/// Replace a token reservation with the real usage, in windows that still exist.
/// KEYS: the three window keys. ARGV: reserved, actual.
const SETTLE_TOKENS: &str = r"
local delta = tonumber(ARGV[2]) - tonumber(ARGV[1])
for i = 1, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('INCRBY', KEYS[i], delta) < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
  end
end
return 1
";

/// Reserve a worst-case cost against today's budget.
/// KEYS: committed (spent + reserved), spent. ARGV: budget, cost, TTL (s).
/// Returns {1, spent, committed} or {0, spent, committed}.
const RESERVE_SPEND: &str = r"
local committed = tonumber(redis.call('GET', KEYS[1]) or '0')
local spent = tonumber(redis.call('GET', KEYS[2]) or '0')
if committed + tonumber(ARGV[2]) > tonumber(ARGV[1]) then return {0, spent, committed} end
committed = redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, spent, committed}
";

/// Move a cost reservation to the real cost.
/// KEYS: committed, spent. ARGV: reserved, cost, TTL (s).
const SETTLE_SPEND: &str = r"
local c = redis.call('INCRBY', KEYS[1], tonumber(ARGV[2]) - tonumber(ARGV[1]))
if c < 0 then redis.call('SET', KEYS[1], 0) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('INCRBY', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
";

/// Day keys outlive their day by this much, so a settlement just after midnight still finds them.
const DAY_TTL: u64 = 2 * 86_400;

/// Redis could not be asked (unreachable, too slow, or an error reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// The Redis side of shared state.
pub struct RedisStore {
    client: redis::Client,
    /// Created on first use, inside the serving runtime; reconnects by itself.
    conn: Mutex<Option<ConnectionManager>>,
    prefix: String,
    timeout: Duration,
    reserve_tokens: Script,
    settle_tokens: Script,
    reserve_spend: Script,
    settle_spend: Script,
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
            client,
            conn: Mutex::new(None),
            prefix: prefix.to_string(),
            timeout,
            reserve_tokens: Script::new(RESERVE_TOKENS),
            settle_tokens: Script::new(SETTLE_TOKENS),
            reserve_spend: Script::new(RESERVE_SPEND),
            settle_spend: Script::new(SETTLE_SPEND),
        })
    }

    /// The shared connection, connecting first if needed (within the timeout).
    async fn connection(&self) -> Result<ConnectionManager, Unavailable> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(1);
        let made = tokio::time::timeout(
            self.timeout,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| Unavailable("connecting to Redis timed out".into()))?
        .map_err(|e| Unavailable(format!("cannot connect to Redis: {}", redis_kind(&e))))?;
        *slot = Some(made.clone());
        Ok(made)
    }

    /// Runs one call within the timeout, counting its latency and errors.
    async fn call<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, Unavailable>
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

    fn token_keys(&self, consumer: &str, ids: [u64; 3]) -> [String; 3] {
        let p = &self.prefix;
        [
            format!("{p}{{{consumer}}}:t:m:{}", ids[0]),
            format!("{p}{{{consumer}}}:t:h:{}", ids[1]),
            format!("{p}{{{consumer}}}:t:d:{}", ids[2]),
        ]
    }

    fn spend_keys(&self, consumer: &str, day: u64) -> [String; 2] {
        let p = &self.prefix;
        [
            format!("{p}{{{consumer}}}:b:{day}"),
            format!("{p}{{{consumer}}}:s:{day}"),
        ]
    }

    /// As [`super::limits::Limiter::reserve`], across every instance sharing this Redis.
    /// `Ok(Err(_))` is a refusal; `Err(_)` means Redis could not decide.
    pub async fn reserve_tokens(
        &self,
        consumer: &str,
        limits: [u64; 3],
        tokens: u64,
        now: u64,
    ) -> Result<Result<(TokenTicket, Headroom), Refusal>, Unavailable> {
        for (i, w) in WINDOWS.into_iter().enumerate() {
            if tokens > limits[i] {
                return Ok(Err(Refusal::TooLarge {
                    window: w,
                    limit: limits[i],
                    needed: tokens,
                }));
            }
        }
        let ids = WINDOWS.map(|w| w.id(now));
        let keys = self.token_keys(consumer, ids);
        // A window's key lives until its window ends, plus a minute for late settlements.
        let ttls = WINDOWS.map(|w| w.resets_in(now) + 60);
        let reply: Vec<u64> = self
            .call("reserve_tokens", |mut conn| {
                let mut inv = self.reserve_tokens.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(limits[0])
                    .arg(limits[1])
                    .arg(limits[2])
                    .arg(tokens)
                    .arg(ttls[0])
                    .arg(ttls[1])
                    .arg(ttls[2]);
                async move { inv.invoke_async(&mut conn).await }
            })
            .await?;
        match reply.as_slice() {
            [1, m, h, d] => {
                let used = [*m, *h, *d];
                Ok(Ok((
                    TokenTicket::new(ids, tokens),
                    tightest(limits, used, now),
                )))
            }
            [0, i, used] => {
                let i = (*i as usize).clamp(1, 3) - 1;
                let w = WINDOWS[i];
                Ok(Err(Refusal::Full {
                    window: w,
                    limit: limits[i],
                    used: *used,
                    needed: tokens,
                    retry_after: w.resets_in(now),
                }))
            }
            _ => Err(Unavailable("unexpected reply from the token script".into())),
        }
    }

    /// Replaces a token reservation with the real usage.
    pub async fn settle_tokens(
        &self,
        consumer: &str,
        ticket: &TokenTicket,
        actual: u64,
    ) -> Result<(), Unavailable> {
        let keys = self.token_keys(consumer, ticket.window_ids());
        self.call("settle_tokens", |mut conn| {
            let mut inv = self.settle_tokens.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            inv.arg(ticket.reserved).arg(actual);
            async move { inv.invoke_async::<i64>(&mut conn).await }
        })
        .await
        .map(|_| ())
    }

    /// As [`super::spend::Ledger::reserve`], across every instance.
    pub async fn reserve_spend(
        &self,
        consumer: &str,
        budget: u64,
        cost: u64,
        day: u64,
    ) -> Result<Result<(SpendTicket, Standing), OverBudget>, Unavailable> {
        let keys = self.spend_keys(consumer, day);
        let reply: Vec<u64> = self
            .call("reserve_spend", |mut conn| {
                let mut inv = self.reserve_spend.prepare_invoke();
                inv.key(&keys[0])
                    .key(&keys[1])
                    .arg(budget)
                    .arg(cost)
                    .arg(DAY_TTL);
                async move { inv.invoke_async(&mut conn).await }
            })
            .await?;
        match reply.as_slice() {
            [ok, spent, committed] => {
                let standing = Standing {
                    spent: *spent,
                    reserved: committed.saturating_sub(*spent),
                    budget,
                };
                if *ok == 1 {
                    Ok(Ok((SpendTicket { reserved: cost }, standing)))
                } else {
                    Ok(Err(OverBudget {
                        standing,
                        needed: cost,
                    }))
                }
            }
            _ => Err(Unavailable(
                "unexpected reply from the budget script".into(),
            )),
        }
    }

    /// Moves a cost reservation to the real cost.
    pub async fn settle_spend(
        &self,
        consumer: &str,
        ticket: &SpendTicket,
        cost: u64,
        day: u64,
    ) -> Result<(), Unavailable> {
        let keys = self.spend_keys(consumer, day);
        self.call("settle_spend", |mut conn| {
            let mut inv = self.settle_spend.prepare_invoke();
            inv.key(&keys[0])
                .key(&keys[1])
                .arg(ticket.reserved)
                .arg(cost)
                .arg(DAY_TTL);
            async move { inv.invoke_async::<i64>(&mut conn).await }
        })
        .await
        .map(|_| ())
    }

    /// Spent today and committed (spent + reserved) of each consumer, as every instance sees
    /// them, in one round trip.
    pub async fn spend_today(
        &self,
        consumers: &[&str],
        day: u64,
    ) -> Result<Vec<(u64, u64)>, Unavailable> {
        if consumers.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = consumers
            .iter()
            .flat_map(|c| self.spend_keys(c, day))
            .collect();
        let values: Vec<Option<u64>> = self
            .call("read_spend", |mut conn| async move {
                redis::cmd("MGET").arg(&keys).query_async(&mut conn).await
            })
            .await?;
        Ok(values
            .chunks(2)
            .map(|pair| {
                let committed = pair.first().copied().flatten().unwrap_or(0);
                let spent = pair.get(1).copied().flatten().unwrap_or(0);
                (spent, committed)
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

/// The tightest window after an admission, from the counts Redis returned.
fn tightest(limits: [u64; 3], used: [u64; 3], now: u64) -> Headroom {
    let mut best = Headroom {
        window: Window::Minute,
        limit: limits[0],
        remaining: limits[0].saturating_sub(used[0]),
        resets_in: Window::Minute.resets_in(now),
    };
    for (i, w) in WINDOWS.into_iter().enumerate().skip(1) {
        let remaining = limits[i].saturating_sub(used[i]);
        if remaining < best.remaining {
            best = Headroom {
                window: w,
                limit: limits[i],
                remaining,
                resets_in: w.resets_in(now),
            };
        }
    }
    best
}

/// The class of a Redis error, for logs and errors: never the URL (it may carry a password).
fn redis_kind(e: &redis::RedisError) -> String {
    format!("{:?}", e.kind())
}
