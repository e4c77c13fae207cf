//! Hot reload: SIGHUP or `POST /admin/reload` re-reads the configuration file, validates it,
//! builds the new runtime off to the side and swaps it in atomically. Requests in flight finish
//! on the snapshot they started with. State keyed by stable ids (token windows, spend, cache,
//! backend health and circuits) lives outside the snapshot, so it is kept for ids that still
//! exist. An invalid or unreadable file (a half-written one included) is rejected with every
//! problem, and the old configuration keeps serving. SIGHUP also reopens the access-log file.
//!
//! No request waits on a reload: the new runtime is built on a blocking thread (SIGHUP) or the
//! admin plane's, the swap is one atomic store, and the replaced runtime is freed by the reloader
//! (at once, or by a sweep each second once the last request running on it is done), never by
//! a request's thread.

use crate::access_log::AccessLog;
use crate::config::Problem;
use crate::metrics;
use crate::runtime::{self, LiveState};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A configuration swapped in: its version, and the changed settings it could not apply.
#[derive(Debug)]
pub struct Reloaded {
    pub version: String,
    pub not_applied: Vec<Problem>,
}

/// Reloads one configuration file into the live state.
pub struct Reloader {
    path: PathBuf,
    live: LiveState,
    access_log: Arc<AccessLog>,
    /// One reload at a time.
    busy: Mutex<()>,
}

impl Reloader {
    pub fn new(path: PathBuf, live: LiveState, access_log: Arc<AccessLog>) -> Self {
        Reloader {
            path,
            live,
            access_log,
            busy: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Frees the configurations earlier reloads replaced once no request holds them (see
    /// [`LiveState::free_retired`]); how many are still held.
    pub fn free_retired(&self) -> usize {
        self.live.free_retired()
    }

    /// Read → validate → build → swap. Returns the new version and what it could not apply
    /// (named in the log too), or every problem.
    pub fn reload(&self) -> Result<Reloaded, Vec<Problem>> {
        let _one = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let result = runtime::load_file(&self.path);
        let outcome = match result {
            Ok(mut new) => {
                let version = new.version.clone();
                let old = self.live.current();
                let not_applied = crate::config::restart_only_changes(&old.config, &new.config);
                crate::config::keep_running(&old.config, &mut new.config);
                for p in &not_applied {
                    log::warn!("reload: {p}");
                }
                metrics::prime(&new.config);
                self.live.swap(new);
                self.live.free_retired();
                log::info!(
                    "configuration {} reloaded (version {version})",
                    self.path.display()
                );
                Ok(Reloaded {
                    version,
                    not_applied,
                })
            }
            Err(problems) => {
                log::error!(
                    "configuration {} rejected, the previous one keeps serving: {} problem(s)",
                    self.path.display(),
                    problems.len()
                );
                for p in &problems {
                    log::error!("  {p}");
                }
                Err(problems)
            }
        };
        if let Some(m) = metrics::get() {
            let result = if outcome.is_ok() { "ok" } else { "error" };
            m.reloads.with_label_values(&[result]).inc();
        }
        outcome
    }
}

/// How often configurations replaced by a reload are checked for being free of requests.
const RETIRED_SWEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// Reloads on SIGHUP (Pingora installs no SIGHUP handler; without this one it kills the process),
/// and frees the configurations reloads replaced once the requests that ran on them are done.
pub struct SighupService(pub Arc<Reloader>);

#[async_trait]
impl BackgroundService for SighupService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot listen for SIGHUP: {e}");
                return;
            }
        };
        let mut sweep = tokio::time::interval(RETIRED_SWEEP);
        loop {
            tokio::select! {
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    // The access log file may have been rotated away.
                    self.0.access_log.reopen();
                    let reloader = Arc::clone(&self.0);
                    // Reading, validating and building is blocking work: off the async workers,
                    // and off the request path (requests keep the snapshot they loaded).
                    let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
                }
                // Configurations replaced by this or an admin reload, once their last requests
                // are done.
                _ = sweep.tick() => {
                    if self.0.live.retired() > 0 {
                        let reloader = Arc::clone(&self.0);
                        let _ = tokio::task::spawn_blocking(move || reloader.free_retired()).await;
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
