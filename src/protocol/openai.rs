//! OpenAI chat completions (`POST /v1/chat/completions`): the request view, the body a backend
//! receives, usage from the JSON answer and from the stream's chunks, and the error shape OpenAI
//! SDKs parse (`{"error":{"message","type","code"}}`).
//!
//! The body is forwarded byte for byte, unless the gateway must add its output cap (when the
//! client set none), ask a stream for its usage (`stream_options.include_usage`, when the client
//! did not), or name the backend's own model (an alias).

use super::json::{self, json_error};
use super::text::{json_as_text, Origin, Texts};
use crate::error::{Fault, GatewayError};
use crate::usage::Usage;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

/// What the gateway reads from an OpenAI chat-completions body.
#[derive(Debug, Deserialize)]
pub struct ChatView {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub n: Option<u64>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Tool definitions the model reads.
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    /// The legacy form of `tools`.
    #[serde(default)]
    pub functions: Option<Vec<FunctionDef>>,
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
}

/// `response_format`: its schema is read by the model.
#[derive(Debug, Deserialize)]
pub struct ResponseFormat {
    #[serde(default, deserialize_with = "json_as_text")]
    pub json_schema: Option<String>,
}

/// A tool definition (`{"type":"function","function":{…}}`).
#[derive(Debug, Deserialize)]
pub struct Tool {
    #[serde(default)]
    pub function: Option<FunctionDef>,
}

/// A function the model may call: everything in it is read by the model.
#[derive(Debug, Deserialize)]
pub struct FunctionDef {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The parameter schema, as the model reads it.
    #[serde(default, deserialize_with = "json_as_text")]
    pub parameters: Option<String>,
}

/// A call the model made, sent back in the history.
#[derive(Debug, Deserialize)]
pub struct ToolCall {
    #[serde(default)]
    pub function: Option<FunctionCall>,
}

#[derive(Debug, Deserialize)]
pub struct FunctionCall {
    #[serde(default)]
    pub name: Option<String>,
    /// JSON, as a string.
    #[serde(default)]
    pub arguments: Option<String>,
}

/// `stream_options` of a chat request.
#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
    /// A participant's name, read by the model.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The legacy form of `tool_calls`.
    #[serde(default)]
    pub function_call: Option<FunctionCall>,
}

/// A message's content: a string or a list of typed parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    /// An assistant's refusal, sent back in the history.
    #[serde(default)]
    pub refusal: Option<String>,
}

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

impl ChatView {
    pub fn streaming(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// The client asked for the final usage chunk itself.
    pub fn wants_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }

