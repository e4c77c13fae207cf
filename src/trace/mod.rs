//! OpenTelemetry traces: what a request's trace is (its id, the client's span, whether it is
//! recorded) and the attempts it made, kept as plain data while the request runs; its spans are
//! built once, when the request ends (`gateway::spans`), and queued for the exporter ([`export`]).
//!
//! No span object lives across an await: the request context keeps instants (the phases', each
//! upstream attempt's, the settlement's) and `logging` turns them into finished spans with their
//! own start and end times. Off (`tracing.enabled: false`, the default), none of this exists:
//! the gateway has no [`Tracer`] and a request pays one branch.
//!
//! Sampling is parent-based: a valid client `traceparent` decides (its sampled flag), else
//! `tracing.sample_ratio` of new traces, chosen from the trace id as OpenTelemetry's
//! `TraceIdRatioBased` does. Either way the backend gets a `traceparent` naming the attempt's own
//! span, so a backend that traces joins the same trace (and skips it when it is not recorded).
//!
//! Metrics: `tollgate_trace_spans_dropped_total` (spans that did not fit the queue),
//! `tollgate_trace_batches_total{outcome}` (exports that succeeded or failed).

pub mod context;
mod export;

use crate::config::{Backend, Consumer, TracingConfig};
use crate::usage::Usage;
use export::Queue;
use opentelemetry::trace::{SpanId, TraceId, TraceState};
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SpanData};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts traces and hands finished spans to the exporter. One per process, built at start.
pub struct Tracer {
    /// A new trace is recorded when its id's low 63 bits fall below this.
    threshold: u64,
    scope: InstrumentationScope,
    queue: Queue,
}

impl Tracer {
    /// The tracer `cfg` describes, or `None` when tracing is off. The exporter's thread starts
    /// with the first spans (a daemon forks after the server is built).
    pub fn start(cfg: &TracingConfig) -> Option<Arc<Tracer>> {
        if !cfg.enabled {
            return None;
        }
        Some(Arc::new(Tracer {
            threshold: threshold(cfg.sample_ratio),
            scope: InstrumentationScope::builder("tollgate")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            queue: Queue::new(cfg.clone()),
        }))
    }

    /// A request's trace: the client's when its `traceparent` is valid (one header, well
    /// formed), else a new one, recorded or not by the sample ratio.
    pub fn begin(&self, headers: &http::HeaderMap) -> Box<RequestTrace> {
        let mut values = headers.get_all("traceparent").iter();
        let parent = match (values.next(), values.next()) {
            (Some(v), None) => context::parse_traceparent(v.as_bytes()),
            _ => None,
        };
        let (trace_id, sampled) = match parent {
            Some(p) => (p.trace_id, p.sampled),
            None => {
                let id = new_trace_id();
                (id, sampled_by_ratio(id, self.threshold))
            }
        };
        // The client's `tracestate` belongs to its trace: read only with a valid parent.
        let trace_state = parent
            .and_then(|_| headers.get("tracestate"))
            .and_then(|v| v.to_str().ok())
            .and_then(|s| TraceState::from_str(s).ok())
            .unwrap_or_default();
        Box::new(RequestTrace {
            trace_id,
            parent: parent.map(|p| p.span_id),
            trace_state,
            sampled,
            consumer: None,
            max_tokens: None,
            attempts: Vec::new(),
            settlement: None,
            answer_usage: None,
            response_model: None,
            finish_reason: None,
        })
    }

    /// The scope every span is reported under (`tollgate`, this version).
    pub fn scope(&self) -> &InstrumentationScope {
        &self.scope
    }

    /// Queues a request's finished spans for export; never blocks. When they do not all fit,
    /// none is queued and they are counted as dropped.
    pub fn submit(&self, spans: Vec<SpanData>) {
        self.queue.push(spans);
    }

    /// Exports what is queued and waits for it, at most `timeout`: called once the server has
    /// stopped.
    pub fn flush(&self, timeout: Duration) {
        self.queue.flush(timeout);
    }
}

