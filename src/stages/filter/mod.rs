//! The organisation-wide content filter: every text the model will read, against the configured
//! rules, graded by the consumer's role.
//!
//! Input: the texts (all message contents and string parts, or the `/chat` message) and a role.
//! Each text is normalised (see [`normalize`]) and matched against all regex rules (rewritten
//! for lower-case text, see [`pattern`]; one alternation for word rules, one for number rules
//! run only when the text has a digit; each rule's own regex, to name the rules, runs only on a
//! match; the alternatives of a rule's `patterns` list are searched one by one on every text)
//! and all keyword rules (`aho-corasick`). Decision: the role's action for each
//! matching rule's category (`block`, `warn`, `audit`, `allow`), except that a match at or above
//! `always_block_severity` blocks regardless. PII must block for every role (checked at load).
//! A block is answered 400 with the rule's reason, id and severity; logs carry the rule id only,
//! never the text.

pub mod eval;
pub mod normalize;
pub mod pattern;

pub use crate::config::filter::{Action, Category, Severity};
use crate::config::filter::{FilterConfig, Matcher};
pub use crate::config::screen::Mode;
use crate::config::{Problem, Role};
use crate::protocol::Text;
use crate::stages::classifier::Classifier;
use crate::stages::output::{OutputAction, OutputRules};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexBuilder};
use std::sync::Arc;

#[derive(Debug)]
pub struct Rule {
    pub id: String,
    pub category: Category,
    pub severity: Severity,
    pub reason: String,
    /// Shadow: matched, logged and counted as what it would have done, never acted on.
    pub mode: Mode,
    /// Its action for every role, instead of the policy's.
    pub action: Option<Action>,
}

/// The outcome for one request.
#[derive(Debug, Default)]
pub struct Verdict<'a> {
    /// The rule that blocks the request, if any (PII before topics before injections).
    pub blocked: Option<&'a Rule>,
    /// Rules matched and allowed with a warning.
    pub warned: Vec<&'a Rule>,
    /// Rules matched and allowed as an audited bypass.
    pub audited: Vec<&'a Rule>,
    /// Rules in shadow mode that matched, with what they would have done.
    pub shadowed: Vec<(&'a Rule, Action)>,
    /// The classifier's verdict, when it ran (configured, and no rule blocked).
    pub classifier: Option<Scored>,
}

/// The classifier's verdict on a request's texts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The highest score of the texts.
    pub score: f64,
    /// The role's threshold.
    pub threshold: f64,
    /// What the role's `injection` policy does with it: `None` below the threshold.
    pub action: Option<Action>,
    pub mode: Mode,
}

impl Scored {
    /// The action taken: none in shadow mode.
    pub fn enforced(&self) -> Option<Action> {
        self.action.filter(|_| self.mode == Mode::Enforce)
    }

    /// For logs and metrics: `pass` below the threshold, else the action.
    pub fn action_str(&self) -> &'static str {
        self.action.map_or("pass", Action::as_str)
    }
}

/// One expression of a regex rule, compiled on its own. Joined expressions are searched alone
/// only when their alternation matched, to name the rules: one search per rule that stops at its
/// first match (a `RegexSet` must scan the whole text with every rule's states alive at once,
/// which long rules with word gaps can make thousands of times slower on hostile text, words that
/// start many partial matches). The alternatives of a `patterns` list are never joined, for the
/// same reason, and are searched on every text.
#[derive(Debug)]
struct Search {
    regex: Regex,
    /// Index of its rule.
    rule: usize,
    /// Can only match a text with an ASCII digit.
    needs_digit: bool,
    /// From a `patterns` list: never joined.
    alone: bool,
}

