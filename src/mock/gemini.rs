//! The mock's Gemini API (Google's Generative Language API): `POST
//! /v1beta/models/{model}:generateContent` answers a `GenerateContentResponse` with
//! `usageMetadata`; `:streamGenerateContent` answers server-sent events (as `alt=sse` does), one
//! chunk per completion token, each carrying the running `usageMetadata` as Gemini's do, the last
//! with the `finishReason`.
//!
//! Input: the path, the body and the request's [`Plan`]. Decision: the reply, and the tokens the
//! ledger counts. A body Gemini would refuse: 400 `INVALID_ARGUMENT` (Google's error shape
//! `{"error": {code, message, status}}`). No API key is required (the demo sends none); the
//! ledger records a digest of every header, so a test checks the key the gateway sent.
//!
//! Prompt tokens count every text the model reads: `systemInstruction`, each part's `text`, a
//! `functionCall`'s `args` and a `functionResponse`'s `response` as JSON. Output tokens are the
//! plan's (capped by `generationConfig.maxOutputTokens`, `MAX_TOKENS` when cut). `x-mock-tool-calls`
//! answers with a `functionCall` to the first declared function (`args: {"q": the answer}`);
//! `x-mock-thoughts` reports `thoughtsTokenCount` (produced tokens too: the ledger counts them as
//! output, with a stream's first chunk); `x-mock-cache-read` reports `cachedContentTokenCount`
//! (never above the prompt); `x-mock-no-usage` leaves `usageMetadata` out.

use super::reply::{Plan, Reply, SSE};
use super::{count_tokens, Ledger};
use bytes::Bytes;
use serde_json::{json, Value};

/// The response id every mock answer carries (Gemini's are opaque strings like this one).
const RESPONSE_ID: &str = "mockGeminiResponse0001";

/// The model and whether the answer streams, when `path` is a Gemini generate route.
pub fn route_of(path: &str) -> Option<(&str, bool)> {
    let rest = path.strip_prefix("/v1beta/models/")?;
    let (model, method) = rest.rsplit_once(':')?;
    if model.is_empty() || model.contains('/') {
        return None;
    }
    match method {
        "generateContent" => Some((model, false)),
        "streamGenerateContent" => Some((model, true)),
        _ => None,
    }
}

/// Google's error body.
fn error(code: u16, status: &str, message: &str) -> Reply {
    let v = json!({"error": {"code": code, "message": message, "status": status}});
    Reply::json(code, v)
}

/// `v[camel]`, or `v[snake]` (Google's JSON parser takes both spellings).
fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

/// Tokens of what the model reads in one part.
fn part_tokens(p: &Value) -> u64 {
    if let Some(t) = p.get("text").and_then(Value::as_str) {
        return count_tokens(t);
    }
    let json_tokens = |v: Option<&Value>| v.map_or(0, |v| count_tokens(&v.to_string()));
    if let Some(call) = field(p, "functionCall", "function_call") {
        return json_tokens(call.get("args"));
    }
    if let Some(result) = field(p, "functionResponse", "function_response") {
        return json_tokens(result.get("response"));
    }
    0
}

fn parts_tokens(content: &Value) -> u64 {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map_or(0, |parts| parts.iter().map(part_tokens).sum())
}

/// The first function the request declares.
fn first_function(req: &Value) -> Option<String> {
    req.get("tools")?.as_array()?.iter().find_map(|tool| {
        let declarations = field(tool, "functionDeclarations", "function_declarations")?;
        let name = declarations.as_array()?.first()?.get("name")?.as_str()?;
        Some(name.to_string())
    })
}