    /// Every text the model will read, with its origin: message contents and text parts,
    /// names, earlier tool calls and what tools returned, tool definitions, and the schema the
    /// answer must follow, in the order the model reads them.
    pub fn texts(&self) -> Texts<'_> {
        let mut out = Texts::default();
        for m in &self.messages {
            let origin = match m.role.as_str() {
                "tool" | "function" => Origin::ToolResult,
                _ => Origin::Message,
            };
            out.push_opt(Origin::Message, m.name.as_deref());
            match &m.content {
                Some(Content::Text(t)) => out.push(origin, t.as_str()),
                Some(Content::Parts(parts)) => {
                    for p in parts {
                        out.push_opt(origin, p.text.as_deref());
                        out.push_opt(origin, p.refusal.as_deref());
                    }
                }
                None => {}
            }
            let calls = m
                .tool_calls
                .iter()
                .flatten()
                .filter_map(|c| c.function.as_ref());
            for call in calls.chain(m.function_call.as_ref()) {
                out.push_opt(Origin::ToolCall, call.name.as_deref());
                if let Some(args) = &call.arguments {
                    out.push_json_str(Origin::ToolCall, args);
                }
            }
        }
        let tools = self
            .tools
            .iter()
            .flatten()
            .filter_map(|t| t.function.as_ref());
        for f in tools.chain(self.functions.iter().flatten()) {
            out.push_opt(Origin::ToolSchema, f.name.as_deref());
            out.push_opt(Origin::ToolSchema, f.description.as_deref());
            out.push_opt(Origin::ToolSchema, f.parameters.as_deref());
        }
        let schema = self
            .response_format
            .as_ref()
            .and_then(|f| f.json_schema.as_deref());
        out.push_opt(Origin::OutputSchema, schema);
        out
    }

    /// The output cap the client set (`max_completion_tokens` wins over `max_tokens`), for all
    /// `n` choices.
    pub fn output_cap(&self) -> Option<u64> {
        self.max_completion_tokens
            .or(self.max_tokens)
            .map(|cap| cap.saturating_mul(self.n.unwrap_or(1)))
    }

    /// The body a backend receives: the client's, with the gateway's cap (`inject_cap`), the
    /// usage request of a stream and the backend's model name (`rename`) where needed. What the
    /// gateway sets replaces the client's member of that name, whatever it was (`null`
    /// included), so the client cannot cancel it.
    pub fn outbound(&self, raw: Bytes, inject_cap: Option<u64>, rename: Option<&str>) -> Bytes {
        let mut set = Vec::new();
        let mut remove = Vec::new();
        if let Some(model) = rename {
            set.push(("model", serde_json::Value::from(model).to_string()));
        }
        if let Some(cap) = inject_cap {
            // The cap goes in the member the client named (`max_completion_tokens` is the only
            // one reasoning models accept), and the other, null, is dropped: a null member left
            // beside it could shadow the cap.
            let (name, other) = match json::member(&raw, "max_completion_tokens") {
                Some(_) => ("max_completion_tokens", "max_tokens"),
                None => ("max_tokens", "max_completion_tokens"),
            };
            set.push((name, cap.to_string()));
            remove.push(other);
        }
        // A stream the client did not ask usage for gets it anyway (the gateway settles on it
        // and removes that event from what the client sees); its other options are kept.
        if self.streaming() && !self.wants_usage() {
            let mut options = json::member(&raw, "stream_options")
                .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
                .filter(serde_json::Value::is_object)
                .unwrap_or_else(|| json!({}));
            options["include_usage"] = json!(true);
            set.push(("stream_options", options.to_string()));
        }
        json::edit_members(&raw, &set, &remove)
    }
}

/// Parses and validates a chat-completions body.
pub fn parse(body: &[u8]) -> Result<ChatView, GatewayError> {
    let view: ChatView = serde_json::from_slice(body).map_err(json_error)?;
    if view.model.trim().is_empty() {
        return Err(GatewayError::BadRequest("`model` must not be empty".into()));
    }
    if view.messages.is_empty() {
        return Err(GatewayError::BadRequest(
            "`messages` must not be empty".into(),
        ));
    }
    for (i, m) in view.messages.iter().enumerate() {
        if !ROLES.contains(&m.role.as_str()) {
            return Err(GatewayError::BadRequest(format!(
                "messages[{i}].role must be one of {}",
                ROLES.join(", ")
            )));
        }
    }
    if view.max_tokens == Some(0) || view.max_completion_tokens == Some(0) {
        return Err(GatewayError::BadRequest(
            "the output cap must be at least 1 token".into(),
        ));
    }
    if view.n == Some(0) {
        return Err(GatewayError::BadRequest("`n` must be at least 1".into()));
    }
    Ok(view)
}

/// OpenAI's usage object; the Responses API names the same numbers `input_tokens`,
/// `output_tokens` and their `_details` (read here through aliases).
#[derive(Deserialize)]
pub(super) struct UsageWire {
    #[serde(alias = "input_tokens")]
    prompt_tokens: u64,
    /// Absent for embeddings.
    #[serde(default, alias = "output_tokens")]
    completion_tokens: u64,
    #[serde(default, alias = "input_tokens_details")]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default, alias = "output_tokens_details")]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<UsageWire>,
}

impl From<UsageWire> for Usage {
    fn from(u: UsageWire) -> Usage {
        Usage {
            input: u.prompt_tokens,
            output: u.completion_tokens,
            cached: u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            reasoning: u
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
            cache_write: 0,
            estimated: false,
        }
    }
}

