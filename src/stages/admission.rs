//! Admission: whether a parsed request may go ahead before anything is spent on it, and the
//! accounting that holds it to its limits — reserve the worst case before the backend is called,
//! settle with the real usage afterwards.
//!
//! The checks, in the pipeline's order: the model allowlist (403), a prompt larger than the
//! context of every backend serving the model (400; this also bounds the filter's work), and the
//! number of choices (400); then the output cap: the client's, else the model's configured cap,
//! which the gateway writes into the forwarded body so the reservation is a true upper bound.
//!
//! Reservation input: the consumer (with its team's limits when `teams:` lists its team), the
//! request's estimated prompt tokens and output cap, the model's price. Decision: reserve
//! `prompt + cap` tokens in every token window, one request in the consumer's and the team's
//! minute, and the matching worst-case cost against every budget that applies — the consumer's
//! daily and monthly, the team's daily and monthly — all or nothing (in this process: limits
//! first, then budgets, and a refused budget gives the limits back; with Redis: one script), or
//! refuse with 429 and `Retry-After` naming the limit or budget (a budget waits for the end of
//! its UTC day or month) — or 400 when the request can never fit a window. Settlement replaces
//! the reservations with the reported usage (or an estimate, marked so) in the periods the
//! request was admitted in, and raises the budget alerts whose thresholds it crossed
//! ([`crate::state::alerts`]). Integers only: tokens `u64`, money nano-dollars `u64`.

use crate::config::{AlertsConfig, Consumer, Price, Team};
use crate::error::GatewayError;
use crate::state::alerts::Moved;
use crate::state::budget::{Budgets, Moves, Scope};
use crate::state::limits::tightest;
use crate::state::limits::{Headroom, Limits, Refusal, Stopped, TokenTicket};
use crate::state::redis::{Held, Refused};
use crate::state::spend::{OverBudget, Recent, SpendTicket, Standing};
use crate::state::{utc_day, State};
use crate::usage::{cost_bound_nanos, Usage};
use std::sync::Arc;

/// The model allowlist: 403 for a model the consumer may not use.
pub fn check_model(consumer: &Consumer, model: &str) -> Result<(), GatewayError> {
    if consumer.may_use(model) {
        Ok(())
    } else {
        Err(GatewayError::ModelNotAllowed {
            consumer: consumer.id.clone(),
            model: model.to_string(),
        })
    }
}

