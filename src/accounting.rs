//! Accounting: reserve the worst case at admission, settle with the real usage afterwards.
//!
//! Input: the consumer, the request's estimated prompt tokens and output cap, the model's price.
//! Decision: reserve `prompt + cap` tokens in every rate window and the matching worst-case cost
//! against today's budget, atomically per consumer (tokens first; a refused budget releases the
//! tokens), or refuse with 429 (`Retry-After`) — or 400 when the request can never fit a window.
//! Settlement replaces both reservations with the reported usage (or an estimate, marked so).
//! Integers only: tokens `u64`, money nano-dollars `u64`.

use crate::config::{Consumer, Price};
use crate::error::GatewayError;
use crate::state::limits::{Headroom, Refusal, TokenTicket};
use crate::state::redis::Refused;
use crate::state::spend::{OverBudget, Recent, SpendTicket, Standing};
use crate::state::{utc_day, State};
use serde::Deserialize;

/// Tokens an answer used, as reported by the backend or estimated by the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    /// Prompt tokens served from the provider's prompt cache (when reported).
    pub cached: u64,
    /// Reasoning tokens inside `output` (when reported).
    pub reasoning: u64,
    /// True when the gateway estimated instead of reading the backend's report.
    pub estimated: bool,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }
}

/// The seed's estimate: ceil(characters / 4).
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Per-message framing the providers add (role markers), counted into the prompt estimate.
pub const PER_MESSAGE_TOKENS: u64 = 4;

/// Cost in nano-dollars of `input` + `output` tokens at `price` (rounded up).
pub fn cost_nanos(price: Price, input: u64, output: u64) -> u64 {
    // price is micro-dollars per million tokens = nano-dollars per thousand tokens.
    let nanos = u128::from(input) * u128::from(price.input_micros_per_million)
        + u128::from(output) * u128::from(price.output_micros_per_million);
    u64::try_from(nanos.div_ceil(1000)).unwrap_or(u64::MAX)
}

#[derive(Deserialize)]
struct UsageWire {
    prompt_tokens: u64,
    /// Absent for embeddings.
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<UsageWire>,
}

/// The `usage` of an OpenAI chat-completions JSON response, if it reports one.
pub fn openai_usage(body: &[u8]) -> Option<Usage> {
    let u = serde_json::from_slice::<WithUsage>(body).ok()?.usage?;
    Some(Usage {
        input: u.prompt_tokens,
        output: u.completion_tokens,
        cached: u
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0),
        reasoning: u
            .completion_tokens_details
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0),
        estimated: false,
    })
}

/// What one admitted request holds until it is settled.
#[derive(Debug)]
pub struct Reservation {
    pub consumer: String,
    pub model: String,
    pub price: Price,
    pub prompt_estimate: u64,
    pub output_cap: u64,
    tokens: TokenTicket,
    spend: SpendTicket,
    /// Made in Redis (shared by every instance) rather than this instance's own counters.
    shared: bool,
}