/// One request's trace, kept as plain data until `logging` builds its spans.
pub struct RequestTrace {
    pub trace_id: TraceId,
    /// The client's span (remote), when its `traceparent` was valid.
    pub parent: Option<SpanId>,
    /// The client's `tracestate`, carried by the request's span.
    pub trace_state: TraceState,
    /// Recorded: its spans are exported. Not recorded, the backend is still told the trace.
    pub sampled: bool,
    pub consumer: Option<Arc<Consumer>>,
    /// The output cap the backend was sent: the client's, else the one the gateway injected.
    pub max_tokens: Option<u64>,
    /// Upstream attempts in order, one per backend tried.
    pub attempts: Vec<AttemptTrace>,
    pub settlement: Option<Settlement>,
    /// The answering backend's usage as settled, before failed attempts were charged on top
    /// (its report, else the estimate settled on).
    pub answer_usage: Option<Usage>,
    /// The model that answered, as the backend named it, when the answer was decoded.
    pub response_model: Option<String>,
    /// Why the model stopped, when the answer was decoded.
    pub finish_reason: Option<&'static str>,
}

/// One upstream attempt: the backend, when it began and ended, and how it went.
pub struct AttemptTrace {
    /// Its span, named as the parent in the `traceparent` the backend got.
    pub span_id: SpanId,
    pub backend: Arc<Backend>,
    pub start: Instant,
    /// `None` while the answer is still being read (the request's end closes it).
    pub end: Option<Instant>,
    /// The answer's status, when one came.
    pub status: Option<u16>,
    /// The failure, when the attempt failed without an answer (an error label).
    pub error: Option<&'static str>,
    /// Its outcome was recorded.
    decided: bool,
}

/// When the request's reservation was settled (or released).
#[derive(Debug, Clone, Copy)]
pub struct Settlement {
    pub start: Instant,
    pub end: Instant,
}

impl RequestTrace {
    /// Opens an attempt at `backend` now; returns the `traceparent` the backend gets (this
    /// trace, the attempt's span, the sampling decision).
    pub fn begin_attempt(&mut self, backend: &Arc<Backend>) -> String {
        let span_id = new_span_id();
        self.attempts.push(AttemptTrace {
            span_id,
            backend: Arc::clone(backend),
            start: Instant::now(),
            end: None,
            status: None,
            error: None,
            decided: false,
        });
        context::traceparent(self.trace_id, span_id, self.sampled)
    }

    /// The open attempt got an answer header with `status`; it ends when the answer was read
    /// (or, failed over, at [`RequestTrace::attempt_ended`]).
    pub fn attempt_answered(&mut self, status: u16) {
        if let Some(a) = self.undecided() {
            a.status = Some(status);
            a.decided = true;
        }
    }

    /// The open attempt failed without an answer (`error`: the error's label), now.
    pub fn attempt_failed(&mut self, error: &'static str) {
        if let Some(a) = self.undecided() {
            a.error = Some(error);
            a.end = Some(Instant::now());
            a.decided = true;
        }
    }

    /// The last attempt is over now (its answer was discarded to try another backend).
    pub fn attempt_ended(&mut self) {
        if let Some(a) = self.attempts.last_mut() {
            a.end.get_or_insert_with(Instant::now);
        }
    }

    /// The last attempt, if its outcome is still to be recorded (a backend that could not take
    /// the request opened none, and must not close the one before).
    fn undecided(&mut self) -> Option<&mut AttemptTrace> {
        self.attempts.last_mut().filter(|a| !a.decided)
    }
}

/// The sampling threshold for `ratio`, as OpenTelemetry's `TraceIdRatioBased` computes it.
fn threshold(ratio: f64) -> u64 {
    (ratio.clamp(0.0, 1.0) * (1u64 << 63) as f64) as u64
}

/// Whether a new trace is recorded: its id's low 63 bits below the threshold.
fn sampled_by_ratio(trace_id: TraceId, threshold: u64) -> bool {
    let bytes = trace_id.to_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    (u64::from_be_bytes(low) >> 1) < threshold
}

/// A random, valid (non-zero) trace id.
pub fn new_trace_id() -> TraceId {
    let id = RandomIdGenerator::default().new_trace_id();
    if id == TraceId::INVALID {
        TraceId::from(1)
    } else {
        id
    }
}

