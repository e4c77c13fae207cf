//! Team limits (`teams:`), the consumer's optional monthly budget and request rate, and budget
//! alerts (`alerts:`), validated into their runtime form.
//!
//! A team listed under `teams:` gets the limits written there, shared by every consumer whose
//! `team` names it; a team not listed has none (and a consumer's `team` need not be listed).
//! Money is parsed as `daily_budget_usd` is (integer micro-dollars); every problem is reported
//! at its YAML path.

use super::file::{AlertsSection, TeamSection};
use super::money::parse_usd;
use super::types::BackendUrl;
use super::Problem;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A team's shared limits; `None` is no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub name: String,
    pub daily_budget_micros: Option<u64>,
    pub monthly_budget_micros: Option<u64>,
    pub requests_per_minute: Option<u64>,
}

/// Budget alerts: the thresholds (percent of a budget, ascending, distinct) and the optional
/// webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsConfig {
    pub thresholds: Vec<u64>,
    pub webhook: Option<Webhook>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            thresholds: vec![50, 80, 100],
            webhook: None,
        }
    }
}

/// Where alerts are posted. Its path may carry a secret (many webhook services put their token
/// there): `Debug` shows the host only, and so do the logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: BackendUrl,
    /// The request path (`/` when the URL has none).
    pub path: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("host", &self.url.host)
            .field("tls", &self.url.tls)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Most thresholds one configuration may list.
const MAX_THRESHOLDS: usize = 16;
/// Highest threshold: spend can pass a budget (failed attempts are charged on top of the
/// answer), so thresholds above 100 % are allowed, within reason.
const MAX_THRESHOLD: u64 = 1_000;

