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
//! - `Pcache:<key>` — a cached answer (when the cache is shared).
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

/// Admit a request: reserve its worst-case tokens in three windows and its worst-case cost
/// against today's budget, all or nothing, in one round trip.
/// KEYS: the minute, hour and day window keys; committed (spent + reserved) today; spent today.
/// ARGV: the three limits, the tokens, the three window TTLs (s), the budget, the cost, the day
/// TTL (s).
/// Returns {1, used_m, used_h, used_d, spent, committed} when admitted, {0, window (1-based),
/// used} when a window is full, {2, spent, committed} when the budget is.
const ADMIT: &str = r"
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
return {1, used[1], used[2], used[3], spent, committed}
";

/// Settle a request: replace both reservations with the real usage and cost.
/// KEYS: as for ADMIT. ARGV: reserved tokens, actual tokens, reserved cost, actual cost, day
/// TTL (s). Windows that already expired are left alone.
const SETTLE: &str = r"
local delta = tonumber(ARGV[2]) - tonumber(ARGV[1])
for i = 1, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('INCRBY', KEYS[i], delta) < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
  end
end
if redis.call('INCRBY', KEYS[4], tonumber(ARGV[4]) - tonumber(ARGV[3])) < 0 then
  redis.call('SET', KEYS[4], 0)
end
redis.call('EXPIRE', KEYS[4], ARGV[5])
redis.call('INCRBY', KEYS[5], ARGV[4])
redis.call('EXPIRE', KEYS[5], ARGV[5])
return 1
";

/// Day keys outlive their day by this much, so a settlement just after midnight still finds them.
const DAY_TTL: u64 = 2 * 86_400;

/// What an admission holds and reports.
#[derive(Debug)]
pub struct Admission {
    pub tokens: TokenTicket,
    pub headroom: Headroom,
    pub spend: SpendTicket,
    pub standing: Standing,
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
            admit: Script::new(ADMIT),
            settle: Script::new(SETTLE),
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

    /// The three window keys, then committed and spent today.
    fn keys(&self, consumer: &str, window_ids: [u64; 3], day: u64) -> [String; 5] {
        let p = &self.prefix;
        let [committed, spent] = self.spend_keys(consumer, day);
        [
            format!("{p}{{{consumer}}}:t:m:{}", window_ids[0]),
            format!("{p}{{{consumer}}}:t:h:{}", window_ids[1]),
            format!("{p}{{{consumer}}}:t:d:{}", window_ids[2]),
            committed,
            spent,
        ]
    }

    fn spend_keys(&self, consumer: &str, day: u64) -> [String; 2] {
        let p = &self.prefix;
        [
            format!("{p}{{{consumer}}}:b:{day}"),
            format!("{p}{{{consumer}}}:s:{day}"),
        ]
    }

    /// As the in-memory limiter and ledger together, across every instance sharing this Redis,
    /// in one atomic script: `tokens` in every window of `limits` ([minute, hour, day]) and
    /// `cost` (nano-dollars) against `budget` for today. `Ok(Err(_))` is a refusal; `Err(_)`
    /// means Redis could not decide.
    pub async fn admit(
        &self,
        consumer: &str,
        limits: [u64; 3],
        tokens: u64,
        budget: u64,
        cost: u64,
        now: u64,
    ) -> Result<Result<Admission, Refused>, Unavailable> {
        for (i, w) in WINDOWS.into_iter().enumerate() {
            if tokens > limits[i] {
                return Ok(Err(Refused::Tokens(Refusal::TooLarge {
                    window: w,
                    limit: limits[i],
                    needed: tokens,
                })));
            }
        }
        let ids = WINDOWS.map(|w| w.id(now));
        let keys = self.keys(consumer, ids, super::utc_day(now));
        // A window's key lives until its window ends, plus a minute for late settlements.
        let ttls = WINDOWS.map(|w| w.resets_in(now) + 60);
        let reply: Vec<u64> = self
            .call("admit", |mut conn| {
                let mut inv = self.admit.prepare_invoke();
                for k in &keys {
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
                    .arg(cost)
                    .arg(DAY_TTL);
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
                tokens: TokenTicket::new(ids, tokens),
                headroom: tightest(limits, [*m, *h, *d], now),
                spend: SpendTicket { reserved: cost },
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
                needed: cost,
            }))),
            _ => Err(Unavailable(
                "unexpected reply from the admission script".into(),
            )),
        }
    }

    /// Replaces both reservations of an admission with the real usage and cost, in one script.
    pub async fn settle(
        &self,
        consumer: &str,
        tokens: &TokenTicket,
        actual_tokens: u64,
        spend: &SpendTicket,
        cost: u64,
        day: u64,
    ) -> Result<(), Unavailable> {
        let keys = self.keys(consumer, tokens.window_ids(), day);
        self.call("settle", |mut conn| {
            let mut inv = self.settle.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            inv.arg(tokens.reserved)
                .arg(actual_tokens)
                .arg(spend.reserved)
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

/// The class of a Redis error, for logs and errors: never the URL (it may carry a password).
fn redis_kind(e: &redis::RedisError) -> String {
    format!("{:?}", e.kind())
}
