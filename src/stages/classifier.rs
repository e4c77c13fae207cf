//! The injection classifier: a linear model over hashed character 4-grams, words and word pairs
//! of the normalised text (the text `tollgate normalize` prints), scored over windows of two
//! 512-byte blocks so that an attack inside a long document is not diluted by the rest of it.
//! The features are specified once, in `eval/classifier/features.py`, which trains the model;
//! this module computes the same numbers (a parity test holds them together).
//!
//! The model file: `TGCLS001`, then little-endian u32 bits, u32 block bytes, f32 scale, f32 bias,
//! u32 metadata length, the metadata (JSON), and 2^bits i16 weights.

use crate::config::screen::{ClassifierConfig, Mode};
use crate::config::{Problem, Role};
use std::path::Path;

const MAGIC: &[u8; 8] = b"TGCLS001";
const GOLDEN: u32 = 0x9E37_79B1;
const FNV_PRIME: u32 = 0x0100_0193;
const WORD_BASIS: u32 = 0x811C_9DC5;
const PAIR_BASIS: u32 = 0x050C_5D1F;
/// Table sizes a model may use: 2^10 to 2^24 weights (2 KiB to 32 MiB).
const BITS: std::ops::RangeInclusive<u32> = 10..=24;

/// The model shipped with the gateway (`conf/models/injection.tgc`), used when the configuration
/// names none.
const SHIPPED: &[u8] = include_bytes!("../../conf/models/injection.tgc");

/// The classifier stage as configured: a model and a threshold per role.
#[derive(Debug)]
pub struct Classifier {
    model: Model,
    /// Per role ([`Role::index`]).
    thresholds: [f64; 3],
    pub mode: Mode,
    /// Where the model came from: `shipped` or its path.
    pub source: String,
}

impl Classifier {
    /// Loads the configured model (read anew at every start and reload) and resolves each role's
    /// threshold: its own, else the configured one, else the model's.
    pub fn load(cfg: &ClassifierConfig) -> Result<Classifier, Problem> {
        let at = |what: &str| format!("content_filter.classifier.{what}");
        let (model, source) = match &cfg.model {
            None => (
                Model::parse(SHIPPED).map_err(|e| Problem::new(at("model"), e))?,
                "shipped".to_string(),
            ),
            Some(path) => (
                Model::load(path).map_err(|e| Problem::new(at("model"), e))?,
                path.display().to_string(),
            ),
        };
        let default = cfg.threshold.or(model.threshold()).ok_or_else(|| {
            Problem::new(
                at("threshold"),
                "the model carries no threshold of its own: set one",
            )
        })?;
        Ok(Classifier {
            thresholds: cfg.thresholds.map(|t| t.unwrap_or(default)),
            model,
            mode: cfg.mode,
            source,
        })
    }

    pub fn threshold(&self, role: Role) -> f64 {
        self.thresholds[role.index()]
    }

    /// The highest score of `texts` (each normalised).
    pub fn score<'t>(&self, texts: impl IntoIterator<Item = &'t str>) -> f64 {
        texts
            .into_iter()
            .map(|t| self.model.score(t.as_bytes()))
            .fold(0.0, f64::max)
    }
}

