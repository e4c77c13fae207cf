//! What the mock answers: plain functions from a request to a [`Reply`].

use super::{bedrock, count_tokens, gemini, Ledger, MockOptions};
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
    /// Answer chat completions with a tool call instead of text: a call to the request's first
    /// tool (else `lookup`) whose arguments, `{"q": <the answer>}`, are streamed in pieces.
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
    pub(super) fn json(status: u16, v: Value) -> Reply {
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
        ) || gemini::route_of(path).is_some()
            || bedrock::operation(path).is_some())
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
        ("POST", p) if gemini::route_of(p).is_some() => gemini::generate(p, body, plan, ledger),
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
        "prompt_tokens_details": {"cached_tokens": plan.cache_read.min(prompt_tokens)},
    });
    let id = "chatcmpl-mock";
    let created = 1_700_000_000u64;
    // A tool call names the request's first tool, as a model would; its arguments are the
    // answer's pieces inside one JSON object.
    let tool = req
        .pointer("/tools/0/function/name")
        .and_then(Value::as_str)
        .unwrap_or("lookup");
    let pieces = plan.pieces(completion_tokens);
    if !streaming {
        let text = pieces.concat();
        let (message, finish) = if plan.tool_calls {
            let call = json!({"id": "call_mock", "type": "function",
                "function": {"name": tool, "arguments": json!({"q": text}).to_string()}});
            (
                json!({"role": "assistant", "content": null, "tool_calls": [call]}),
                "tool_calls",
            )
        } else {
            (json!({"role": "assistant", "content": text}), "stop")
        };
        return Reply::json(
            200,
            json!({
                "id": id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
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
    let (first, finish, pieces) = if plan.tool_calls {
        // `{"q":"` opens the first piece and `"}` closes the last, so the pieces joined are
        // valid JSON and each still carries one token.
        let args: Vec<String> = if pieces.is_empty() {
            Vec::new()
        } else {
            input_pieces(&pieces).into_iter().map(|(a, _)| a).collect()
        };
        let empty = if args.is_empty() { "{}" } else { "" };
        let call = json!([{"index": 0, "id": "call_mock", "type": "function",
            "function": {"name": tool, "arguments": empty}}]);
        (
            json!({"role": "assistant", "content": null, "tool_calls": call}),
            "tool_calls",
            args,
        )
    } else {
        (json!({"role": "assistant", "content": ""}), "stop", pieces)
    };
    let mut events = vec![(chunk(first, Value::Null), 0)];
    for w in pieces {
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
/// `message_start` and the final `message_delta`). With `x-mock-tool-calls` the answer is one
/// `tool_use` block calling the request's first tool (else `lookup`) with `{"q": <the words>}`,
/// its input streamed as one `input_json_delta` per completion token. `x-mock-cache-read` and
/// `x-mock-cache-write` are reported as the prompt cache's reads and writes, left out of
/// `input_tokens` as Anthropic does.
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
    let usage = json!({
        "input_tokens": input.saturating_sub(plan.cache_read).saturating_sub(plan.cache_write),
        "output_tokens": output,
        "cache_read_input_tokens": plan.cache_read,
        "cache_creation_input_tokens": plan.cache_write,
    });
    let pieces = plan.pieces(output);
    let tool = plan.tool_calls.then(|| {
        req.pointer("/tools/0/name")
            .and_then(Value::as_str)
            .unwrap_or("lookup")
            .to_string()
    });
    let stop_reason = if tool.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    if !streaming {
        let block = match &tool {
            Some(name) => json!({"type": "tool_use", "id": "toolu_mock", "name": name,
                "input": {"q": pieces.concat()}}),
            None => json!({"type": "text", "text": pieces.concat()}),
        };
        return Reply::json(
            200,
            json!({
                "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                "content": [block],
                "stop_reason": stop_reason, "stop_sequence": null,
                "usage": usage,
            }),
        );
    }
    let event = |name: &str, v: Value| Bytes::from(format!("event: {name}\ndata: {v}\n\n"));
    let mut start_usage = usage;
    start_usage["output_tokens"] = json!(1);
    let block = match &tool {
        Some(name) => json!({"type": "tool_use", "id": "toolu_mock", "name": name, "input": {}}),
        None => json!({"type": "text", "text": ""}),
    };
    let mut events = vec![
        (
            event(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant",
                    "model": model, "content": [], "usage": start_usage}}),
            ),
            0,
        ),
        (
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": block}),
            ),
            0,
        ),
    ];
    let deltas: Vec<(String, u64)> = match tool {
        Some(_) => input_pieces(&pieces),
        None => pieces.into_iter().map(|w| (w, 1)).collect(),
    };
    for (piece, tokens) in deltas {
        let delta = if plan.tool_calls {
            json!({"type": "input_json_delta", "partial_json": piece})
        } else {
            json!({"type": "text_delta", "text": piece})
        };
        let delta = event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        );
        let delta = match std::str::from_utf8(&delta) {
            Ok(text) if plan.escape => Bytes::from(plan.escaped(text.to_string(), &piece)),
            _ => delta,
        };
        events.push((delta, tokens));
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
            json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output}}),
        ),
        0,
    ));
    events.push((event("message_stop", json!({"type": "message_stop"})), 0));
    Reply::Stream {
        content_type: SSE,
        events,
    }
}

