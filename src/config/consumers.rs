//! Consumers: each `consumers:` item turned into its runtime form ([`Consumer`]), with every
//! problem at its YAML path, and the check that no key is listed twice.
//!
//! The value-tree pass hands [`super::build`] all the sections at once. The typed parse instead
//! reads the list into [`BuiltConsumers`], which builds each consumer as soon as its section is
//! read and drops the section: 100,000 sections are never held together, and what they leave
//! behind is the consumers themselves, allocated one after another. It gives up (and the
//! value-tree pass then names the problems) at the first consumer with a problem or a key
//! already listed.

use super::build::{check_id, utc_seconds, valid_id};
use super::file::ConsumerSection;
use super::money::parse_usd;
use super::types::{CertBinding, Consumer, ConsumerKey, Role};
use super::Problem;
use crate::digest::KeyDigest;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The `consumers:` list as the build receives it.
#[derive(Debug)]
pub enum Consumers {
    /// Sections read by the value-tree pass, with their positions (items that failed to parse
    /// are left out).
    Sections(Vec<(usize, ConsumerSection)>),
    /// Consumers the typed parse built as it read them, none with a problem.
    Built(BuiltConsumers),
}

impl From<Vec<ConsumerSection>> for Consumers {
    fn from(sections: Vec<ConsumerSection>) -> Self {
        Consumers::Sections(sections.into_iter().enumerate().collect())
    }
}

impl From<BuiltConsumers> for Consumers {
    fn from(built: BuiltConsumers) -> Self {
        Consumers::Built(built)
    }
}

/// Consumers built while the list was read, and every key digest listed (disabled keys
/// included) with its consumer's position.
#[derive(Debug, Default)]
pub struct BuiltConsumers {
    pub consumers: Vec<Arc<Consumer>>,
    pub digests: HashMap<KeyDigest, usize>,
}

impl<'de> Deserialize<'de> for BuiltConsumers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(Builder)
    }
}

struct Builder;

impl<'de> Visitor<'de> for Builder {
    type Value = BuiltConsumers;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of consumers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<BuiltConsumers, A::Error> {
        let mut out = BuiltConsumers::default();
        let mut problems = Vec::new();
        while let Some(section) = items.next_element::<ConsumerSection>()? {
            let i = out.consumers.len();
            let consumer = build_consumer(&section, i, &mut problems);
            for (_, hex) in listed_keys(&section) {
                if let Some(d) = KeyDigest::from_hex(hex) {
                    if out.digests.insert(d, i).is_some() {
                        problems.push(Problem::new("", "a key listed twice"));
                    }
                }
            }
            match consumer {
                Some(c) if problems.is_empty() => out.consumers.push(Arc::new(c)),
                _ => return Err(de::Error::custom("a consumer with a problem")),
            }
        }
        Ok(out)
    }
}

/// A consumer's listed keys, each with where it is (`None`: `key_sha256`, else its place in
/// `keys`), disabled ones included.
fn listed_keys(c: &ConsumerSection) -> impl Iterator<Item = (Option<usize>, &str)> {
    let listed = c
        .keys
        .iter()
        .enumerate()
        .map(|(k, e)| (Some(k), e.sha256.as_str()));
    c.key_sha256
        .as_deref()
        .map(|h| (None, h))
        .into_iter()
        .chain(listed)
}

/// Every listed key digest with its consumer's position; a key listed twice (by one consumer or
/// two) is a problem.
pub(super) fn key_digests(
    sections: &[(usize, ConsumerSection)],
    problems: &mut Vec<Problem>,
) -> HashMap<KeyDigest, usize> {
    let mut digests: HashMap<KeyDigest, usize> = HashMap::with_capacity(sections.len());
    for (i, c) in sections {
        for (at, hex) in listed_keys(c) {
            let Some(d) = KeyDigest::from_hex(hex) else {
                continue;
            };
            // The path is written only for a problem.
            let path = || match at {
                None => format!("consumers[{i}].key_sha256"),
                Some(k) => format!("consumers[{i}].keys[{k}].sha256"),
            };
            match digests.insert(d, *i) {
                Some(first) if first == *i => problems.push(Problem::new(
                    path(),
                    "the same key twice; list each key once",
                )),
                Some(first) => problems.push(Problem::new(
                    path(),
                    format!("the same key as consumers[{first}]; every consumer needs its own key"),
                )),
                None => {}
            }
        }
    }
    digests
}

