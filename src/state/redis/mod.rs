//! Shared state on Redis, for several gateway instances behind one load balancer: token windows,
//! request rates, budget spend (consumers' and teams', daily and monthly) and, optionally, the
//! response cache.
//!
//! An admission (tokens in three windows, a request in each request-rate window and the
//! worst-case cost against every budget, all or nothing) and a settlement are one Lua script
//! each ([`scripts`]), run atomically by Redis: the check and the increment can never be
//! separated by another instance, so N instances admit exactly what one would; two round trips
//! per request. Keys expire with their window, day or month; [`scripts`] lists them.
//!
//! Keys besides the budget and window keys [`scripts`] lists, under the configured prefix `P`:
//! `Pcache:<key>`, a cached answer (when the cache is shared), and `P{@keys}:…`, the API keys
//! issued through the admin API (layout in `state::keys::shared`).
//!
//! Hash tags: a consumer's keys carry `{id}`, a team's `{team-name}`. An admission or settlement
//! for a consumer whose team has a budget or a request rate touches both, in two hash slots:
//! the store speaks to one Redis server (standalone, or a primary behind Sentinel or a managed
//! endpoint), where that is fine; a Redis Cluster (or a proxy sharding by slot) would refuse
//! the script with `CROSSSLOT`, and the gateway would fail closed. Team limits need a
//! non-cluster Redis.
//!
//! Failure: every call is bounded by the configured timeout, and so is the wait for the first
//! connection: it is made in the background, once however many requests want it, and each
//! request waits for it at most the timeout. Limits and budgets then fail closed (the caller
//! answers 503 with `Retry-After`), the cache fails open (a miss). The connection manager
//! reconnects by itself once Redis is back.

mod held;
mod read;
mod scripts;
mod upkeep;

pub use held::{Admission, Held, Refused, Settlement, TeamToday, Today, Unavailable};
pub use upkeep::Upkeep;

use super::budget::{Budgets, Moves, OverBudget, Scope, Standing};
use super::limits::{tightest, Limits, Refusal, TokenTicket, Who, Window, WINDOWS};
use super::spend::SpendTicket;
use super::utc_month_start;
use redis::aio::ConnectionManager;
use redis::Script;
use scripts::{ADMIT, REAP, REAP_FN, SETTLE};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Day keys outlive their day by this much, so a settlement just after midnight still finds them.
const DAY_TTL: u64 = 2 * 86_400;

/// How long a reservation is held before it expires on its own (the last resort for one whose
/// settlement never arrives). A request still running then is settled on its real usage alone.
pub const RESERVATION_TTL: u64 = 3_600;

/// Settlements kept for retrying while Redis cannot take them; beyond this the oldest is
/// dropped (its reservation then expires on its own).
pub const MAX_PENDING: usize = 100_000;

