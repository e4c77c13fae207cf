//! The access log: one JSON object per request, written off the request path.
//!
//! Requests append their line to a shared buffer, bounded in lines; a writer thread wakes when the
//! first line arrives, lets lines gather for 10 ms, and writes them with one `write` — so a busy
//! gateway pays one wake-up per batch, not one per request. A full buffer drops the line and counts
//! it (`tollgate_access_log_dropped_total`): a request never waits for the log. When the server
//! stops, [`AccessLog::flush`] writes out what is left. The file is reopened on SIGHUP, so `logrotate` can move it away. Lines carry
//! ids, counts and decisions only: never prompt or response text, never keys.

use serde::Serialize;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

/// One request, as the log records it (the seed's `GatewayLogEntry` plus ours).
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub timestamp: String,
    pub request_id: &'a str,
    pub route: &'a str,
    pub consumer_id: &'a str,
    pub model: &'a str,
    pub backend: &'a str,
    pub attempts: usize,
    pub status: u16,
    pub error: &'a str,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub estimated: bool,
    pub cost_usd: String,
    pub cost_nanos: u64,
    pub latency_ms: f64,
    pub overhead_ms: f64,
    pub ttft_ms: Option<f64>,
    pub cache_hit: bool,
    pub content_filter_result: &'a str,
    pub content_filter_reason: Option<&'a str>,
    /// The stage behind a block, warning or audit: `rules`, `classifier` or `guardrail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_filter_stage: Option<&'static str>,
    /// Rules in shadow mode that matched: `id:action` each, what it would have done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_filter_shadow: Option<&'a str>,
    /// Rules that matched the answer: `id:action` each (`shadow-` before the action of a rule
    /// in shadow mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_filter: Option<&'a str>,
    /// Redacting rules that matched the request body: `id:redact` each (`shadow-redact` for a
    /// rule in shadow mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_redacted: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier: Option<&'a ClassifierEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<&'a GuardrailEntry>,
    pub rate_limit_remaining: Option<u64>,
    /// The client's address: the peer, or the client a trusted proxy named.
    pub client_ip: Option<std::net::IpAddr>,
    /// `1.1` or `2`.
    pub http_version: &'a str,
    pub tls: bool,
}

/// The classifier's verdict on a request: its score, never the text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassifierEntry {
    /// The highest score of the request's texts, three decimals.
    pub score: f64,
    pub threshold: f64,
    /// `pass` below the threshold, else the role's action (`block`, `warn`, `audit`, `allow`).
    pub action: &'static str,
    /// `enforce`, or `shadow` (the action was not taken).
    pub mode: &'static str,
}

/// The external guardrail's verdict on a request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardrailEntry {
    /// `clean`, `flagged`, or why there was none (`timeout`, `unreachable`, `status`, `answer`).
    pub verdict: &'static str,
    /// `pass`, the role's action when flagged, `fail_open` or `fail_closed`.
    pub action: &'static str,
    pub mode: &'static str,
    pub ms: f64,
}

pub use crate::config::LogDestination as Destination;

/// How long the writer lets lines gather after the first one arrives before it writes them: a
/// busy gateway pays for one wake-up and one `write` per interval, not per request.
const GATHER: Duration = Duration::from_millis(10);

/// Lines waiting for the writer, and what it has been asked to do.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    lines: usize,
    /// The writer is waiting for work; the next line must wake it.
    idle: bool,
    reopen: bool,
    /// Flush requests made and served, so [`AccessLog::flush`] can wait for its own.
    flush_asked: u64,
    flush_done: u64,
}

struct Shared {
    pending: Mutex<Pending>,
    work: Condvar,
    flushed: Condvar,
    capacity: usize,
}

/// The handle requests use.
pub struct AccessLog {
    shared: Option<Arc<Shared>>,
    destination: Destination,
    /// The writer thread starts with the first line, not at build time: a daemon forks after the
    /// server is built, and a thread started before the fork would not exist in the child.
    writer: Once,
}

