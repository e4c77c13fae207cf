//! Checking answer text as it passes, with a hold-back window: the filter's rules on answers
//! (whole and streamed) and on request bodies (redaction).
//!
//! A [`Scanner`] takes the text of one answer (one choice or content block) piece by piece, in
//! the order a stream delivers it, and gives back what may be released to the client now: text
//! no rule can still match across the boundary with the text still to come. It holds back at
//! most [`OutputRules::hold_back`] bytes — the longest match any rule can make, plus one
//! character so a rule's trailing `\b` is decided by the character that follows, not by the
//! end of what has arrived so far — so a match split across any number of pieces is caught
//! whole, and a clean stream is delayed by no more than that. Rules whose matches have no bound
//! (`\d+`) are bounded by the cap given when the rules are built: a longer match split across
//! pieces may then be missed, which the caller reports.
//!
//! Actions: `redact` replaces the span with `[REDACTED:<rule>]`; `block` stops the answer (the
//! caller ends it with its error); `warn` and `audit` only record the rule. In shadow mode a
//! rule is recorded with what it would have done, and the text is left as it is.
//! Rules match the answer as written, not its normalised form — a redaction must replace the
//! very characters the client would have read — and case-sensitively unless a pattern says
//! `(?i)`: secrets' prefixes have a case, and case-insensitive Unicode classes would make the
//! longest match, so the hold-back, up to three times longer (`k` also matches the Kelvin sign).

use crate::config::screen::Mode;
use regex::{Regex, RegexBuilder};
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::{Anchored, Input};
use std::sync::{Arc, Mutex};

/// Prefix-DFA caches kept for the next answers, at most.
const KEPT_CACHES: usize = 32;
/// A prefix-DFA cache larger than this is not kept.
const KEPT_CACHE_BYTES: usize = 256 * 1024;

/// What a rule does with a match in an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputAction {
    Redact,
    Block,
    Warn,
    Audit,
}

impl OutputAction {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputAction::Redact => "redact",
            OutputAction::Block => "block",
            OutputAction::Warn => "warn",
            OutputAction::Audit => "audit",
        }
    }
}

#[derive(Debug)]
struct OutputRule {
    id: String,
    regex: Regex,
    action: OutputAction,
    mode: Mode,
}

/// A rule as given: id, regular expression, action, mode.
pub type RuleSpec = (String, String, OutputAction, Mode);

/// Compiled output rules and the hold-back they need.
#[derive(Debug)]
pub struct OutputRules {
    rules: Vec<OutputRule>,
    hold_back: usize,
    /// Every rule's pattern in one lazy DFA, run anchored from a position to learn whether a
    /// match could still start there (`None` when it cannot be built: then the whole
    /// hold-back is held).
    prefixes: Option<DFA>,
    /// Caches of the prefix DFA that finished answers gave back: a lazy DFA builds its states
    /// into its cache as it meets them, so a fresh cache per answer rebuilt the same states for
    /// every answer (the largest share of the scan's time on short answers).
    caches: Mutex<Vec<Cache>>,
    /// Rules whose longest match exceeds the cap (their matches may be missed when split).
    pub unbounded: Vec<String>,
}

impl OutputRules {
    /// Compiles `rules`; the hold-back is the longest match any of them can make plus one
    /// character, at most `cap` bytes.
    pub fn new(rules: &[RuleSpec], cap: usize) -> Result<OutputRules, String> {
        let mut longest = 0usize;
        let mut unbounded = Vec::new();
        let mut compiled = Vec::with_capacity(rules.len());
        for (id, pattern, action, mode) in rules {
            let (id, pattern) = (id.as_str(), pattern.as_str());
            let hir = regex_syntax::ParserBuilder::new()
                .build()
                .parse(pattern)
                .map_err(|e| format!("rule {id}: {e}"))?;
            match hir.properties().maximum_len() {
                Some(n) if n <= cap => longest = longest.max(n),
                _ => {
                    longest = cap;
                    unbounded.push(id.to_string());
                }
            }
            let regex = RegexBuilder::new(pattern)
                .build()
                .map_err(|e| format!("rule {id}: {e}"))?;
            compiled.push(OutputRule {
                id: id.to_string(),
                regex,
                action: *action,
                mode: *mode,
            });
        }
        let patterns: Vec<&str> = rules.iter().map(|r| r.1.as_str()).collect();
        let prefixes = DFA::builder()
            // Past a non-ASCII byte a Unicode `\b` is undecided: the DFA quits, read as "may
            // still match".
            .configure(DFA::config().unicode_word_boundary(true))
            .build_many(&patterns)
            .ok();
        Ok(OutputRules {
            prefixes,
            caches: Mutex::new(Vec::new()),
            rules: compiled,
            // One more character (at most 4 bytes) decides a trailing `\b` or `$`.
            hold_back: longest.saturating_add(4).min(cap.max(4)),
            unbounded,
        })
    }

