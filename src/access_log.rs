//! The access log: one JSON object per request, written off the request path.
//!
//! Requests hand their line to a bounded queue; a writer thread drains it to stdout or a file. A
//! full queue drops the line and counts it (`tollgate_access_log_dropped_total`) — a request never
//! waits for the log. The file is reopened on SIGHUP, so `logrotate` can move it away. Lines carry
//! ids, counts and decisions only: never prompt or response text, never keys.

use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

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
    pub rate_limit_remaining: Option<u64>,
}

enum Message {
    Line(String),
    Reopen,
}

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
    Off,
}

/// The handle requests use.
pub struct AccessLog {
    tx: Option<SyncSender<Message>>,
}

impl AccessLog {
    /// Starts the writer thread (none for `Off`).
    pub fn start(destination: Destination, queue: usize) -> AccessLog {
        if destination == Destination::Off {
            return AccessLog { tx: None };
        }
        let (tx, rx) = sync_channel(queue.max(1));
        let spawned = std::thread::Builder::new()
            .name("tollgate-access-log".into())
            .spawn(move || writer(destination, rx));
        match spawned {
            Ok(_) => AccessLog { tx: Some(tx) },
            Err(e) => {
                log::error!("cannot start the access-log writer: {e}");
                AccessLog { tx: None }
            }
        }
    }

    /// Queues one line (an [`Entry`] as JSON); never blocks.
    pub fn record(&self, entry: &serde_json::Value) {
        let Some(tx) = &self.tx else {
            return;
        };
        let line = entry.to_string();
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            tx.try_send(Message::Line(line))
        {
            if let Some(m) = crate::metrics::get() {
                m.access_log_dropped.inc();
            }
        }
    }

    /// Reopens the file (after rotation).
    pub fn reopen(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(Message::Reopen);
        }
    }
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

fn writer(destination: Destination, rx: Receiver<Message>) {
    let mut out = open(&destination).map(std::io::BufWriter::new);
    let handle =
        |msg: Message, out: &mut Option<std::io::BufWriter<Box<dyn Write + Send>>>| match msg {
            Message::Line(line) => {
                if let Some(w) = out.as_mut() {
                    let _ = w.write_all(line.as_bytes());
                    let _ = w.write_all(b"\n");
                }
            }
            Message::Reopen => {
                if let Some(w) = out.as_mut() {
                    let _ = w.flush();
                }
                *out = open(&destination).map(std::io::BufWriter::new);
            }
        };
    while let Ok(msg) = rx.recv() {
        handle(msg, &mut out);
        // Drain what is queued, then flush: lines appear promptly, writes stay batched.
        while let Ok(msg) = rx.try_recv() {
            handle(msg, &mut out);
        }
        if let Some(w) = out.as_mut() {
            let _ = w.flush();
        }
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