/// A loaded model. Its weights are read-only and shared by every request.
pub struct Model {
    bits: u32,
    block: usize,
    scale: f64,
    bias: f64,
    weights: Box<[i16]>,
    /// The model's own description (its `name`, training script, sources), as JSON.
    pub meta: String,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("bits", &self.bits)
            .field("block", &self.block)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl Model {
    /// Reads a model file; the error says what is wrong with it.
    pub fn load(path: &Path) -> Result<Model, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Model::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the bytes of a model file.
    pub fn parse(bytes: &[u8]) -> Result<Model, String> {
        if bytes.get(..8) != Some(MAGIC.as_slice()) {
            return Err("not a tollgate classifier model (no TGCLS001 header)".into());
        }
        let field = |at| u32_at(bytes, at).ok_or("the header is cut short");
        let bits = field(8)?;
        let block = field(12)? as usize;
        let scale = f32::from_bits(field(16)?);
        let bias = f32::from_bits(field(20)?);
        let meta_len = field(24)? as usize;
        if !BITS.contains(&bits) {
            return Err(format!("{bits} hash bits (a model has 10 to 24)"));
        }
        if !(16..=1 << 20).contains(&block) {
            return Err(format!("blocks of {block} bytes (16 B to 1 MiB)"));
        }
        if !scale.is_finite() || !bias.is_finite() || scale <= 0.0 {
            return Err("its scale or bias is not a finite number".into());
        }
        let meta = bytes
            .get(28..28 + meta_len)
            .ok_or("the metadata is cut short")?;
        let meta = std::str::from_utf8(meta)
            .map_err(|_| "the metadata is not UTF-8")?
            .to_string();
        let table = &bytes[28 + meta_len..];
        let n = 1usize << bits;
        if table.len() != 2 * n {
            return Err(format!(
                "{} bytes of weights where 2^{bits} weights take {}",
                table.len(),
                2 * n
            ));
        }
        let weights = table
            .chunks_exact(2)
            .map(|w| i16::from_le_bytes([w[0], w[1]]))
            .collect();
        Ok(Model {
            bits,
            block,
            scale: f64::from(scale),
            bias: f64::from(bias),
            weights,
            meta,
        })
    }

    /// The threshold the training script chose for the model (its metadata's `threshold`).
    pub fn threshold(&self) -> Option<f64> {
        let meta: serde_json::Value = serde_json::from_str(&self.meta).ok()?;
        meta["threshold"].as_f64().filter(|t| *t > 0.0 && *t <= 1.0)
    }

    fn bucket(&self, h: u32) -> usize {
        (h.wrapping_mul(GOLDEN) >> (32 - self.bits)) as usize
    }

    /// The probability that `text` (normalised) is a prompt injection or jailbreak: the highest
    /// score of its windows.
    pub fn score(&self, text: &[u8]) -> f64 {
        let blocks = text.len().div_ceil(self.block).max(1);
        let mut sums = vec![0i64; blocks];
        let mut counts = vec![0u32; blocks];
        self.add_grams(text, &mut sums, &mut counts);
        self.add_words(text, &mut sums, &mut counts);
        let window = |k: usize, width: usize| {
            let n: u32 = counts[k..k + width].iter().sum();
            let s: i64 = sums[k..k + width].iter().sum();
            (n > 0).then(|| self.bias + self.scale * s as f64 / f64::from(n).sqrt())
        };
        let best = if blocks == 1 {
            window(0, 1)
        } else {
            (0..blocks - 1)
                .filter_map(|k| window(k, 2))
                .fold(None, |best: Option<f64>, s| {
                    Some(best.map_or(s, |b| b.max(s)))
                })
        };
        1.0 / (1.0 + (-best.unwrap_or(self.bias)).exp())
    }

    /// Character 4-grams of " " + text + " ", each counted in the block where it starts in
    /// `text` (the first two both start at 0). The gram at padded position `j` is the four bytes
    /// from `text[j - 1]`; between the two padded ends each is read with one unaligned load, and
    /// each block's grams are summed in a loop of their own (no per-gram block test).
    fn add_grams(&self, text: &[u8], sums: &mut [i64], counts: &mut [u32]) {
        let n = text.len();
        if n < 2 {
            return;
        }
        let weight = |gram: u32| i64::from(self.weights[self.bucket(gram)]);
        let padded = |j: usize| -> u32 {
            let byte = |p: usize| {
                if p == 0 || p == n + 1 {
                    u32::from(b' ')
                } else {
                    u32::from(text[p - 1])
                }
            };
            byte(j) | byte(j + 1) << 8 | byte(j + 2) << 16 | byte(j + 3) << 24
        };
        let last = sums.len() - 1;
        // Grams j = 0..=n-2; gram j starts at max(j - 1, 0): block k holds j in
        // [k*B + 1, (k+1)*B + 1), block 0 from j = 0, the last block to the end.
        let mut j = 0;
        for k in 0..=last {
            let end = if k == last {
                n - 1
            } else {
                ((k + 1) * self.block + 1).min(n - 1)
            };
            let mut sum = 0i64;
            let from = j;
            // The padded ends: j = 0 and j = n - 2 (the grams with a pad byte).
            while j < end && (j == 0 || j + 3 > n) {
                sum += weight(padded(j));
                j += 1;
            }
            let interior_end = end.min(n.saturating_sub(2));
            while j < interior_end {
                let g = u32::from_le_bytes([text[j - 1], text[j], text[j + 1], text[j + 2]]);
                sum += weight(g);
                j += 1;
            }
            while j < end {
                sum += weight(padded(j));
                j += 1;
            }
            sums[k] += sum;
            counts[k] += (j - from) as u32;
        }
    }

    /// Words (FNV-1a) and adjacent pairs of words (a mix of the two words' hashes), each
    /// counted in the block where it (the pair's first word) starts.
    fn add_words(&self, text: &[u8], sums: &mut [i64], counts: &mut [u32]) {
        let last = sums.len() - 1;
        let weight = |h: u32| i64::from(self.weights[self.bucket(h)]);
        // Words come in order of their start, so the block is tracked, never divided for.
        let (mut k, mut boundary) = (0, self.block);
        // (hash of the previous word, its block)
        let mut previous: Option<(u32, usize)> = None;
        let mut i = 0;
        while i < text.len() {
            if !is_word(text[i]) {
                i += 1;
                continue;
            }
            while i >= boundary && k < last {
                k += 1;
                boundary += self.block;
            }
            let mut word = WORD_BASIS;
            while i < text.len() && is_word(text[i]) {
                word = (word ^ u32::from(text[i])).wrapping_mul(FNV_PRIME);
                i += 1;
            }
            sums[k] += weight(word);
            counts[k] += 1;
            if let Some((first, at)) = previous {
                sums[at] += weight(pair(first, word));
                counts[at] += 1;
            }
            previous = Some((word, k));
        }
    }
}

/// The hash of two adjacent words, from theirs.
fn pair(first: u32, second: u32) -> u32 {
    (first.rotate_left(16) ^ second ^ PAIR_BASIS).wrapping_mul(FNV_PRIME)
}

fn is_word(b: u8) -> bool {
    WORD_BYTE[usize::from(b)]
}

/// Bytes that belong to a word of normalised text: a-z, 0-9 and every byte of a non-ASCII
/// character.
const WORD_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_lowercase() || c.is_ascii_digit() || c >= 0x80;
        b += 1;
    }
    t
};

