//! What the rules that rewrite text found — on answers (redacted in place, or withheld) and on
//! request bodies (redacted before anything reads them) — and how it is reported: counted per
//! stage, rule and action, logged by rule id, named in a header when one can still be sent.

use super::ctx::RequestCtx;
use crate::config::screen::Mode;
use crate::config::Consumer;
use crate::downstream::response::Extra;
use crate::error::GatewayError;
use crate::metrics;
use crate::stages::output::{Finding, OutputAction, OutputRules};
use std::sync::Arc;

/// Checks each of `texts` (the whole answer's) and rewrites it as the client may read it.
/// Returns what matched, and the rule that withholds the answer, if one does.
pub(super) fn check_whole(
    rules: &Arc<OutputRules>,
    texts: Vec<&mut String>,
) -> (Vec<Finding>, Option<String>) {
    let mut scanner = rules.scanner();
    for text in texts {
        let out = scanner.whole(text);
        if scanner.blocked.is_some() {
            return (std::mem::take(&mut scanner.found), scanner.blocked.take());
        }
        *text = out;
    }
    (std::mem::take(&mut scanner.found), None)
}

/// Which text the rules rewrote.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Request,
    Response,
}

/// Counts, logs and records what a check found; names redactions and warnings in headers when
/// `extra` can still reach the client. A block is the error the client gets.
pub(super) fn report(
    stage: Stage,
    found: &[Finding],
    blocked: Option<String>,
    consumer: &Consumer,
    ctx: &mut RequestCtx,
    extra: Option<&mut Extra>,
) -> Result<(), GatewayError> {
    let (label, redacted_header) = match stage {
        Stage::Request => ("request", "x-tollgate-request-redacted"),
        Stage::Response => ("response", "x-tollgate-redacted"),
    };
    if found.is_empty() {
        return Ok(());
    }
    let m = metrics::get();
    let mut seen: Vec<String> = Vec::new();
    let (mut redacted, mut warned): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for f in found {
        if let Some(m) = m {
            m.filter
                .with_label_values(&[label, f.rule.as_str(), f.action.as_str(), f.mode.as_str()])
                .inc();
        }
        let entry = if f.mode == Mode::Shadow {
            format!("{}:shadow-{}", f.rule, f.action.as_str())
        } else {
            format!("{}:{}", f.rule, f.action.as_str())
        };
        if !seen.contains(&entry) {
            let word = if f.mode == Mode::Shadow {
                "would"
            } else {
                "did"
            };
            log::info!(
                target: "tollgate::output",
                "{label} rule {word} {}: consumer={} role={} rule={}",
                f.action.as_str(),
                consumer.id,
                consumer.role.as_str(),
                f.rule
            );
            seen.push(entry);
        }
        if f.mode == Mode::Enforce {
            let list = match f.action {
                OutputAction::Redact => &mut redacted,
                OutputAction::Warn => &mut warned,
                _ => continue,
            };
            if !list.contains(&f.rule.as_str()) {
                list.push(f.rule.as_str());
            }
        }
    }
    match stage {
        Stage::Request => ctx.request_redacted = Some(seen.join(",")),
        Stage::Response => ctx.output_rules = Some(seen.join(",")),
    }
    if let Some(extra) = extra {
        if !redacted.is_empty() {
            extra.push(redacted_header, redacted.join(","));
        }
        if !warned.is_empty() {
            extra.push("x-tollgate-output-warning", warned.join(","));
        }
    }
    match blocked {
        Some(rule) => Err(GatewayError::AnswerBlocked { rule }),
        None => Ok(()),
    }
}
