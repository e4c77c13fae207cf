//! Rule patterns rewritten for the text they are matched against.
//!
//! The filter matches normalised text, which is lower-case (see [`super::normalize`]), and rules
//! are case-insensitive. Compiled as such, every literal becomes a set of case variants
//! (`ignore` is 64 of them) and the regex engine cannot use literals to skip ahead. So each
//! pattern is parsed case-insensitively with ASCII classes, every upper-case letter is removed
//! from its classes (the text holds none), and it is printed back: the same matches on
//! normalised text, with single-case literals the engine can search for with SIMD.
//!
//! Each pattern is also classified by whether any match must contain an ASCII digit (card and
//! identity numbers): those rules run only on texts that have a digit.

use regex_syntax::hir::{Capture, Class, ClassBytes, ClassBytesRange, Hir, HirKind, Repetition};
use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};

/// A pattern ready for normalised text.
#[derive(Debug, PartialEq, Eq)]
pub struct Folded {
    /// The rewritten pattern, to compile case-sensitively with `unicode(false)`.
    pub pattern: String,
    /// Every match contains an ASCII digit.
    pub needs_digit: bool,
}

/// Rewrites `pattern` (a rule as written: case-insensitive, ASCII classes).
pub fn fold(pattern: &str) -> Result<Folded, String> {
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(true)
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())?;
    let folded = lower(&hir);
    Ok(Folded {
        needs_digit: !can_match_without(&folded, b'0', b'9'),
        pattern: folded.to_string(),
    })
}

/// `hir` with upper-case ASCII letters removed from every class and literal.
fn lower(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(lit) => Hir::literal(lit.0.to_ascii_lowercase()),
        HirKind::Class(Class::Bytes(c)) => {
            let mut c = c.clone();
            c.difference(&ClassBytes::new([ClassBytesRange::new(b'A', b'Z')]));
            Hir::class(Class::Bytes(c))
        }
        HirKind::Class(Class::Unicode(c)) => {
            let mut c = c.clone();
            c.difference(&ClassUnicode::new([ClassUnicodeRange::new('A', 'Z')]));
            Hir::class(Class::Unicode(c))
        }
        HirKind::Look(look) => Hir::look(*look),
        HirKind::Repetition(r) => Hir::repetition(Repetition {
            min: r.min,
            max: r.max,
            greedy: r.greedy,
            sub: Box::new(lower(&r.sub)),
        }),
        HirKind::Capture(c) => Hir::capture(Capture {
            index: c.index,
            name: c.name.clone(),
            sub: Box::new(lower(&c.sub)),
        }),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(lower).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(lower).collect()),
    }
}

/// Whether `hir` can match some text with no byte in `lo..=hi`.
fn can_match_without(hir: &Hir, lo: u8, hi: u8) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(lit) => !lit.0.iter().any(|b| (lo..=hi).contains(b)),
        HirKind::Class(Class::Bytes(c)) => {
            let mut c = c.clone();
            c.difference(&ClassBytes::new([ClassBytesRange::new(lo, hi)]));
            !c.ranges().is_empty()
        }
        HirKind::Class(Class::Unicode(c)) => {
            let mut c = c.clone();
            c.difference(&ClassUnicode::new([ClassUnicodeRange::new(
                char::from(lo),
                char::from(hi),
            )]));
            !c.ranges().is_empty()
        }
        HirKind::Repetition(r) => r.min == 0 || can_match_without(&r.sub, lo, hi),
        HirKind::Capture(c) => can_match_without(&c.sub, lo, hi),
        HirKind::Concat(subs) => subs.iter().all(|s| can_match_without(s, lo, hi)),
        HirKind::Alternation(subs) => subs.iter().any(|s| can_match_without(s, lo, hi)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::bytes::RegexBuilder;

    fn compiled(p: &str) -> (regex::bytes::Regex, regex::bytes::Regex) {
        let original = RegexBuilder::new(p)
            .case_insensitive(true)
            .unicode(false)
            .build()
            .unwrap();
        let folded = RegexBuilder::new(&fold(p).unwrap().pattern)
            .unicode(false)
            .build()
            .unwrap();
        (original, folded)
    }

    #[test]
    fn folded_patterns_match_lower_case_text_exactly_as_the_originals() {
        let cases = [
            (
                r"ignore\s+(all\s+)?previous\s+instructions",
                "please ignore all previous instructions",
            ),
            (r"\b[A-Z]\d{8}\b", "passport x12345678 here"),
            (r"\b\d{3}-\d{2}-\d{4}\b", "ssn 123-45-6789"),
            (
                r"(?i)Show\s+THE\s+System\s+Prompt",
                "show the system prompt",
            ),
            (r"[^A-Z]+x", "abc x"),
            (r"\bUNION\s+SELECT\b", "1 union select 2"),
        ];
        for (p, text) in cases {
            let (original, folded) = compiled(p);
            for hay in [text, "nothing to see here", "union selected", "a1234567"] {
                assert_eq!(
                    original.is_match(hay.as_bytes()),
                    folded.is_match(hay.as_bytes()),
                    "{p} on {hay:?} (folded: {})",
                    fold(p).unwrap().pattern
                );
            }
            assert!(folded.is_match(text.as_bytes()), "{p}");
        }
    }

    #[test]
    fn folded_literals_are_single_case() {
        let p = fold("Ignore").unwrap().pattern;
        assert!(p.contains("ignore") && !p.contains('I'), "{p}");
    }

    #[test]
    fn number_rules_are_told_apart_from_word_rules() {
        for p in [
            r"\b\d{3}-\d{2}-\d{4}\b",
            r"\b[A-Z]\d{8}\b",
            r"card\s*\d{4}",
            "[0-9]+",
        ] {
            assert!(fold(p).unwrap().needs_digit, "{p}");
        }
        for p in [
            r"ignore\s+previous",
            r"\d*x",
            r"(\d{4}|none)",
            r"[^a]",
            r"\b(quarterly\s+earnings)\b.*\b(unreleased)\b",
        ] {
            assert!(!fold(p).unwrap().needs_digit, "{p}");
        }
    }

    #[test]
    fn invalid_patterns_are_reported() {
        assert!(fold("(unclosed").is_err());
    }
}
