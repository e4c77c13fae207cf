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
use crate::state::spend_report::{GroupBy, SpendLine, SpendReport};
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

/// `GET /spend?from=YYYY-MM-DD&to=YYYY-MM-DD&group_by=consumer|team|model|day|key&format=json|csv`:
/// the ledger summed over UTC days `from..=to` (both default to today). Returns the status,
/// the content type and the body.
pub async fn spend(state: &State, query: Option<&str>) -> (u16, &'static str, Vec<u8>) {
    let bad = |status: u16, message: String| {
        let body = json!({"error": message}).to_string().into_bytes();
        (status, "application/json", body)
    };
    let asked = match SpendQuery::parse(query.unwrap_or(""), utc_day(unix_now())) {
        Ok(q) => q,
        Err(e) => return bad(400, e),
    };
    let Some(store) = &state.store else {
        return bad(503, "this gateway keeps no ledger".into());
    };
    if !store.keeps_rows() {
        return bad(
            409,
            "state.ledger is false: no per-request rows are kept to report on".into(),
        );
    }
    match store
        .spend_report(asked.from, asked.to, asked.group_by)
        .await
    {
        Ok(report) if asked.csv => (200, "text/csv; charset=utf-8", spend_csv(&report)),
        Ok(report) => (
            200,
            "application/json",
            spend_json(&report).to_string().into_bytes(),
        ),
        Err(e) => {
            log::error!("the spend report failed: {e}");
            bad(500, "the ledger could not be read".into())
        }
    }
}

/// What `GET /spend` was asked.
#[derive(Debug, PartialEq, Eq)]
struct SpendQuery {
    from: u64,
    to: u64,
    group_by: GroupBy,
    csv: bool,
}

impl SpendQuery {
    fn parse(query: &str, today: u64) -> Result<SpendQuery, String> {
        let mut q = SpendQuery {
            from: today,
            to: today,
            group_by: GroupBy::Consumer,
            csv: false,
        };
        let day = |name: &str, v: &str| {
            crate::config::build::utc_seconds(v)
                .filter(|_| !v.contains('T'))
                .map(utc_day)
                .ok_or_else(|| format!("`{name}` must be a UTC date, YYYY-MM-DD"))
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "from" => q.from = day("from", value)?,
                "to" => q.to = day("to", value)?,
                "group_by" => {
                    q.group_by = GroupBy::parse(value)
                        .ok_or("`group_by` must be consumer, team, model, day or key".to_string())?
                }
                "format" => {
                    q.csv = match value {
                        "csv" => true,
                        "json" => false,
                        _ => return Err("`format` must be json or csv".into()),
                    }
                }
                _ => {
                    let name: String = name.chars().take(40).collect();
                    return Err(format!(
                        "unknown parameter `{name}`; use from, to, group_by and format"
                    ));
                }
            }
        }
        if q.from > q.to {
            return Err("`from` is after `to`".into());
        }
        Ok(q)
    }
}

fn spend_line_json(l: &SpendLine) -> Value {
    json!({
        "requests": l.requests,
        "input_tokens": l.input_tokens,
        "output_tokens": l.output_tokens,
        "cached_tokens": l.cached_tokens,
        "cache_write_tokens": l.cache_write_tokens,
        "reasoning_tokens": l.reasoning_tokens,
        "cost_usd": usd(l.cost_nanos, 9),
        "cost_nanos": l.cost_nanos,
        "estimated_requests": l.estimated,
    })
}

fn spend_json(r: &SpendReport) -> Value {
    let lines: Vec<Value> = r
        .lines
        .iter()
        .map(|l| {
            let mut v = spend_line_json(l);
            v[r.group_by.as_str()] = json!(l.group);
            v
        })
        .collect();
    json!({
        "from": utc_date(r.from_day),
        "to": utc_date(r.to_day),
        "group_by": r.group_by.as_str(),
        "rows": lines,
        "total": spend_line_json(&r.total),
    })
}

/// The report as CSV: a header, one line per group, then the total.
fn spend_csv(r: &SpendReport) -> Vec<u8> {
    let mut out = format!(
        "{},requests,input_tokens,output_tokens,cached_tokens,cache_write_tokens,\
         reasoning_tokens,cost_usd,cost_nanos,estimated_requests\n",
        r.group_by.as_str()
    );
    for l in r.lines.iter().chain(std::iter::once(&r.total)) {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(&l.group),
            l.requests,
            l.input_tokens,
            l.output_tokens,
            l.cached_tokens,
            l.cache_write_tokens,
            l.reasoning_tokens,
            usd(l.cost_nanos, 9),
            l.cost_nanos,
            l.estimated
        ));
    }
    out.into_bytes()
}

/// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spend_query_defaults_to_today_by_consumer_and_refuses_what_it_does_not_know() {
        let today = 20_000;
        assert_eq!(
            SpendQuery::parse("", today),
            Ok(SpendQuery {
                from: today,
                to: today,
                group_by: GroupBy::Consumer,
                csv: false
            })
        );
        let q = SpendQuery::parse(
            "from=2026-11-01&to=2026-11-28&group_by=day&format=csv",
            today,
        )
        .unwrap();
        assert_eq!(
            (utc_date(q.from), utc_date(q.to)),
            ("2026-11-01".into(), "2026-11-28".into())
        );
        assert!(q.csv && q.group_by == GroupBy::Day);
        for bad in [
            "from=yesterday",
            "from=2026-02-30",
            "to=2026-11-28T00:00:00Z",
            "group_by=user",
            "format=xml",
            "group-by=team",
            "from=2026-11-02&to=2026-11-01",
        ] {
            assert!(SpendQuery::parse(bad, today).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        assert_eq!(csv_field("team-a"), "team-a");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