/// The compiled filter.
#[derive(Debug)]
pub struct Filter {
    rules: Vec<Rule>,
    /// The regex rules as one alternation each for word rules and for number rules (those that
    /// can only match a digit; run only on texts with one): one forward scan that stops at the
    /// first match, so the common case (nothing matches) costs one search with no bookkeeping.
    any_words: Option<Regex>,
    any_numbers: Option<Regex>,
    /// Every regex rule's expressions, each on its own.
    searches: Vec<Search>,
    /// The `case_sensitive` rules' expressions (keywords as one alternation), as written, for
    /// text normalised with case kept; each searched on its own.
    cased: Vec<Search>,
    keywords: Option<AhoCorasick>,
    /// Rule index of each keyword in `keywords`.
    keyword_rule: Vec<usize>,
    /// `policy[role][category]`.
    policy: [[Action; 3]; 3],
    always_block: Option<Severity>,
    base64_min_len: usize,
    /// The injection classifier, run on the same normalised texts after the rules.
    pub classifier: Option<Classifier>,
    /// Per role ([`Role::index`]): the rules that check answers, with that role's actions;
    /// `None` when no rule checks that role's answers.
    pub output: [Option<Arc<OutputRules>>; 3],
    /// The request rules whose action is `redact`: the body's string values are rewritten
    /// before anything reads them.
    pub request_redact: Option<Arc<OutputRules>>,
}

const CATEGORIES: [Category; 3] = [Category::Pii, Category::Topic, Category::Injection];

