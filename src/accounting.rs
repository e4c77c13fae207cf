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
use crate::state::spend::{Recent, SpendTicket, Standing};
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
    /// Where each reservation was made: Redis (shared) or this instance's own counters.
    tokens_shared: bool,
    spend_shared: bool,
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
    let unavailable = GatewayError::StateUnavailable {
        retry_after: STATE_RETRY_AFTER,
    };
    let (tokens_decision, tokens_shared) = match &state.shared {
        Some(sh) => match sh
            .store
            .reserve_tokens(&consumer.id, limits, worst_tokens, now)
            .await
        {
            Ok(decision) => (decision, true),
            Err(_) if sh.limits_fail_open => (
                state
                    .limiter
                    .reserve(&consumer.id, limits, worst_tokens, now),
                false,
            ),
            Err(_) => return Err(unavailable),
        },
        None => (
            state
                .limiter
                .reserve(&consumer.id, limits, worst_tokens, now),
            false,
        ),
    };
    let (tokens, headroom) = tokens_decision.map_err(|r| match r {
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
    })?;
    let budget = consumer.daily_budget_micros.saturating_mul(1000);
    let worst_cost = cost_nanos(price, prompt_estimate, output_cap);
    let day = utc_day(now);
    let (spend_decision, spend_shared) = match &state.shared {
        Some(sh) => match sh
            .store
            .reserve_spend(&consumer.id, budget, worst_cost, day)
            .await
        {
            Ok(decision) => (Ok(decision), true),
            Err(_) if sh.budget_fail_open => (
                Ok(state.spend.reserve(&consumer.id, budget, worst_cost, day)),
                false,
            ),
            Err(_) => (Err(()), true),
        },
        None => (
            Ok(state.spend.reserve(&consumer.id, budget, worst_cost, day)),
            false,
        ),
    };
    let refusal = match spend_decision {
        Ok(Ok((spend, standing))) => {
            return Ok(Admitted {
                reservation: Reservation {
                    consumer: consumer.id.clone(),
                    model: model.to_string(),
                    price,
                    prompt_estimate,
                    output_cap,
                    tokens,
                    spend,
                    tokens_shared,
                    spend_shared,
                },
                headroom,
                standing,
            })
        }
        Ok(Err(over)) => GatewayError::BudgetExceeded {
            spent: over.standing.spent,
            budget: over.standing.budget,
            needed: over.needed,
            retry_after: 86_400 - now % 86_400,
        },
        Err(()) => unavailable,
    };
    // Refused on the budget: give the tokens back.
    settle_tokens(state, &consumer.id, &tokens, tokens_shared, 0, now).await;
    Err(refusal)
}

async fn settle_tokens(
    state: &State,
    consumer: &str,
    ticket: &TokenTicket,
    shared: bool,
    actual: u64,
    now: u64,
) {
    match (&state.shared, shared) {
        // A failed settlement leaves the reservation counted: conservative, never an overrun.
        (Some(sh), true) => {
            let _ = sh.store.settle_tokens(consumer, ticket, actual).await;
        }
        _ => state.limiter.settle(consumer, ticket, actual, now),
    }
}

/// Settles a reservation with `usage`; returns the cost charged (nano-dollars).
pub async fn settle(state: &State, r: &Reservation, usage: Usage, now: u64) -> u64 {
    let cost = cost_nanos(r.price, usage.input, usage.output);
    settle_tokens(
        state,
        &r.consumer,
        &r.tokens,
        r.tokens_shared,
        usage.total(),
        now,
    )
    .await;
    let day = utc_day(now);
    if let (Some(sh), true) = (&state.shared, r.spend_shared) {
        // A failed settlement leaves the worst case committed for today: conservative.
        let _ = sh
            .store
            .settle_spend(&r.consumer, &r.spend, cost, day)
            .await;
    }
    // This instance's record (recent requests and its own share of the spend for `/costs`; with
    // Redis, `/costs` reads today's total from Redis).
    let local_ticket = if r.spend_shared {
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
