//! `tollgate mock`: a fast built-in LLM backend for the demo, the tests and load tests.
//!
//! Serves OpenAI `POST /v1/chat/completions` (JSON with `usage`, or SSE with one chunk per token,
//! a final usage chunk when `stream_options.include_usage` is set, then `[DONE]`), Anthropic
//! `POST /v1/messages` (JSON or its event stream), OpenAI `POST /v1/responses` (JSON with
//! `usage`, or its typed events ending in `response.completed`, or `response.incomplete` when
//! `max_output_tokens` cut it short), Gemini `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent` (see `gemini`), AWS Bedrock `POST /model/{modelId}/converse` and
//! `/converse-stream` (JSON, or AWS event-stream frames; SigV4 headers required, see
//! `bedrock.rs`), OpenAI `POST /v1/embeddings`, the lab agent's
//! `POST /chat`, `GET /v1/models`, `GET /health`, and `GET /ledger` (`POST /ledger/reset`) with the
//! token totals it received and produced. Behaviour is set per process ([`MockOptions`]) and per
//! request with headers:
//! `x-mock-status` (answer with this status), `x-mock-latency-ms` (wait before the header),
//! `x-mock-chunks` (completion tokens), `x-mock-chunk-delay-ms` (gap between SSE events) and
//! `x-mock-reset-after` (close the connection after that many SSE events) and `x-mock-truncate`
//! (declare a JSON answer's full length, send half, close) and
//! `x-mock-retry-after` (a `Retry-After` sent with an injected fault) and `x-mock-no-usage` (a
//! stream that never reports usage, even when asked) and `x-mock-answer` (the answer's text, its
//! pieces — one per stream event and completion token — separated by `|`) and
//! `x-mock-answer-escape` (those pieces written as JSON `\u` escapes in stream events) and
//! `x-mock-stamp` (each stream event's JSON carries `sent_ns`, when the mock wrote it).
//! Completion tokens of a stream count in the ledger as their events are delivered.
//! Tokens are counted as ceil(characters / 4) of every text the model would read.

mod bedrock;
mod gemini;
mod ledger;
mod reply;

pub use ledger::Ledger;

/// `event` with `"sent_ns"` (Unix time in nanoseconds, now) first in its JSON data.
fn stamped(event: Bytes) -> Bytes {
    let Some(at) = event.windows(7).position(|w| w == b"data: {") else {
        return event;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut out = BytesMut::with_capacity(event.len() + 32);
    out.extend_from_slice(&event[..at + 7]);
    out.extend_from_slice(format!("\"sent_ns\":{now},").as_bytes());
    out.extend_from_slice(&event[at + 7..]);
    out.freeze()
}

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use reply::{Plan, Reply};
use std::sync::Arc;
use std::time::Duration;

/// Sent on every answer, as real backends send theirs (with an internal host name); the gateway must
/// never pass it on.
pub const MOCK_SERVER: &str = "tollgate-mock (llm-7.internal.example)";
/// Largest request body the mock reads.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Process-wide mock behaviour.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Delay before the response header, ms.
    pub latency_ms: u64,
    /// Gap between SSE events, ms.
    pub chunk_delay_ms: u64,
    /// Completion tokens per answer (one SSE event each).
    pub chunks: u64,
    /// Answer every request with this status (fault injection).
    pub fault_status: Option<u16>,
    /// Close the connection after this many SSE events (fault injection).
    pub reset_after: Option<u64>,
    /// `Retry-After` seconds sent with injected faults.
    pub retry_after: Option<u64>,
    /// Models listed by `/v1/models`.
    pub models: Vec<String>,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            latency_ms: 0,
            chunk_delay_ms: 0,
            chunks: 16,
            fault_status: None,
            reset_after: None,
            retry_after: None,
            models: vec![
                "gpt-4".into(),
                "gpt-4o".into(),
                "haiku".into(),
                "default".into(),
            ],
        }
    }
}

pub struct Mock {
    options: MockOptions,
    ledger: Arc<Ledger>,
}

impl Mock {
    pub fn new(options: MockOptions) -> Self {
        Mock {
            options,
            ledger: Arc::new(Ledger::default()),
        }
    }
}

async fn read_body(session: &mut ServerSession) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > MAX_BODY {
                    return None;
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Some(buf.freeze()),
            Err(_) => return None,
        }
    }
}