/// Answers a Gemini generate route (`path` as [`route_of`] reads it).
pub fn generate(path: &str, body: &[u8], plan: &Plan, ledger: &Ledger) -> Reply {
    let Some((model, streaming)) = route_of(path) else {
        return error(404, "NOT_FOUND", "not found");
    };
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    let Some(contents) = req
        .get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    else {
        return error(
            400,
            "INVALID_ARGUMENT",
            "* GenerateContentRequest.contents: contents is not specified\n",
        );
    };
    let prompt = field(&req, "systemInstruction", "system_instruction").map_or(0, parts_tokens)
        + contents.iter().map(parts_tokens).sum::<u64>();
    let cap = field(&req, "generationConfig", "generation_config")
        .and_then(|c| field(c, "maxOutputTokens", "max_output_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let output = plan.tokens(cap);
    let reason = if output < plan.tokens(u64::MAX) {
        "MAX_TOKENS"
    } else {
        "STOP"
    };
    let answer = Answer {
        model,
        prompt,
        thoughts: plan.thoughts,
        cached: plan.cache_read.min(prompt),
        usage: !plan.no_usage,
    };
    let function = first_function(&req).filter(|_| plan.tool_calls);
    if !streaming {
        ledger.add_tokens(prompt, output + answer.thoughts);
        let text = plan.pieces(output).concat();
        let part = match &function {
            Some(name) => json!({"functionCall": {"name": name, "args": {"q": text}}}),
            None => json!({"text": text}),
        };
        let v = answer.chunk(json!([part]), Some(reason), output);
        return Reply::json(200, v);
    }
    // A stream's completion tokens count as its chunks are delivered (see `Reply::Stream`).
    ledger.add_tokens(prompt, 0);
    let sse = |v: Value| Bytes::from(format!("data: {v}\r\n\r\n"));
    let pieces = plan.pieces(output);
    let events = if let Some(name) = function {
        // A function call arrives whole, in one chunk.
        let part = json!({"functionCall": {"name": name, "args": {"q": pieces.concat()}}});
        let v = answer.chunk(json!([part]), Some(reason), output);
        vec![(sse(v), output + answer.thoughts)]
    } else if pieces.is_empty() {
        vec![(
            sse(answer.chunk(json!([]), Some(reason), 0)),
            answer.thoughts,
        )]
    } else {
        let last = pieces.len() - 1;
        pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let finish = (i == last).then_some(reason);
                let v = answer.chunk(json!([{"text": piece}]), finish, i as u64 + 1);
                let event = plan.escaped(format!("data: {v}\r\n\r\n"), piece);
                // The thinking came before the first token.
                let thoughts = if i == 0 { answer.thoughts } else { 0 };
                (Bytes::from(event), 1 + thoughts)
            })
            .collect()
    };
    Reply::Stream {
        content_type: SSE,
        events,
    }
}

/// What every chunk of one answer shares.
struct Answer<'a> {
    model: &'a str,
    prompt: u64,
    thoughts: u64,
    cached: u64,
    usage: bool,
}

