//! The budget alert webhook: posts each alert queued by [`crate::state::alerts`] as JSON to
//! `alerts.webhook.url`, one at a time, from a background task — never on a request's path.
//!
//! One `POST` per alert, with `Content-Type: application/json`, through Pingora's connector
//! (TLS verified against the system's roots for an `https://` URL), the whole call — resolve,
//! connect, send, read the status — bounded by `alerts.webhook.timeout_ms`. Any 2xx answer is
//! success; anything else (no answer in time, a refused connection, another status) is logged
//! with the host only (the URL's path may hold the service's token) and counted in
//! `tollgate_budget_alert_webhook_failures_total`. A failed post is not retried: the alert's
//! log line and metric remain.

use crate::config::Webhook;
use crate::state::alerts::{count_failure, Posting};
use crate::upstream::peer::{verified_peer, Resolver};
use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The task that posts queued alerts.
pub struct WebhookService {
    receiver: std::sync::Mutex<Option<mpsc::Receiver<Posting>>>,
    resolver: Arc<Resolver>,
}

impl WebhookService {
    /// Posts what `receiver` (the alerts' queue) yields.
    pub fn new(receiver: mpsc::Receiver<Posting>, resolver: Arc<Resolver>) -> WebhookService {
        WebhookService {
            receiver: std::sync::Mutex::new(Some(receiver)),
            resolver,
        }
    }
}

#[async_trait::async_trait]
impl BackgroundService for WebhookService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let taken = self.receiver.lock().ok().and_then(|mut r| r.take());
        let Some(mut rx) = taken else {
            return;
        };
        let connector = Connector::new(None);
        loop {
            tokio::select! {
                next = rx.recv() => {
                    let Some(p) = next else { return };
                    let Some(hook) = &p.config.webhook else { continue };
                    let body = Bytes::from(p.alert.body().to_string());
                    let outcome =
                        tokio::time::timeout(hook.timeout, post(&connector, &self.resolver, hook, body))
                            .await
                            .unwrap_or(Err("no answer in time"));
                    if let Err(why) = outcome {
                        log::warn!(
                            "budget alert webhook at {}: the {} alert of {} at {}% was not delivered: {why}",
                            hook.url.host,
                            p.alert.scope.as_str(),
                            p.alert.id,
                            p.alert.threshold
                        );
                        count_failure();
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Posts `body` to `hook`; `Err` says why it failed.
async fn post(
    connector: &Connector,
    resolver: &Resolver,
    hook: &Webhook,
    body: Bytes,
) -> Result<(), &'static str> {
    let addrs = resolver
        .resolve(&hook.url.host, hook.url.port, hook.timeout)
        .await
        .map_err(|_| "its host did not resolve")?;
    let addr = *addrs.first().ok_or("its host did not resolve")?;
    let mut peer = verified_peer(&hook.url, addr, None);
    let o = &mut peer.options;
    o.connection_timeout = Some(hook.timeout);
    o.total_connection_timeout = Some(hook.timeout);
    o.read_timeout = Some(hook.timeout);
    o.write_timeout = Some(hook.timeout);
    let header = request_header(hook, body.len()).ok_or("the request could not be built")?;
    let (mut session, _) = connector
        .get_http_session(&peer)
        .await
        .map_err(|_| "unreachable")?;
    let failed = |_| "the connection failed";
    session
        .write_request_header(Box::new(header))
        .await
        .map_err(failed)?;
    session
        .write_request_body(body, true)
        .await
        .map_err(failed)?;
    session.finish_request_body().await.map_err(failed)?;
    session.read_response_header().await.map_err(failed)?;
    let status = session.response_header().map_or(0, |h| h.status.as_u16());
    // The answer's body is not needed; the connection is dropped rather than drained.
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err("it answered with a status other than 2xx")
    }
}

fn request_header(hook: &Webhook, length: usize) -> Option<RequestHeader> {
    let mut h = RequestHeader::build("POST", hook.path.as_bytes(), None).ok()?;
    h.insert_header("host", hook.url.authority()).ok()?;
    h.insert_header("content-type", "application/json").ok()?;
    h.insert_header("content-length", length.to_string()).ok()?;
    h.insert_header(
        "user-agent",
        concat!("tollgate/", env!("CARGO_PKG_VERSION")),
    )
    .ok()?;
    Some(h)
}