/// The `usage` of an OpenAI JSON answer (chat completions or embeddings), if it reports one.
pub fn usage(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<WithUsage>(body)
        .ok()?
        .usage
        .map(Usage::from)
}

/// The part of a stream chunk the gateway reads.
#[derive(Deserialize)]
struct ChunkWire {
    #[serde(default)]
    choices: Vec<ChoiceWire>,
    #[serde(default)]
    usage: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChoiceWire {
    #[serde(default)]
    delta: Option<DeltaWire>,
}

#[derive(Deserialize)]
struct DeltaWire {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallDelta>,
}

/// A streamed tool call's piece (`delta.tool_calls[]`), also read by the translator.
#[derive(Deserialize)]
pub(super) struct ToolCallDelta {
    #[serde(default)]
    pub(super) index: Option<u32>,
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
pub(super) struct FunctionDelta {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) arguments: Option<String>,
}

impl DeltaWire {
    /// Characters of output this delta carries: text, reasoning, a refusal, tool-call names
    /// and arguments.
    fn chars(&self) -> u64 {
        let calls = self
            .tool_calls
            .iter()
            .filter_map(|c| c.function.as_ref())
            .flat_map(|f| [&f.name, &f.arguments]);
        [&self.content, &self.reasoning_content, &self.refusal]
            .into_iter()
            .chain(calls)
            .flatten()
            .map(|t| t.chars().count() as u64)
            .sum()
    }
}

/// What a chat-completions stream told so far.
#[derive(Debug, Default)]
pub struct StreamState {
    pub usage: Option<Usage>,
    /// Characters of output forwarded to the client (text, reasoning, tool-call arguments).
    pub delivered_chars: u64,
    /// `data: [DONE]` was seen.
    pub done: bool,
}

impl StreamState {
    /// Reads one event's `data`; returns whether the client sees the event (a usage-only chunk
    /// is hidden when `strip_usage`: the gateway asked for it, the client did not).
    pub fn observe(&mut self, data: &str, strip_usage: bool) -> bool {
        if data.trim() == "[DONE]" {
            self.done = true;
            return true;
        }
        let Ok(chunk) = serde_json::from_str::<ChunkWire>(data) else {
            return true;
        };
        let usage_only =
            chunk.choices.is_empty() && chunk.usage.as_ref().is_some_and(|u| !u.is_null());
        if let Some(u) = chunk.usage.filter(|u| !u.is_null()) {
            if let Ok(parsed) = serde_json::from_value::<UsageWire>(u) {
                self.usage = Some(parsed.into());
            }
        }
        let forwarded = !(strip_usage && usage_only);
        if forwarded {
            let chars: u64 = chunk
                .choices
                .iter()
                .filter_map(|c| c.delta.as_ref())
                .map(DeltaWire::chars)
                .sum();
            self.delivered_chars += chars;
        }
        forwarded
    }
}

/// The answer text of a chat completion (a tool-call-only completion has none: empty).
pub fn answer_text(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    match v.pointer("/choices/0/message/content") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Null) => Some(String::new()),
        _ => None,
    }
}

