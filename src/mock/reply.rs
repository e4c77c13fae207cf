//! What the mock answers: plain functions from a request to a [`Reply`].

use super::{bedrock, count_tokens, Ledger, MockOptions};
use bytes::Bytes;
use serde_json::{json, Value};

/// The per-request plan: process options overridden by `x-mock-*` headers.
#[derive(Debug, Clone)]
pub struct Plan {
    pub latency_ms: u64,
    pub chunk_delay_ms: u64,
    pub chunks: u64,
    pub fault_status: Option<u16>,
    pub reset_after: Option<u64>,
    /// Declare the whole JSON answer's length, send half of it, and close (fault injection).
    pub truncate: bool,
    pub retry_after: Option<u64>,
    /// Never report usage in a stream, even when asked (a backend that ignores the option).
    pub no_usage: bool,
    /// Send the headers real providers send about the account (cookies, organisation, project,
    /// their own rate limits, request id).
    pub provider_headers: bool,
    /// Declare a stream's whole length with `Content-Length` instead of sending it chunked.
    pub sse_content_length: bool,
    /// Answer with a tool call (its arguments streamed in pieces) instead of text.
    pub tool_calls: bool,
    /// `x-mock-answer`: the answer's text instead of `w0 w1 …`, its pieces (one per stream event
    /// and per completion token) separated by `|`.
    pub answer: Option<Vec<String>>,
    /// `x-mock-answer-escape`: every character of the answer's pieces written as a JSON `\u`
    /// escape in the stream's events.
    pub escape: bool,
    /// `x-mock-stamp`: each chat-stream event carries `sent_ns`, the Unix time in nanoseconds
    /// when the mock wrote it (for measuring what a proxy adds).
    pub stamp: bool,
    /// `x-mock-cache-read`: prompt tokens reported as read from the provider's prompt cache
    /// (Anthropic, Bedrock, OpenAI's `cached_tokens`, Gemini's `cachedContentTokenCount`).
    pub cache_read: u64,
    /// `x-mock-cache-write`: prompt tokens reported as written to the prompt cache (Anthropic,
    /// Bedrock).
    pub cache_write: u64,
    /// `x-mock-thoughts`: reasoning tokens the answer reports beside its text (Gemini's
    /// `thoughtsTokenCount`), counted as produced.
    pub thoughts: u64,
}

impl Plan {
    pub fn from_request(o: &MockOptions, headers: &http::HeaderMap) -> Plan {
        let num =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        Plan {
            latency_ms: num("x-mock-latency-ms").unwrap_or(o.latency_ms),
            chunk_delay_ms: num("x-mock-chunk-delay-ms").unwrap_or(o.chunk_delay_ms),
            chunks: num("x-mock-chunks").unwrap_or(o.chunks).min(100_000),
            fault_status: num("x-mock-status")
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| (200..600).contains(s))
                .or(o.fault_status),
            reset_after: num("x-mock-reset-after").or(o.reset_after),
            retry_after: num("x-mock-retry-after").or(o.retry_after),
            no_usage: headers.contains_key("x-mock-no-usage"),
            truncate: headers.contains_key("x-mock-truncate"),
            provider_headers: headers.contains_key("x-mock-provider-headers"),
            sse_content_length: headers.contains_key("x-mock-sse-content-length"),
            tool_calls: headers.contains_key("x-mock-tool-calls"),
            answer: headers
                .get("x-mock-answer")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split('|').map(str::to_string).collect()),
            escape: headers.contains_key("x-mock-answer-escape"),
            stamp: headers.contains_key("x-mock-stamp"),
            cache_read: num("x-mock-cache-read").unwrap_or(0),
            cache_write: num("x-mock-cache-write").unwrap_or(0),
            thoughts: num("x-mock-thoughts").unwrap_or(0),
        }
    }

    /// Completion tokens of an answer capped at `cap`: the answer's pieces when given.
    pub(super) fn tokens(&self, cap: u64) -> u64 {
        match &self.answer {
            Some(pieces) => (pieces.len() as u64).min(cap),
            None => self.chunks.min(cap),
        }
    }

    /// The answer's pieces, `n` of them.
    pub(super) fn pieces(&self, n: u64) -> Vec<String> {
        match &self.answer {
            Some(pieces) => pieces.iter().take(n as usize).cloned().collect(),
            None => words(n),
        }
    }

    /// An event's JSON with `piece` (a string in it) written as `\u` escapes when asked.
    pub(super) fn escaped(&self, json: String, piece: &str) -> String {
        if !self.escape || piece.is_empty() {
            return json;
        }
        let plain = serde_json::to_string(piece).unwrap_or_default();
        let escaped: String = piece
            .encode_utf16()
            .map(|u| format!("\\u{u:04x}"))
            .collect();
        json.replacen(&plain, &format!("\"{escaped}\""), 1)
    }
}