    /// Whether some rule matches `text` (a non-empty match): when none does, checking `text`
    /// whole finds nothing and releases it unchanged.
    pub fn any_match(&self, text: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.regex.find_iter(text).any(|m| !m.is_empty()))
    }

    /// Bytes of an answer held back at most.
    pub fn hold_back(&self) -> usize {
        self.hold_back
    }

    /// A scanner for one answer.
    pub fn scanner(self: &Arc<Self>) -> Scanner {
        Scanner {
            cache: self.prefixes.as_ref().map(|dfa| {
                self.caches
                    .lock()
                    .ok()
                    .and_then(|mut kept| kept.pop())
                    .unwrap_or_else(|| dfa.create_cache())
            }),
            dead_before: 0,
            rules: Arc::clone(self),
            held: String::new(),
            found: Vec::new(),
            blocked: None,
            recorded_to: 0,
        }
    }
}

/// A rule that matched, with what it did (or, in shadow mode, would have done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: String,
    pub action: OutputAction,
    pub mode: Mode,
}

/// One answer's text, checked as it arrives.
#[derive(Debug)]
pub struct Scanner {
    rules: Arc<OutputRules>,
    /// Text received and not yet released (already redacted where a match was settled).
    held: String,
    /// Every rule that matched so far, once per match.
    pub found: Vec<Finding>,
    /// The rule that blocked the answer, once one did: nothing more is released.
    pub blocked: Option<String>,
    /// Matches left in place (shadow, warn, audit) that start before this offset of `held`
    /// were recorded already: held text is searched again with every piece.
    recorded_to: usize,
    /// The prefix DFA's cache (one per answer).
    cache: Option<Cache>,
    /// No match can start before this offset of `held` (each start is tried once).
    dead_before: usize,
}

impl Drop for Scanner {
    /// Gives the prefix DFA's cache back for the next answer.
    fn drop(&mut self) {
        if let (Some(cache), Ok(mut kept)) = (self.cache.take(), self.rules.caches.lock()) {
            // A cache grows with the text scanned (a client's text, for request rules): a large
            // one is freed, not kept for the configuration's lifetime.
            if kept.len() < KEPT_CACHES && cache.memory_usage() <= KEPT_CACHE_BYTES {
                kept.push(cache);
            }
        }
    }
}

impl Scanner {
    /// What matched, and the rule that blocked the answer, if one did (the scanner's cache goes
    /// back to the rules).
    pub fn into_findings(mut self) -> (Vec<Finding>, Option<String>) {
        (std::mem::take(&mut self.found), self.blocked.take())
    }

    /// Takes the next piece of the answer; returns the text that may go to the client now.
    pub fn push(&mut self, piece: &str) -> String {
        if self.blocked.is_some() {
            return String::new();
        }
        self.held.push_str(piece);
        self.settle(false)
    }

    /// A whole text, checked at once: what the client may read of it. The scanner is then
    /// ready for the next text (nothing held), and keeps what it found.
    pub fn whole(&mut self, text: &str) -> String {
        let mut out = self.push(text);
        out.push_str(&self.finish());
        out
    }

    /// Text is held back now.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// The answer ended: every match is settled and the rest released.
    pub fn finish(&mut self) -> String {
        if self.blocked.is_some() {
            return String::new();
        }
        self.settle(true)
    }