/// `consumers[i]`, or `None` with its problems. Paths are written only for a problem: a file
/// may hold 100,000 consumers.
pub(super) fn build_consumer(
    c: &ConsumerSection,
    i: usize,
    problems: &mut Vec<Problem>,
) -> Option<Consumer> {
    let before = problems.len();
    let at = |field: &str| format!("consumers[{i}]{field}");
    if !valid_id(&c.id) {
        check_id(&c.id, &at(".id"), problems);
    }
    let role = Role::parse(&c.role).or_else(|| {
        problems.push(Problem::new(
            at(".role"),
            format!("`{}` is not one of standard, elevated, admin", c.role),
        ));
        None
    });
    let keys = consumer_keys(c, i, problems);
    let client_cert =
        c.client_cert
            .as_ref()
            .and_then(|cc| match (cc.subject.as_deref(), cc.uri.as_deref()) {
                (Some(s), None) if !s.trim().is_empty() => {
                    Some(Box::new(CertBinding::Subject(s.to_string())))
                }
                (None, Some(u)) if !u.trim().is_empty() => {
                    Some(Box::new(CertBinding::Uri(u.to_string())))
                }
                _ => {
                    problems.push(Problem::new(
                        at(".client_cert"),
                        "set exactly one of `subject` and `uri`, not empty",
                    ));
                    None
                }
            });
    if c.key_sha256.is_none() && c.keys.is_empty() && c.client_cert.is_none() {
        problems.push(Problem::new(
            at(".key_sha256"),
            "required unless `keys` lists the consumer's keys or client_cert identifies it",
        ));
    }
    let budget = parse_usd(&c.daily_budget_usd)
        .map_err(|e| problems.push(Problem::new(at(".daily_budget_usd"), e)))
        .ok();
    let monthly = match &c.monthly_budget_usd {
        None => None,
        v => super::budgets::optional_usd(v, &at(".monthly_budget_usd"), problems),
    };
    let requests_per_minute = match c.requests_per_minute {
        Some(0) => super::budgets::per_minute(Some(0), &at(".requests_per_minute"), problems),
        v => v,
    };
    for (name, v) in [
        ("tokens_per_minute", c.tokens_per_minute),
        ("tokens_per_hour", c.tokens_per_hour),
        ("tokens_per_day", c.tokens_per_day),
    ] {
        if v == 0 {
            problems.push(Problem::new(
                at(&format!(".{name}")),
                "must be greater than 0",
            ));
        }
    }
    if c.tokens_per_minute > c.tokens_per_hour || c.tokens_per_hour > c.tokens_per_day {
        problems.push(Problem::new(
            at(""),
            "token limits must satisfy tokens_per_minute ≤ tokens_per_hour ≤ tokens_per_day",
        ));
    }
    for (k, m) in c.allowed_models.iter().enumerate() {
        if m.trim().is_empty() {
            problems.push(Problem::new(
                at(&format!(".allowed_models[{k}]")),
                "must not be empty",
            ));
        }
    }
    let allowed_ips = match c.allowed_ips.is_empty() {
        true => super::cidr::CidrSet::default(),
        false => super::cidr::parse_list(&c.allowed_ips, &at(".allowed_ips"), problems),
    };
    if problems.len() != before {
        return None;
    }
    Some(Consumer {
        id: c.id.clone(),
        team: c.team.clone(),
        role: role?,
        keys,
        daily_budget_micros: budget?,
        monthly_budget_micros: monthly,
        requests_per_minute,
        team_limits: None,
        allowed_models: c.allowed_models.clone(),
        allowed_ips,
        client_cert,
        tokens_per_minute: c.tokens_per_minute,
        tokens_per_hour: c.tokens_per_hour,
        tokens_per_day: c.tokens_per_day,
    })
}

/// A consumer's keys: `key_sha256`, then the enabled entries of `keys` with their expiry (a bad
/// one is a problem, and the caller then builds no consumer).
fn consumer_keys(c: &ConsumerSection, i: usize, problems: &mut Vec<Problem>) -> Vec<ConsumerKey> {
    let mut out = Vec::with_capacity(usize::from(c.key_sha256.is_some()) + c.keys.len());
    let digest = |hex: &str, at: &dyn Fn() -> String, problems: &mut Vec<Problem>| {
        let d = KeyDigest::from_hex(hex);
        if d.is_none() {
            problems.push(Problem::new(
                at(),
                "must be 64 hexadecimal characters (see `tollgate hash-key`)",
            ));
        }
        d
    };
    if let Some(hex) = c.key_sha256.as_deref() {
        let at = || format!("consumers[{i}].key_sha256");
        if let Some(d) = digest(hex, &at, problems) {
            out.push(ConsumerKey {
                digest: d,
                expires: None,
                label: None,
            });
        }
    }
    for (k, e) in c.keys.iter().enumerate() {
        let at = format!("consumers[{i}].keys[{k}]");
        let d = digest(&e.sha256, &|| format!("{at}.sha256"), problems);
        let expires = match e.expires.as_deref() {
            None => None,
            Some(text) => match utc_seconds(text) {
                Some(t) => Some(t),
                None => {
                    problems.push(Problem::new(
                        format!("{at}.expires"),
                        format!("`{text}` is not a UTC date (2027-01-31) or time (2027-01-31T12:00:00Z)"),
                    ));
                    None
                }
            },
        };
        if let (Some(digest), false) = (d, e.disabled) {
            out.push(ConsumerKey {
                digest,
                expires,
                label: e.label.as_deref().map(Arc::from),
            });
        }
    }
    out
}
