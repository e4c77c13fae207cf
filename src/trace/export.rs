//! The span queue and the exporter thread: requests hand over their finished spans and never
//! wait for the collector.
//!
//! A request's spans go into a shared buffer bounded in spans (`tracing.queue`) with one short
//! lock; when they do not all fit, none goes in (a partial trace misleads more than a missing
//! one) and they are counted in `tollgate_trace_spans_dropped_total`. One thread, started with
//! the first spans, wakes when spans arrive, lets them gather for [`GATHER`] (or until a batch is
//! full) and exports them with the OTLP/HTTP exporter, [`BATCH`] spans per request, each export
//! bounded by `tracing.export_timeout_ms` (retries included). While it exports, the buffer keeps
//! filling: a collector that is slow or gone costs dropped spans, never request time. Exports
//! are counted in `tollgate_trace_batches_total{outcome="exported"|"failed"}`; failures are
//! logged at most once a minute.

use crate::config::{TraceProtocol, TracingConfig};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use opentelemetry_sdk::Resource;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

/// How long spans gather after the first arrives before they are exported.
const GATHER: Duration = Duration::from_millis(200);
/// Most spans in one export request.
const BATCH: usize = 512;
/// Export failures are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Spans waiting for the exporter, and what it has been asked to do.
#[derive(Default)]
struct Pending {
    spans: Vec<SpanData>,
    /// The exporter waits for spans; the next ones must wake it.
    idle: bool,
    /// Flush requests made and served, so [`Queue::flush`] can wait for its own.
    flush_asked: u64,
    flush_done: u64,
}

struct Shared {
    pending: Mutex<Pending>,
    work: Condvar,
    flushed: Condvar,
    capacity: usize,
}

/// The queue requests push to, with its exporter thread.
pub(super) struct Queue {
    shared: Arc<Shared>,
    cfg: TracingConfig,
    exporter: Once,
}

impl Queue {
    pub(super) fn new(cfg: TracingConfig) -> Queue {
        Queue {
            shared: Arc::new(Shared {
                pending: Mutex::new(Pending::default()),
                work: Condvar::new(),
                flushed: Condvar::new(),
                capacity: cfg.queue.max(1),
            }),
            cfg,
            exporter: Once::new(),
        }
    }

    /// The shared buffer, with its exporter thread running.
    fn running(&self) -> &Arc<Shared> {
        self.exporter.call_once(|| {
            let shared = Arc::clone(&self.shared);
            let cfg = self.cfg.clone();
            if let Err(e) = std::thread::Builder::new()
                .name("tollgate-traces".into())
                .spawn(move || run(&cfg, &shared))
            {
                log::error!("tracing: cannot start the span exporter: {e}");
            }
        });
        &self.shared
    }

    /// Queues `spans` (one request's) if they all fit, else counts them dropped.
    pub(super) fn push(&self, spans: Vec<SpanData>) {
        if spans.is_empty() {
            return;
        }
        let shared = self.running();
        let n = spans.len();
        let mut p = lock(&shared.pending);
        let before = p.spans.len();
        if before + n > shared.capacity {
            drop(p);
            if let Some(m) = crate::metrics::get() {
                m.trace_spans_dropped.inc_by(n as u64);
            }
            return;
        }
        p.spans.extend(spans);
        // Wake an idle exporter, or one gathering once a batch is full.
        let wake = std::mem::take(&mut p.idle) || (before < BATCH && before + n >= BATCH);
        drop(p);
        if wake {
            shared.work.notify_one();
        }
    }

