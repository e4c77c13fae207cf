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

/// Cost in nano-dollars of `input` + `output` tokens at `price` (rounded up).
pub fn cost_nanos(price: Price, input: u64, output: u64) -> u64 {
    // price is micro-dollars per million tokens = nano-dollars per thousand tokens.
    let nanos = u128::from(input) * u128::from(price.input_micros_per_million)
        + u128::from(output) * u128::from(price.output_micros_per_million);
    u64::try_from(nanos.div_ceil(1000)).unwrap_or(u64::MAX)
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
    fn estimates_a_quarter_token_per_character_rounded_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("ééé"), 1, "characters, not bytes");
    }
}