/// An issued key's own allowlist (`models`, within its consumer's): 403 as the consumer's
/// allowlist answers. `None` or empty: the consumer's allowlist alone decides; `default` (the lab
/// agent's model) is always allowed, as there.
pub fn check_key_model(
    consumer: &Consumer,
    key_models: Option<&[String]>,
    model: &str,
) -> Result<(), GatewayError> {
    match key_models {
        Some(models)
            if !models.is_empty() && model != "default" && !models.iter().any(|m| m == model) =>
        {
            Err(GatewayError::ModelNotAllowed {
                consumer: consumer.id.clone(),
                model: model.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// A prompt no backend for `model` can hold (`largest_context`, the largest context of those
/// serving it) is refused before anything else looks at it: the filter's cost grows with the
/// text, so this bounds it too.
pub fn check_context(
    prompt_estimate: u64,
    largest_context: Option<u64>,
    model: &str,
) -> Result<(), GatewayError> {
    match largest_context {
        Some(largest) if prompt_estimate > largest => Err(GatewayError::BadRequest(format!(
            "the prompt is about {prompt_estimate} tokens, more than the context of any \
             backend serving '{model}' ({largest} tokens)"
        ))),
        _ => Ok(()),
    }
}

/// The output a request may produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputCap {
    /// Tokens reserved for the answer (all choices).
    pub reserved: u64,
    /// The per-choice cap the gateway writes into the forwarded body, when the client set none.
    pub inject: Option<u64>,
}

/// The output cap of a request asking for `choices` answers: the client's (`client_cap`, for all
/// choices), else `per_choice` (the model's configured cap) for every choice, which the gateway
/// then sends upstream. More than `max_choices` is refused.
pub fn output_cap(
    client_cap: Option<u64>,
    choices: u64,
    max_choices: u64,
    per_choice: u64,
) -> Result<OutputCap, GatewayError> {
    if choices > max_choices {
        return Err(GatewayError::BadRequest(format!(
            "`n` is {choices}; this gateway allows at most {max_choices} choices per request"
        )));
    }
    Ok(OutputCap {
        // The gateway's cap applies per choice; the worst case is every choice using it all.
        reserved: client_cap.unwrap_or_else(|| per_choice.saturating_mul(choices)),
        inject: client_cap.is_none().then_some(per_choice),
    })
}

/// What one admitted request holds until it is settled.
#[derive(Debug)]
pub struct Reservation {
    pub consumer: String,
    /// The consumer's team, listed under `teams:` or not (for the ledger).
    pub team_name: String,
    pub model: String,
    pub price: Price,
    pub prompt_estimate: u64,
    pub output_cap: u64,
    /// The consumer's token limits (minute, hour, day), for the headroom after settlement.
    limits: [u64; 3],
    /// Its team, when `teams:` lists it; its spend is counted (and its budgets held).
    team: Option<Arc<Team>>,
    /// The budgets held, and the alert settings of the configuration that admitted it.
    budgets: Budgets,
    alerts: Arc<AlertsConfig>,
    tokens: TokenTicket,
    spend: SpendTicket,
    /// Made in Redis (shared by every instance), by id, rather than in this instance's own
    /// counters.
    held: Option<Held>,
}

impl Reservation {
    /// The UTC day its cost counts on (the day it was admitted).
    pub fn day(&self) -> u64 {
        self.spend.day
    }

    /// The usage to settle on when the backend reported none: the worst case (conservative),
    /// every prompt token at the highest prompt rate (a cache write can cost more than a plain
    /// prompt token) and every output token at the highest output rate, so it costs what the
    /// reservation held.
    pub fn worst_case(&self) -> Usage {
        let p = &self.price;
        let (prompt_rate, dearer_output) = (p.prompt_bound(), p.output_bound());
        let dearer_prompt = prompt_rate > p.input_micros_per_million;
        let writes = dearer_prompt && p.cache_write_rate() == prompt_rate;
        let at = |on: bool, tokens: u64| if on { tokens } else { 0 };
        Usage {
            input: self.prompt_estimate,
            output: self.output_cap,
            cache_write: at(writes, self.prompt_estimate),
            cached: at(dearer_prompt && !writes, self.prompt_estimate),
            reasoning: at(dearer_output > p.output_micros_per_million, self.output_cap),
            estimated: true,
        }
    }
}

/// An admission: the reservation and where the consumer stands after it.
#[derive(Debug)]
pub struct Admitted {
    pub reservation: Reservation,
    pub headroom: Headroom,
    pub standing: Standing,
}

/// Seconds a client is told to wait when the shared state could not decide.
const STATE_RETRY_AFTER: u64 = 1;

/// What a request asks of admission: the model, its price and its worst case.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub model: &'a str,
    pub price: Price,
    pub prompt_estimate: u64,
    pub output_cap: u64,
}

/// Reserves the worst case of a request, or refuses it. `alerts` are the settings of the
/// configuration admitting it (its settlement raises alerts by them).
pub async fn admit(
    state: &State,
    consumer: &Consumer,
    alerts: &Arc<AlertsConfig>,
    ask: Ask<'_>,
    now: u64,
) -> Result<Admitted, GatewayError> {
    let team = consumer.team_limits.as_ref();
    let limits = Limits {
        tokens: [
            consumer.tokens_per_minute,
            consumer.tokens_per_hour,
            consumer.tokens_per_day,
        ],
        requests: consumer.requests_per_minute,
        team_requests: team.and_then(|t| t.requests_per_minute),
    };
    let Ask {
        model,
        price,
        prompt_estimate,
        output_cap,
    } = ask;
    let worst_tokens = prompt_estimate.saturating_add(output_cap);
    let budgets = Budgets::of(consumer);
    let worst_cost = cost_bound_nanos(price, prompt_estimate, output_cap);
    let reservation = |tokens, spend, held| Reservation {
        consumer: consumer.id.clone(),
        team_name: consumer.team.clone(),
        model: model.to_string(),
        price,
        prompt_estimate,
        output_cap,
        limits: limits.tokens,
        team: team.cloned(),
        budgets,
        alerts: Arc::clone(alerts),
        tokens,
        spend,
        held,
    };
    let team_name = team.map(|t| t.name.as_str());
    if let Some(sh) = &state.shared {
        let held = Held::against(&consumer.id, team, &budgets, worst_tokens, worst_cost, now);
        match sh.store.admit(&held, limits, &budgets, now).await {
            Ok(Ok(a)) => {
                return Ok(Admitted {
                    reservation: reservation(a.tokens, a.spend, Some(held)),
                    headroom: a.headroom,
                    standing: a.standing,
                })
            }
            Ok(Err(Refused::Tokens(r))) => return Err(token_refusal(r)),
            Ok(Err(Refused::Budget(over))) => return Err(budget_refusal(&over, team_name, now)),
            Err(_) => {
                // The script may have run and its answer been lost: the reservation is released
                // by id once Redis answers again (releasing one never made is harmless).
                sh.store.release_later(held);
                // A request needs both controls: it goes ahead on this instance's own counters
                // only when both are configured to fail open.
                if !(sh.limits_fail_open && sh.budget_fail_open) {
                    return Err(GatewayError::StateUnavailable {
                        retry_after: STATE_RETRY_AFTER,
                    });
                }
            }
        }
    }
    let rate_team = team_name.filter(|_| limits.team_requests.is_some());
    // One step: the limits are checked, the budgets reserved, and only then the tokens and
    // requests taken, all under the consumer's (and its team's) locks.
    let budget = || {
        state
            .spend
            .reserve(&consumer.id, team_name, &budgets, worst_cost, utc_day(now))
    };
    match state
        .limiter
        .reserve_then(&consumer.id, rate_team, limits, worst_tokens, now, budget)
    {
        Ok((tokens, headroom, (spend, standing))) => Ok(Admitted {
            reservation: reservation(tokens, spend, None),
            headroom,
            standing,
        }),
        Err(Stopped::Limit(r)) => Err(token_refusal(r)),
        Err(Stopped::Then(over)) => Err(budget_refusal(&over, team_name, now)),
    }
}

fn token_refusal(r: Refusal) -> GatewayError {
    match r {
        Refusal::Full {
            window,
            limit,
            used,
            needed,
            retry_after,
        } => GatewayError::RateLimited {
            window: window.as_str(),
            limit,
            used,
            needed,
            retry_after,
            remaining: limit.saturating_sub(used),
        },
        Refusal::Requests {
            who,
            limit,
            retry_after,
        } => GatewayError::RequestRateLimited {
            who: who.as_str(),
            limit,
            retry_after,
        },
        Refusal::TooLarge {
            window,
            limit,
            needed,
        } => GatewayError::BadRequest(format!(
            "this request may use up to {needed} tokens (prompt estimate + output cap), more than the \
             per-{} limit of {limit}; lower max_tokens or shorten the prompt",
            window.as_str()
        )),
    }
}

/// The refusal of a budget: it names the budget (and the team for a team budget); the retry
/// waits until its period ends.
fn budget_refusal(over: &OverBudget, team: Option<&str>, now: u64) -> GatewayError {
    GatewayError::BudgetExceeded {
        scope: over.scope.as_str(),
        team: team.filter(|_| over.scope.is_team()).map(str::to_string),
        spent: over.standing.spent,
        budget: over.standing.budget,
        needed: over.needed,
        retry_after: over.scope.retry_after(now),
    }
}

/// What a settlement charged, and where the consumer's token windows stand after it.
#[derive(Debug, Clone, Copy)]
pub struct Settled {
    /// Nano-dollars.
    pub cost: u64,
    /// The tightest window, read from the store that enforces the limits (`None` when Redis
    /// could not be asked: the settlement then waits to be retried).
    pub headroom: Option<Headroom>,
}

/// Settles a reservation with `usage`, against the windows and the day (and month) it was made
/// in, and raises the alerts whose thresholds its settled spend crossed.
pub async fn settle(state: &State, r: &Reservation, usage: Usage, now: u64) -> Settled {
    let cost = usage.cost_nanos(r.price);
    let team = r.team.as_deref().map(|t| t.name.as_str());
    let mut shared_moves = None;
    let headroom = match (&state.shared, &r.held) {
        (Some(sh), Some(held)) => sh.store.settle(held, usage.total(), cost).await.map(|s| {
            shared_moves = Some(s.moves);
            tightest(r.limits, s.used, now)
        }),
        _ => {
            state
                .limiter
                .settle(&r.consumer, &r.tokens, usage.total(), now);
            Some(state.limiter.headroom(&r.consumer, r.limits, now))
        }
    };
    // This instance's record: recent requests, and the spend itself when it was reserved here
    // (with Redis, `/costs` reads today's total from Redis).
    let local_ticket = match r.held {
        Some(_) => SpendTicket {
            reserved: 0,
            day: r.spend.day,
        },
        None => r.spend.clone(),
    };
    let local_moves = state.spend.settle(
        &r.consumer,
        team,
        &local_ticket,
        Recent {
            timestamp: now,
            model: r.model.clone(),
            input_tokens: usage.input,
            output_tokens: usage.output,
            cost_nanos: cost,
            estimated: usage.estimated,
        },
        utc_day(now),
    );
    // Alerts follow the store that holds the budgets: Redis's spend when the reservation was
    // made there (one instance sees each crossing), else this instance's.
    let moves = match r.held {
        Some(_) => shared_moves,
        None => Some(local_moves),
    };
    if let Some(moves) = moves {
        raise_alerts(state, r, &moves, now);
    }
    Settled { cost, headroom }
}

/// Raises an alert for every threshold a budget of `r` crossed in `moves`.
fn raise_alerts(state: &State, r: &Reservation, moves: &Moves, now: u64) {
    for scope in Scope::ALL {
        let Some(budget) = r.budgets.get(scope) else {
            continue;
        };
        let (before, after) = moves.get(scope);
        if after <= before {
            continue;
        }
        let id = match (scope.is_team(), r.team.as_deref()) {
            (false, _) => r.consumer.as_str(),
            (true, Some(t)) => t.name.as_str(),
            (true, None) => continue,
        };
        state.alerts.judge(
            &r.alerts,
            Moved {
                scope,
                id,
                day: r.spend.day,
                budget,
                before,
                after,
            },
            now,
        );
    }
}

/// Releases a reservation that consumed nothing (a cache hit, a request that never reached a
/// backend): settled at zero, so it costs nothing and still shows in `/costs`.
pub async fn release(state: &State, r: &Reservation, now: u64) {
    settle(state, r, Usage::default(), now).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(allowed: &[&str]) -> Consumer {
        Consumer {
            daily_budget_micros: 1_000_000,
            allowed_models: allowed.iter().map(|m| m.to_string()).collect(),
            tokens_per_minute: 1_000,
            tokens_per_hour: 10_000,
            tokens_per_day: 100_000,
            ..Consumer::basic("c", "t", b"k")
        }
    }

    #[test]
    fn an_allowlist_admits_only_its_models_and_an_empty_one_every_model() {
        assert!(check_model(&consumer(&["a"]), "a").is_ok());
        assert_eq!(
            check_model(&consumer(&["a"]), "b").map_err(|e| e.status()),
            Err(403)
        );
        assert!(check_model(&consumer(&[]), "anything").is_ok());
    }

    #[test]
    fn a_key_allowlist_narrows_its_consumer_with_the_same_403() {
        let c = consumer(&[]);
        let key = ["a".to_string()];
        assert!(check_key_model(&c, Some(&key), "a").is_ok());
        assert_eq!(
            check_key_model(&c, Some(&key), "b").map_err(|e| e.status()),
            Err(403)
        );
        assert!(check_key_model(&c, Some(&key), "default").is_ok());
        assert!(check_key_model(&c, None, "b").is_ok(), "not narrowed");
        assert!(
            check_key_model(&c, Some(&[]), "b").is_ok(),
            "empty: not narrowed"
        );
    }

    #[test]
    fn a_prompt_larger_than_every_context_is_refused() {
        assert!(check_context(100, Some(100), "m").is_ok());
        assert!(
            check_context(100, None, "m").is_ok(),
            "no backend: 404 later"
        );
        let e = check_context(101, Some(100), "m").unwrap_err();
        assert!(e.message().contains("101 tokens"), "{}", e.message());
    }

    #[test]
    fn the_gateway_caps_every_choice_only_when_the_client_set_no_cap() {
        assert_eq!(
            output_cap(None, 3, 8, 100),
            Ok(OutputCap {
                reserved: 300,
                inject: Some(100)
            })
        );
        assert_eq!(
            output_cap(Some(50), 3, 8, 100),
            Ok(OutputCap {
                reserved: 50,
                inject: None
            })
        );
        assert_eq!(
            output_cap(None, 9, 8, 100).map_err(|e| e.status()),
            Err(400)
        );
    }

    #[tokio::test]
    async fn a_reservation_is_released_whole_and_settled_to_usage() {
        let state = State::default();
        let c = consumer(&[]);
        let price = Price::flat(1_000_000, 1_000_000);
        let ask = Ask {
            model: "m",
            price,
            prompt_estimate: 100,
            output_cap: 200,
        };
        let a = admit(&state, &c, &Arc::default(), ask, 86_400 * 10 + 5)
            .await
            .unwrap();
        assert_eq!(a.headroom.remaining, 1_000 - 300);
        assert_eq!(a.reservation.worst_case().total(), 300);
        assert_eq!(
            a.reservation.worst_case().cost_nanos(price),
            crate::usage::cost_bound_nanos(price, 100, 200),
            "the worst case costs what was reserved"
        );
        let settled = settle(
            &state,
            &a.reservation,
            Usage {
                input: 10,
                output: 5,
                ..Usage::default()
            },
            86_400 * 10 + 6,
        )
        .await;
        assert_eq!(settled.cost, crate::usage::cost_nanos(price, 10, 5));
        assert_eq!(settled.headroom.map(|h| h.remaining), Some(1_000 - 15));
        assert_eq!(state.limiter.used("c", 86_400 * 10 + 6)[0], 15);
        let dearer = Price {
            cache_write_micros_per_million: Some(1_250_000),
            reasoning_micros_per_million: Some(3_000_000),
            ..price
        };
        let mut r = a.reservation;
        r.price = dearer;
        assert_eq!(
            r.worst_case().cost_nanos(dearer),
            crate::usage::cost_bound_nanos(dearer, 100, 200),
            "at the dearest rates when cache writes or reasoning cost more"
        );
    }

    #[tokio::test]
    async fn a_team_budget_refuses_by_name_until_its_period_ends_and_settling_alerts() {
        let state = State::default();
        let mut receiver = state.alerts.take_receiver().unwrap();
        let team = Arc::new(Team {
            name: "payments".into(),
            daily_budget_micros: Some(1_000_000),
            monthly_budget_micros: Some(800),
            requests_per_minute: None,
        });
        let mut c = consumer(&[]);
        c.team_limits = Some(Arc::clone(&team));
        let alerts = Arc::new(AlertsConfig {
            thresholds: vec![50],
            webhook: Some(crate::config::Webhook {
                url: crate::config::BackendUrl::parse("http://127.0.0.1:9").unwrap(),
                path: "/".into(),
                timeout: std::time::Duration::from_secs(1),
            }),
        });
        let ask = Ask {
            model: "m",
            price: Price::flat(1_000_000, 1_000_000),
            prompt_estimate: 300,
            output_cap: 200,
        };
        // $1 per million tokens: 500 tokens cost $0.0005 of the team's $0.0008 a month.
        let now = 86_400 * 20_000 + 10;
        let a = admit(&state, &c, &alerts, ask, now).await.unwrap();
        let e = admit(&state, &c, &alerts, ask, now).await.unwrap_err();
        assert_eq!(e.status(), 429);
        assert!(
            e.message()
                .contains("Budget: team monthly (team payments)."),
            "{}",
            e.message()
        );
        assert_eq!(e.retry_after(), Some(crate::state::secs_to_month_end(now)));
        settle(&state, &a.reservation, a.reservation.worst_case(), now + 1).await;
        // The settled $0.0005 crossed 50 % of the team's month, and no other mark.
        let alert = receiver.try_recv().unwrap().alert;
        assert_eq!(
            (alert.scope, alert.id.as_str(), alert.threshold, alert.spent),
            (Scope::TeamMonthly, "payments", 50, 500_000)
        );
        assert!(receiver.try_recv().is_err());
        let (day, month) = state.spend.team("payments", crate::state::utc_day(now));
        assert_eq!(
            (day.spent, month.spent, month.reserved),
            (500_000, 500_000, 0)
        );
    }
}