impl AccessLog {
    /// An access log to `destination` (nothing for `Off`); `queue` lines may wait for the writer.
    pub fn start(destination: Destination, queue: usize) -> AccessLog {
        let shared = (destination != Destination::Off).then(|| {
            Arc::new(Shared {
                pending: Mutex::new(Pending::default()),
                work: Condvar::new(),
                flushed: Condvar::new(),
                capacity: queue.max(1),
            })
        });
        AccessLog {
            shared,
            destination,
            writer: Once::new(),
        }
    }

    /// The shared buffer, with its writer thread running.
    fn running(&self) -> Option<&Arc<Shared>> {
        let shared = self.shared.as_ref()?;
        self.writer.call_once(|| {
            let for_writer = Arc::clone(shared);
            let destination = self.destination.clone();
            if let Err(e) = std::thread::Builder::new()
                .name("tollgate-access-log".into())
                .spawn(move || writer(destination, &for_writer))
            {
                log::error!("cannot start the access-log writer: {e}");
            }
        });
        Some(shared)
    }

    /// Queues one line (an [`Entry`] as JSON, without the newline); never blocks on the writer.
    pub fn record(&self, line: &str) {
        let Some(shared) = self.running() else {
            return;
        };
        let mut p = lock(&shared.pending);
        if p.lines >= shared.capacity {
            drop(p);
            if let Some(m) = crate::metrics::get() {
                m.access_log_dropped.inc();
            }
            return;
        }
        p.buf.extend_from_slice(line.as_bytes());
        p.buf.push(b'\n');
        p.lines += 1;
        let wake = std::mem::take(&mut p.idle);
        drop(p);
        if wake {
            shared.work.notify_one();
        }
    }

    /// Reopens the file (after rotation).
    pub fn reopen(&self) {
        if let Some(shared) = self.running() {
            lock(&shared.pending).reopen = true;
            shared.work.notify_one();
        }
    }

    /// Writes out every line recorded so far and waits (at most `timeout`) until it is written:
    /// called once the server has stopped, so the last requests' lines are not lost at exit.
    pub fn flush(&self, timeout: Duration) {
        if !self.writer.is_completed() {
            return;
        }
        let Some(shared) = self.running() else {
            return;
        };
        let mut p = lock(&shared.pending);
        p.flush_asked += 1;
        let mine = p.flush_asked;
        shared.work.notify_one();
        let deadline = Instant::now() + timeout;
        while p.flush_done < mine {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            p = match shared.flushed.wait_timeout(p, left) {
                Ok((p, _)) => p,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

fn lock(m: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open(destination: &Destination) -> Option<Box<dyn Write + Send>> {
    match destination {
        Destination::Stdout => Some(Box::new(std::io::stdout())),
        Destination::File(p) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            Ok(f) => Some(Box::new(f)),
            Err(e) => {
                log::error!("cannot open the access log {}: {e}", p.display());
                None
            }
        },
        Destination::Off => None,
    }
}

fn writer(destination: Destination, shared: &Shared) {
    let mut out = open(&destination);
    let mut batch = Vec::new();
    loop {
        let mut p = lock(&shared.pending);
        // Sleep until there is something to do.
        while p.buf.is_empty() && !p.reopen && p.flush_done == p.flush_asked {
            p.idle = true;
            p = match shared.work.wait(p) {
                Ok(p) => p,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
        p.idle = false;
        // Let more lines gather unless someone is waiting for a flush.
        if p.flush_done == p.flush_asked && !p.reopen {
            drop(p);
            std::thread::sleep(GATHER);
            p = lock(&shared.pending);
        }
        std::mem::swap(&mut batch, &mut p.buf);
        p.lines = 0;
        let reopen = std::mem::take(&mut p.reopen);
        let flush = p.flush_asked;
        drop(p);

        if let Some(w) = out.as_mut() {
            let _ = w.write_all(&batch);
            let _ = w.flush();
        }
        batch.clear();
        if reopen {
            out = open(&destination);
        }
        let mut p = lock(&shared.pending);
        p.flush_done = p.flush_done.max(flush);
        drop(p);
        shared.flushed.notify_all();
    }
}

/// RFC 3339 UTC time with milliseconds, from the system clock.
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let day = crate::state::utc_date(secs / 86_400);
    let s = secs % 86_400;
    format!(
        "{day}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60,
        now.subsec_millis()
    )
}
