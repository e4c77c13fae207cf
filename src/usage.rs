//! Tokens a request used and what they cost: the vocabulary shared by the protocol parsers (which
//! read usage off the wire), the admission stage (which reserves and settles it) and the reports.
//!
//! Integers only: tokens `u64`, money nano-dollars `u64`, rounded up.

use crate::config::Price;

/// Tokens an answer used, as reported by the backend or estimated by the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    /// Prompt tokens served from the provider's prompt cache (when reported), inside `input`.
    pub cached: u64,
    /// Prompt tokens written to the provider's prompt cache (Anthropic's
    /// `cache_creation_input_tokens`, Bedrock's `cacheWriteInputTokens`), inside `input`.
    pub cache_write: u64,
    /// Reasoning tokens inside `output` (when reported).
    pub reasoning: u64,
    /// True when the gateway estimated instead of reading the backend's report.
    pub estimated: bool,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }

    /// An estimate: `input` prompt tokens and `output` answer tokens, marked estimated.
    pub fn estimate(input: u64, output: u64) -> Usage {
        Usage {
            input,
            output,
            estimated: true,
            ..Usage::default()
        }
    }
}

/// The seed's estimate: ceil(characters / 4).
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Per-message framing the providers add (role markers), counted into the prompt estimate.
pub const PER_MESSAGE_TOKENS: u64 = 4;

/// Cost in nano-dollars of `input` + `output` tokens at `price`'s plain rates (rounded up).
#[cfg(test)]
pub fn cost_nanos(price: Price, input: u64, output: u64) -> u64 {
    nanos(&[
        (input, price.input_micros_per_million),
        (output, price.output_micros_per_million),
    ])
}

/// The most `input` + `output` tokens can cost at `price`, whatever share of the prompt the
/// provider's cache reads or writes and whatever share of the output is reasoning: what a
/// reservation holds.
pub fn cost_bound_nanos(price: Price, input: u64, output: u64) -> u64 {
    nanos(&[
        (input, price.prompt_bound()),
        (output, price.output_bound()),
    ])
}

impl Usage {
    /// What this usage costs at `price`, in nano-dollars (rounded up): cache reads, cache
    /// writes and reasoning tokens at their own prices where `price` has them.
    pub fn cost_nanos(&self, price: Price) -> u64 {
        let cached = self.cached.min(self.input);
        let cache_write = self.cache_write.min(self.input - cached);
        let plain_input = self.input - cached - cache_write;
        let reasoning = self.reasoning.min(self.output);
        nanos(&[
            (plain_input, price.input_micros_per_million),
            (cached, price.cached_rate()),
            (cache_write, price.cache_write_rate()),
            (self.output - reasoning, price.output_micros_per_million),
            (reasoning, price.reasoning_rate()),
        ])
    }
}

/// Sum of tokens × micro-dollars per million, in nano-dollars rounded up once.
fn nanos(terms: &[(u64, u64)]) -> u64 {
    // micro-dollars per million tokens = nano-dollars per thousand tokens.
    let total: u128 = terms
        .iter()
        .map(|&(tokens, rate)| u128::from(tokens) * u128::from(rate))
        .sum();
    u64::try_from(total.div_ceil(1000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_exact_integer_arithmetic_rounded_up() {
        let gpt4 = Price::flat(30_000_000, 60_000_000);
        // 1,000 prompt tokens at $30/M = $0.03 = 30,000,000 nano-dollars.
        assert_eq!(cost_nanos(gpt4, 1_000, 0), 30_000_000);
        assert_eq!(cost_nanos(gpt4, 0, 1), 60_000);
        let cheap = Price::flat(250_000, 0);
        assert_eq!(cost_nanos(cheap, 1, 0), 250);
        assert_eq!(cost_nanos(Price::flat(1, 0), 1, 0), 1);
    }

    #[test]
    fn cache_reads_writes_and_reasoning_are_priced_at_their_own_rates_when_given() {
        // Claude Sonnet's published rates: $3 input, $0.30 cache read, $3.75 cache write, $15
        // output (per million tokens).
        let sonnet = Price {
            cached_input_micros_per_million: Some(300_000),
            cache_write_micros_per_million: Some(3_750_000),
            ..Price::flat(3_000_000, 15_000_000)
        };
        let used = Usage {
            input: 1_000 + 2_000 + 4_000,
            cached: 2_000,
            cache_write: 4_000,
            output: 100,
            ..Usage::default()
        };
        // 1,000 × $3 + 2,000 × $0.30 + 4,000 × $3.75 + 100 × $15 a million, in nano-dollars.
        assert_eq!(
            used.cost_nanos(sonnet),
            3_000_000 + 600_000 + 15_000_000 + 1_500_000
        );
        assert_eq!(
            used.cost_nanos(Price::flat(3_000_000, 15_000_000)),
            7_000 * 3_000 + 100 * 15_000,
            "without their own rates they are prompt tokens"
        );
        let flash = Price {
            reasoning_micros_per_million: Some(3_500_000),
            ..Price::flat(150_000, 600_000)
        };
        let thought = Usage {
            input: 10,
            output: 1_000,
            reasoning: 800,
            ..Usage::default()
        };
        // 10 × $0.15 + 200 × $0.60 + 800 × $3.50 a million, in nano-dollars.
        assert_eq!(thought.cost_nanos(flash), 1_500 + 120_000 + 2_800_000);
        assert!(
            cost_bound_nanos(sonnet, used.input, used.output) >= used.cost_nanos(sonnet),
            "the reservation bound covers any split of the prompt"
        );
    }

    #[test]
    fn estimates_a_quarter_token_per_character_rounded_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("ééé"), 1, "characters, not bytes");
    }
}