impl Answer<'_> {
    /// A `GenerateContentResponse` with `parts`, the `finish` reason when it is the last, and the
    /// usage after `candidates` completion tokens.
    fn chunk(&self, parts: Value, finish: Option<&str>, candidates: u64) -> Value {
        let mut content = json!({"role": "model"});
        if parts.as_array().is_some_and(|p| !p.is_empty()) {
            content["parts"] = parts;
        }
        let mut candidate = json!({"content": content, "index": 0});
        if let Some(reason) = finish {
            candidate["finishReason"] = json!(reason);
        }
        let mut v = json!({"candidates": [candidate], "modelVersion": self.model,
            "responseId": RESPONSE_ID});
        if self.usage {
            let mut usage = json!({
                "promptTokenCount": self.prompt,
                "candidatesTokenCount": candidates,
                "totalTokenCount": self.prompt + candidates + self.thoughts,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": self.prompt}],
            });
            if self.thoughts > 0 {
                usage["thoughtsTokenCount"] = json!(self.thoughts);
            }
            if self.cached > 0 {
                usage["cachedContentTokenCount"] = json!(self.cached);
            }
            v["usageMetadata"] = usage;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::reply::is_model_route;
    use crate::mock::MockOptions;
    use crate::protocol::translate::gemini::{decode_answer, Decoder};
    use crate::protocol::translate::{Event, Finish, Part, StreamDecoder};

    const PATH: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
    const STREAM: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";

    fn plan(headers: &[(&'static str, &str)]) -> Plan {
        let mut h = http::HeaderMap::new();
        h.insert("x-goog-api-key", "AIzaSy-mock".parse().unwrap());
        for (k, v) in headers {
            h.insert(*k, v.parse().unwrap());
        }
        Plan::from_request(&MockOptions::default(), &h)
    }

    fn whole(reply: Reply) -> (u16, Value) {
        let Reply::Whole { status, body, .. } = reply else {
            panic!("a whole reply")
        };
        (status, serde_json::from_slice(&body).unwrap())
    }

    fn stream(reply: Reply) -> Vec<(Bytes, u64)> {
        let Reply::Stream {
            content_type,
            events,
        } = reply
        else {
            panic!("a stream")
        };
        assert_eq!(content_type, "text/event-stream");
        events
    }

    // "be brief" 2 tokens; "hello there" 3; args {"city":"Paris"} 4; response {"temp":21} 3.
    const BODY: &str = r#"{"systemInstruction":{"parts":[{"text":"be brief"}]},
        "contents":[{"role":"user","parts":[{"text":"hello there"}]},
            {"role":"model","parts":[{"functionCall":{"name":"weather","args":{"city":"Paris"}}}]},
            {"role":"user","parts":[{"functionResponse":{"name":"weather","response":{"temp":21}}}]}],
        "tools":[{"functionDeclarations":[{"name":"weather"},{"name":"news"}]}],
        "generationConfig":{"maxOutputTokens":3}}"#;

    #[test]
    fn the_gemini_routes_are_model_routes_and_name_the_model() {
        assert_eq!(route_of(PATH), Some(("gemini-2.5-flash", false)));
        assert_eq!(route_of(STREAM), Some(("gemini-2.5-flash", true)));
        assert_eq!(route_of("/v1beta/models/x:countTokens"), None);
        assert_eq!(route_of("/v1beta/models/:generateContent"), None);
        assert!(is_model_route("POST", PATH) && is_model_route("POST", STREAM));
        assert!(!is_model_route("GET", PATH));
    }

    #[test]
    fn a_body_gemini_would_refuse_is_an_invalid_argument() {
        let ledger = Ledger::default();
        let (status, v) = whole(generate(PATH, b"{", &plan(&[]), &ledger));
        assert_eq!(
            (status, &v["error"]["status"]),
            (400, &json!("INVALID_ARGUMENT"))
        );
        let (status, _) = whole(generate(PATH, br#"{"contents":[]}"#, &plan(&[]), &ledger));
        assert_eq!(status, 400);
        assert_eq!(ledger.snapshot()["prompt_tokens"], 0);
    }

    #[test]
    fn a_whole_answer_reports_usage_of_everything_the_model_read() {
        let ledger = Ledger::default();
        let (status, v) = whole(generate(PATH, BODY.as_bytes(), &plan(&[]), &ledger));
        assert_eq!(status, 200);
        let usage = &v["usageMetadata"];
        assert_eq!(usage["promptTokenCount"], 2 + 3 + 4 + 3);
        assert_eq!(usage["candidatesTokenCount"], 3);
        assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
        assert_eq!(
            v["candidates"][0]["content"]["parts"][0]["text"],
            "w0 w1 w2 "
        );
        assert_eq!(v["modelVersion"], "gemini-2.5-flash");
        assert_eq!(ledger.snapshot()["prompt_tokens"], 12);
        assert_eq!(ledger.snapshot()["completion_tokens"], 3);
    }

    #[test]
    fn thoughts_and_cache_reads_are_reported_and_thoughts_count_as_produced() {
        let ledger = Ledger::default();
        let p = plan(&[("x-mock-thoughts", "40"), ("x-mock-cache-read", "99")]);
        let (_, v) = whole(generate(PATH, BODY.as_bytes(), &p, &ledger));
        let usage = &v["usageMetadata"];
        assert_eq!(usage["thoughtsTokenCount"], 40);
        assert_eq!(
            usage["cachedContentTokenCount"], 12,
            "never more than the prompt"
        );
        assert_eq!(usage["totalTokenCount"], 12 + 3 + 40);
        assert_eq!(ledger.snapshot()["completion_tokens"], 3 + 40);
        // The gateway's reading of it.
        let answer = decode_answer(v.to_string().as_bytes()).unwrap();
        let u = answer.usage.unwrap();
        assert_eq!((u.input, u.cached, u.output, u.reasoning), (12, 12, 43, 40));
    }

    #[test]
    fn a_tool_call_answer_calls_the_first_declared_function() {
        let ledger = Ledger::default();
        let p = plan(&[
            ("x-mock-tool-calls", "1"),
            ("x-mock-answer", "Paris|weather"),
        ]);
        let (_, v) = whole(generate(PATH, BODY.as_bytes(), &p, &ledger));
        assert_eq!(
            v["candidates"][0]["content"]["parts"][0]["functionCall"],
            json!({"name": "weather", "args": {"q": "Parisweather"}})
        );
        let answer = decode_answer(v.to_string().as_bytes()).unwrap();
        assert_eq!(answer.finish, Finish::ToolCalls);
        assert!(matches!(&answer.parts[0], Part::ToolCall { name, .. } if name == "weather"));
        let events = stream(generate(STREAM, BODY.as_bytes(), &p, &ledger));
        assert_eq!(events.len(), 1, "a function call arrives whole");
        assert_eq!(events[0].1, 2);
    }

    #[test]
    fn a_stream_sends_one_chunk_per_token_with_running_usage() {
        let ledger = Ledger::default();
        let body = br#"{"contents":[{"parts":[{"text":"hi"}]}]}"#;
        let p = plan(&[("x-mock-thoughts", "5")]);
        let events = stream(generate(STREAM, body, &p, &ledger));
        assert_eq!(events.len(), 16);
        assert_eq!(events.iter().map(|e| e.1).sum::<u64>(), 16 + 5);
        assert_eq!(ledger.snapshot()["prompt_tokens"], 1);
        assert_eq!(
            ledger.snapshot()["completion_tokens"],
            0,
            "counted on delivery"
        );
        let text = |e: &Bytes| String::from_utf8(e.to_vec()).unwrap();
        assert!(text(&events[0].0).ends_with("}\r\n\r\n"));
        assert!(text(&events[0].0).contains(r#""candidatesTokenCount":1"#));
        let last = text(&events[15].0);
        assert!(last.contains(r#""finishReason":"STOP""#), "{last}");
        assert!(last.contains(r#""candidatesTokenCount":16"#), "{last}");
        assert!(!text(&events[14].0).contains("finishReason"));

        // The gateway's decoder reads it back whole.
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for (e, _) in &events {
            d.feed(e, &mut out);
        }
        d.end(&mut out);
        let answer: String = out
            .iter()
            .filter_map(|e| match e {
                Event::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(answer, plan(&[]).pieces(16).concat());
        let usage = out.iter().rev().find_map(|e| match e {
            Event::Usage(u) => Some(*u),
            _ => None,
        });
        assert_eq!(
            usage.map(|u| (u.input, u.output, u.reasoning)),
            Some((1, 21, 5))
        );
        assert_eq!(out.last(), Some(&Event::Finish(Finish::Stop)));
    }

    #[test]
    fn no_usage_leaves_usage_metadata_out() {
        let ledger = Ledger::default();
        let p = plan(&[("x-mock-no-usage", "1")]);
        let (_, v) = whole(generate(PATH, BODY.as_bytes(), &p, &ledger));
        assert!(v.get("usageMetadata").is_none());
        let events = stream(generate(STREAM, BODY.as_bytes(), &p, &ledger));
        assert!(events
            .iter()
            .all(|(e, _)| !String::from_utf8_lossy(e).contains("usageMetadata")));
    }

    #[test]
    fn an_empty_answer_streams_one_finishing_chunk() {
        let ledger = Ledger::default();
        let body =
            br#"{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":0}}"#;
        let events = stream(generate(STREAM, body, &plan(&[]), &ledger));
        assert_eq!(events.len(), 1);
        assert!(String::from_utf8_lossy(&events[0].0).contains("MAX_TOKENS"));
    }
}