impl Reservation {
    /// The usage to settle on when the backend reported none: the worst case (conservative).
    pub fn worst_case(&self) -> Usage {
        Usage {
            input: self.prompt_estimate,
            output: self.output_cap,
            estimated: true,
            ..Usage::default()
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

/// Reserves the worst case of a request, or refuses it.
pub async fn admit(
    state: &State,
    consumer: &Consumer,
    model: &str,
    price: Price,
    prompt_estimate: u64,
    output_cap: u64,
    now: u64,
) -> Result<Admitted, GatewayError> {
    let limits = [
        consumer.tokens_per_minute,
        consumer.tokens_per_hour,
        consumer.tokens_per_day,
    ];
    let worst_tokens = prompt_estimate.saturating_add(output_cap);
    let budget = consumer.daily_budget_micros.saturating_mul(1000);
    let worst_cost = cost_nanos(price, prompt_estimate, output_cap);
    let reservation = |tokens, spend, shared| Reservation {
        consumer: consumer.id.clone(),
        model: model.to_string(),
        price,
        prompt_estimate,
        output_cap,
        tokens,
        spend,
        shared,
    };
    if let Some(sh) = &state.shared {
        match sh
            .store
            .admit(&consumer.id, limits, worst_tokens, budget, worst_cost, now)
            .await
        {
            Ok(Ok(a)) => {
                return Ok(Admitted {
                    reservation: reservation(a.tokens, a.spend, true),
                    headroom: a.headroom,
                    standing: a.standing,
                })
            }
            Ok(Err(Refused::Tokens(r))) => return Err(token_refusal(r)),
            Ok(Err(Refused::Budget(over))) => return Err(budget_refusal(&over, now)),
            // A request needs both controls: it goes ahead on this instance's own counters only
            // when both are configured to fail open.
            Err(_) if sh.limits_fail_open && sh.budget_fail_open => {}
            Err(_) => {
                return Err(GatewayError::StateUnavailable {
                    retry_after: STATE_RETRY_AFTER,
                })
            }
        }
    }
    let (tokens, headroom) = state
        .limiter
        .reserve(&consumer.id, limits, worst_tokens, now)
        .map_err(token_refusal)?;
    match state
        .spend
        .reserve(&consumer.id, budget, worst_cost, utc_day(now))
    {
        Ok((spend, standing)) => Ok(Admitted {
            reservation: reservation(tokens, spend, false),
            headroom,
            standing,
        }),
        Err(over) => {
            // Refused on the budget: give the tokens back.
            state.limiter.settle(&consumer.id, &tokens, 0, now);
            Err(budget_refusal(&over, now))
        }
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

fn budget_refusal(over: &OverBudget, now: u64) -> GatewayError {
    GatewayError::BudgetExceeded {
        spent: over.standing.spent,
        budget: over.standing.budget,
        needed: over.needed,
        retry_after: 86_400 - now % 86_400,
    }
}

/// Settles a reservation with `usage`; returns the cost charged (nano-dollars).
pub async fn settle(state: &State, r: &Reservation, usage: Usage, now: u64) -> u64 {
    let cost = cost_nanos(r.price, usage.input, usage.output);
    let day = utc_day(now);
    match (&state.shared, r.shared) {
        (Some(sh), true) => {
            // A failed settlement leaves the worst case counted until the window or the day
            // ends: conservative, never an overrun.
            let _ = sh
                .store
                .settle(&r.consumer, &r.tokens, usage.total(), &r.spend, cost, day)
                .await;
        }
        _ => state
            .limiter
            .settle(&r.consumer, &r.tokens, usage.total(), now),
    }
    // This instance's record: recent requests, and the spend itself when it was reserved here
    // (with Redis, `/costs` reads today's total from Redis).
    let local_ticket = if r.shared {
        SpendTicket { reserved: 0 }
    } else {
        r.spend.clone()
    };
    state.spend.settle(
        &r.consumer,
        &local_ticket,
        Recent {
            timestamp: now,
            model: r.model.clone(),
            input_tokens: usage.input,
            output_tokens: usage.output,
            cost_nanos: cost,
            estimated: usage.estimated,
        },
        day,
    );
    cost
}

/// Releases a reservation that consumed nothing (a cache hit, a request that never reached a
/// backend): settled at zero, so it costs nothing and still shows in `/costs`.
pub async fn release(state: &State, r: &Reservation, now: u64) {
    settle(state, r, Usage::default(), now).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_exact_integer_arithmetic_rounded_up() {
        let gpt4 = Price {
            input_micros_per_million: 30_000_000,
            output_micros_per_million: 60_000_000,
        };
        // 1,000 prompt tokens at $30/M = $0.03 = 30,000,000 nano-dollars.
        assert_eq!(cost_nanos(gpt4, 1_000, 0), 30_000_000);
        assert_eq!(cost_nanos(gpt4, 0, 1), 60_000);
        let cheap = Price {
            input_micros_per_million: 250_000,
            output_micros_per_million: 0,
        };
        assert_eq!(cost_nanos(cheap, 1, 0), 250);
        assert_eq!(
            cost_nanos(
                Price {
                    input_micros_per_million: 1,
                    output_micros_per_million: 0
                },
                1,
                0
            ),
            1
        );
    }

    #[test]
    fn usage_is_read_with_cached_and_reasoning_tokens() {
        let body = br#"{"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,
            "prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}"#;
        assert_eq!(
            openai_usage(body),
            Some(Usage {
                input: 10,
                output: 5,
                cached: 4,
                reasoning: 2,
                estimated: false
            })
        );
        assert_eq!(openai_usage(br#"{"choices":[]}"#), None);
        assert_eq!(openai_usage(b"not json"), None);
    }

    #[test]
    fn estimates_a_quarter_token_per_character_rounded_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("ééé"), 1, "characters, not bytes");
    }
}