impl Filter {
    /// Compiles the configured rules: patterns rewritten for normalised text (see [`pattern`])
    /// and joined per kind, keywords normalised into one automaton. The configuration was
    /// validated when it was loaded; what can still fail here (an alternation past the size
    /// limits, a keyword that normalises to nothing) is reported at its path.
    pub fn compile(cfg: &FilterConfig) -> Result<Filter, Vec<Problem>> {
        normalize::warm_confusables();
        let mut problems = Vec::new();
        let mut rules = Vec::with_capacity(cfg.rules.len());
        // (folded pattern, its rule, from a `patterns` list)
        let mut patterns = Vec::new();
        let mut keywords = Vec::new();
        let mut keyword_rule = Vec::new();
        // (pattern as written, its rule)
        let mut cased_patterns: Vec<(String, usize)> = Vec::new();
        for (index, r) in cfg.rules.iter().enumerate() {
            // Response-only rules keep their place (and id) but never match a request; nor do
            // redacting rules, which rewrite the request before it is read (`request_redact`).
            let matcher = if r.on_request && r.action != Some(Action::Redact) {
                Some(&r.matcher)
            } else {
                None
            };
            match matcher {
                None => {}
                Some(m) if r.case_sensitive => {
                    cased_patterns.extend(raw_patterns_of(m, false).into_iter().map(|p| (p, index)))
                }
                Some(Matcher::Regex {
                    patterns: sources,
                    alone,
                }) => {
                    for (at, p) in sources {
                        match pattern::fold(p) {
                            Ok(folded) => patterns.push((folded, index, *alone)),
                            Err(e) => problems.push(Problem::new(
                                at.clone(),
                                format!("invalid regular expression: {e}"),
                            )),
                        }
                    }
                }
                Some(Matcher::Keywords(list)) => {
                    for k in list {
                        let k = normalize::scan_texts(k, usize::MAX).remove(0);
                        if k.trim().is_empty() {
                            problems.push(Problem::new(
                                format!("{}.keywords", r.path),
                                "empty keyword",
                            ));
                        } else {
                            keywords.push(k);
                            keyword_rule.push(index);
                        }
                    }
                }
            }
            rules.push(Rule {
                id: r.id.clone(),
                category: r.category,
                severity: r.severity,
                reason: r.reason.clone(),
                mode: r.mode,
                action: r.action,
            });
        }
        // Folded patterns (see `pattern`) on folded text: case-sensitive, ASCII classes, which
        // keeps every pattern on the fast DFA engines with literal prefilters.
        let compile = |patterns: &[&str], problems: &mut Vec<Problem>| -> Option<Regex> {
            if patterns.is_empty() {
                return None;
            }
            let joined = patterns
                .iter()
                .map(|p| format!("(?:{p})"))
                .collect::<Vec<_>>()
                .join("|");
            match RegexBuilder::new(&joined)
                .unicode(false)
                .size_limit(64 << 20)
                .dfa_size_limit(16 << 20)
                .build()
            {
                Ok(r) => Some(r),
                Err(e) => {
                    problems.push(Problem::new("content_filter.rules", format!("{e}")));
                    None
                }
            }
        };
        let pick = |digits: bool| -> Vec<&str> {
            patterns
                .iter()
                .filter(|(f, _, alone)| f.needs_digit == digits && !*alone)
                .map(|(f, _, _)| f.pattern.as_str())
                .collect()
        };
        let any_words = compile(&pick(false), &mut problems);
        let any_numbers = compile(&pick(true), &mut problems);
        let searches: Vec<Search> = patterns
            .iter()
            .filter_map(|(f, rule, alone)| {
                compile(&[f.pattern.as_str()], &mut problems).map(|regex| Search {
                    regex,
                    rule: *rule,
                    needs_digit: f.needs_digit,
                    alone: *alone,
                })
            })
            .collect();
        let cased: Vec<Search> = cased_patterns
            .iter()
            .filter_map(|(p, rule)| {
                let built = RegexBuilder::new(p)
                    .unicode(false)
                    .size_limit(64 << 20)
                    .dfa_size_limit(16 << 20)
                    .build()
                    .map_err(|e| {
                        problems.push(Problem::new("content_filter.rules", format!("{e}")))
                    })
                    .ok()?;
                Some(Search {
                    regex: built,
                    rule: *rule,
                    needs_digit: pattern::fold(p).is_ok_and(|f| f.needs_digit),
                    alone: true,
                })
            })
            .collect();
        let keyword_matcher = if keywords.is_empty() {
            None
        } else {
            // Keywords are normalised like the text (lower-case), so matching is exact: no case
            // variants for the prefilter to carry.
            match AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&keywords)
            {
                Ok(ac) => Some(ac),
                Err(e) => {
                    problems.push(Problem::new("content_filter.rules", format!("{e}")));
                    None
                }
            }
        };
        let classifier = cfg
            .classifier
            .as_ref()
            .and_then(|c| Classifier::load(c).map_err(|p| problems.push(p)).ok());
        let request_redact = match redact_rules(cfg) {
            Ok(rules) => rules.map(Arc::new),
            Err(e) => {
                problems.push(Problem::new("content_filter.rules", e));
                None
            }
        };
        let output = Role::ALL.map(|role| match output_rules(cfg, role) {
            Ok(rules) => rules.map(Arc::new),
            Err(e) => {
                problems.push(Problem::new("content_filter.rules", e));
                None
            }
        });
        if !problems.is_empty() {
            return Err(problems);
        }
        let policy = Role::ALL.map(|role| CATEGORIES.map(|category| cfg.action(role, category)));
        Ok(Filter {
            rules,
            any_words,
            any_numbers,
            searches,
            cased,
            keywords: keyword_matcher,
            keyword_rule,
            policy,
            always_block: cfg.always_block,
            base64_min_len: cfg.base64_min_len,
            classifier,
            output,
            request_redact,
        })
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The rule ids, in configuration order.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// Each of `texts` as the filter reads it: normalised, followed by its decoded base64
    /// payloads (normalised too).
    pub fn normalize<'t>(&self, texts: impl IntoIterator<Item = &'t str>) -> Vec<String> {
        texts
            .into_iter()
            .flat_map(|t| normalize::scan_texts(t, self.base64_min_len))
            .collect()
    }

    /// Rule indexes matching any of `texts` (after normalisation), in rule order.
    pub fn matches<'t>(&self, texts: impl IntoIterator<Item = &'t str>) -> Vec<usize> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        let texts: Vec<&str> = texts.into_iter().collect();
        self.matches_normalized(&texts, &self.normalize(texts.iter().copied()))
    }

    /// Rule indexes matching any of `texts`, whose normalised forms ([`Filter::normalize`]) are
    /// `scans`, in rule order.
    pub fn matches_normalized(&self, texts: &[&str], scans: &[String]) -> Vec<usize> {
        let mut hit = vec![false; self.rules.len()];
        if self.rules.is_empty() {
            return Vec::new();
        }
        self.cased_hits(texts, &mut hit);
        for scan in scans {
            if !self.searches.is_empty() {
                let text = scan.as_bytes();
                // A branch-free pass the compiler vectorises, unlike a short-circuiting `any`.
                let digits = text.iter().fold(false, |d, b| d | b.is_ascii_digit());
                let words = self.any_words.as_ref().is_some_and(|r| r.is_match(text));
                let numbers = digits && self.any_numbers.as_ref().is_some_and(|r| r.is_match(text));
                for s in &self.searches {
                    let run = if s.alone {
                        digits || !s.needs_digit
                    } else if s.needs_digit {
                        numbers
                    } else {
                        words
                    };
                    if run && !hit[s.rule] && s.regex.is_match(text) {
                        hit[s.rule] = true;
                    }
                }
            }
            if let Some(ac) = &self.keywords {
                if ac.is_match(scan) {
                    for m in ac.find_overlapping_iter(scan) {
                        hit[self.keyword_rule[m.pattern().as_usize()]] = true;
                    }
                }
            }
        }
        hit.iter()
            .enumerate()
            .filter_map(|(i, h)| h.then_some(i))
            .collect()
    }

    /// Marks the case-sensitive rules matching any of `texts`, each normalised with case kept.
    fn cased_hits(&self, texts: &[&str], hit: &mut [bool]) {
        if self.cased.is_empty() {
            return;
        }
        for t in texts {
            let text = normalize::cased_text(t, self.base64_min_len);
            let text = text.as_bytes();
            let digits = text.iter().fold(false, |d, b| d | b.is_ascii_digit());
            for s in &self.cased {
                if (digits || !s.needs_digit) && !hit[s.rule] && s.regex.is_match(text) {
                    hit[s.rule] = true;
                }
            }
        }
    }

    /// The decision for a request's texts (every text the model will read, in the order it
    /// reads them). Each text is scanned on its own, and so is the text around every seam
    /// between two consecutive texts — [`SEAM`] characters of the joined text on each side,
    /// windows that overlap merged — so a phrase split over two parts of a message, or over two
    /// messages, is seen whole, while a long conversation is not scanned twice.
    ///
    /// When no rule blocks, the classifier (if configured) scores the same normalised texts
    /// (not the seam windows: its own windows cover a long text, and two texts joined are not
    /// one the model reads): the highest score, against the role's threshold, takes the role's
    /// `injection` action.
    pub fn check_request(&self, texts: &[Text<'_>], role: Role) -> Verdict<'_> {
        if self.rules.is_empty() && self.classifier.is_none() {
            return Verdict::default();
        }
        let mut scans = self.normalize(texts.iter().map(|t| &*t.text));
        let own = scans.len();
        let seams = if self.rules.is_empty() {
            Vec::new()
        } else {
            seam_windows(texts, SEAM)
        };
        scans.extend(self.normalize(seams.iter().map(String::as_str)));
        // The texts as written, for the case-sensitive rules only.
        let raw: Vec<&str> = if self.cased.is_empty() {
            Vec::new()
        } else {
            let seams = seams.iter().map(String::as_str);
            texts.iter().map(|t| &*t.text).chain(seams).collect()
        };
        let mut verdict = self.decide(self.matches_normalized(&raw, &scans), role);
        if verdict.blocked.is_none() {
            verdict.classifier = self.classify(scans[..own].iter().map(String::as_str), role);
        }
        verdict
    }

    /// The classifier's verdict on normalised `scans` for `role`; `None` without a classifier.
    pub fn classify<'t>(
        &self,
        scans: impl IntoIterator<Item = &'t str>,
        role: Role,
    ) -> Option<Scored> {
        let c = self.classifier.as_ref()?;
        let score = c.score(scans);
        let threshold = c.threshold(role);
        Some(Scored {
            score,
            threshold,
            action: (score >= threshold)
                .then(|| self.policy[role.index()][Category::Injection.index()]),
            mode: c.mode,
        })
    }

    /// The rules' decision for `texts` sent by a consumer of `role`.
    pub fn check<'t>(&self, texts: impl IntoIterator<Item = &'t str>, role: Role) -> Verdict<'_> {
        self.decide(self.matches(texts), role)
    }

    fn decide(&self, hits: Vec<usize>, role: Role) -> Verdict<'_> {
        let mut verdict = Verdict::default();
        let mut hits: Vec<&Rule> = hits.into_iter().map(|i| &self.rules[i]).collect();
        hits.sort_by_key(|r| r.category);
        for rule in hits {
            let mut action = rule
                .action
                .unwrap_or(self.policy[role.index()][rule.category.index()]);
            if self.always_block.is_some_and(|s| rule.severity >= s) {
                action = Action::Block;
            }
            if rule.mode == Mode::Shadow {
                verdict.shadowed.push((rule, action));
                continue;
            }
            match action {
                // Request rules never redact (checked at load); were one to, the safe reading.
                Action::Block | Action::Redact => {
                    if verdict.blocked.is_none() {
                        verdict.blocked = Some(rule);
                    }
                }
                Action::Warn => verdict.warned.push(rule),
                Action::Audit => verdict.audited.push(rule),
                Action::Allow => {}
            }
        }
        verdict
    }
}

