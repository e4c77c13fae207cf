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

use crate::config::file::{FilterSection, RuleSection};
use crate::config::{Problem, Role};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexBuilder};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    Pii,
    Topic,
    Injection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// What a role's policy does with a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Block,
    /// Allowed, reported to the client and logged.
    Warn,
    /// Allowed, logged as an audited bypass (the security team testing injections).
    Audit,
    Allow,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "block" => Action::Block,
            "warn" => Action::Warn,
            "audit" => Action::Audit,
            "allow" => Action::Allow,
            _ => return None,
        })
    }
}

#[derive(Debug)]
pub struct Rule {
    pub id: String,
    pub category: Category,
    pub severity: Severity,
    pub reason: String,
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
    keywords: Option<AhoCorasick>,
    /// Rule index of each keyword in `keywords`.
    keyword_rule: Vec<usize>,
    /// `policy[role][category]`.
    policy: [[Action; 3]; 3],
    always_block: Option<Severity>,
    base64_min_len: usize,
}

fn role_index(r: Role) -> usize {
    match r {
        Role::Standard => 0,
        Role::Elevated => 1,
        Role::Admin => 2,
    }
}

fn category_index(c: Category) -> usize {
    match c {
        Category::Pii => 0,
        Category::Topic => 1,
        Category::Injection => 2,
    }
}

/// The seed's policy, used when the configuration gives none: PII binds everyone; elevated and
/// admin consumers are warned on (non-critical) topics; admin may send injection patterns, audited.
const DEFAULT_POLICY: [[Action; 3]; 3] = [
    [Action::Block, Action::Block, Action::Block],
    [Action::Block, Action::Warn, Action::Block],
    [Action::Block, Action::Warn, Action::Audit],
];

impl Filter {
    /// A filter with no rules: everything passes.
    pub fn empty() -> Filter {
        Filter {
            rules: Vec::new(),
            any_words: None,
            any_numbers: None,
            searches: Vec::new(),
            keywords: None,
            keyword_rule: Vec::new(),
            policy: DEFAULT_POLICY,
            always_block: Some(Severity::Critical),
            base64_min_len: 24,
        }
    }