/// The answer texts of a chat completion, to check or redact in place: each choice's message
/// content (a string, or the `text` of its parts) and refusal.
pub fn answer_texts_mut(v: &mut serde_json::Value) -> Vec<&mut String> {
    let mut out = Vec::new();
    let Some(choices) = v.get_mut("choices").and_then(|c| c.as_array_mut()) else {
        return out;
    };
    for choice in choices {
        let Some(message) = choice.get_mut("message").and_then(|m| m.as_object_mut()) else {
            continue;
        };
        for (key, value) in message.iter_mut() {
            match (key.as_str(), value) {
                ("content" | "refusal", serde_json::Value::String(s)) => out.push(s),
                ("content", serde_json::Value::Array(parts)) => {
                    for part in parts {
                        if let Some(serde_json::Value::String(s)) = part.get_mut("text") {
                            out.push(s);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// `{"error":{"message","type","code"}}`, what OpenAI SDKs parse.
pub fn error_body(e: &GatewayError) -> serde_json::Value {
    let kind = match (e, e.fault()) {
        (GatewayError::Unauthorized, _) => "authentication_error",
        (
            GatewayError::ModelNotAllowed { .. }
            | GatewayError::ClientDenied
            | GatewayError::AddressNotAllowed { .. }
            | GatewayError::CertificateRequired { .. },
            _,
        ) => "permission_error",
        (
            GatewayError::RateLimited { .. }
            | GatewayError::RequestRateLimited { .. }
            | GatewayError::BudgetExceeded { .. },
            _,
        ) => "rate_limit_error",
        (_, Fault::Client) => "invalid_request_error",
        (_, Fault::Upstream) => "upstream_error",
        (_, Fault::Internal) => "internal_error",
    };
    let code = match e {
        GatewayError::Unauthorized => "invalid_api_key",
        GatewayError::ModelNotAllowed { .. } => "model_not_allowed",
        GatewayError::ModelNotServed { .. } => "model_not_found",
        other => other.label(),
    };
    json!({"error": {"message": e.message(), "type": kind, "code": code}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{parse as parse_route, Origin, RequestView, Route};

    #[test]
    fn parses_an_openai_body_with_string_and_part_contents() {
        let body = br#"{"model":"gpt-4","stream":true,"max_tokens":5,"messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        let RequestView::Chat(c) = parse_route(Route::ChatCompletions, body).unwrap() else {
            panic!("chat view expected")
        };
        assert_eq!(c.model, "gpt-4");
        assert!(c.streaming());
        assert_eq!(c.max_tokens, Some(5));
        assert_eq!(c.messages.len(), 2);
    }

    #[test]
    fn rejects_bad_openai_bodies_with_a_reason() {
        for (body, needle) in [
            (
                &br#"{"messages":[{"role":"user","content":"x"}]}"#[..],
                "model",
            ),
            (br#"{"model":"m","messages":[]}"#, "messages"),
            (br#"{"model":"m","messages":"x"}"#, "invalid type"),
            (
                br#"{"model":5,"messages":[{"role":"user","content":"x"}]}"#,
                "invalid type",
            ),
            (
                br#"{"model":"m","messages":[{"role":"boss","content":"x"}]}"#,
                "role",
            ),
            (
                br#"{"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]}"#,
                "invalid type",
            ),
            (
                br#"{"model":"m","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}"#,
                "invalid value",
            ),
            (b"{not json", "key must be a string"),
            (b"", "JSON object"),
        ] {
            match parse_route(Route::ChatCompletions, body) {
                Err(GatewayError::BadRequest(msg)) => assert!(msg.contains(needle), "{msg}"),
                other => panic!("{other:?} for {}", String::from_utf8_lossy(body)),
            }
        }
    }

    #[test]
    fn the_output_cap_is_added_without_touching_other_bytes() {
        let raw = Bytes::from_static(
            b" {\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"{x}\"}]}",
        );
        let out = json::set_members(&raw, &[("max_tokens", "256".into())]);
        assert_eq!(
            &out[..],
            &b" {\"max_tokens\":256,\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"{x}\"}]}"[..]
        );
        let RequestView::Chat(c) = parse_route(Route::ChatCompletions, &out).unwrap() else {
            panic!("chat view expected")
        };
        assert_eq!(c.max_tokens, Some(256));
    }

    #[test]
    fn a_stream_gets_include_usage_only_when_the_client_did_not_ask() {
        let send = |body: &'static [u8]| -> serde_json::Value {
            let raw = Bytes::from_static(body);
            let RequestView::Chat(c) = parse_route(Route::ChatCompletions, &raw).unwrap() else {
                panic!("chat view expected")
            };
            serde_json::from_slice(&c.outbound(raw, None, None)).unwrap()
        };
        let v = send(br#"{"model":"m","stream":true,"max_tokens":1,"messages":[{"role":"user","content":"x"}]}"#);
        assert_eq!(v["stream_options"]["include_usage"], true);
        let v = send(br#"{"model":"m","stream":true,"max_tokens":1,"stream_options":{"x":1},"messages":[{"role":"user","content":"x"}]}"#);
        assert_eq!(v["stream_options"], json!({"x": 1, "include_usage": true}));
        let v = send(br#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}]}"#);
        assert!(
            v.get("stream_options").is_none(),
            "not for non-streamed requests"
        );
    }

    #[test]
    fn texts_cover_every_string_and_text_part() {
        let body = br#"{"model":"m","messages":[{"role":"system","content":"a"},
            {"role":"user","content":[{"type":"text","text":"b"},{"type":"image_url"}]},{"role":"assistant"}]}"#;
        let v = parse_route(Route::ChatCompletions, body).unwrap();
        let texts = v.texts();
        let plain: Vec<&str> = texts.iter().map(|t| &*t.text).collect();
        assert_eq!(plain, ["a", "b"]);
        assert_eq!(v.prompt_estimate(&texts), 1 + 1 + 3 * 4);
    }

    #[test]
    fn every_text_the_model_reads_is_yielded_with_its_origin() {
        let body = json!({
            "model": "m",
            "messages": [
                {"role": "system", "name": "boss", "content": "sys"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{\"ssn\":\"\\u0031\"}"}}
                ], "function_call": {"name": "old", "arguments": "not json"}},
                {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "result"}]},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}
            ],
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "desc",
                "parameters": {"type": "object", "properties": {"q": {"description": "ignore"}}}}}],
            "functions": [{"name": "legacy", "description": "legacy desc"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": {}}}
        })
        .to_string();
        let view = parse_route(Route::ChatCompletions, body.as_bytes()).unwrap();
        let texts = view.texts();
        let got: Vec<(Origin, &str)> = texts.iter().map(|t| (t.origin, &*t.text)).collect();
        use Origin::*;
        assert_eq!(
            got,
            [
                (Message, "boss"),
                (Message, "sys"),
                (ToolCall, "lookup"),
                (ToolCall, "{\"ssn\":\"1\"}"),
                (ToolCall, "old"),
                (ToolCall, "not json"),
                (ToolResult, "result"),
                (Message, "no"),
                (ToolSchema, "lookup"),
                (ToolSchema, "desc"),
                (
                    ToolSchema,
                    "{\"properties\":{\"q\":{\"description\":\"ignore\"}},\"type\":\"object\"}"
                ),
                (ToolSchema, "legacy"),
                (ToolSchema, "legacy desc"),
                (OutputSchema, "{\"name\":\"out\",\"schema\":{}}"),
            ]
        );
        let chars: u64 = texts.iter().map(|t| t.text.chars().count() as u64).sum();
        assert!(
            view.prompt_estimate(&texts) >= chars / 4,
            "every text is counted"
        );
    }

    #[test]
    fn usage_is_read_with_cached_and_reasoning_tokens() {
        let body = br#"{"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,
            "prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}"#;
        assert_eq!(
            usage(body),
            Some(Usage {
                input: 10,
                output: 5,
                cached: 4,
                cache_write: 0,
                reasoning: 2,
                estimated: false
            })
        );
        assert_eq!(usage(br#"{"choices":[]}"#), None);
        assert_eq!(usage(b"not json"), None);
    }

    #[test]
    fn openai_dialect_has_message_type_and_code() {
        let v = error_body(&GatewayError::Unauthorized);
        assert_eq!(v["error"]["type"], "authentication_error");
        assert_eq!(v["error"]["code"], "invalid_api_key");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid or missing API key"));
    }

    #[test]
    fn tool_call_arguments_and_refusals_count_as_delivered_output() {
        let mut s = StreamState::default();
        s.observe(
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"lookup","arguments":""}}]}}]}"#,
            false,
        );
        s.observe(
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\": 1}"}}]}}]}"#,
            false,
        );
        s.observe(r#"{"choices":[{"delta":{"refusal":"no"}}]}"#, false);
        assert_eq!(s.delivered_chars, 6 + 8 + 2);
    }
}