/// The tool input `{"q": <pieces joined>}` as JSON text in pieces, one per answer piece and
/// completion token: the first carries the object's opening, the last its closing (no pieces:
/// the whole empty input, carrying no token).
pub(super) fn input_pieces(pieces: &[String]) -> Vec<(String, u64)> {
    if pieces.is_empty() {
        return vec![(r#"{"q":""}"#.to_string(), 0)];
    }
    let last = pieces.len() - 1;
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            // The piece as it reads inside a JSON string (escaped, without its quotes).
            let quoted = Value::from(p.as_str()).to_string();
            let inner = quoted
                .strip_prefix('"')
                .and_then(|q| q.strip_suffix('"'))
                .unwrap_or_default();
            let open = if i == 0 { r#"{"q":""# } else { "" };
            let close = if i == last { r#""}"# } else { "" };
            (format!("{open}{inner}{close}"), 1)
        })
        .collect()
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
    fn a_tool_call_answer_names_the_first_tool_with_json_arguments() {
        let ledger = Ledger::default();
        let plan = plan_with(&[("x-mock-tool-calls", "1"), ("x-mock-chunks", "3")]);
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],
            "tools":[{"type":"function","function":{"name":"get_weather"}}]}"#;
        let Reply::Whole { body: answer, .. } = chat_completions(body, &plan, &ledger) else {
            panic!("whole reply expected")
        };
        let v: Value = serde_json::from_slice(&answer).unwrap();
        let message = &v["choices"][0]["message"];
        assert_eq!(message["content"], Value::Null);
        assert_eq!(message["tool_calls"][0]["id"], "call_mock");
        assert_eq!(message["tool_calls"][0]["type"], "function");
        assert_eq!(message["tool_calls"][0]["function"]["name"], "get_weather");
        let args = message["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(args).unwrap(),
            json!({"q": "w0 w1 w2 "})
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["usage"]["completion_tokens"], 3);
        // Without tools in the request, the call is to `lookup`.
        let bare = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        let Reply::Whole { body: answer, .. } = chat_completions(bare, &plan, &ledger) else {
            panic!("whole reply expected")
        };
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
            "lookup"
        );
    }

    #[test]
    fn a_streamed_tool_call_joins_into_json_one_token_per_piece() {
        let ledger = Ledger::default();
        let plan = plan_with(&[
            ("x-mock-tool-calls", "1"),
            ("x-mock-answer", "say \"hi\"|there"),
        ]);
        let body = br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],
            "tools":[{"type":"function","function":{"name":"get_weather"}}]}"#;
        let Reply::Stream { events, .. } = chat_completions(body, &plan, &ledger) else {
            panic!("stream expected")
        };
        let mut name = None;
        let mut args = String::new();
        for (event, _) in &events {
            let text = String::from_utf8_lossy(event);
            let Some(data) = text.trim().strip_prefix("data: ") else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            let call = &v["choices"][0]["delta"]["tool_calls"][0]["function"];
            if let Some(n) = call["name"].as_str() {
                name = Some(n.to_string());
            }
            args.push_str(call["arguments"].as_str().unwrap_or(""));
        }
        assert_eq!(name.as_deref(), Some("get_weather"));
        assert_eq!(
            serde_json::from_str::<Value>(&args).unwrap(),
            json!({"q": "say \"hi\"there"})
        );
        assert_eq!(
            events.iter().map(|e| e.1).sum::<u64>(),
            2,
            "one token per piece"
        );
        assert!(String::from_utf8_lossy(&events[events.len() - 2].0).contains("tool_calls"));
    }

    #[test]
    fn cache_reads_are_reported_as_cached_prompt_tokens() {
        let ledger = Ledger::default();
        let body = br#"{"model":"m","messages":[{"role":"user","content":"12345678"}]}"#;
        let answer = |plan: &Plan| {
            let Reply::Whole { body, .. } = chat_completions(body, plan, &ledger) else {
                panic!("whole reply expected")
            };
            serde_json::from_slice::<Value>(&body).unwrap()
        };
        let v = answer(&plan_with(&[("x-mock-cache-read", "1")]));
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 1);
        let v = answer(&plan_with(&[("x-mock-cache-read", "50")]));
        assert_eq!(
            v["usage"]["prompt_tokens_details"]["cached_tokens"], 2,
            "never more than the prompt"
        );
        assert_eq!(
            answer(&plan())["usage"]["prompt_tokens_details"]["cached_tokens"],
            0
        );
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

    fn plan_with(headers: &[(&'static str, &str)]) -> Plan {
        let mut h = http::HeaderMap::new();
        for (name, value) in headers {
            h.insert(*name, value.parse().unwrap());
        }
        Plan::from_request(&MockOptions::default(), &h)
    }

    /// The data of each event of a stream reply, and the tokens the events carry.
    fn stream_data(reply: Reply) -> (Vec<Value>, u64) {
        let Reply::Stream { events, .. } = reply else {
            panic!("a stream");
        };
        let tokens = events.iter().map(|e| e.1).sum();
        let data = events
            .iter()
            .map(|(bytes, _)| {
                let text = std::str::from_utf8(bytes).unwrap();
                let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                serde_json::from_str(data).unwrap()
            })
            .collect();
        (data, tokens)
    }

    #[test]
    fn messages_answer_with_a_tool_use_block_calling_the_first_tool_when_asked() {
        let ledger = Ledger::default();
        let plan = plan_with(&[("x-mock-tool-calls", "1"), ("x-mock-chunks", "3")]);
        let body =
            br#"{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}],
            "tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}"#;
        let Reply::Whole { body: answer, .. } = messages(body, &plan, &ledger) else {
            panic!("a JSON answer");
        };
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(
            v["content"],
            json!([{"type": "tool_use", "id": "toolu_mock", "name": "get_weather",
                "input": {"q": "w0 w1 w2 "}}])
        );
        assert_eq!(v["stop_reason"], "tool_use");
        let bare =
            br#"{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
        let Reply::Whole { body: answer, .. } = messages(bare, &plan, &ledger) else {
            panic!("a JSON answer");
        };
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(v["content"][0]["name"], "lookup");
    }

    #[test]
    fn streamed_tool_use_input_comes_in_one_piece_per_token_joining_into_the_whole_input() {
        let body = br#"{"model":"claude","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        for escape in [false, true] {
            let mut headers = vec![("x-mock-tool-calls", "1"), ("x-mock-answer", "a\"b|c|d")];
            if escape {
                headers.push(("x-mock-answer-escape", "1"));
            }
            let plan = plan_with(&headers);
            if let Reply::Stream { events, .. } = messages(body, &plan, &Ledger::default()) {
                let raw = String::from_utf8_lossy(&events[2].0).into_owned();
                assert_eq!(raw.contains("\\u007b"), escape, "{raw}");
            }
            let (data, tokens) = stream_data(messages(body, &plan, &Ledger::default()));
            assert_eq!(tokens, 3, "one token per piece");
            assert_eq!(
                data[1]["content_block"],
                json!({"type": "tool_use", "id": "toolu_mock", "name": "lookup", "input": {}})
            );
            let input: String = data
                .iter()
                .filter_map(|d| d.pointer("/delta/partial_json").and_then(Value::as_str))
                .collect();
            assert_eq!(input, json!({"q": "a\"bcd"}).to_string());
            let delta = data.iter().find(|d| d["type"] == "message_delta").unwrap();
            assert_eq!(delta["delta"]["stop_reason"], "tool_use");
        }
        // No completion tokens: the whole (empty) input in one piece.
        let none = plan_with(&[("x-mock-tool-calls", "1"), ("x-mock-chunks", "0")]);
        let (data, tokens) = stream_data(messages(body, &none, &Ledger::default()));
        assert_eq!(tokens, 0);
        assert_eq!(data[2]["delta"]["partial_json"], r#"{"q":""}"#);
    }

    #[test]
    fn messages_report_cache_reads_and_writes_beside_a_smaller_input_count() {
        let plan = plan_with(&[("x-mock-cache-read", "3"), ("x-mock-cache-write", "2")]);
        // "be brief" and "12345678": 2 + 2 prompt tokens, as the mock counts.
        let body = br#"{"model":"claude","max_tokens":4,"system":"be brief","messages":[{"role":"user","content":"12345678"}]}"#;
        let Reply::Whole { body: answer, .. } = messages(body, &plan, &Ledger::default()) else {
            panic!("a JSON answer");
        };
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(
            v["usage"],
            json!({"input_tokens": 0, "output_tokens": 4, "cache_read_input_tokens": 3,
                "cache_creation_input_tokens": 2}),
            "4 − 3 − 2 saturates at 0"
        );
        let plan = plan_with(&[("x-mock-cache-read", "1"), ("x-mock-cache-write", "2")]);
        let u =
            crate::protocol::anthropic::usage(&match messages(body, &plan, &Ledger::default()) {
                Reply::Whole { body, .. } => body,
                Reply::Stream { .. } => panic!("a JSON answer"),
            })
            .unwrap();
        assert_eq!((u.input, u.cached, u.cache_write, u.output), (4, 1, 2, 4));
        let streamed = br#"{"model":"claude","max_tokens":4,"stream":true,"system":"be brief","messages":[{"role":"user","content":"12345678"}]}"#;
        let (data, _) = stream_data(messages(streamed, &plan, &Ledger::default()));
        assert_eq!(
            data[0]["message"]["usage"],
            json!({"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": 1,
                "cache_creation_input_tokens": 2})
        );
        let mut state = crate::protocol::anthropic::StreamState::default();
        for d in &data {
            state.observe(&d.to_string());
        }
        let u = state.usage().unwrap();
        assert_eq!((u.input, u.cached, u.cache_write, u.output), (4, 1, 2, 4));
    }
}