/// A matcher's expressions as written, or its keywords as one alternation (in any case when
/// `keywords_any_case`, as answers and request bodies are matched).
fn raw_patterns_of(matcher: &Matcher, keywords_any_case: bool) -> Vec<String> {
    match matcher {
        Matcher::Regex { patterns, .. } => patterns.iter().map(|(_, p)| p.clone()).collect(),
        Matcher::Keywords(list) => {
            let joined = list
                .iter()
                .map(|k| regex::escape(k))
                .collect::<Vec<_>>()
                .join("|");
            vec![if keywords_any_case {
                format!("(?i:{joined})")
            } else {
                format!("(?:{joined})")
            }]
        }
    }
}

/// The request rules that redact; `None` when there are none.
fn redact_rules(cfg: &FilterConfig) -> Result<Option<OutputRules>, String> {
    let specs: Vec<_> = cfg
        .rules
        .iter()
        .filter(|r| r.on_request && r.action == Some(Action::Redact))
        .flat_map(|r| {
            raw_patterns_of(&r.matcher, true)
                .into_iter()
                .map(|p| (r.id.clone(), p, OutputAction::Redact, r.mode))
        })
        .collect();
    if specs.is_empty() {
        return Ok(None);
    }
    // A request body is whole: nothing is held back, whatever the longest match.
    OutputRules::new(&specs, usize::MAX).map(Some)
}