/// A random, valid (non-zero) span id.
pub fn new_span_id() -> SpanId {
    let id = RandomIdGenerator::default().new_span_id();
    if id == SpanId::INVALID {
        SpanId::from(1)
    } else {
        id
    }
}

#[cfg(test)]
mod tests {
    use super::{sampled_by_ratio, threshold, Tracer};
    use crate::config::{Backend, Protocol, TracingConfig};
    use opentelemetry::trace::{SpanId, TraceId};
    use std::sync::Arc;

    fn tracer(ratio: f64) -> Arc<Tracer> {
        let cfg = TracingConfig {
            enabled: true,
            sample_ratio: ratio,
            ..TracingConfig::default()
        };
        Tracer::start(&cfg).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn no_tracer_exists_when_tracing_is_off() {
        assert!(Tracer::start(&TracingConfig::default()).is_none());
    }

    #[test]
    fn the_ratio_samples_new_traces_by_their_id() {
        assert!(sampled_by_ratio(TraceId::from(u128::MAX), threshold(1.0)));
        assert!(!sampled_by_ratio(TraceId::from(1), threshold(0.0)));
        let half = threshold(0.5);
        assert!(sampled_by_ratio(TraceId::from(0x0fff), half));
        assert!(!sampled_by_ratio(TraceId::from(u128::from(u64::MAX)), half));
        let t = tracer(0.0);
        assert!(!t.begin(&headers(&[])).sampled);
        assert!(tracer(1.0).begin(&headers(&[])).sampled);
    }

    #[test]
    fn a_valid_client_parent_decides_the_trace_and_its_sampling() {
        let never = tracer(0.0);
        let trace = never.begin(&headers(&[("traceparent", PARENT), ("tracestate", "k=v")]));
        assert_eq!(
            trace.trace_id,
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(
            trace.parent,
            Some(SpanId::from_hex("00f067aa0ba902b7").unwrap())
        );
        assert!(
            trace.sampled,
            "the client's sampled flag wins over the ratio"
        );
        assert_eq!(trace.trace_state.get("k"), Some("v"));
        let always = tracer(1.0);
        let unsampled = PARENT.replace("-01", "-00");
        assert!(
            !always
                .begin(&headers(&[("traceparent", &unsampled)]))
                .sampled
        );
    }

    #[test]
    fn a_malformed_or_repeated_parent_starts_a_new_trace() {
        let t = tracer(1.0);
        for h in [
            headers(&[("traceparent", "00-zz"), ("tracestate", "k=v")]),
            headers(&[("traceparent", PARENT), ("traceparent", PARENT)]),
        ] {
            let trace = t.begin(&h);
            assert_eq!(trace.parent, None);
            assert_ne!(trace.trace_id, TraceId::INVALID);
            assert_ne!(
                trace.trace_id,
                TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
            );
            assert_eq!(trace.trace_state.get("k"), None);
        }
    }

    #[test]
    fn attempts_record_their_outcome_once_and_the_backend_learns_the_attempts_span() {
        let t = tracer(1.0);
        let mut trace = t.begin(&headers(&[("traceparent", PARENT)]));
        let a = Arc::new(Backend::basic("a", Protocol::OpenAi, &["m"], 1, 1));
        let b = Arc::new(Backend::basic("b", Protocol::OpenAi, &["m"], 2, 1));
        let sent = trace.begin_attempt(&a);
        let first = trace.attempts[0].span_id;
        assert_eq!(
            sent,
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{first:016x}-01")
        );
        trace.attempt_failed("upstream_unreachable");
        // A backend that could not take the request opened no attempt: nothing to record.
        trace.attempt_failed("untranslatable");
        trace.begin_attempt(&b);
        trace.attempt_answered(200);
        let [x, y] = &trace.attempts[..] else {
            panic!("two attempts")
        };
        assert_eq!(
            (x.error, x.end.is_some()),
            (Some("upstream_unreachable"), true)
        );
        assert_eq!((y.status, y.end), (Some(200), None));
        assert_ne!(x.span_id, y.span_id);
        trace.attempt_ended();
        assert!(trace.attempts[1].end.is_some());
    }
}
