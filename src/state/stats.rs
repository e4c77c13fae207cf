//! The seed's aggregate statistics (`GET /stats`): totals, per consumer, per model, and the last
//! 20 requests. Counters are integers (money in nano-dollars, latency in microseconds) and keyed
//! only by configured consumer ids and known model names (others count as `other`).

use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// Requests remembered for `recent_entries`.
const RECENT: usize = 20;

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    requests: u64,
    blocked: u64,
    cache_hits: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_nanos: u64,
    latency_us: u64,
}

/// One finished request, as the statistics see it.
#[derive(Debug, Clone)]
pub struct Sample<'a> {
    pub consumer: &'a str,
    pub model: &'a str,
    pub blocked: bool,
    pub cache_hit: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_nanos: u64,
    pub latency_us: u64,
    /// The access-log line of the request (JSON), for `recent_entries`.
    pub entry: String,
}

#[derive(Debug, Default)]
struct Inner {
    all: Totals,
    per_consumer: BTreeMap<String, Totals>,
    per_model: BTreeMap<String, Totals>,
    recent: VecDeque<String>,
}

#[derive(Debug, Default)]
pub struct Stats(Mutex<Inner>);

fn add(t: &mut Totals, s: &Sample) {
    t.requests += 1;
    t.blocked += u64::from(s.blocked);
    t.cache_hits += u64::from(s.cache_hit);
    t.input_tokens += s.input_tokens;
    t.output_tokens += s.output_tokens;
    t.cost_nanos = t.cost_nanos.saturating_add(s.cost_nanos);
    t.latency_us = t.latency_us.saturating_add(s.latency_us);
}

/// `part / whole` as a percentage with one decimal, from integers.
fn percent(part: u64, whole: u64) -> f64 {
    ((part * 1000).checked_div(whole).unwrap_or(0)) as f64 / 10.0
}

/// Adds `s` to the totals under `key`, allocating the key only the first time it is seen.
fn add_under(map: &mut BTreeMap<String, Totals>, key: &str, s: &Sample) {
    match map.get_mut(key) {
        Some(t) => add(t, s),
        None => {
            let mut t = Totals::default();
            add(&mut t, s);
            map.insert(key.to_owned(), t);
        }
    }
}

impl Stats {
    pub fn record(&self, s: Sample) {
        let mut i = self.0.lock().unwrap_or_else(|p| p.into_inner());
        add(&mut i.all, &s);
        add_under(&mut i.per_consumer, s.consumer, &s);
        add_under(&mut i.per_model, s.model, &s);
        if i.recent.len() == RECENT {
            i.recent.pop_front();
        }
        i.recent.push_back(s.entry);
    }

    /// The seed's shape.
    pub fn report(&self) -> Value {
        let i = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let a = i.all;
        let usd = |n: u64| crate::state::spend::usd(n, 6);
        let avg_latency_ms =
            (a.latency_us / 100).checked_div(a.requests).unwrap_or(0) as f64 / 10.0;
        json!({
            "aggregate": {
                "total_requests": a.requests,
                "total_blocked": a.blocked,
                "block_rate_percent": percent(a.blocked, a.requests),
                "total_cache_hits": a.cache_hits,
                "cache_hit_rate_percent": percent(a.cache_hits, a.requests),
                "total_input_tokens": a.input_tokens,
                "total_output_tokens": a.output_tokens,
                "total_cost_usd": usd(a.cost_nanos),
                "avg_latency_ms": avg_latency_ms,
            },
            "per_consumer": i.per_consumer.iter().map(|(k, t)| (k.clone(), json!({
                "requests": t.requests,
                "blocked": t.blocked,
                "cache_hits": t.cache_hits,
                "total_cost": usd(t.cost_nanos),
                "total_tokens": t.input_tokens + t.output_tokens,
            }))).collect::<serde_json::Map<_, _>>(),
            "per_model": i.per_model.iter().map(|(k, t)| (k.clone(), json!({
                "requests": t.requests,
                "total_cost": usd(t.cost_nanos),
                "total_tokens": t.input_tokens + t.output_tokens,
            }))).collect::<serde_json::Map<_, _>>(),
            "recent_entries": i.recent.iter()
                .map(|line| serde_json::from_str(line).unwrap_or(Value::Null))
                .collect::<Vec<Value>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(consumer: &str, blocked: bool, hit: bool) -> Sample<'_> {
        Sample {
            consumer,
            model: "gpt-4",
            blocked,
            cache_hit: hit,
            input_tokens: 10,
            output_tokens: 5,
            cost_nanos: 1_000,
            latency_us: 2_500,
            entry: json!({"consumer_id": consumer}).to_string(),
        }
    }

    #[test]
    fn aggregates_rates_and_recent_entries() {
        let s = Stats::default();
        s.record(sample("a", false, false));
        s.record(sample("a", true, false));
        s.record(sample("b", false, true));
        s.record(sample("b", false, false));
        let r = s.report();
        assert_eq!(r["aggregate"]["total_requests"], 4);
        assert_eq!(r["aggregate"]["block_rate_percent"], 25.0);
        assert_eq!(r["aggregate"]["cache_hit_rate_percent"], 25.0);
        assert_eq!(r["aggregate"]["avg_latency_ms"], 2.5);
        assert_eq!(r["aggregate"]["total_cost_usd"], "0.000004");
        assert_eq!(r["per_consumer"]["a"]["blocked"], 1);
        assert_eq!(r["per_model"]["gpt-4"]["total_tokens"], 60);
        assert_eq!(r["recent_entries"].as_array().unwrap().len(), 4);
        for _ in 0..30 {
            s.record(sample("c", false, false));
        }
        assert_eq!(s.report()["recent_entries"].as_array().unwrap().len(), 20);
    }

    #[test]
    fn no_requests_means_zero_rates_not_a_division_by_zero() {
        let r = Stats::default().report();
        assert_eq!(r["aggregate"]["block_rate_percent"], 0.0);
        assert_eq!(r["aggregate"]["avg_latency_ms"], 0.0);
    }
}