/// The rules that check `role`'s answers, each with its action for that role (its own, else the
/// policy's for its category, which a severity at or above `always_block_severity` makes
/// `block`); rules whose action is `allow` are left out. `None` when none is left.
fn output_rules(cfg: &FilterConfig, role: Role) -> Result<Option<OutputRules>, String> {
    let mut specs = Vec::new();
    for r in cfg.rules.iter().filter(|r| r.on_response) {
        let action = r.action.unwrap_or_else(|| {
            if cfg.always_block.is_some_and(|s| r.severity >= s) {
                Action::Block
            } else {
                cfg.action(role, r.category)
            }
        });
        let action = match action {
            Action::Block => OutputAction::Block,
            Action::Redact => OutputAction::Redact,
            Action::Warn => OutputAction::Warn,
            Action::Audit => OutputAction::Audit,
            Action::Allow => continue,
        };
        for p in raw_patterns_of(&r.matcher, true) {
            specs.push((r.id.clone(), p, action, r.mode));
        }
    }
    if specs.is_empty() {
        return Ok(None);
    }
    OutputRules::new(&specs, cfg.max_hold_back).map(Some)
}

/// Characters of the joined text scanned on each side of a seam between two texts: more than
/// any phrase the rules look for, bounded so a long conversation is not scanned twice.
pub const SEAM: usize = 256;

/// The joined text (texts separated by a space) around each seam, `width` characters on each
/// side, overlapping windows merged into one.
fn seam_windows(texts: &[Text<'_>], width: usize) -> Vec<String> {
    if texts.len() < 2 {
        return Vec::new();
    }
    let mut joined = String::new();
    let mut seams = Vec::with_capacity(texts.len() - 1);
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            seams.push(joined.len());
            joined.push(' ');
        }
        joined.push_str(&t.text);
    }
    let mut windows: Vec<(usize, usize)> = Vec::new();
    for seam in seams {
        let start = joined[..seam]
            .char_indices()
            .rev()
            .nth(width.saturating_sub(1))
            .map_or(0, |(i, _)| i);
        let end = joined[seam..]
            .char_indices()
            .nth(width + 1)
            .map_or(joined.len(), |(i, _)| seam + i);
        match windows.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => windows.push((start, end)),
        }
    }
    windows
        .into_iter()
        .map(|(a, b)| joined[a..b].to_string())
        .collect()
}

#[cfg(test)]
mod tests;