/// A settlement not yet applied.
#[derive(Debug, Clone)]
struct Pending {
    held: Held,
    actual_tokens: u64,
    actual_cost: u64,
}

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

    /// The consumer's key prefix, `P{id}:` (its keys share one hash slot).
    fn consumer_prefix(&self, consumer: &str) -> String {
        format!("{}{{{consumer}}}:", self.prefix)
    }

    /// A team's key prefix, `Pteam{name}:`.
    fn team_prefix(&self, team: &str) -> String {
        format!("{}team{{{team}}}:", self.prefix)
    }

    /// The three token-window keys of a consumer's prefix `p`.
    fn window_keys(p: &str, window_ids: [u64; 3]) -> [String; 3] {
        [
            format!("{p}t:m:{}", window_ids[0]),
            format!("{p}t:h:{}", window_ids[1]),
            format!("{p}t:d:{}", window_ids[2]),
        ]
    }

    /// Committed and spent keys of the `scope` budget `held` counts in, and their TTL at `now`.
    fn budget_keys(&self, held: &Held, p: &str, scope: Scope, now: u64) -> ([String; 2], u64) {
        let team_prefix;
        let p = match (scope.is_team(), held.team.as_deref()) {
            (true, Some(t)) => {
                team_prefix = self.team_prefix(&t.name);
                team_prefix.as_str()
            }
            _ => p,
        };
        if scope.is_monthly() {
            let month = held.month();
            let ends = utc_month_start(month + 1).saturating_mul(86_400);
            let ttl = ends.saturating_sub(now).saturating_add(DAY_TTL);
            ([format!("{p}bm:{month}"), format!("{p}sm:{month}")], ttl)
        } else {
            let day = held.day;
            ([format!("{p}b:{day}"), format!("{p}s:{day}")], DAY_TTL)
        }
    }

    /// As the in-memory limiter and ledger together, across every instance sharing this Redis,
    /// in one atomic script: `held` — its tokens in every window of `limits`, one request in
    /// each request rate of `limits` (the team's with its team), its cost against each budget of
    /// `budgets` it holds (for its day and month) — recorded by its id so it can be settled or
    /// released exactly once. `Ok(Err(_))` is a refusal; `Err(_)` means Redis could not decide,
    /// and the reservation may or may not have been made: release it
    /// ([`RedisStore::release_later`]).
    pub async fn admit(
        &self,
        held: &Held,
        limits: Limits,
        budgets: &Budgets,
        now: u64,
    ) -> Result<Result<Admission, Refused>, Unavailable> {
        let tokens = held.tokens;
        let l = limits.tokens;
        for (i, w) in WINDOWS.into_iter().enumerate() {
            if tokens > l[i] {
                return Ok(Err(Refused::Tokens(Refusal::TooLarge {
                    window: w,
                    limit: l[i],
                    needed: tokens,
                })));
            }
        }
        self.touch(&held.consumer, now);
        let p = self.consumer_prefix(&held.consumer);
        let windows = Self::window_keys(&p, held.window_ids);
        let res = format!("{p}res");
        // A window's key lives until its window ends, plus a minute for late settlements.
        let ttls = WINDOWS.map(|w| w.resets_in(now) + 60);
        let minute = held.window_ids[0];
        let minute_ttl = ttls[0];
        let team = held.team.as_deref();
        let mut rates: Vec<(Who, String, u64)> = Vec::new();
        if let Some(limit) = limits.requests {
            rates.push((Who::Consumer, format!("{p}r:{minute}"), limit));
        }
        if let (Some(limit), Some(t)) = (limits.team_requests, team) {
            let tp = self.team_prefix(&t.name);
            rates.push((Who::Team, format!("{tp}r:{minute}"), limit));
        }
        let held_to: Vec<(Scope, [String; 2], u64, u64)> = held
            .scopes()
            .filter_map(|scope| {
                let budget = budgets.get(scope)?;
                let (keys, ttl) = self.budget_keys(held, &p, scope, now);
                Some((scope, keys, ttl, budget))
            })
            .collect();
        let member = held.member();
        let reply: Vec<u64> = self
            .call("admit", |mut conn| {
                let mut inv = self.admit.prepare_invoke();
                inv.key(&res);
                for k in &windows {
                    inv.key(k);
                }
                for (_, k, _) in &rates {
                    inv.key(k);
                }
                for (_, [committed, spent], _, _) in &held_to {
                    inv.key(committed).key(spent);
                }
                inv.arg(&self.prefix)
                    .arg(&p)
                    .arg(now)
                    .arg(held.expires)
                    .arg(&member)
                    .arg(tokens)
                    .arg(held.cost)
                    .arg(l[0])
                    .arg(l[1])
                    .arg(l[2])
                    .arg(ttls[0])
                    .arg(ttls[1])
                    .arg(ttls[2])
                    .arg(rates.len())
                    .arg(held_to.len());
                for (_, _, limit) in &rates {
                    inv.arg(*limit).arg(minute_ttl);
                }
                for (_, _, ttl, budget) in &held_to {
                    inv.arg(*budget).arg(*ttl);
                }
                async move { inv.invoke_async(&mut conn).await }
            })
            .await?;
        let standing = |spent: u64, committed: u64, budget: u64| Standing {
            spent,
            reserved: committed.saturating_sub(spent),
            budget,
        };
        let unexpected = || Unavailable("unexpected reply from the admission script".into());
        match reply.as_slice() {
            [1, m, h, d, spent, committed, ..] => Ok(Ok(Admission {
                tokens: TokenTicket::new(held.window_ids, tokens),
                headroom: tightest(l, [*m, *h, *d], now),
                spend: SpendTicket {
                    reserved: held.cost,
                    day: held.day,
                },
                standing: standing(*spent, *committed, budgets.consumer_daily),
            })),
            [0, i, used] => {
                let i = (*i as usize).clamp(1, 3) - 1;
                let w = WINDOWS[i];
                Ok(Err(Refused::Tokens(Refusal::Full {
                    window: w,
                    limit: l[i],
                    used: *used,
                    needed: tokens,
                    retry_after: w.resets_in(now),
                })))
            }
            [3, j, _] => {
                let (who, _, limit) = rates
                    .get((*j as usize).wrapping_sub(1))
                    .ok_or_else(unexpected)?;
                Ok(Err(Refused::Tokens(Refusal::Requests {
                    who: *who,
                    limit: *limit,
                    retry_after: Window::Minute.resets_in(now),
                })))
            }
            [2, j, spent, committed] => {
                let (scope, _, _, budget) = held_to
                    .get((*j as usize).wrapping_sub(1))
                    .ok_or_else(unexpected)?;
                Ok(Err(Refused::Budget(OverBudget {
                    scope: *scope,
                    standing: standing(*spent, *committed, *budget),
                    needed: held.cost,
                })))
            }
            _ => Err(unexpected()),
        }
    }

    /// Replaces `held` with the real usage and cost, once, in the windows and on the day (and
    /// month) it was made in. Returns the windows' use afterwards and how each budget's spent
    /// moved; when Redis cannot take it now, the settlement is kept and retried
    /// ([`RedisStore::retry_pending`]) and `None` is returned.
    pub async fn settle(
        &self,
        held: &Held,
        actual_tokens: u64,
        actual_cost: u64,
    ) -> Option<Settlement> {
        let pending = Pending {
            held: held.clone(),
            actual_tokens,
            actual_cost,
        };
        match self.apply(&pending).await {
            Ok(settled) => Some(settled),
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
                    inv.key(&res).arg(&self.prefix).arg(&prefix).arg(now);
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
    async fn apply(&self, p: &Pending) -> Result<Settlement, Unavailable> {
        let held = &p.held;
        let now = super::unix_now();
        let prefix = self.consumer_prefix(&held.consumer);
        let windows = Self::window_keys(&prefix, held.window_ids);
        let fixed = [format!("{prefix}res"), format!("{prefix}settled")];
        let held_to: Vec<(Scope, [String; 2], u64)> = held
            .scopes()
            .map(|scope| {
                let (keys, ttl) = self.budget_keys(held, &prefix, scope, now);
                (scope, keys, ttl)
            })
            .collect();
        let member = held.member();
        let reply: Vec<u64> = self
            .call("settle", |mut conn| {
                let mut inv = self.settle.prepare_invoke();
                for k in fixed.iter().chain(&windows) {
                    inv.key(k);
                }
                for (_, [committed, spent], _) in &held_to {
                    inv.key(committed).key(spent);
                }
                inv.arg(held.tokens)
                    .arg(p.actual_tokens)
                    .arg(held.cost)
                    .arg(p.actual_cost)
                    .arg(&member)
                    .arg(&held.id)
                    .arg(now)
                    .arg(held_to.len());
                for (_, _, ttl) in &held_to {
                    inv.arg(*ttl);
                }
                async move { inv.invoke_async(&mut conn).await }
            })
            .await?;
        let [m, h, d] = match reply.get(..3) {
            Some(&[m, h, d]) => [m, h, d],
            _ => {
                return Err(Unavailable(
                    "unexpected reply from the settlement script".into(),
                ))
            }
        };
        let mut moves = Moves::default();
        for ((scope, _, _), pair) in held_to.iter().zip(reply[3..].chunks_exact(2)) {
            moves.set(*scope, pair[0], pair[1]);
        }
        Ok(Settlement {
            used: [m, h, d],
            moves,
        })
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