    /// Exports everything queued so far and waits for it, at most `timeout`.
    pub(super) fn flush(&self, timeout: Duration) {
        if !self.exporter.is_completed() {
            return;
        }
        let shared = &self.shared;
        let mut p = lock(&shared.pending);
        p.flush_asked += 1;
        let mine = p.flush_asked;
        shared.work.notify_one();
        let deadline = Instant::now() + timeout;
        while p.flush_done < mine {
            let now = Instant::now();
            if now >= deadline {
                log::warn!("tracing: spans still unexported at shutdown were dropped");
                return;
            }
            p = shared
                .flushed
                .wait_timeout(p, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

/// The exporter thread: gathers spans and exports them, forever.
fn run(cfg: &TracingConfig, shared: &Shared) {
    let mut exporter = build_exporter(cfg);
    let mut failures = Failures::default();
    loop {
        let (batch, asked) = next_batch(shared);
        let mut rest = batch;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(BATCH));
            let ok = match exporter.as_mut() {
                Some(e) => match futures_executor::block_on(e.export(rest)) {
                    Ok(()) => true,
                    Err(err) => {
                        failures.note(&err.to_string());
                        false
                    }
                },
                None => false,
            };
            if let Some(m) = crate::metrics::get() {
                let outcome = if ok { "exported" } else { "failed" };
                m.trace_batches.with_label_values(&[outcome]).inc();
            }
            rest = tail;
        }
        lock(&shared.pending).flush_done = asked;
        shared.flushed.notify_all();
    }
}

/// Waits for spans (or a flush), lets them gather, and takes them all.
fn next_batch(shared: &Shared) -> (Vec<SpanData>, u64) {
    let mut p = lock(&shared.pending);
    while p.spans.is_empty() && p.flush_asked == p.flush_done {
        p.idle = true;
        p = shared.work.wait(p).unwrap_or_else(PoisonError::into_inner);
    }
    p.idle = false;
    let deadline = Instant::now() + GATHER;
    while p.spans.len() < BATCH && p.flush_asked == p.flush_done {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        p = shared
            .work
            .wait_timeout(p, deadline - now)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
    (std::mem::take(&mut p.spans), p.flush_asked)
}

/// The OTLP/HTTP exporter `cfg` describes, reporting this service. Built on the exporter's own
/// thread (its blocking HTTP client must not live on the gateway's runtime). `None` when it
/// cannot be built: every batch then counts as failed.
fn build_exporter(cfg: &TracingConfig) -> Option<opentelemetry_otlp::SpanExporter> {
    let protocol = match cfg.protocol {
        TraceProtocol::HttpProtobuf => Protocol::HttpBinary,
        TraceProtocol::HttpJson => Protocol::HttpJson,
    };
    let headers: HashMap<String, String> = cfg
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.expose().to_string()))
        .collect();
    let built = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(cfg.endpoint.clone())
        .with_protocol(protocol)
        .with_timeout(cfg.export_timeout)
        .with_headers(headers)
        .build();
    match built {
        Ok(mut exporter) => {
            let resource = Resource::builder()
                .with_service_name(cfg.service_name.clone())
                .build();
            exporter.set_resource(&resource);
            Some(exporter)
        }
        Err(e) => {
            log::error!("tracing: cannot build the OTLP exporter: {e}; spans are not exported");
            None
        }
    }
}

/// Export failures since the last warning, so a collector that is down costs one log line a
/// minute.
#[derive(Default)]
struct Failures {
    since_warned: u64,
    warned: Option<Instant>,
}

impl Failures {
    fn note(&mut self, why: &str) {
        self.since_warned += 1;
        if self.warned.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return;
        }
        log::warn!(
            "tracing: {} span export(s) to the collector failed (last: {why})",
            self.since_warned
        );
        self.since_warned = 0;
        self.warned = Some(Instant::now());
    }
}

fn lock(m: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::Queue;
    use crate::config::TracingConfig;
    use opentelemetry::trace::{SpanContext, SpanKind, Status};
    use opentelemetry::InstrumentationScope;
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
    use std::time::{Duration, SystemTime};

    fn span() -> SpanData {
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "x".into(),
            start_time: SystemTime::now(),
            end_time: SystemTime::now(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::default(),
        }
    }

    fn dropped() -> u64 {
        crate::metrics::get().unwrap().trace_spans_dropped.get()
    }

    #[test]
    fn a_request_whose_spans_do_not_fit_is_dropped_whole_and_counted() {
        // Nothing listens on port 9: exports fail fast, whatever is queued stays bounded.
        let cfg = TracingConfig {
            enabled: true,
            endpoint: "http://127.0.0.1:9/v1/traces".into(),
            queue: 5,
            export_timeout: Duration::from_millis(50),
            ..TracingConfig::default()
        };
        let q = Queue::new(cfg);
        let before = dropped();
        q.push(vec![span(), span(), span()]);
        q.push(vec![span(), span(), span()]);
        // Other tests may drop spans too (the counter is the process's): at least ours.
        assert!(dropped() >= before + 3);
        assert!(super::lock(&q.shared.pending).spans.len() <= 5);
        q.flush(Duration::from_secs(5));
        assert!(super::lock(&q.shared.pending).spans.is_empty());
    }
}