/// The account the mock's answers name, as a provider's do.
pub const ORG: &str = "org-MockOrg12345";
pub const PROJECT: &str = "proj_MockProject123";

/// Headers real providers send about the account, for `x-mock-provider-headers`.
pub const PROVIDER_HEADERS: &[(&str, &str)] = &[
    ("set-cookie", "__cf_bm=mock-session; path=/; HttpOnly"),
    ("openai-organization", ORG),
    ("openai-project", PROJECT),
    ("openai-processing-ms", "12"),
    ("x-ratelimit-limit-tokens", "150000"),
    ("x-ratelimit-remaining-tokens", "149990"),
    ("x-request-id", "req_mock_backend_0001"),
];

pub enum Reply {
    Whole {
        status: u16,
        content_type: &'static str,
        body: Bytes,
    },
    /// Stream events, each already framed (SSE's `data: …\n\n`, or an AWS event-stream
    /// message), with the completion tokens each carries; the ledger counts those as each event
    /// is delivered.
    Stream {
        content_type: &'static str,
        events: Vec<(Bytes, u64)>,
    },
}

impl Reply {
    fn json(status: u16, v: Value) -> Reply {
        Reply::Whole {
            status,
            content_type: "application/json",
            body: Bytes::from(v.to_string()),
        }
    }

    /// A provider's error, naming the account as real ones do (a masked key, the organisation
    /// and the project).
    pub fn fault(status: u16) -> Reply {
        Reply::json(
            status,
            json!({"error": {
                "message": format!(
                    "mock fault {status} for key sk-mock-****abcd in organization {ORG} (project {PROJECT})"
                ),
                "type": "mock_fault",
                "organization": ORG,
            }}),
        )
    }
}

/// The content type of a server-sent event stream.
pub const SSE: &str = "text/event-stream";

/// Whether `path` is a model route (fault injection applies to it).
pub fn is_model_route(method: &str, path: &str) -> bool {
    method == "POST"
        && (matches!(
            path,
            "/v1/chat/completions" | "/chat" | "/v1/messages" | "/v1/embeddings" | "/v1/responses"
        ) || bedrock::operation(path).is_some())
}

/// The reply to a request; `headers` are the request's (Bedrock checks its SigV4 headers).
pub fn route(
    method: &str,
    path: &str,
    headers: &http::HeaderMap,
    body: &[u8],
    plan: &Plan,
    o: &MockOptions,
    ledger: &Ledger,
) -> Reply {
    match (method, path) {
        ("GET", "/health") => Reply::json(200, json!({"status": "ok", "service": "tollgate-mock"})),
        ("GET", "/ledger") => Reply::json(200, ledger.snapshot()),
        ("POST", "/ledger/reset") => {
            ledger.reset();
            Reply::json(200, json!({"reset": true}))
        }
        ("GET", "/v1/models") => Reply::json(
            200,
            json!({
                "object": "list",
                "data": o.models.iter().map(|m| json!({"id": m, "object": "model", "owned_by": "tollgate-mock"})).collect::<Vec<_>>(),
            }),
        ),
        ("POST", "/v1/chat/completions") => chat_completions(body, plan, ledger),
        ("POST", "/chat") => lab_chat(body, plan, ledger),
        ("POST", "/v1/messages") => messages(body, plan, ledger),
        ("POST", "/v1/responses") => responses(body, plan, ledger),
        ("POST", "/v1/embeddings") => embeddings(body, ledger),
        ("POST", _) if bedrock::operation(path).is_some() => {
            bedrock::converse(path, headers, body, plan, ledger)
        }
        _ => Reply::json(
            404,
            json!({"error": {"message": "not found", "type": "not_found"}}),
        ),
    }
}

fn words(n: u64) -> Vec<String> {
    (0..n).map(|i| format!("w{i} ")).collect()
}

