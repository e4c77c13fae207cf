//! The screening stages after the rules, as configured: the in-process injection classifier and
//! an external guardrail service. Validated here with every problem at its YAML path; the model
//! is read and the service called above this layer (`stages::classifier`, `upstream::guardrail`).

use super::backend::{credential, read_pem_certs};
use super::build::duration;
use super::file::{ClassifierSection, GuardrailSection};
use super::types::{BackendUrl, Role};
use super::Problem;
use crate::digest::Secret;
use pingora::utils::tls::WrappedX509;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Whether a stage acts on its verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    /// Evaluated, logged and counted as what it would have done; never acted on.
    Shadow,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }
}

/// `content_filter.classifier`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierConfig {
    /// The model file; `None` is the model shipped with the gateway.
    pub model: Option<PathBuf>,
    /// The threshold for roles without their own; `None` is the model's own.
    pub threshold: Option<f64>,
    /// Per role ([`Role::index`]), overriding `threshold`.
    pub thresholds: [Option<f64>; 3],
    pub mode: Mode,
}

/// The request and response shape of a guardrail service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardrailPreset {
    /// Azure AI Content Safety Prompt Shields: `POST {url}/contentsafety/text:shieldPrompt`
    /// with `{userPrompt, documents}`, answered with `attackDetected` per part.
    AzurePromptShields,
    /// `POST {url}` with `{"texts": [{"origin", "text"}]}`, answered with `{"flagged": bool}`
    /// and optionally `"score"` and `"reason"`.
    Json,
}

impl GuardrailPreset {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardrailPreset::AzurePromptShields => "azure_prompt_shields",
            GuardrailPreset::Json => "json",
        }
    }
}

/// `content_filter.guardrail`, validated.
#[derive(Debug, Clone)]
pub struct GuardrailConfig {
    pub preset: GuardrailPreset,
    pub url: BackendUrl,
    /// The request path and query (the preset's path after the URL's own).
    pub path: String,
    pub credential: Option<Secret>,
    pub ca: Option<Arc<[WrappedX509]>>,
    pub timeout: Duration,
    /// Per role ([`Role::index`]): a failed call lets the request through.
    pub fail_open: [bool; 3],
    pub mode: Mode,
}

/// The API version Prompt Shields is called with unless configured.
pub const PROMPT_SHIELDS_API_VERSION: &str = "2024-09-01";

/// A `mode` setting: `enforce` (the default) or `shadow`.
pub(super) fn mode(raw: &Option<String>, path: String, problems: &mut Vec<Problem>) -> Mode {
    match raw.as_deref() {
        None | Some("enforce") => Mode::Enforce,
        Some("shadow") => Mode::Shadow,
        Some(other) => {
            problems.push(Problem::new(
                path,
                format!("`{other}` is not one of enforce, shadow"),
            ));
            Mode::Enforce
        }
    }
}

/// Per-role values of `raw` (keys are role names), each checked by `value`.
fn per_role<T: Copy>(
    raw: &BTreeMap<String, T>,
    path: &str,
    problems: &mut Vec<Problem>,
    mut value: impl FnMut(T, &str, &mut Vec<Problem>) -> bool,
) -> [Option<T>; 3] {
    let mut out = [None; 3];
    for (role, v) in raw {
        let at = format!("{path}.{role}");
        match Role::parse(role) {
            Some(r) => {
                if value(*v, &at, problems) {
                    out[r.index()] = Some(*v);
                }
            }
            None => problems.push(Problem::new(at, "roles are standard, elevated, admin")),
        }
    }
    out
}

fn threshold_ok(t: f64, path: &str, problems: &mut Vec<Problem>) -> bool {
    let ok = t > 0.0 && t <= 1.0;
    if !ok {
        problems.push(Problem::new(
            path,
            "a threshold is a score above 0 and at most 1",
        ));
    }
    ok
}

