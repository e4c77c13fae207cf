//! The content filter as configured: rules, role policy and options, validated with every
//! problem at its YAML path (categories, severities and actions known, one matcher per rule,
//! regular expressions that parse, unique ids, PII blocking every role). The matcher the request
//! path runs is compiled from this by `stages::filter`; nothing here matches text.

use super::file::{FilterSection, RuleSection};
use super::screen::{self, ClassifierConfig, GuardrailConfig, Mode};
use super::types::Role;
use super::Problem;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    Pii,
    Topic,
    Injection,
}

impl Category {
    fn parse(s: &str) -> Option<Category> {
        Some(match s {
            "pii" => Category::Pii,
            "topic" => Category::Topic,
            "injection" => Category::Injection,
            _ => return None,
        })
    }

    /// Its place in per-category tables.
    pub fn index(self) -> usize {
        match self {
            Category::Pii => 0,
            Category::Topic => 1,
            Category::Injection => 2,
        }
    }
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
    /// The matched text is replaced by `[REDACTED:<rule>]` (response rules).
    Redact,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Warn => "warn",
            Action::Audit => "audit",
            Action::Allow => "allow",
            Action::Redact => "redact",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "block" => Action::Block,
            "warn" => Action::Warn,
            "audit" => Action::Audit,
            "allow" => Action::Allow,
            "redact" => Action::Redact,
            _ => return None,
        })
    }
}

/// How a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Regular expressions with the YAML path of each: one `pattern` (joined with the other
    /// rules' into one alternation), or a `patterns` list (each searched on its own).
    Regex {
        patterns: Vec<(String, String)>,
        alone: bool,
    },
    /// Literal keywords, any one of which matches.
    Keywords(Vec<String>),
}

/// One rule.
#[derive(Debug, Clone)]
pub struct FilterRule {
    pub id: String,
    pub category: Category,
    pub severity: Severity,
    pub reason: String,
    pub matcher: Matcher,
    /// Its YAML path, for problems found when it is compiled.
    pub path: String,
    /// Shadow: matched, logged and counted, never acted on.
    pub mode: Mode,
    /// Checks requests (every text the model will read).
    pub on_request: bool,
    /// Checks answers (streamed or not).
    pub on_response: bool,
    /// The action for every role, instead of the policy's for its category.
    pub action: Option<Action>,
    /// Requests are matched with case kept.
    pub case_sensitive: bool,
}

/// The validated content-filter configuration.
#[derive(Debug, Clone)]
pub struct FilterConfig {
    pub rules: Vec<FilterRule>,
    /// `policy[role][category]`.
    policy: [[Action; 3]; 3],
    /// A match at or above this severity blocks whatever the role's action.
    pub always_block: Option<Severity>,
    /// Base64 runs at least this long are decoded and scanned too.
    pub base64_min_len: usize,
    /// The most bytes of a streamed answer held back for the response rules.
    pub max_hold_back: usize,
    /// The injection classifier, after the rules.
    pub classifier: Option<ClassifierConfig>,
    /// The external guardrail, after the classifier.
    pub guardrail: Option<GuardrailConfig>,
}

/// The seed's policy, used when the configuration gives none: PII binds everyone; elevated and
/// admin consumers are warned on (non-critical) topics; admin may send injection patterns, audited.
const DEFAULT_POLICY: [[Action; 3]; 3] = [
    [Action::Block, Action::Block, Action::Block],
    [Action::Block, Action::Warn, Action::Block],
    [Action::Block, Action::Warn, Action::Audit],
];

impl Default for FilterConfig {
    /// No rules: everything passes.
    fn default() -> Self {
        FilterConfig {
            rules: Vec::new(),
            policy: DEFAULT_POLICY,
            always_block: Some(Severity::Critical),
            base64_min_len: 24,
            max_hold_back: 256,
            classifier: None,
            guardrail: None,
        }
    }
}

impl FilterConfig {
    /// What `role` does with a match of `category` (before `always_block`).
    pub fn action(&self, role: Role, category: Category) -> Action {
        self.policy[role.index()][category.index()]
    }
}

