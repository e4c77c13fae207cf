//! Per-request state: what the phases decided, read by `logging` to settle and report. Outcomes
//! are enums, serialised only at the edges (response headers, the access log, metrics).

use crate::access_log::{ClassifierEntry, GuardrailEntry};
use crate::error::GatewayError;
use crate::protocol::Route;
use crate::stages::admission::Reservation;
use crate::stages::auth::KeyId;
use crate::state::limits::Headroom;
use crate::trace::RequestTrace;
use crate::upstream::forward::MidStream;
use crate::usage::Usage;
use std::sync::Arc;
use std::time::Instant;

/// How the response cache took part in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// The request never reached the cache phase.
    NotReached,
    Hit,
    Miss,
    /// The cache was not used (disabled, a stream, `no-store`); `no-cache` is a miss whose
    /// answer is stored.
    Bypass,
}

impl CacheOutcome {
    /// As the `x-tollgate-cache` header and the debug line show it.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::NotReached => "-",
            CacheOutcome::Hit => "HIT",
            CacheOutcome::Miss => "MISS",
            CacheOutcome::Bypass => "BYPASS",
        }
    }

    pub fn is_hit(self) -> bool {
        self == CacheOutcome::Hit
    }
}

/// The content filter's verdict on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOutcome {
    /// The request never reached the filter.
    NotRun,
    Passed,
    /// Allowed with a warning header.
    Warned,
    /// Allowed as an audited bypass.
    Audited,
    Blocked,
}

impl FilterOutcome {
    /// As the access log and `/chat` metadata show it.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterOutcome::NotRun => "-",
            FilterOutcome::Passed => "passed",
            FilterOutcome::Warned => "warned",
            FilterOutcome::Audited => "audited",
            FilterOutcome::Blocked => "blocked",
        }
    }
}

/// One timed pipeline phase.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// As the `tollgate_phase_seconds` histogram labels it.
    pub name: &'static str,
    pub start: Instant,
    pub end: Instant,
}

impl Phase {
    pub fn seconds(&self) -> f64 {
        self.end.duration_since(self.start).as_secs_f64()
    }
}

/// Per-request state, read by `logging`.
pub struct RequestCtx {
    pub started: Instant,
    pub route: Option<Route>,
    pub consumer: Option<String>,
    /// Which of the consumer's keys was presented (an issued key's id, a configured key's
    /// label, or `sha256:` and the start of its digest), for the spend ledger. Setting it
    /// allocates nothing.
    pub key_id: Option<KeyId>,
    /// The models an issued key is narrowed to (within its consumer's allowlist); `None`: the
    /// consumer's allowlist alone.
    pub key_models: Option<Arc<[String]>>,
    pub model: Option<String>,
    pub backend: Option<String>,
    pub status: u16,
    pub error: Option<&'static str>,
    pub backend_ms: Option<f64>,
    pub filter: FilterOutcome,
    /// The rule(s) behind a block, warning or audit (ids only; `classifier` or `guardrail` for
    /// those stages).
    pub filter_rule: Option<String>,
    /// The stage that blocked, warned or audited: `rules`, `classifier`, `guardrail`.
    pub filter_stage: Option<&'static str>,
    /// Rules in shadow mode that matched, with what each would have done (`id:action`, ...).
    pub filter_shadow: Option<String>,
    /// Rules that matched the answer, with what each did (`id:redact`, `id:shadow-block`, ...).
    pub output_rules: Option<String>,
    /// Redacting rules that matched the request body (`id:redact`, `id:shadow-redact`).
    pub request_redacted: Option<String>,
    pub classifier: Option<ClassifierEntry>,
    pub guardrail: Option<GuardrailEntry>,
    pub cache: CacheOutcome,
    /// Open until settled; `logging` settles what is left.
    pub reservation: Option<Reservation>,
    /// The request reached a backend, so it may have consumed tokens.
    pub upstream_called: bool,
    /// Earlier attempts that reached a backend and failed without an answer (a timeout, a
    /// broken exchange): each may have consumed tokens before the gateway moved on, so each is
    /// charged its worst case.
    pub orphaned: u32,
    pub headroom: Option<Headroom>,
    pub usage: Option<Usage>,
    pub cost_nanos: Option<u64>,
    /// Backends tried, in order (the last one answered, if any did).
    pub tried: Vec<String>,
    /// Counted in the in-flight gauge.
    pub in_flight: bool,
    pub request_id: String,
    pub ttft_ms: Option<f64>,
    /// Gateway time per pipeline phase (auth, filter, limits, cache, routing).
    pub phases: Vec<Phase>,
    /// Start of the phase being timed.
    mark: Instant,
    /// Refused by a policy (filter, allowlist, limits, budget), for `/stats`.
    pub blocked: bool,
    /// The client's address: the peer, or the client a trusted proxy names.
    pub client: Option<std::net::IpAddr>,
    /// `X-Forwarded-For` for the backends (`server.forward_client_address`).
    pub forwarded_for: Option<String>,
    /// `1.1` or `2`.
    pub http_version: &'static str,
    pub tls: bool,
    /// The request's trace, when tracing is on (its spans are built in `logging`).
    pub trace: Option<Box<RequestTrace>>,
}