/// Validates `content_filter.classifier`; `None` when it is absent or disabled.
pub fn classifier(
    raw: Option<&ClassifierSection>,
    problems: &mut Vec<Problem>,
) -> Option<ClassifierConfig> {
    let c = raw.filter(|c| c.enabled)?;
    let path = "content_filter.classifier";
    if let Some(t) = c.threshold {
        threshold_ok(t, &format!("{path}.threshold"), problems);
    }
    if c.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
        problems.push(Problem::new(format!("{path}.model"), "must not be empty"));
    }
    Some(ClassifierConfig {
        model: c.model.as_ref().map(PathBuf::from),
        threshold: c.threshold,
        thresholds: per_role(
            &c.thresholds,
            &format!("{path}.thresholds"),
            problems,
            threshold_ok,
        ),
        mode: mode(&c.mode, format!("{path}.mode"), problems),
    })
}

/// Validates `content_filter.guardrail`; `None` when it is absent or has problems (pushed).
pub fn guardrail(
    raw: Option<&GuardrailSection>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<GuardrailConfig> {
    let g = raw?;
    let path = "content_filter.guardrail";
    let before = problems.len();
    let preset = match g.preset.as_str() {
        "azure_prompt_shields" => Some(GuardrailPreset::AzurePromptShields),
        "json" => Some(GuardrailPreset::Json),
        other => {
            problems.push(Problem::new(
                format!("{path}.preset"),
                format!("`{other}` is not one of azure_prompt_shields, json"),
            ));
            None
        }
    };
    let url = BackendUrl::parse(&g.url)
        .map_err(|e| problems.push(Problem::new(format!("{path}.url"), e)))
        .ok();
    let credential = credential(g.credential_env.as_deref(), path, env, problems);
    if preset == Some(GuardrailPreset::AzurePromptShields) && g.credential_env.is_none() {
        problems.push(Problem::new(
            format!("{path}.credential_env"),
            "Prompt Shields needs the resource key (Ocp-Apim-Subscription-Key)",
        ));
    }
    let ca = g.ca_file.as_ref().and_then(|file| {
        read_pem_certs(file)
            .map_err(|e| problems.push(Problem::new(format!("{path}.ca_file"), e)))
            .ok()
    });
    if g.timeout_ms == 0 {
        problems.push(Problem::new(
            format!("{path}.timeout_ms"),
            "must be greater than 0",
        ));
    }
    let timeout = duration(g.timeout_ms, 1_000, &format!("{path}.timeout_ms"), problems);
    let mut fail_open = [false; 3];
    for (role, how) in &g.fail {
        let at = format!("{path}.fail.{role}");
        let open = match how.as_str() {
            "open" => true,
            "closed" => false,
            other => {
                problems.push(Problem::new(
                    at,
                    format!("`{other}` is not one of open, closed"),
                ));
                continue;
            }
        };
        match Role::parse(role) {
            Some(r) => fail_open[r.index()] = open,
            None => problems.push(Problem::new(at, "roles are standard, elevated, admin")),
        }
    }
    if let Some(v) = &g.api_version {
        if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
        {
            problems.push(Problem::new(
                format!("{path}.api_version"),
                "letters, digits, `-` and `.` only (it goes into the query string)",
            ));
        }
    }
    let mode = mode(&g.mode, format!("{path}.mode"), problems);
    if problems.len() != before {
        return None;
    }
    let (preset, url) = (preset?, url?);
    let path = match preset {
        GuardrailPreset::AzurePromptShields => format!(
            "{}/contentsafety/text:shieldPrompt?api-version={}",
            url.path_prefix,
            g.api_version
                .as_deref()
                .unwrap_or(PROMPT_SHIELDS_API_VERSION)
        ),
        GuardrailPreset::Json if url.path_prefix.is_empty() => "/".to_string(),
        GuardrailPreset::Json => url.path_prefix.clone(),
    };
    Some(GuardrailConfig {
        preset,
        url,
        path,
        credential,
        ca,
        timeout,
        fail_open,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{load_str, Problem};

    /// The rest of a valid file: an admin token (from `T`) and a default price.
    const HEAD: &str = "server: {admin: {token_env: T}}
pricing: {default: {input_per_million_usd: 1, output_per_million_usd: 1}}
";

    fn problems(filter: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<Problem> {
        let text = format!("{HEAD}content_filter:\n{filter}");
        load_str(&text, env).err().unwrap_or_default()
    }

    fn paths(p: &[Problem]) -> Vec<&str> {
        p.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn every_problem_of_the_two_sections_is_reported_at_its_path() {
        let p = problems(
            "  classifier:\n    threshold: 1.5\n    thresholds: {root: 0.5, admin: 0}\n    mode: loud\n    colour: red\n",
            &|v| (v == "T").then(|| "a-long-enough-admin-token".into()),
        );
        assert_eq!(
            paths(&p),
            [
                "content_filter.classifier.colour",
                "content_filter.classifier.threshold",
                "content_filter.classifier.thresholds.admin",
                "content_filter.classifier.thresholds.root",
                "content_filter.classifier.mode",
            ],
            "{p:?}"
        );
        let p = problems(
            "  guardrail:\n    preset: llamaguard\n    url: ftp://x\n    credential_env: NOPE\n    timeout_ms: 0\n    fail: {admin: ajar}\n",
            &|v| (v == "T").then(|| "a-long-enough-admin-token".into()),
        );
        assert_eq!(
            paths(&p),
            [
                "content_filter.guardrail.preset",
                "content_filter.guardrail.url",
                "content_filter.guardrail.credential_env",
                "content_filter.guardrail.timeout_ms",
                "content_filter.guardrail.fail.admin",
            ],
            "{p:?}"
        );
        let p = problems(
            "  guardrail:\n    preset: azure_prompt_shields\n    url: https://x.example\n",
            &|v| (v == "T").then(|| "a-long-enough-admin-token".into()),
        );
        assert_eq!(paths(&p), ["content_filter.guardrail.credential_env"]);
    }

    #[test]
    fn a_rule_says_what_it_checks_and_pii_on_requests_is_blocked_or_redacted() {
        let rule = |extra: &str| {
            format!(
                "  rules:\n    - id: r\n      category: pii\n      pattern: x\n      severity: high\n      reason: r\n{extra}"
            )
        };
        let env = |v: &str| (v == "T").then(|| "a-long-enough-admin-token".to_string());
        let p = problems(
            &rule("      applies_to: [sideways]\n      action: explode\n"),
            &env,
        );
        assert_eq!(
            paths(&p),
            [
                "content_filter.rules[0].applies_to[0]",
                "content_filter.rules[0].action"
            ]
        );
        let p = problems(&rule("      action: warn\n"), &env);
        assert!(p[0].message.contains("block or redact"), "{p:?}");
        for ok in [
            "      action: redact\n",
            "      applies_to: [response]\n      action: warn\n",
            "      applies_to: [request, response]\n      action: redact\n",
        ] {
            assert!(problems(&rule(ok), &env).is_empty(), "{ok}");
        }
        let p = problems("  policy:\n    admin: {topic: redact}\n", &env);
        assert!(p[0].message.contains("rule's `action`"), "{p:?}");
    }

    #[test]
    fn prompt_shields_is_called_at_its_path_with_its_api_version() {
        let text = "server: {admin: {token_env: T}}
pricing: {default: {input_per_million_usd: 1, output_per_million_usd: 1}}
content_filter:
  guardrail:
    preset: azure_prompt_shields
    url: https://res.cognitiveservices.azure.com/
    credential_env: KEY
    fail: {admin: open}
";
        let c = load_str(text, &|v| {
            Some(
                if v == "T" {
                    "a-long-enough-admin-token"
                } else {
                    "k"
                }
                .into(),
            )
        })
        .unwrap();
        let g = c.filter.guardrail.unwrap();
        assert_eq!(
            g.path,
            "/contentsafety/text:shieldPrompt?api-version=2024-09-01"
        );
        assert_eq!(g.fail_open, [false, false, true]);
        assert!(
            !format!("{g:?}").contains("\"k\""),
            "the key is never printed"
        );
    }
}