/// Validates `content_filter` (its section and its rules, each with its index in the file).
pub fn build(
    section: &FilterSection,
    rules: &[(usize, RuleSection)],
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<FilterConfig> {
    let before = problems.len();
    let mut ids = BTreeMap::new();
    let mut built = Vec::new();
    for (i, r) in rules {
        let path = format!("content_filter.rules[{i}]");
        if let Some(first) = ids.insert(r.id.clone(), *i) {
            problems.push(Problem::new(
                format!("{path}.id"),
                format!("`{}` is also content_filter.rules[{first}]", r.id),
            ));
        }
        if let Some(rule) = build_rule(r, path, problems) {
            built.push(rule);
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
    let mut classifier = screen::classifier(section.classifier.as_ref(), problems);
    let mut guardrail = screen::guardrail(section.guardrail.as_ref(), env, problems);
    // The whole filter in shadow mode: every rule and stage is.
    if screen::mode(&section.mode, "content_filter.mode".into(), problems) == Mode::Shadow {
        built.iter_mut().for_each(|r| r.mode = Mode::Shadow);
        classifier.iter_mut().for_each(|c| c.mode = Mode::Shadow);
        guardrail.iter_mut().for_each(|g| g.mode = Mode::Shadow);
    }
    (problems.len() == before).then_some(FilterConfig {
        rules: built,
        policy,
        always_block,
        base64_min_len: section.base64_min_len,
        max_hold_back: section.max_hold_back_bytes,
        classifier,
        guardrail,
    })
}

fn build_rule(r: &RuleSection, path: String, problems: &mut Vec<Problem>) -> Option<FilterRule> {
    let category = Category::parse(&r.category).or_else(|| {
        problems.push(Problem::new(
            format!("{path}.category"),
            format!("`{}` is not one of pii, topic, injection", r.category),
        ));
        None
    });
    let severity = Severity::parse(&r.severity).or_else(|| {
        problems.push(Problem::new(
            format!("{path}.severity"),
            format!("`{}` is not one of low, medium, high, critical", r.severity),
        ));
        None
    });
    let kinds = [
        r.pattern.is_some(),
        !r.patterns.is_empty(),
        !r.keywords.is_empty(),
    ];
    let matcher = if kinds.iter().filter(|k| **k).count() != 1 {
        problems.push(Problem::new(
            path.clone(),
            "set exactly one of `pattern`, `patterns` and `keywords`",
        ));
        None
    } else if !r.keywords.is_empty() {
        Some(Matcher::Keywords(r.keywords.clone()))
    } else {
        // The alternatives of `patterns` are searched one by one, never joined.
        let patterns: Vec<(String, String)> = match &r.pattern {
            Some(p) => vec![(format!("{path}.pattern"), p.clone())],
            None => r
                .patterns
                .iter()
                .enumerate()
                .map(|(j, p)| (format!("{path}.patterns[{j}]"), p.clone()))
                .collect(),
        };
        let before = problems.len();
        for (at, p) in &patterns {
            // Compiled alone, as written, so a bad pattern is reported at its own path.
            if let Err(e) = regex::bytes::RegexBuilder::new(p)
                .case_insensitive(!r.case_sensitive)
                .unicode(false)
                .build()
            {
                problems.push(Problem::new(
                    at.clone(),
                    format!("invalid regular expression: {e}"),
                ));
            }
        }
        (problems.len() == before).then_some(Matcher::Regex {
            patterns,
            alone: r.pattern.is_none(),
        })
    };
    let mode = screen::mode(&r.mode, format!("{path}.mode"), problems);
    let (mut on_request, mut on_response) = (r.applies_to.is_empty(), false);
    for (j, side) in r.applies_to.iter().enumerate() {
        match side.as_str() {
            "request" => on_request = true,
            "response" => on_response = true,
            other => problems.push(Problem::new(
                format!("{path}.applies_to[{j}]"),
                format!("`{other}` is not one of request, response"),
            )),
        }
    }
    let action = r.action.as_deref().and_then(|a| {
        let parsed = Action::parse(a);
        match parsed {
            None => problems.push(Problem::new(
                format!("{path}.action"),
                format!("`{a}` is not one of block, warn, audit, allow, redact"),
            )),
            // Redacted, PII does not reach the provider either.
            Some(Action::Block | Action::Redact) => {}
            Some(_) if on_request && category == Some(Category::Pii) => {
                problems.push(Problem::new(
                    format!("{path}.action"),
                    "PII rules bind every role on requests: the action must be block or redact",
                ))
            }
            Some(_) => {}
        }
        parsed
    });
    Some(FilterRule {
        id: r.id.clone(),
        category: category?,
        severity: severity?,
        reason: r.reason.clone(),
        matcher: matcher?,
        path,
        mode,
        on_request,
        on_response,
        action,
        case_sensitive: r.case_sensitive,
    })
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
        let Some(r) = Role::parse(role).map(Role::index) else {
            problems.push(Problem::new(
                format!("content_filter.policy.{role}"),
                "roles are standard, elevated, admin",
            ));
            continue;
        };
        for (cat, action) in cats {
            let path = format!("content_filter.policy.{role}.{cat}");
            let Some(c) = Category::parse(cat).map(Category::index) else {
                problems.push(Problem::new(path, "categories are pii, topic, injection"));
                continue;
            };
            match Action::parse(action) {
                Some(Action::Block) => policy[r][c] = Action::Block,
                Some(Action::Redact) => problems.push(Problem::new(
                    path,
                    "`redact` is a rule's `action`, not a role policy",
                )),
                Some(_) if c == Category::Pii.index() => problems.push(Problem::new(
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
