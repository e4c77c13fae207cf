//! What the gateway reports about itself, in JSON, wherever it is asked: the admin plane (behind
//! its token) and, for `/health` always and the lab's reports with `server.lab_endpoints`, the
//! consumer listener (`protocol::Page`).
//!
//! - health: liveness, the version running and how many backends are usable now;
//! - costs: per consumer, today's spend and reservations, all-time spend, the token windows and
//!   the recent requests, with the lab's key names beside the gateway's (`spent_today`,
//!   `total_all_time`, `recent_requests`); this month's spend; and per team listed under
//!   `teams:`, its budgets and its spend today and this month;
//! - cache statistics (`state::cache`) and the lab's aggregate statistics (`state::stats`).
//!
//! Money is counted in nano-dollars; the `*_usd` strings are exact decimals, and the lab's keys
//! are JSON numbers rounded to micro-dollars because the lab's readers expect numbers.

use crate::config::money::usd_number;
use crate::protocol::Page;
use crate::runtime::Runtime;
use crate::state::budget::Tally;
use crate::state::spend::{usd, Standing};
use crate::state::{unix_now, utc_date, utc_day, utc_month, utc_month_label, State};
use serde_json::{json, Value};
use std::time::Instant;

/// The JSON answer for `page`; today's spend comes from Redis when limits are shared.
pub async fn page(page: Page, state: &State, rt: &Runtime) -> Value {
    match page {
        Page::Health => health(state, rt),
        Page::Metrics => state.stats.report(),
        Page::Costs => {
            let mut v = costs(state, rt);
            shared_costs(state, rt, &mut v).await;
            v
        }
        Page::CacheStats => cache_stats(state, rt),
    }
}

/// Liveness, for probes and load balancers: always `ok` while the process answers; how many
/// backends are usable now is reported, not judged.
pub fn health(state: &State, rt: &Runtime) -> Value {
    let now = Instant::now();
    let usable = rt
        .config
        .backends
        .iter()
        .filter(|b| state.health.describe(&b.id, now).1)
        .count();
    json!({
        "status": "ok",
        "service": "tollgate",
        "version": env!("CARGO_PKG_VERSION"),
        "config_version": rt.version,
        "backends": {"total": rt.config.backends.len(), "healthy": usable},
    })
}

pub fn cache_stats(state: &State, rt: &Runtime) -> Value {
    state.cache.stats(&rt.config.cache, Instant::now())
}

/// Spend per consumer, as this instance counts it.
pub fn costs(state: &State, rt: &Runtime) -> Value {
    let now = unix_now();
    let day = utc_day(now);
    let mut consumers = serde_json::Map::new();
    for c in &rt.config.consumers {
        let (_, total, recent) = state.spend.report(&c.id, day);
        let budget = c.daily_budget_micros.saturating_mul(1000);
        let standing = state.spend.standing(&c.id, budget, day);
        let used = state.limiter.used(&c.id, now);
        let recent: Vec<Value> = recent
            .iter()
            .rev()
            .map(|r| {
                json!({
                    "timestamp": r.timestamp,
                    "model": r.model,
                    "input_tokens": r.input_tokens,
                    "output_tokens": r.output_tokens,
                    "cost_usd": usd(r.cost_nanos, 6),
                    "cost": usd_number(r.cost_nanos),
                    "estimated": r.estimated,
                })
            })
            .collect();
        let mut entry = json!({
            "team": c.team,
            "daily_budget_usd": usd(budget, 2),
            "daily_budget": usd_number(budget),
            "total_all_time_usd": usd(total, 6),
            "total_all_time": usd_number(total),
            "recent_requests": recent,
        });
        if let Some(map) = entry.as_object_mut() {
            today_fields(map, &standing, used);
            if let Some(b) = c.monthly_budget_micros {
                map.insert(
                    "monthly_budget_usd".into(),
                    json!(usd(b.saturating_mul(1000), 2)),
                );
            }
            if let Some(r) = c.requests_per_minute {
                map.insert("requests_per_minute".into(), json!(r));
            }
            month_fields(map, &state.spend.month(&c.id, day));
        }
        consumers.insert(c.id.clone(), entry);
    }
    let mut teams = serde_json::Map::new();
    for (name, t) in &rt.config.teams {
        let (today, month) = state.spend.team(name, day);
        let mut entry = serde_json::Map::new();
        let budget = |m: Option<u64>| m.map(|b| usd(b.saturating_mul(1000), 2));
        entry.insert(
            "daily_budget_usd".into(),
            json!(budget(t.daily_budget_micros)),
        );
        entry.insert(
            "monthly_budget_usd".into(),
            json!(budget(t.monthly_budget_micros)),
        );
        entry.insert("requests_per_minute".into(), json!(t.requests_per_minute));
        team_fields(&mut entry, &today, &month);
        teams.insert(name.clone(), Value::Object(entry));
    }
    json!({
        "date": utc_date(day),
        "month": utc_month_label(utc_month(day)),
        "consumers": consumers,
        "teams": teams,
    })
}

