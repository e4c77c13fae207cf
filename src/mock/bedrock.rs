//! The mock's AWS Bedrock Runtime: `POST /model/{modelId}/converse` (a JSON answer) and
//! `POST /model/{modelId}/converse-stream` (AWS event-stream binary frames).
//!
//! A request must carry a SigV4 `authorization` header for the `bedrock` service (its shape is
//! checked, not its signature: the mock knows no secret) and `x-amz-date`, else 403 with
//! Bedrock's error body `{"message": …}`. Prompt tokens are counted over every text the model
//! reads (system, text blocks, tool-use inputs as JSON, tool results); the plan's prompt-cache
//! reads and writes are reported apart (`cacheReadInputTokens`, `cacheWriteInputTokens`) and
//! taken out of `inputTokens`, as Bedrock reports them. With `x-mock-tool-calls` the answer is a
//! `toolUse` of the request's first tool, input `{"q": <the answer's words>}`.

use super::reply::{Plan, Reply};
use super::{count_tokens, Ledger};
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};

/// The content type of a ConverseStream body.
pub const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// The tool-use id of the mock's tool calls.
const TOOL_USE_ID: &str = "tooluse_mock0123456789";

/// The (still percent-encoded) model id of a Converse path, and whether it is the stream.
pub fn operation(path: &str) -> Option<(&str, bool)> {
    let (model, op) = path.strip_prefix("/model/")?.split_once('/')?;
    let stream = match op {
        "converse" => false,
        "converse-stream" => true,
        _ => return None,
    };
    (!model.is_empty()).then_some((model, stream))
}

fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, json!({ "message": message }))
}

/// What is wrong with the request's SigV4 headers, if anything.
fn unsigned(headers: &http::HeaderMap) -> Option<&'static str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(auth) = header("authorization") else {
        return Some("Missing Authentication Token");
    };
    let Some(params) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Some("Authorization header must use AWS4-HMAC-SHA256");
    };
    let param = |name: &str| {
        params
            .split(',')
            .find_map(|p| p.trim().strip_prefix(name)?.strip_prefix('='))
    };
    let scope: Vec<&str> = param("Credential").unwrap_or("").split('/').collect();
    let [key, date, region, service, terminator] = scope.as_slice() else {
        return Some("Authorization header requires a Credential of five parts");
    };
    if key.is_empty()
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
        || region.is_empty()
        || *service != "bedrock"
        || *terminator != "aws4_request"
    {
        return Some(
            "Credential should be scoped to <key>/<yyyymmdd>/<region>/bedrock/aws4_request",
        );
    }
    let signed: Vec<&str> = param("SignedHeaders").unwrap_or("").split(';').collect();
    if !signed.contains(&"host") || !signed.contains(&"x-amz-date") {
        return Some("SignedHeaders must include host and x-amz-date");
    }
    let signature = param("Signature").unwrap_or("");
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Some("Signature must be 64 lowercase hexadecimal characters");
    }
    match header("x-amz-date") {
        Some(at) if at.len() == 16 && at.starts_with(*date) && at.ends_with('Z') => None,
        _ => Some("x-amz-date must be present and match the credential's date"),
    }
}

/// Prompt tokens of one content block: its text, a tool use's input, a tool result's content.
fn block_tokens(block: &Value) -> u64 {
    let mut n = block
        .get("text")
        .and_then(Value::as_str)
        .map_or(0, count_tokens);
    if let Some(input) = block.pointer("/toolUse/input") {
        n += count_tokens(&input.to_string());
    }
    if let Some(items) = block
        .pointer("/toolResult/content")
        .and_then(Value::as_array)
    {
        for item in items {
            n += match (item.get("text").and_then(Value::as_str), item.get("json")) {
                (Some(text), _) => count_tokens(text),
                (None, Some(v)) => count_tokens(&v.to_string()),
                _ => 0,
            };
        }
    }
    n
}

/// One ConverseStream event as an event-stream frame.
fn frame(event_type: &str, payload: String) -> Bytes {
    let headers = vec![
        Header::new(
            ":event-type",
            HeaderValue::String(event_type.to_string().into()),
        ),
        Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ),
        Header::new(":message-type", HeaderValue::String("event".into())),
    ];
    let mut out = BytesMut::new();
    match write_message_to(&Message::new_from_parts(headers, payload), &mut out) {
        Ok(()) => out.freeze(),
        Err(_) => Bytes::new(),
    }
}

