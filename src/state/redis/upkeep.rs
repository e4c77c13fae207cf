//! The shared store's background upkeep (see [`Upkeep`]).

use super::RedisStore;
use std::sync::Arc;
use std::time::Duration;

/// The shared store's upkeep, in the background: settlements Redis could not take are retried
/// every half second, and once more (for a few seconds) when the server stops; the expired
/// reservations of the consumers this instance reserved for are given back every 30 seconds.
pub struct Upkeep(pub Arc<RedisStore>);

/// How often waiting settlements are retried.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// How often expired reservations are reaped.
const REAP_EVERY: Duration = Duration::from_secs(30);
/// How long the retries may go on after the server was told to stop.
const FLUSH_AT_SHUTDOWN: Duration = Duration::from_secs(3);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for Upkeep {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let mut retry = tokio::time::interval(RETRY_EVERY);
        let mut reap = tokio::time::interval(REAP_EVERY);
        loop {
            tokio::select! {
                _ = retry.tick() => {
                    if self.0.pending() > 0 {
                        self.0.retry_pending().await;
                    }
                }
                _ = reap.tick() => self.0.reap_touched(crate::state::unix_now()).await,
                _ = shutdown.changed() => break,
            }
        }
        let deadline = tokio::time::Instant::now() + FLUSH_AT_SHUTDOWN;
        while self.0.pending() > 0 && tokio::time::Instant::now() < deadline {
            if self.0.retry_pending().await == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let left = self.0.pending();
        if left > 0 {
            log::warn!("{left} settlement(s) could not reach Redis before shutdown; their reservations expire on their own");
        }
    }
}