/// `teams:`: each name must be an id (it goes into state keys); each limit is optional.
pub(super) fn build_teams(
    teams: &BTreeMap<String, TeamSection>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, Arc<Team>> {
    let mut out = BTreeMap::new();
    for (name, t) in teams {
        let path = format!("teams.{name}");
        let before = problems.len();
        super::build::check_id(name, &path, problems);
        let daily = optional_usd(
            &t.daily_budget_usd,
            &format!("{path}.daily_budget_usd"),
            problems,
        );
        let monthly = optional_usd(
            &t.monthly_budget_usd,
            &format!("{path}.monthly_budget_usd"),
            problems,
        );
        let rpm = per_minute(
            t.requests_per_minute,
            &format!("{path}.requests_per_minute"),
            problems,
        );
        if problems.len() == before {
            out.insert(
                name.clone(),
                Arc::new(Team {
                    name: name.clone(),
                    daily_budget_micros: daily,
                    monthly_budget_micros: monthly,
                    requests_per_minute: rpm,
                }),
            );
        }
    }
    out
}

/// An optional dollar amount at `path`.
pub(super) fn optional_usd(
    value: &Option<serde_yaml::Value>,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<u64> {
    let v = value.as_ref()?;
    parse_usd(v)
        .map_err(|e| problems.push(Problem::new(path, e)))
        .ok()
}

/// An optional requests-per-minute limit at `path`: when given, more than zero.
pub(super) fn per_minute(
    value: Option<u64>,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<u64> {
    match value {
        Some(0) => {
            problems.push(Problem::new(
                path,
                "must be greater than 0 (leave it out for no limit)",
            ));
            None
        }
        v => v,
    }
}

/// `alerts:`.
pub(super) fn build_alerts(a: &AlertsSection, problems: &mut Vec<Problem>) -> AlertsConfig {
    let mut thresholds = Vec::with_capacity(a.thresholds.len());
    for (i, t) in a.thresholds.iter().enumerate() {
        if *t == 0 || *t > MAX_THRESHOLD {
            problems.push(Problem::new(
                format!("alerts.thresholds[{i}]"),
                format!("must be a percentage from 1 to {MAX_THRESHOLD}"),
            ));
        } else {
            thresholds.push(*t);
        }
    }
    thresholds.sort_unstable();
    thresholds.dedup();
    if thresholds.len() > MAX_THRESHOLDS {
        problems.push(Problem::new(
            "alerts.thresholds",
            format!("at most {MAX_THRESHOLDS} thresholds"),
        ));
    }
    let webhook = a.webhook.as_ref().and_then(|w| {
        let url = BackendUrl::parse(w.url.trim())
            .map_err(|e| problems.push(Problem::new("alerts.webhook.url", e)))
            .ok();
        let timeout =
            super::build::duration(w.timeout_ms, 1_000, "alerts.webhook.timeout_ms", problems);
        if w.timeout_ms == 0 {
            problems.push(Problem::new(
                "alerts.webhook.timeout_ms",
                "must be greater than 0",
            ));
        }
        let url = url?;
        let path = if url.path_prefix.is_empty() {
            "/".to_string()
        } else {
            url.path_prefix.clone()
        };
        Some(Webhook { url, path, timeout })
    });
    AlertsConfig {
        thresholds,
        webhook,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    fn demo_with(extra: &str) -> Result<crate::config::Config, Vec<crate::config::Problem>> {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml"))
            .unwrap();
        load_str(&format!("{text}\n{extra}"), &|_| None)
    }

    #[test]
    fn a_team_with_limits_that_no_consumer_names_is_refused_as_misspelt() {
        let problems = demo_with("teams:\n  engineering: {daily_budget_usd: 50}\n").unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.path == "teams.engineering" && p.message.contains("case-sensitive")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_listed_team_lends_its_limits_to_its_consumers() {
        let cfg = demo_with(
            "teams:\n  Engineering: {daily_budget_usd: \"50\", monthly_budget_usd: 900, requests_per_minute: 600}\n  idle:\n",
        );
        let cfg = cfg.unwrap();
        let team = &cfg.teams["Engineering"];
        assert_eq!(team.daily_budget_micros, Some(50_000_000));
        assert_eq!(team.monthly_budget_micros, Some(900_000_000));
        assert_eq!(team.requests_per_minute, Some(600));
        assert_eq!(cfg.teams["idle"].daily_budget_micros, None);
        let engineers: Vec<_> = cfg
            .consumers
            .iter()
            .filter(|c| c.team == "Engineering")
            .collect();
        assert!(!engineers.is_empty());
        for c in engineers {
            assert_eq!(c.team_limits.as_deref(), Some(&**team));
        }
        assert!(cfg
            .consumers
            .iter()
            .filter(|c| c.team != "Engineering")
            .all(|c| c.team_limits.is_none()));
        assert_eq!(cfg.alerts.thresholds, vec![50, 80, 100], "the default");
    }

    #[test]
    fn bad_team_and_alert_settings_are_reported_at_their_paths() {
        let problems = demo_with(
            "teams:\n  \"bad name\": {daily_budget_usd: \"-1\", requests_per_minute: 0, colour: red}\nalerts:\n  thresholds: [0, 80, 80, 2000]\n  webhook: {url: \"ftp://x\", timeout_ms: 0, retries: 3}\n",
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "teams.bad name",
            "teams.bad name.daily_budget_usd",
            "teams.bad name.requests_per_minute",
            "teams.bad name.colour",
            "alerts.thresholds[0]",
            "alerts.thresholds[3]",
            "alerts.webhook.url",
            "alerts.webhook.timeout_ms",
            "alerts.webhook.retries",
        ] {
            assert!(paths.contains(&want), "{want} missing from {paths:?}");
        }
    }

    #[test]
    fn a_consumer_may_cap_its_month_and_its_request_rate() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml"))
            .unwrap()
            .replacen(
                "daily_budget_usd: 100",
                "daily_budget_usd: 100\n    monthly_budget_usd: \"1500.5\"\n    requests_per_minute: 60",
                1,
            );
        let cfg = load_str(&text, &|_| None).unwrap();
        let c = cfg
            .consumers
            .iter()
            .find(|c| c.monthly_budget_micros.is_some())
            .unwrap();
        assert_eq!(c.monthly_budget_micros, Some(1_500_500_000));
        assert_eq!(c.requests_per_minute, Some(60));
        assert!(cfg
            .consumers
            .iter()
            .filter(|o| o.id != c.id)
            .all(|o| o.monthly_budget_micros.is_none() && o.requests_per_minute.is_none()));
    }

    #[test]
    fn thresholds_are_sorted_once_each_and_the_webhook_hides_its_path() {
        let cfg = demo_with(
            "alerts:\n  thresholds: [100, 25, 25]\n  webhook: {url: \"http://hooks.example:8080/T000/secret-token\"}\n",
        )
        .unwrap();
        assert_eq!(cfg.alerts.thresholds, vec![25, 100]);
        let w = cfg.alerts.webhook.as_ref().unwrap();
        assert_eq!(w.path, "/T000/secret-token");
        assert_eq!(w.timeout, std::time::Duration::from_secs(2));
        assert!(!format!("{cfg:?}").contains("secret-token"));
    }
}