/// `POST /model/{modelId}/converse` and `/converse-stream`.
pub fn converse(
    path: &str,
    headers: &http::HeaderMap,
    body: &[u8],
    plan: &Plan,
    ledger: &Ledger,
) -> Reply {
    let Some((_, streaming)) = operation(path) else {
        return error(404, "not found");
    };
    if let Some(problem) = unsigned(headers) {
        return error(403, problem);
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return error(
            400,
            "Malformed input request, please reformat your input and try again.",
        );
    };
    let Some(messages) = req.get("messages").and_then(Value::as_array) else {
        return error(400, "Malformed input request: #: required key [messages] not found, please reformat your input and try again.");
    };
    let blocks =
        |v: &Value| -> u64 { v.as_array().map_or(0, |b| b.iter().map(block_tokens).sum()) };
    let prompt = req.get("system").map_or(0, blocks)
        + messages
            .iter()
            .map(|m| m.get("content").map_or(0, blocks))
            .sum::<u64>();
    let cap = req
        .pointer("/inferenceConfig/maxTokens")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let output = plan.tokens(cap);
    // The cache's share of the prompt, as Bedrock reports it: apart from `inputTokens`.
    let cache_read = plan.cache_read.min(prompt);
    let cache_write = plan.cache_write.min(prompt - cache_read);
    let usage = json!({
        "inputTokens": prompt - cache_read - cache_write,
        "outputTokens": output,
        "totalTokens": prompt + output,
        "cacheReadInputTokens": cache_read,
        "cacheWriteInputTokens": cache_write,
    });
    let metrics = json!({"latencyMs": plan.latency_ms});
    let tool = plan.tool_calls.then(|| {
        req.pointer("/toolConfig/tools/0/toolSpec/name")
            .and_then(Value::as_str)
            .unwrap_or("lookup")
            .to_string()
    });
    let stop = match &tool {
        Some(_) => "tool_use",
        None if output < plan.tokens(u64::MAX) => "max_tokens",
        None => "end_turn",
    };
    let pieces = plan.pieces(output);
    ledger.add_tokens(prompt, if streaming { 0 } else { output });

    if !streaming {
        let content = match &tool {
            Some(name) => json!([{"toolUse": {"toolUseId": TOOL_USE_ID, "name": name,
                "input": {"q": pieces.concat()}}}]),
            None => json!([{"text": pieces.concat()}]),
        };
        return Reply::json(
            200,
            json!({"output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop, "usage": usage, "metrics": metrics}),
        );
    }

    let mut events = vec![(
        frame("messageStart", json!({"role": "assistant"}).to_string()),
        0,
    )];
    if let Some(name) = &tool {
        events.push((
            frame(
                "contentBlockStart",
                json!({"contentBlockIndex": 0,
                    "start": {"toolUse": {"toolUseId": TOOL_USE_ID, "name": name}}})
                .to_string(),
            ),
            0,
        ));
        // The input `{"q":"…"}` in one piece per completion token.
        for (input, tokens) in super::reply::input_pieces(&pieces) {
            let delta =
                json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": input}}}).to_string();
            events.push((frame("contentBlockDelta", delta), tokens));
        }
    } else {
        for w in &pieces {
            let delta = json!({"contentBlockIndex": 0, "delta": {"text": w}}).to_string();
            events.push((frame("contentBlockDelta", plan.escaped(delta, w)), 1));
        }
    }
    events.push((
        frame(
            "contentBlockStop",
            json!({"contentBlockIndex": 0}).to_string(),
        ),
        0,
    ));
    events.push((
        frame("messageStop", json!({"stopReason": stop}).to_string()),
        0,
    ));
    if !plan.no_usage {
        events.push((
            frame(
                "metadata",
                json!({"usage": usage, "metrics": metrics}).to_string(),
            ),
            0,
        ));
    }
    Reply::Stream {
        content_type: EVENT_STREAM,
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockOptions;
    use crate::protocol::translate::bedrock::Decoder;
    use crate::protocol::translate::{Event, Finish, StreamDecoder};
    use crate::usage::Usage;

    const PATH: &str = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";
    const STREAM_PATH: &str = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream";
    const SIGNATURE: &str = "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b";

    fn signed(extra: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240307/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={SIGNATURE}")
                .parse()
                .unwrap(),
        );
        h.insert("x-amz-date", "20240307T101500Z".parse().unwrap());
        for (name, value) in extra {
            h.insert(*name, value.parse().unwrap());
        }
        h
    }

    fn plan(headers: &http::HeaderMap) -> Plan {
        Plan::from_request(&MockOptions::default(), headers)
    }

    /// 2 + 2 + 1 + 4 prompt tokens (system, text, tool-use input `{}`, tool-result text) and a cap
    /// of 3.
    const BODY: &str = r#"{"system":[{"text":"be brief"}],"messages":[
        {"role":"user","content":[{"text":"hello!"}]},
        {"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"top_song","input":{}}}]},
        {"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"text":"Elemental Hotel"}]}}]}],
        "inferenceConfig":{"maxTokens":3},
        "toolConfig":{"tools":[{"toolSpec":{"name":"top_song","inputSchema":{"json":{"type":"object"}}}}]}}"#;
    const PROMPT: u64 = 2 + 2 + 1 + 4;

    fn whole(headers: &http::HeaderMap, ledger: &Ledger) -> (u16, Value) {
        let Reply::Whole { status, body, .. } =
            converse(PATH, headers, BODY.as_bytes(), &plan(headers), ledger)
        else {
            panic!("a JSON answer");
        };
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn converse_paths_are_model_routes_and_others_are_not() {
        assert_eq!(
            operation(PATH),
            Some(("anthropic.claude-3-haiku-20240307-v1%3A0", false))
        );
        assert_eq!(operation(STREAM_PATH).map(|o| o.1), Some(true));
        assert_eq!(operation("/model/x/invoke"), None);
        assert_eq!(operation("/model//converse"), None);
        assert!(super::super::reply::is_model_route("POST", STREAM_PATH));
        assert!(!super::super::reply::is_model_route("GET", PATH));
        let unsigned = http::HeaderMap::new();
        let reply = super::super::reply::route(
            "POST",
            PATH,
            &unsigned,
            BODY.as_bytes(),
            &plan(&unsigned),
            &MockOptions::default(),
            &Ledger::default(),
        );
        assert!(matches!(reply, Reply::Whole { status: 403, .. }));
    }

    #[test]
    fn a_request_without_sigv4_headers_is_forbidden_with_bedrocks_error_shape() {
        let ledger = Ledger::default();
        for headers in [
            http::HeaderMap::new(),
            {
                let mut h = signed(&[]);
                h.remove("x-amz-date");
                h
            },
            signed(&[(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKID/20240307/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            )]),
            signed(&[("authorization", "Bearer sk-123")]),
        ] {
            let (status, body) = whole(&headers, &ledger);
            assert_eq!(status, 403, "{body}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        }
        assert_eq!(ledger.snapshot()["prompt_tokens"], 0);
    }

    #[test]
    fn headers_from_the_gateways_signer_pass_the_check() {
        let creds = crate::config::AwsAuth {
            region: "us-east-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: crate::digest::Secret::new("secret".into()),
            session_token: None,
        };
        let host = "bedrock-runtime.us-east-1.amazonaws.com";
        let signed = crate::upstream::sigv4::sign(
            &creds,
            "bedrock",
            "POST",
            &format!("https://{host}{PATH}"),
            &[("host", host), ("content-type", "application/json")],
            BODY.as_bytes(),
            std::time::SystemTime::now(),
        )
        .unwrap();
        let mut headers = http::HeaderMap::new();
        for (name, value) in signed {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        assert_eq!(whole(&headers, &Ledger::default()).0, 200);
    }

    #[test]
    fn a_whole_answer_reports_usage_with_the_cache_apart_and_feeds_the_ledger() {
        let ledger = Ledger::default();
        let (status, v) = whole(&signed(&[]), &ledger);
        assert_eq!(status, 200);
        assert_eq!(v["output"]["message"]["content"][0]["text"], "w0 w1 w2 ");
        assert_eq!(v["stopReason"], "max_tokens", "cut at 3 of 16 tokens");
        assert_eq!(v["usage"]["inputTokens"], PROMPT);
        assert_eq!(v["usage"]["outputTokens"], 3);
        assert_eq!(ledger.snapshot()["prompt_tokens"], PROMPT);
        assert_eq!(ledger.snapshot()["completion_tokens"], 3);

        let (_, cached) = whole(
            &signed(&[("x-mock-cache-read", "4"), ("x-mock-cache-write", "3")]),
            &ledger,
        );
        let usage = &cached["usage"];
        assert_eq!(usage["inputTokens"], PROMPT - 7);
        assert_eq!(
            (
                usage["cacheReadInputTokens"].as_u64(),
                usage["cacheWriteInputTokens"].as_u64()
            ),
            (Some(4), Some(3))
        );
        assert_eq!(usage["totalTokens"], PROMPT + 3);
    }

    #[test]
    fn asked_for_tool_calls_the_answer_uses_the_first_tool() {
        let (_, v) = whole(&signed(&[("x-mock-tool-calls", "1")]), &Ledger::default());
        assert_eq!(v["stopReason"], "tool_use");
        let call = &v["output"]["message"]["content"][0]["toolUse"];
        assert_eq!(call["name"], "top_song");
        assert_eq!(call["input"], json!({"q": "w0 w1 w2 "}));
    }

    fn stream(headers: &http::HeaderMap, ledger: &Ledger) -> (Vec<(Bytes, u64)>, Vec<Event>) {
        let Reply::Stream {
            content_type,
            events,
        } = converse(
            STREAM_PATH,
            headers,
            BODY.as_bytes(),
            &plan(headers),
            ledger,
        )
        else {
            panic!("a stream");
        };
        assert_eq!(content_type, "application/vnd.amazon.eventstream");
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        for (frame, _) in &events {
            for byte in frame.chunks(1) {
                decoder.feed(byte, &mut out);
            }
        }
        decoder.end(&mut out);
        (events, out)
    }

    #[test]
    fn the_stream_frames_decode_into_text_finish_and_usage() {
        let ledger = Ledger::default();
        let (frames, events) = stream(&signed(&[("x-mock-cache-read", "2")]), &ledger);
        assert_eq!(
            events,
            vec![
                Event::Start {
                    id: String::new(),
                    model: String::new()
                },
                Event::Text("w0 ".into()),
                Event::Text("w1 ".into()),
                Event::Text("w2 ".into()),
                Event::Finish(Finish::Length),
                Event::Usage(Usage {
                    input: PROMPT,
                    output: 3,
                    cached: 2,
                    ..Usage::default()
                }),
            ]
        );
        assert_eq!(
            frames.iter().map(|f| f.1).sum::<u64>(),
            3,
            "one token per delta"
        );
        assert_eq!(ledger.snapshot()["prompt_tokens"], PROMPT);
        assert_eq!(
            ledger.snapshot()["completion_tokens"],
            0,
            "counted as delivered"
        );
    }

    #[test]
    fn a_streamed_tool_call_decodes_to_its_start_and_arguments() {
        let (_, events) = stream(
            &signed(&[("x-mock-tool-calls", "1"), ("x-mock-answer", "a\"|b")]),
            &Ledger::default(),
        );
        assert!(matches!(&events[1],
            Event::ToolCallStart { index: 0, id, name } if id == TOOL_USE_ID && name == "top_song"));
        let arguments: String = events
            .iter()
            .filter_map(|e| match e {
                Event::ToolCallArgs {
                    index: 0,
                    arguments,
                } => Some(arguments.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&arguments).unwrap(),
            json!({"q": "a\"b"})
        );
        assert!(events.contains(&Event::Finish(Finish::ToolCalls)));
    }

    #[test]
    fn no_usage_leaves_out_the_metadata_event() {
        let (_, events) = stream(&signed(&[("x-mock-no-usage", "1")]), &Ledger::default());
        assert!(!events.iter().any(|e| matches!(e, Event::Usage(_))));
        assert!(matches!(events.last(), Some(Event::Finish(_))));
    }
}