    /// Applies the settled matches in `held` and releases what no match can still reach.
    fn settle(&mut self, end: bool) -> String {
        let len = self.held.len();
        // A match is settled when a character follows it (or the answer has ended): only then
        // is its trailing context known.
        let settled = |m_end: usize| end || m_end < len;
        let mut spans: Vec<(usize, usize, usize)> = Vec::new(); // start, end, rule
        let mut open_from = len;
        for (i, rule) in self.rules.rules.iter().enumerate() {
            for m in rule.regex.find_iter(&self.held) {
                if m.start() == m.end() {
                    continue;
                }
                if !settled(m.end()) {
                    open_from = open_from.min(m.start());
                    continue;
                }
                spans.push((m.start(), m.end(), i));
            }
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(len);
        let mut at = 0;
        let mut recorded_to = self.recorded_to;
        for (start, stop, i) in spans {
            if start < at {
                continue; // overlaps an earlier match
            }
            let rule = &self.rules.rules[i];
            if start < self.recorded_to {
                continue; // left in place and recorded on an earlier piece
            }
            self.found.push(Finding {
                rule: rule.id.clone(),
                action: rule.action,
                mode: rule.mode,
            });
            if rule.mode == Mode::Shadow {
                recorded_to = recorded_to.max(stop);
                continue;
            }
            match rule.action {
                OutputAction::Block => {
                    self.blocked = Some(rule.id.clone());
                    self.held.clear();
                    return String::new();
                }
                OutputAction::Redact => {
                    out.push_str(&self.held[at..start]);
                    out.push_str("[REDACTED:");
                    out.push_str(&rule.id);
                    out.push(']');
                    at = stop;
                }
                OutputAction::Warn | OutputAction::Audit => recorded_to = recorded_to.max(stop),
            }
        }
        // What follows the last redaction is kept as written; where the release ends is
        // measured on the original text, then carried over to the redacted one.
        let keep_from = if end {
            len
        } else {
            let mut cut = self.first_open_start(len).min(open_from);
            cut = cut.max(at.min(open_from));
            while !self.held.is_char_boundary(cut) {
                cut -= 1;
            }
            cut
        };
        let released = if keep_from >= at {
            out.push_str(&self.held[at..keep_from]);
            keep_from
        } else {
            // A redaction ends inside the held tail: release up to the end of the redaction
            // and keep the original text after it.
            at
        };
        self.held.replace_range(..released, "");
        self.recorded_to = recorded_to.saturating_sub(released);
        self.dead_before = self.dead_before.saturating_sub(released);
        out
    }

    /// The first offset of the held text (within the hold-back) where a match could still
    /// start: an anchored run of every rule's DFA from there reaches the end of the text alive.
    /// Offsets tried before and found dead stay dead as text is added, so each is tried once.
    fn first_open_start(&mut self, len: usize) -> usize {
        let floor = len.saturating_sub(self.rules.hold_back);
        let (Some(dfa), Some(cache)) = (self.rules.prefixes.as_ref(), self.cache.as_mut()) else {
            return floor;
        };
        let mut p = self.dead_before.max(floor);
        while p < len {
            if self.held.is_char_boundary(p) && may_start(dfa, cache, &self.held, p) {
                break;
            }
            p += 1;
        }
        self.dead_before = p;
        p
    }
}

/// Whether a match of any rule could start at `p` of `text` and still be under way (or just
/// complete) at its end. A DFA that gives up (its cache, a non-ASCII byte under a Unicode `\b`)
/// says yes: holding is the safe answer.
fn may_start(dfa: &DFA, cache: &mut Cache, text: &str, p: usize) -> bool {
    let input = Input::new(text).range(p..).anchored(Anchored::Yes);
    let Ok(mut sid) = dfa.start_state_forward(cache, &input) else {
        return true;
    };
    for &b in &text.as_bytes()[p..] {
        match dfa.next_state(cache, sid, b) {
            Ok(next) => sid = next,
            Err(_) => return true,
        }
        if sid.is_dead() {
            return false;
        }
        if sid.is_quit() {
            return true;
        }
    }
    true
}

/// One rule, `ssn`, with `action` and `mode` (for tests here and in the SSE tap).
#[cfg(test)]
pub(crate) fn ssn_rules(action: OutputAction, mode: Mode) -> Arc<OutputRules> {
    let ssn = r"\b\d{3}-\d{2}-\d{4}\b";
    Arc::new(OutputRules::new(&[("ssn".into(), ssn.into(), action, mode)], 256).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(action: OutputAction, mode: Mode) -> Arc<OutputRules> {
        ssn_rules(action, mode)
    }

    /// Feeds `text` cut at `cuts`, collecting what is released.
    fn run(r: &Arc<OutputRules>, pieces: &[&str]) -> (String, Vec<Finding>, Option<String>) {
        let mut s = r.scanner();
        let mut out = String::new();
        for p in pieces {
            out.push_str(&s.push(p));
        }
        out.push_str(&s.finish());
        let (found, blocked) = s.into_findings();
        (out, found, blocked)
    }

    #[test]
    fn a_finished_answers_dfa_cache_serves_the_next_answer() {
        let r = rules(OutputAction::Redact, Mode::Enforce);
        assert!(r.caches.lock().unwrap().is_empty());
        let (out, _, _) = run(&r, &["SSN 123-45-", "6789."]);
        assert_eq!(out, "SSN [REDACTED:ssn].");
        assert_eq!(r.caches.lock().unwrap().len(), 1);
        let s = r.scanner();
        assert!(r.caches.lock().unwrap().is_empty());
        drop(s);
        let (out, _, _) = run(&r, &["SSN 123-45-", "6789."]);
        assert_eq!(out, "SSN [REDACTED:ssn].");
        assert_eq!(r.caches.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_match_split_anywhere_is_redacted_whole_and_the_rest_is_unchanged() {
        let r = rules(OutputAction::Redact, Mode::Enforce);
        let text = "Your SSN is 123-45-6789, keep it safe. Also 987-65-4321.";
        for cut in 1..text.len() {
            for cut2 in cut..text.len() {
                let (out, found, _) = run(&r, &[&text[..cut], &text[cut..cut2], &text[cut2..]]);
                assert_eq!(
                    out, "Your SSN is [REDACTED:ssn], keep it safe. Also [REDACTED:ssn].",
                    "cut at {cut}, {cut2}"
                );
                assert_eq!(found.len(), 2);
            }
        }
    }

    #[test]
    fn text_no_rule_matches_comes_back_from_a_whole_check_unchanged() {
        let r = rules(OutputAction::Redact, Mode::Enforce);
        for text in ["", "id 123-45-67890", "nothing here", "SSN 123-45-6789."] {
            let mut s = r.scanner();
            let out = s.whole(text);
            assert_eq!(
                !r.any_match(text),
                out == text && s.found.is_empty(),
                "{text}"
            );
        }
    }

    #[test]
    fn a_number_that_only_looks_like_a_match_at_a_boundary_is_not_redacted() {
        // "123-45-67890" is not an SSN: the digit after it decides, even when it arrives later.
        let r = rules(OutputAction::Redact, Mode::Enforce);
        let (out, found, _) = run(&r, &["id 123-45-6789", "0 done"]);
        assert_eq!(out, "id 123-45-67890 done");
        assert!(found.is_empty());
    }

    #[test]
    fn a_clean_answer_is_held_back_by_at_most_the_longest_match() {
        let r = rules(OutputAction::Redact, Mode::Enforce);
        // `\d` is any Unicode digit, up to 4 bytes each: 9 of them and 2 hyphens, plus one
        // character of look-ahead.
        assert_eq!(r.hold_back(), 9 * 4 + 2 + 4);
        let mut s = r.scanner();
        let mut released = 0;
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(20);
        for (i, ch) in text.char_indices() {
            released += s.push(&ch.to_string()).len();
            assert!(i + 1 - released <= r.hold_back(), "at {i}");
        }
        released += s.finish().len();
        assert_eq!(released, text.len());
    }

    #[test]
    fn text_where_no_match_can_start_is_not_held_at_all() {
        let r = rules(OutputAction::Redact, Mode::Enforce);
        let mut s = r.scanner();
        for ch in "The quick brown fox jumps over the lazy dog, twice.".chars() {
            assert_eq!(s.push(&ch.to_string()), ch.to_string());
        }
        // Digits may start an SSN: held until they cannot.
        assert_eq!(s.push(" call 555"), " call ");
        assert_eq!(s.push("-12"), "");
        assert_eq!(s.push("34 now"), "555-1234 now");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn a_block_stops_the_answer_and_shadow_only_records() {
        let r = rules(OutputAction::Block, Mode::Enforce);
        let (out, _, blocked) = run(&r, &["Sure. Here it is: 123-4", "5-6789 and more text"]);
        assert_eq!(blocked.as_deref(), Some("ssn"));
        assert!(!out.contains("123"), "{out}");
        let r = rules(OutputAction::Redact, Mode::Shadow);
        let (out, found, _) = run(&r, &["SSN 123-45-", "6789."]);
        assert_eq!(out, "SSN 123-45-6789.");
        assert_eq!(found[0].mode, Mode::Shadow);
    }

    #[test]
    fn a_match_left_in_place_is_recorded_once_however_many_pieces_follow() {
        for (action, mode) in [
            (OutputAction::Redact, Mode::Shadow),
            (OutputAction::Warn, Mode::Enforce),
            (OutputAction::Audit, Mode::Enforce),
        ] {
            let r = rules(action, mode);
            let pieces: Vec<String> = "a 123-45-6789 b 987-65-4321 c"
                .chars()
                .map(String::from)
                .collect();
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let (out, found, _) = run(&r, &refs);
            assert_eq!(out, "a 123-45-6789 b 987-65-4321 c");
            assert_eq!(found.len(), 2, "{action:?} {mode:?}: {found:?}");
        }
    }

    #[test]
    fn unbounded_rules_are_capped_and_named() {
        let r = Arc::new(
            OutputRules::new(
                &[(
                    "digits".into(),
                    r"\d+".into(),
                    OutputAction::Redact,
                    Mode::Enforce,
                )],
                64,
            )
            .unwrap(),
        );
        assert_eq!(r.hold_back(), 64);
        assert_eq!(r.unbounded, ["digits"]);
        let (out, _, _) = run(&r, &["a 12", "34 b"]);
        assert_eq!(out, "a [REDACTED:digits] b");
    }

    #[test]
    fn multibyte_text_is_never_cut_inside_a_character() {
        let r = rules(OutputAction::Redact, Mode::Enforce);
        let text = "héllo wörld 😀 — 123-45-6789 ✓ ".repeat(5);
        let pieces: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let (out, found, _) = run(&r, &refs);
        assert_eq!(out, text.replace("123-45-6789", "[REDACTED:ssn]"));
        assert_eq!(found.len(), 5);
    }
}

/// Redacts the string values of a JSON document (`body`) with `rules`: each value is decoded
/// (escapes and all), checked whole, and written back re-encoded only when a redaction changed
/// it; keys and every other byte stay as they were. Returns the new body when anything was
/// redacted, and what matched (shadow rules included).
pub fn redact_json(rules: &Arc<OutputRules>, body: &[u8]) -> (Option<Vec<u8>>, Vec<Finding>) {
    let mut out: Vec<u8> = Vec::new();
    let mut copied = 0;
    // One scanner (and DFA cache) for every string of the body.
    let mut scanner = rules.scanner();
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < body.len() && body[i] != b'"' {
            i += if body[i] == b'\\' { 2 } else { 1 };
        }
        let end = (i + 1).min(body.len());
        i = end;
        // A key is followed by `:`; only values are texts.
        let next = body[end..].iter().find(|b| !b.is_ascii_whitespace());
        if next == Some(&b':') {
            continue;
        }
        let Ok(text) = serde_json::from_slice::<String>(&body[start..end]) else {
            continue;
        };
        let redacted = scanner.whole(&text);
        if redacted != text {
            out.extend_from_slice(&body[copied..start]);
            let encoded = serde_json::to_string(&redacted).unwrap_or_default();
            out.extend_from_slice(encoded.as_bytes());
            copied = end;
        }
    }
    let found = scanner.into_findings().0;
    if copied == 0 {
        return (None, found);
    }
    out.extend_from_slice(&body[copied..]);
    (Some(out), found)
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn only_string_values_are_redacted_escapes_and_other_bytes_kept() {
        let rules = ssn_rules(OutputAction::Redact, Mode::Enforce);
        // The SSN written with escapes, a key that looks like one, a "quote" inside a value.
        let body = br#"{"model": "gpt-4", "123-45-6789": 1, "messages": [{"role":"user","content":"my \"id\" is \u0031\u0032\u0033-45-6789 \u00e9"}], "n": 1}"#;
        let (out, found) = redact_json(&rules, body);
        let out = String::from_utf8(out.unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"model": "gpt-4", "123-45-6789": 1, "messages": [{"role":"user","content":"my \"id\" is [REDACTED:ssn] é"}], "n": 1}"#
        );
        assert_eq!(found.len(), 1);
        let clean = br#"{"messages":[{"content":"nothing here"}]}"#;
        assert_eq!(redact_json(&rules, clean).0, None);
    }
}