/// The OpenAI Responses API: JSON with `usage`, or its typed event stream
/// (`response.created`, `response.output_text.delta` per token, `response.completed` with the
/// usage). Input tokens count every text of `instructions` and `input` (a string, or items:
/// message contents, function-call arguments and outputs).
fn responses(body: &[u8], plan: &Plan, ledger: &Ledger) -> Reply {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return bad_request("body is not JSON");
    };
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock")
        .to_string();
    let instructions = req
        .get("instructions")
        .and_then(Value::as_str)
        .map_or(0, count_tokens);
    let input: u64 = instructions
        + match req.get("input") {
            Some(Value::String(s)) => count_tokens(s),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    message_tokens(item)
                        + ["arguments", "output"]
                            .iter()
                            .filter_map(|k| item.get(*k).and_then(Value::as_str))
                            .map(count_tokens)
                            .sum::<u64>()
                })
                .sum(),
            _ => return bad_request("input is required"),
        };
    let cap = req
        .get("max_output_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let output = plan.tokens(cap);
    let streaming = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    ledger.add_tokens(input, if streaming { 0 } else { output });
    let usage = json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input + output});
    let text = plan.pieces(output).concat();
    let status = if output < plan.tokens(u64::MAX) {
        "incomplete"
    } else {
        "completed"
    };
    let response = |status: &str, text: &str, usage: Value| {
        json!({"id": "resp_mock", "object": "response", "created_at": 1_700_000_000u64,
            "status": status, "model": model,
            "output": if text.is_empty() && status == "in_progress" { json!([]) } else { json!([
                {"type": "message", "id": "msg_mock", "status": status, "role": "assistant",
                 "content": [{"type": "output_text", "text": text, "annotations": []}]}]) },
            "usage": usage})
    };
    if !streaming {
        return Reply::json(200, response(status, &text, usage));
    }
    let event = |name: &str, v: Value| Bytes::from(format!("event: {name}\ndata: {v}\n\n"));
    let mut events = vec![(
        event(
            "response.created",
            json!({"type": "response.created", "sequence_number": 0,
                "response": response("in_progress", "", Value::Null)}),
        ),
        0,
    )];
    for (i, w) in plan.pieces(output).into_iter().enumerate() {
        let delta = event(
            "response.output_text.delta",
            json!({"type": "response.output_text.delta", "sequence_number": i + 1,
                "item_id": "msg_mock", "output_index": 0, "content_index": 0, "delta": w}),
        );
        let delta = match std::str::from_utf8(&delta) {
            Ok(t) if plan.escape => Bytes::from(plan.escaped(t.to_string(), &w)),
            _ => delta,
        };
        events.push((delta, 1));
    }
    let terminal = format!("response.{status}");
    events.push((
        event(
            &terminal,
            json!({"type": terminal, "sequence_number": output + 1,
                "response": response(status, &text, if plan.no_usage { Value::Null } else { usage }) }),
        ),
        0,
    ));
    Reply::Stream {
        content_type: SSE,
        events,
    }
}

fn bad_request(msg: &str) -> Reply {
    Reply::json(
        400,
        json!({"error": {"message": msg, "type": "invalid_request_error"}}),
    )
}

fn chat_completions(body: &[u8], plan: &Plan, ledger: &Ledger) -> Reply {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return bad_request("body is not JSON");
    };
    let Some(messages) = req.get("messages").and_then(Value::as_array) else {
        return bad_request("messages is required");
    };
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock")
        .to_string();
    let prompt_tokens: u64 = messages.iter().map(message_tokens).sum();
    let cap = req
        .get("max_completion_tokens")
        .or_else(|| req.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let completion_tokens = plan.tokens(cap);
    let streaming = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = req
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // A stream's completion tokens are counted as they are delivered (see `Reply::Stream`).
    ledger.add_tokens(prompt_tokens, if streaming { 0 } else { completion_tokens });
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let id = "chatcmpl-mock";
    let created = 1_700_000_000u64;
    if !streaming {
        return Reply::json(
            200,
            json!({
                "id": id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": plan.pieces(completion_tokens).concat()}, "finish_reason": "stop"}],
                "usage": usage,
            }),
        );
    }
    let chunk = |delta: Value, finish: Value| {
        let v = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        sse(&v.to_string())
    };
    let (first, finish) = if plan.tool_calls {
        let call = json!([{"index": 0, "id": "call_mock", "type": "function",
            "function": {"name": "lookup", "arguments": ""}}]);
        (
            json!({"role": "assistant", "tool_calls": call}),
            "tool_calls",
        )
    } else {
        (json!({"role": "assistant", "content": ""}), "stop")
    };
    let mut events = vec![(chunk(first, Value::Null), 0)];
    for w in plan.pieces(completion_tokens) {
        let delta = if plan.tool_calls {
            json!({"tool_calls": [{"index": 0, "function": {"arguments": w}}]})
        } else {
            json!({"content": w})
        };
        let event = chunk(delta, Value::Null);
        let event = match std::str::from_utf8(&event) {
            Ok(text) if plan.escape => Bytes::from(plan.escaped(text.to_string(), &w)),
            _ => event,
        };
        events.push((event, 1));
    }
    events.push((chunk(json!({}), json!(finish)), 0));
    if include_usage && !plan.no_usage {
        let v = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": usage,
        });
        events.push((sse(&v.to_string()), 0));
    }
    events.push((sse("[DONE]"), 0));
    Reply::Stream {
        content_type: SSE,
        events,
    }
}