async fn write_whole(
    session: &mut ServerSession,
    status: u16,
    content_type: &str,
    body: Bytes,
    retry_after: Option<u64>,
    plan: &Plan,
) -> Option<()> {
    let mut h = ResponseHeader::build(status, Some(4)).ok()?;
    h.insert_header("server", MOCK_SERVER).ok()?;
    if plan.provider_headers {
        for (name, value) in reply::PROVIDER_HEADERS {
            h.append_header(*name, *value).ok()?;
        }
    }
    h.insert_header("content-type", content_type).ok()?;
    h.insert_header("content-length", body.len().to_string())
        .ok()?;
    if let Some(secs) = retry_after {
        h.insert_header("retry-after", secs.to_string()).ok()?;
    }
    session.write_response_header(Box::new(h)).await.ok()?;
    if plan.truncate {
        // Half of what was declared, then the connection goes away.
        let half = body.slice(..body.len() / 2);
        session.write_response_body(half, false).await.ok()?;
        return None;
    }
    session.write_response_body(body, true).await.ok()?;
    Some(())
}

#[async_trait]
impl HttpServerApp for Mock {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        _shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        if !session.read_request().await.ok()? {
            return None;
        }
        let body = read_body(&mut session).await?;
        let req = session.req_header();
        let method = req.method.as_str().to_string();
        let path = req.uri.path().to_string();
        if method == "POST" && path != "/ledger/reset" {
            self.ledger
                .record_request(&method, &path, &req.headers, &body);
        }
        let plan = Plan::from_request(&self.options, &req.headers);

        if plan.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(plan.latency_ms)).await;
        }
        // Faults hit the model routes; `/health`, `/ledger` and `/v1/models` keep answering, as a
        // live process with a failing model does.
        let model_route = reply::is_model_route(&method, &path);
        let reply = if let Some(status) = plan.fault_status.filter(|_| model_route) {
            Reply::fault(status)
        } else {
            reply::route(
                &method,
                &path,
                &req.headers,
                &body,
                &plan,
                &self.options,
                &self.ledger,
            )
        };
        match reply {
            Reply::Whole {
                status,
                content_type,
                body,
            } => {
                let retry_after = plan
                    .fault_status
                    .filter(|_| model_route)
                    .and(plan.retry_after);
                let plan = Plan {
                    truncate: plan.truncate && model_route,
                    ..plan
                };
                write_whole(&mut session, status, content_type, body, retry_after, &plan).await?;
            }
            Reply::Stream {
                content_type,
                events,
            } => {
                let mut h = ResponseHeader::build(200, Some(4)).ok()?;
                h.insert_header("server", MOCK_SERVER).ok()?;
                h.insert_header("content-type", content_type).ok()?;
                h.insert_header("cache-control", "no-cache").ok()?;
                if plan.provider_headers {
                    for (name, value) in reply::PROVIDER_HEADERS {
                        h.append_header(*name, *value).ok()?;
                    }
                }
                if plan.sse_content_length {
                    let total: usize = events.iter().map(|(e, _)| e.len()).sum();
                    h.insert_header("content-length", total.to_string()).ok()?;
                } else {
                    h.insert_header("transfer-encoding", "chunked").ok()?;
                }
                session.write_response_header(Box::new(h)).await.ok()?;
                let total = events.len();
                for (i, (event, tokens)) in events.into_iter().enumerate() {
                    if plan.reset_after.is_some_and(|n| i as u64 >= n) {
                        // Fault injection: vanish mid-stream without finishing the body.
                        return None;
                    }
                    if i > 0 && plan.chunk_delay_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(plan.chunk_delay_ms)).await;
                    }
                    let event = if plan.stamp { stamped(event) } else { event };
                    session
                        .write_response_body(event, i + 1 == total)
                        .await
                        .ok()?;
                    self.ledger.add_tokens(0, tokens);
                }
            }
        }
        let settings = HttpPersistentSettings::for_session(&session);
        session
            .finish()
            .await
            .ok()
            .flatten()
            .map(|s| ReusedHttpStream::from_reusable_stream(s, settings))
    }
}

/// Token estimate used by the mock as its truth: ceil(characters / 4).
pub fn count_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_goes_into_json_events_only() {
        let e = stamped(Bytes::from_static(b"data: {\"a\":1}\n\n"));
        let text = std::str::from_utf8(&e).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text[6..text.len() - 2]).unwrap();
        assert!(v["sent_ns"].as_u64().unwrap() > 1_700_000_000_000_000_000);
        assert_eq!(v["a"], 1);
        let done = Bytes::from_static(b"data: [DONE]\n\n");
        assert_eq!(stamped(done.clone()), done);
    }
}
