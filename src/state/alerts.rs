//! Budget threshold alerts: when a settlement carries the settled spend of a budget (a
//! consumer's or its team's, daily or monthly) across one of the configured percentages, one
//! alert is raised for (scope, id, period, threshold).
//!
//! An alert is a `log::warn!` line (ids and amounts only: never a key, never prompt text), an
//! increment of `tollgate_budget_alerts_total{scope,threshold}` and, with `alerts.webhook`, a
//! JSON post made by a background task ([`crate::upstream::webhook`]) from a bounded queue. The
//! request that crossed the threshold only pushes onto the queue without waiting: when it is
//! full, the alert's post is dropped, logged and counted in
//! `tollgate_budget_alert_webhook_failures_total` like a failed post.
//!
//! Once: settled spend only grows within a period, so exactly one settlement moves it from
//! below a threshold's mark to at or above it — in Redis too, where the settlement script
//! returns each budget's spend before and after its atomic increment, so one instance alone
//! sees the crossing. (A settlement whose answer from Redis is lost is applied once but its
//! crossing is not seen: an alert is raised at most once. A budget changed by a reload has new
//! marks, which may be crossed again.)

use super::budget::{crossed, Scope};
use crate::config::money::usd;
use crate::config::AlertsConfig;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Alerts waiting for the webhook; beyond this they are dropped (and counted).
pub const QUEUE: usize = 1_024;

/// One alert: a budget's settled spend reached `threshold` % of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub scope: Scope,
    /// The consumer id or team name.
    pub id: String,
    /// `2026-03-14` or `2026-03`.
    pub period: String,
    pub threshold: u64,
    /// Nano-dollars.
    pub spent: u64,
    pub budget: u64,
    /// Unix seconds.
    pub at: u64,
}

impl Alert {
    /// The webhook's JSON body; money as exact decimal strings.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "scope": self.scope.as_str(),
            "id": self.id,
            "period": self.period,
            "threshold_percent": self.threshold,
            "spent_usd": usd(self.spent, 6),
            "budget_usd": usd(self.budget, 6),
            "at": super::utc_time(self.at),
        })
    }
}

/// An alert to post, with the settings of the configuration that raised it.
#[derive(Debug)]
pub struct Posting {
    pub alert: Alert,
    pub config: Arc<AlertsConfig>,
}

/// One budget's settlement, as alerts judge it.
#[derive(Debug, Clone, Copy)]
pub struct Moved<'a> {
    pub scope: Scope,
    pub id: &'a str,
    /// The UTC day the request was admitted on (its period is that day's, or its month's).
    pub day: u64,
    pub budget: u64,
    pub before: u64,
    pub after: u64,
}

/// Raises alerts and queues their posts.
#[derive(Debug)]
pub struct Alerts {
    queue: mpsc::Sender<Posting>,
    /// Taken once by the webhook's background task.
    receiver: Mutex<Option<mpsc::Receiver<Posting>>>,
}

impl Default for Alerts {
    fn default() -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        Alerts {
            queue,
            receiver: Mutex::new(Some(receiver)),
        }
    }
}

impl Alerts {
    /// Raises an alert for each threshold of `config` that `m` crossed, at `now`.
    pub fn judge(&self, config: &Arc<AlertsConfig>, m: Moved<'_>, now: u64) {
        for threshold in crossed(&config.thresholds, m.budget, m.before, m.after) {
            self.raise(
                config,
                Alert {
                    scope: m.scope,
                    id: m.id.to_string(),
                    period: m.scope.period_label(m.day),
                    threshold,
                    spent: m.after,
                    budget: m.budget,
                    at: now,
                },
            );
        }
    }

    /// Logs and counts `alert`, and queues its post when a webhook is configured.
    pub fn raise(&self, config: &Arc<AlertsConfig>, alert: Alert) {
        log::warn!(
            "budget alert: {} budget of {} for {} reached {}% (spent ${} of ${})",
            alert.scope.as_str(),
            alert.id,
            alert.period,
            alert.threshold,
            usd(alert.spent, 6),
            usd(alert.budget, 2),
        );
        if let Some(m) = crate::metrics::get() {
            m.budget_alerts
                .with_label_values(&[alert.scope.label(), &alert.threshold.to_string()])
                .inc();
        }
        if config.webhook.is_none() {
            return;
        }
        let posting = Posting {
            alert,
            config: Arc::clone(config),
        };
        if let Err(e) = self.queue.try_send(posting) {
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "its queue is full",
                mpsc::error::TrySendError::Closed(_) => "no task posts them",
            };
            log::warn!("budget alert webhook: an alert was dropped: {why}");
            count_failure();
        }
    }

    /// The queue's receiving end, for the task that posts (once; `None` after).
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<Posting>> {
        self.receiver.lock().ok()?.take()
    }
}

/// Counts a post that failed or was dropped.
pub fn count_failure() {
    if let Some(m) = crate::metrics::get() {
        m.budget_alert_webhook_failures.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AlertsConfig, BackendUrl, Webhook};

    fn with_webhook() -> Arc<AlertsConfig> {
        Arc::new(AlertsConfig {
            thresholds: vec![50, 80, 100],
            webhook: Some(Webhook {
                url: BackendUrl::parse("http://127.0.0.1:9").unwrap(),
                path: "/".into(),
                timeout: std::time::Duration::from_secs(1),
            }),
        })
    }

    fn moved(before: u64, after: u64) -> Moved<'static> {
        Moved {
            scope: Scope::TeamDaily,
            id: "payments",
            day: 20_000,
            budget: 50 * 1_000_000_000,
            before,
            after,
        }
    }

    #[test]
    fn each_crossed_threshold_is_queued_once_with_its_body() {
        let alerts = Alerts::default();
        let mut rx = alerts.take_receiver().unwrap();
        assert!(alerts.take_receiver().is_none(), "taken once");
        let cfg = with_webhook();
        let usd = 1_000_000_000;
        alerts.judge(&cfg, moved(10 * usd, 24 * usd), 20_000 * 86_400 + 3_723);
        assert!(rx.try_recv().is_err(), "below 50 %");
        alerts.judge(&cfg, moved(24 * usd, 41 * usd), 20_000 * 86_400 + 3_723);
        let got: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|p| p.alert.threshold)
            .collect();
        assert_eq!(got, vec![50, 80]);
        alerts.judge(&cfg, moved(45 * usd, 50 * usd), 20_000 * 86_400 + 3_723);
        let p = rx.try_recv().unwrap();
        assert_eq!(
            p.alert.body(),
            serde_json::json!({
                "scope": "team daily",
                "id": "payments",
                "period": "2024-10-04",
                "threshold_percent": 100,
                "spent_usd": "50.000000",
                "budget_usd": "50.000000",
                "at": "2024-10-04T01:02:03Z",
            })
        );
    }

    #[test]
    fn a_full_queue_drops_the_post_and_never_blocks() {
        let alerts = Alerts::default();
        let cfg = with_webhook();
        // Nobody takes the posts: the queue fills, then each alert is dropped at once.
        for i in 0..(QUEUE as u64 + 10) {
            alerts.judge(&cfg, moved(0, 50 * 1_000_000_000 + i), 0);
        }
        let mut rx = alerts.take_receiver().unwrap();
        let mut n = 0;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, QUEUE);
    }
}