    /// Compiles the configured rules and policy, reporting every problem.
    pub fn build(
        section: &FilterSection,
        rules: &[(usize, RuleSection)],
        problems: &mut Vec<Problem>,
    ) -> Option<Filter> {
        let before = problems.len();
        let mut compiled = Vec::new();
        // (folded pattern, its rule, from a `patterns` list)
        let mut patterns = Vec::new();
        let mut keywords = Vec::new();
        let mut keyword_rule = Vec::new();
        let mut ids = BTreeMap::new();
        for (i, r) in rules {
            let path = format!("content_filter.rules[{i}]");
            if let Some(first) = ids.insert(r.id.clone(), *i) {
                problems.push(Problem::new(
                    format!("{path}.id"),
                    format!("`{}` is also content_filter.rules[{first}]", r.id),
                ));
            }
            let category = match r.category.as_str() {
                "pii" => Some(Category::Pii),
                "topic" => Some(Category::Topic),
                "injection" => Some(Category::Injection),
                other => {
                    problems.push(Problem::new(
                        format!("{path}.category"),
                        format!("`{other}` is not one of pii, topic, injection"),
                    ));
                    None
                }
            };
            let severity = Severity::parse(&r.severity).or_else(|| {
                problems.push(Problem::new(
                    format!("{path}.severity"),
                    format!("`{}` is not one of low, medium, high, critical", r.severity),
                ));
                None
            });
            // The alternatives of `patterns` are searched one by one, never joined.
            let alone = !r.patterns.is_empty();
            let regex_sources: Vec<(String, &String)> = match &r.pattern {
                Some(p) => vec![(format!("{path}.pattern"), p)],
                None => r
                    .patterns
                    .iter()
                    .enumerate()
                    .map(|(j, p)| (format!("{path}.patterns[{j}]"), p))
                    .collect(),
            };
            let kinds = [
                r.pattern.is_some(),
                !r.patterns.is_empty(),
                !r.keywords.is_empty(),
            ];
            match (
                kinds.iter().filter(|k| **k).count(),
                regex_sources.is_empty(),
            ) {
                (n, _) if n != 1 => problems.push(Problem::new(
                    path.clone(),
                    "set exactly one of `pattern`, `patterns` and `keywords`",
                )),
                (_, false) => {
                    for (at, p) in regex_sources {
                        // Compile alone first so a bad pattern is reported at its own path.
                        let checked = regex::bytes::RegexBuilder::new(p)
                            .case_insensitive(true)
                            .unicode(false)
                            .build()
                            .map_err(|e| e.to_string())
                            .and_then(|_| pattern::fold(p));
                        match checked {
                            Ok(folded) => patterns.push((folded, compiled.len(), alone)),
                            Err(e) => problems
                                .push(Problem::new(at, format!("invalid regular expression: {e}"))),
                        }
                    }
                }
                (_, true) => {
                    for k in &r.keywords {
                        let k = normalize::scan_texts(k, usize::MAX).remove(0);
                        if k.trim().is_empty() {
                            problems
                                .push(Problem::new(format!("{path}.keywords"), "empty keyword"));
                        } else {
                            keywords.push(k);
                            keyword_rule.push(compiled.len());
                        }
                    }
                }
            }
            if let (Some(category), Some(severity)) = (category, severity) {
                compiled.push(Rule {
                    id: r.id.clone(),
                    category,
                    severity,
                    reason: r.reason.clone(),
                });
            } else {
                // Keep indexes aligned: a rule that failed still occupies its slot.
                compiled.push(Rule {
                    id: r.id.clone(),
                    category: Category::Injection,
                    severity: Severity::Low,
                    reason: String::new(),
                });
            }
        }
        let policy = build_policy(&section.policy, problems);
        let always_block = match section.always_block_severity.as_str() {
            "never" => None,
            s => Severity::parse(s).or_else(|| {
                problems.push(Problem::new(
                    "content_filter.always_block_severity",
                    format!("`{s}` is not one of low, medium, high, critical, never"),
                ));
                None
            }),
        };
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
        let any_words = compile(&pick(false), problems);
        let any_numbers = compile(&pick(true), problems);
        let searches: Vec<Search> = patterns
            .iter()
            .filter_map(|(f, rule, alone)| {
                compile(&[f.pattern.as_str()], problems).map(|regex| Search {
                    regex,
                    rule: *rule,
                    needs_digit: f.needs_digit,
                    alone: *alone,
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
        if problems.len() != before {
            return None;
        }
        Some(Filter {
            rules: compiled,
            any_words,
            any_numbers,
            searches,
            keywords: keyword_matcher,
            keyword_rule,
            policy,
            always_block,
            base64_min_len: section.base64_min_len,
        })
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The rule ids, in configuration order.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// Rule indexes matching any of `texts` (after normalisation), in rule order.
    pub fn matches<'t>(&self, texts: impl IntoIterator<Item = &'t str>) -> Vec<usize> {
        let mut hit = vec![false; self.rules.len()];
        if self.rules.is_empty() {
            return Vec::new();
        }
        for text in texts {
            for scan in normalize::scan_texts(text, self.base64_min_len) {
                if !self.searches.is_empty() {
                    let text = scan.as_bytes();
                    // A branch-free pass the compiler vectorises, unlike a short-circuiting `any`.
                    let digits = text.iter().fold(false, |d, b| d | b.is_ascii_digit());
                    let words = self.any_words.as_ref().is_some_and(|r| r.is_match(text));
                    let numbers =
                        digits && self.any_numbers.as_ref().is_some_and(|r| r.is_match(text));
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
                    if ac.is_match(&scan) {
                        for m in ac.find_overlapping_iter(&scan) {
                            hit[self.keyword_rule[m.pattern().as_usize()]] = true;
                        }
                    }
                }
            }
        }
        hit.iter()
            .enumerate()
            .filter_map(|(i, h)| h.then_some(i))
            .collect()
    }

    /// The decision for `texts` sent by a consumer of `role`.
    pub fn check<'t>(&self, texts: impl IntoIterator<Item = &'t str>, role: Role) -> Verdict<'_> {
        let mut verdict = Verdict::default();
        let mut hits: Vec<&Rule> = self
            .matches(texts)
            .into_iter()
            .map(|i| &self.rules[i])
            .collect();
        hits.sort_by_key(|r| r.category);
        for rule in hits {
            let mut action = self.policy[role_index(role)][category_index(rule.category)];
            if self.always_block.is_some_and(|s| rule.severity >= s) {
                action = Action::Block;
            }
            match action {
                Action::Block => {
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

fn build_policy(
    raw: &BTreeMap<String, BTreeMap<String, String>>,
    problems: &mut Vec<Problem>,
) -> [[Action; 3]; 3] {
    if raw.is_empty() {
        return DEFAULT_POLICY;
    }
    let mut policy = [[Action::Block; 3]; 3];
    for (role, cats) in raw {
        let r = match role.as_str() {
            "standard" => 0,
            "elevated" => 1,
            "admin" => 2,
            other => {
                problems.push(Problem::new(
                    format!("content_filter.policy.{other}"),
                    "roles are standard, elevated, admin",
                ));
                continue;
            }
        };
        for (cat, action) in cats {
            let path = format!("content_filter.policy.{role}.{cat}");
            let c = match cat.as_str() {
                "pii" => 0,
                "topic" => 1,
                "injection" => 2,
                _ => {
                    problems.push(Problem::new(path, "categories are pii, topic, injection"));
                    continue;
                }
            };
            match Action::parse(action) {
                Some(Action::Block) => policy[r][c] = Action::Block,
                Some(_) if c == 0 => problems.push(Problem::new(
                    path,
                    "PII rules bind every role: the action must be block",
                )),
                Some(a) => policy[r][c] = a,
                None => problems.push(Problem::new(
                    path,
                    format!("`{action}` is not one of block, warn, audit, allow"),
                )),
            }
        }
    }
    policy
}

#[cfg(test)]
mod tests;