/// The Anthropic Messages API: JSON with `usage`, or its event stream (usage in
/// `message_start` and the final `message_delta`).
fn messages(body: &[u8], plan: &Plan, ledger: &Ledger) -> Reply {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return anthropic_error("body is not JSON");
    };
    let Some(msgs) = req.get("messages").and_then(Value::as_array) else {
        return anthropic_error("messages: field required");
    };
    let Some(cap) = req.get("max_tokens").and_then(Value::as_u64) else {
        return anthropic_error("max_tokens: field required");
    };
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock")
        .to_string();
    let system = match req.get("system") {
        Some(Value::String(s)) => count_tokens(s),
        Some(Value::Array(parts)) => parts.iter().map(part_tokens).sum(),
        _ => 0,
    };
    let input: u64 = system
        + msgs
            .iter()
            .map(|m| match m.get("content") {
                Some(Value::String(s)) => count_tokens(s),
                Some(Value::Array(parts)) => parts.iter().map(part_tokens).sum(),
                _ => 0,
            })
            .sum::<u64>();
    let output = plan.tokens(cap);
    let streaming = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    ledger.add_tokens(input, if streaming { 0 } else { output });
    if !streaming {
        return Reply::json(
            200,
            json!({
                "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": plan.pieces(output).concat()}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": input, "output_tokens": output},
            }),
        );
    }
    let event = |name: &str, v: Value| Bytes::from(format!("event: {name}\ndata: {v}\n\n"));
    let mut events = vec![
        (
            event(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant",
                    "model": model, "content": [], "usage": {"input_tokens": input, "output_tokens": 1}}}),
            ),
            0,
        ),
        (
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            0,
        ),
    ];
    for w in plan.pieces(output) {
        let delta = event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}),
        );
        let delta = match std::str::from_utf8(&delta) {
            Ok(text) if plan.escape => Bytes::from(plan.escaped(text.to_string(), &w)),
            _ => delta,
        };
        events.push((delta, 1));
    }
    events.push((
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        0,
    ));
    events.push((
        event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": output}}),
        ),
        0,
    ));
    events.push((event("message_stop", json!({"type": "message_stop"})), 0));
    Reply::Stream {
        content_type: SSE,
        events,
    }
}

fn part_tokens(p: &Value) -> u64 {
    p.get("text")
        .and_then(Value::as_str)
        .map(count_tokens)
        .unwrap_or(0)
}

fn anthropic_error(msg: &str) -> Reply {
    Reply::json(
        400,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": msg}}),
    )
}