impl RequestCtx {
    pub fn new() -> RequestCtx {
        let now = Instant::now();
        RequestCtx {
            started: now,
            route: None,
            consumer: None,
            key_id: None,
            key_models: None,
            model: None,
            backend: None,
            status: 0,
            error: None,
            backend_ms: None,
            filter: FilterOutcome::NotRun,
            filter_rule: None,
            filter_stage: None,
            filter_shadow: None,
            output_rules: None,
            request_redacted: None,
            classifier: None,
            guardrail: None,
            cache: CacheOutcome::NotReached,
            reservation: None,
            upstream_called: false,
            orphaned: 0,
            headroom: None,
            usage: None,
            cost_nanos: None,
            tried: Vec::new(),
            in_flight: false,
            request_id: String::new(),
            ttft_ms: None,
            phases: Vec::new(),
            mark: now,
            blocked: false,
            client: None,
            forwarded_for: None,
            http_version: "1.1",
            tls: false,
            trace: None,
        }
    }

    /// Starts timing a phase now (time spent before it, e.g. the client's upload, not counted).
    pub fn mark(&mut self) {
        self.mark = Instant::now();
    }

    /// Records the time since the mark for `phase` and moves the mark to now.
    pub fn phase(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.phases.push(Phase {
            name: phase,
            start: self.mark,
            end: now,
        });
        self.mark = now;
    }

    /// Milliseconds since the request started.
    pub fn elapsed_ms(&self) -> f64 {
        ms_since(self.started)
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        RequestCtx::new()
    }
}

/// How a request that could not complete normally ends.
#[derive(Debug)]
pub enum Failure {
    /// Nothing final was sent yet: answer with this error as JSON.
    Respond(GatewayError),
    /// A response was already under way: abort the client connection.
    Abort(GatewayError),
}

impl From<GatewayError> for Failure {
    fn from(e: GatewayError) -> Self {
        Failure::Respond(e)
    }
}

impl From<MidStream> for Failure {
    fn from(e: MidStream) -> Self {
        Failure::Abort(e.0)
    }
}

/// The client went away while its answer was written.
pub fn client_gone<E>(_: E) -> Failure {
    Failure::Respond(GatewayError::ClientGone)
}

pub fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Milliseconds rounded to one decimal, for logs and metadata.
pub fn round1(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::{CacheOutcome, Failure, FilterOutcome, RequestCtx};
    use crate::error::GatewayError;
    use crate::upstream::forward::MidStream;

    #[test]
    fn outcomes_serialise_as_the_headers_and_log_show_them() {
        assert_eq!(
            [
                CacheOutcome::NotReached,
                CacheOutcome::Hit,
                CacheOutcome::Miss,
                CacheOutcome::Bypass
            ]
            .map(CacheOutcome::as_str),
            ["-", "HIT", "MISS", "BYPASS"]
        );
        assert!(CacheOutcome::Hit.is_hit() && !CacheOutcome::Miss.is_hit());
        assert_eq!(
            [
                FilterOutcome::NotRun,
                FilterOutcome::Passed,
                FilterOutcome::Warned,
                FilterOutcome::Audited,
                FilterOutcome::Blocked
            ]
            .map(FilterOutcome::as_str),
            ["-", "passed", "warned", "audited", "blocked"]
        );
    }

    #[test]
    fn phases_are_timed_from_the_mark() {
        let mut ctx = RequestCtx::new();
        ctx.mark();
        ctx.phase("auth");
        ctx.phase("filter");
        let names: Vec<&str> = ctx.phases.iter().map(|p| p.name).collect();
        assert_eq!(names, ["auth", "filter"]);
        assert!(ctx.phases.iter().all(|p| p.seconds() >= 0.0));
        assert_eq!(ctx.phases[0].end, ctx.phases[1].start, "back to back");
    }

    #[test]
    fn an_error_after_the_header_went_out_aborts_instead_of_answering() {
        let f: Failure = MidStream(GatewayError::UpstreamTimeout).into();
        assert!(matches!(f, Failure::Abort(GatewayError::UpstreamTimeout)));
        let f: Failure = GatewayError::Unauthorized.into();
        assert!(matches!(f, Failure::Respond(GatewayError::Unauthorized)));
    }
}