/// A consumer's or team's spend this month.
fn month_fields(c: &mut serde_json::Map<String, Value>, month: &Tally) {
    c.insert("spent_month_usd".into(), json!(usd(month.spent, 6)));
    c.insert("spent_month_nanos".into(), json!(month.spent));
}

/// A team's spend today (with what is reserved) and this month.
fn team_fields(t: &mut serde_json::Map<String, Value>, today: &Tally, month: &Tally) {
    t.insert("spent_today_usd".into(), json!(usd(today.spent, 6)));
    t.insert("spent_today_nanos".into(), json!(today.spent));
    t.insert("reserved_usd".into(), json!(usd(today.reserved, 6)));
    month_fields(t, month);
}

/// A consumer's figures for today, wherever they were read: spend, reservations and the token
/// windows (minute, hour, day).
fn today_fields(c: &mut serde_json::Map<String, Value>, today: &Standing, tokens: [u64; 3]) {
    let [minute, hour, day] = tokens;
    c.insert("spent_today_usd".into(), json!(usd(today.spent, 6)));
    c.insert("spent_today".into(), json!(usd_number(today.spent)));
    c.insert("spent_today_nanos".into(), json!(today.spent));
    c.insert("reserved_usd".into(), json!(usd(today.reserved, 6)));
    c.insert("percent_used".into(), json!(today.percent_used()));
    c.insert(
        "tokens_used".into(),
        json!({"minute": minute, "hour": hour, "day": day}),
    );
}

/// With shared state, today's spend and the token windows in `costs` are every instance's (read
/// from Redis, which enforces them), and so are the month's spend and the teams' where Redis
/// counts them (while the budget exists); the recent requests and all-time totals stay this
/// instance's own.
async fn shared_costs(state: &State, rt: &Runtime, costs: &mut Value) {
    let Some(shared) = &state.shared else {
        return;
    };
    let Some(map) = costs.get_mut("consumers").and_then(Value::as_object_mut) else {
        return;
    };
    let consumers = &rt.config.consumers;
    let ids: Vec<&str> = consumers.iter().map(|c| c.id.as_str()).collect();
    match shared.store.standing_now(&ids, unix_now()).await {
        Ok(values) => {
            for (consumer, today) in consumers.iter().zip(values) {
                let Some(c) = map.get_mut(&consumer.id).and_then(Value::as_object_mut) else {
                    continue;
                };
                let standing = Standing {
                    spent: today.spent,
                    reserved: today.committed.saturating_sub(today.spent),
                    budget: consumer.daily_budget_micros.saturating_mul(1000),
                };
                today_fields(c, &standing, today.tokens);
                if consumer.monthly_budget_micros.is_some() {
                    month_fields(c, &tally(today.month_spent, today.month_committed));
                }
            }
            costs["spend_source"] = json!("redis");
            costs["settlements_waiting"] = json!(shared.store.pending());
        }
        Err(_) => {
            costs["spend_source"] = json!("local (shared state unavailable)");
            return;
        }
    }
    let names: Vec<&str> = rt.config.teams.keys().map(String::as_str).collect();
    let Ok(values) = shared.store.teams_now(&names, unix_now()).await else {
        return;
    };
    let Some(map) = costs.get_mut("teams").and_then(Value::as_object_mut) else {
        return;
    };
    for ((name, team), now) in rt.config.teams.iter().zip(values) {
        let Some(t) = map.get_mut(name).and_then(Value::as_object_mut) else {
            continue;
        };
        // Redis counts a team's day or month only while it has that budget.
        if team.daily_budget_micros.is_some() {
            let today = tally(now.spent, now.committed);
            t.insert("spent_today_usd".into(), json!(usd(today.spent, 6)));
            t.insert("spent_today_nanos".into(), json!(today.spent));
            t.insert("reserved_usd".into(), json!(usd(today.reserved, 6)));
        }
        if team.monthly_budget_micros.is_some() {
            month_fields(t, &tally(now.month_spent, now.month_committed));
        }
    }
}

/// A tally from Redis's spent and committed (spent + reserved).
fn tally(spent: u64, committed: u64) -> Tally {
    Tally {
        period: 0,
        spent,
        reserved: committed.saturating_sub(spent),
    }
}