/// OpenAI embeddings: one 8-dimensional vector per input, `usage.prompt_tokens`.
fn embeddings(body: &[u8], ledger: &Ledger) -> Reply {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return bad_request("body is not JSON");
    };
    let inputs: Vec<u64> = match req.get("input") {
        Some(Value::String(s)) => vec![count_tokens(s)],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => count_tokens(s),
                Value::Array(ids) => ids.len() as u64,
                _ => 1,
            })
            .collect(),
        _ => return bad_request("input is required"),
    };
    let model = req.get("model").and_then(Value::as_str).unwrap_or("mock");
    let tokens: u64 = inputs.iter().sum();
    ledger.add_tokens(tokens, 0);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let v: Vec<f64> = (0..8)
                .map(|d| ((i as u64 + d + n) % 7) as f64 / 7.0)
                .collect();
            json!({"object": "embedding", "index": i, "embedding": v})
        })
        .collect();
    Reply::json(
        200,
        json!({"object": "list", "data": data, "model": model,
               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

fn sse(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

fn message_tokens(m: &Value) -> u64 {
    match m.get("content") {
        Some(Value::String(s)) => count_tokens(s),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(count_tokens)
            .sum(),
        _ => 0,
    }
}

fn lab_chat(body: &[u8], plan: &Plan, ledger: &Ledger) -> Reply {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return Reply::json(422, json!({"detail": "body is not JSON"}));
    };
    let Some(message) = req.get("message").and_then(Value::as_str) else {
        return Reply::json(422, json!({"detail": "message is required"}));
    };
    let session_id = req
        .get("session_id")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let completion_tokens = plan.tokens(u64::MAX);
    ledger.add_tokens(count_tokens(message), completion_tokens);
    let turn = ledger.turn(session_id);
    Reply::json(
        200,
        json!({"response": plan.pieces(completion_tokens).concat(), "session_id": session_id, "turn": turn}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan::from_request(&MockOptions::default(), &http::HeaderMap::new())
    }

    #[test]
    fn non_streaming_answer_reports_usage_and_feeds_the_ledger() {
        let ledger = Ledger::default();
        let body = br#"{"model":"gpt-4","max_tokens":3,"messages":[{"role":"user","content":"12345678"}]}"#;
        let Reply::Whole { status, body, .. } = chat_completions(body, &plan(), &ledger) else {
            panic!("whole reply expected")
        };
        assert_eq!(status, 200);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["usage"]["prompt_tokens"], 2);
        assert_eq!(v["usage"]["completion_tokens"], 3);
        assert_eq!(ledger.snapshot()["completion_tokens"], 3);
    }

    #[test]
    fn stream_ends_with_usage_only_when_asked_then_done() {
        let ledger = Ledger::default();
        let with = br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
        let Reply::Stream { events, .. } = chat_completions(with, &plan(), &ledger) else {
            panic!("stream expected")
        };
        assert_eq!(events.last().unwrap().0, Bytes::from("data: [DONE]\n\n"));
        assert!(String::from_utf8_lossy(&events[events.len() - 2].0).contains("\"usage\""));
        assert_eq!(
            events.iter().map(|e| e.1).sum::<u64>(),
            16,
            "one token per content event"
        );
        let without = br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        let Reply::Stream { events, .. } = chat_completions(without, &plan(), &ledger) else {
            panic!("stream expected")
        };
        assert!(events
            .iter()
            .all(|e| !String::from_utf8_lossy(&e.0).contains("\"usage\"")));
    }

    #[test]
    fn headers_override_the_process_plan() {
        let mut h = http::HeaderMap::new();
        h.insert("x-mock-status", "503".parse().unwrap());
        h.insert("x-mock-chunks", "2".parse().unwrap());
        let p = Plan::from_request(&MockOptions::default(), &h);
        assert_eq!((p.fault_status, p.chunks), (Some(503), 2));
    }

    #[test]
    fn the_responses_api_answers_whole_and_streamed_with_usage() {
        let ledger = Ledger::default();
        let body = br#"{"model":"gpt-4o","instructions":"be brief","input":[
            {"role":"user","content":[{"type":"input_text","text":"hello there"}]},
            {"type":"function_call_output","call_id":"c","output":"42 results"}],
            "max_output_tokens":3}"#;
        let Reply::Whole { body: answer, .. } = responses(body, &plan(), &ledger) else {
            panic!("a JSON answer");
        };
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(v["status"], "incomplete", "cut at 3 of 16 tokens");
        assert_eq!(v["usage"]["output_tokens"], 3);
        assert_eq!(v["usage"]["input_tokens"], 2 + 3 + 3);
        assert_eq!(v["output"][0]["content"][0]["text"], "w0 w1 w2 ");
        let streamed = br#"{"model":"gpt-4o","input":"hi","stream":true}"#;
        let Reply::Stream { events, .. } = responses(streamed, &plan(), &ledger) else {
            panic!("a stream");
        };
        let last = String::from_utf8(events.last().unwrap().0.to_vec()).unwrap();
        assert!(last.starts_with("event: response.completed\n"), "{last}");
        assert!(last.contains("\"output_tokens\":16"), "{last}");
        assert_eq!(events.len(), 16 + 2);
    }
}