#[cfg(test)]
fn fnv(basis: u32, bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(basis, |h, &b| (h ^ u32::from(b)).wrapping_mul(FNV_PRIME))
}

#[cfg(test)]
mod tests {
    use super::Model;

    fn model(bits: u32, block: u32, weights: &[i16], bias: f32) -> Vec<u8> {
        let mut out = b"TGCLS001".to_vec();
        for v in [bits, block, 1.0f32.to_bits(), bias.to_bits(), 2] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(b"{}");
        for w in weights {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    #[test]
    fn a_damaged_model_file_is_refused_with_its_reason() {
        let good = model(10, 512, &[0; 1024], 0.0);
        assert!(Model::parse(&good).is_ok());
        assert!(Model::parse(&good[..good.len() - 1])
            .unwrap_err()
            .contains("weights"));
        assert!(Model::parse(b"GGUF....").unwrap_err().contains("TGCLS001"));
        assert!(Model::parse(&model(40, 512, &[], 0.0))
            .unwrap_err()
            .contains("hash bits"));
        assert!(Model::parse(&model(10, 512, &[0; 1024], f32::NAN))
            .unwrap_err()
            .contains("finite"));
        assert!(Model::parse(&good[..20]).unwrap_err().contains("cut short"));
    }

    #[test]
    fn an_empty_text_scores_the_bias_and_every_feature_counts() {
        let zero = Model::parse(&model(10, 512, &[0; 1024], 0.0)).unwrap();
        assert_eq!(zero.score(b""), 0.5);
        assert_eq!(zero.score(b"anything at all"), 0.5);
        let up = Model::parse(&model(10, 512, &[100; 1024], -1.0)).unwrap();
        // "ab": grams " ab " (1), words "ab" (1): two features of 100 each, 200 / sqrt(2).
        let expected = 1.0 / (1.0 + (-(-1.0 + 200.0 / 2f64.sqrt())).exp());
        assert!((up.score(b"ab") - expected).abs() < 1e-12);
    }

    #[test]
    fn an_attack_in_a_long_text_is_scored_in_its_own_window() {
        // Every weight negative except the buckets of one word: diluted over the whole text
        // it would vanish; in its window it does not.
        let mut weights = vec![-1i16; 1024];
        let m = Model::parse(&model(10, 64, &weights, 0.0)).unwrap();
        let word = m.bucket(super::fnv(super::WORD_BASIS, b"zzz"));
        weights[word] = 2000;
        let m = Model::parse(&model(10, 64, &weights, 0.0)).unwrap();
        let filler = "lorem ipsum dolor ".repeat(40);
        let short = m.score(b"zzz");
        let long = m.score(format!("{filler}zzz {filler}").as_bytes());
        assert!(short > 0.99, "{short}");
        assert!(long > 0.9, "{long}");
    }

    /// The shipped model scores every text of the training script's parity file as the script
    /// did: the features and the window rule are the same in both.
    #[test]
    fn the_shipped_model_scores_as_its_training_script_does() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let m = Model::load(&root.join("conf/models/injection.tgc")).unwrap();
        assert!(m.meta.contains("tollgate-injection"), "{}", m.meta);
        let parity = std::fs::read_to_string(root.join("eval/classifier/parity.jsonl")).unwrap();
        let mut n = 0;
        for line in parity.lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = row["text"].as_str().unwrap();
            let expected = row["score"].as_f64().unwrap();
            let got = m.score(text.as_bytes());
            assert!(
                (got - expected).abs() < 1e-9,
                "{got} vs {expected}: {text:.80}"
            );
            n += 1;
        }
        assert!(n >= 40);
    }
}
