//! The OpenAI Responses API (`POST /v1/responses`): the request view, the body a backend
//! receives, usage from the JSON answer and from the stream's typed events, and the answer's
//! texts.
//!
//! Every text the model will read is found: `instructions`; `input` as a string or as items —
//! messages (a string, or `input_text`/`output_text` parts), `function_call` items (name and
//! arguments), `function_call_output` items (their output), reasoning summaries — and the
//! function tools' names, descriptions and parameter schemas. `max_output_tokens` is the output
//! cap; the gateway sets it when the client did not (a `null` included), so the client cannot
//! cancel it. A request that sets `previous_response_id` or `store: true` makes the provider keep
//! state, and is never answered from the cache.

use super::json::{self, json_error};
use super::openai::UsageWire;
use super::text::{Origin, Texts};
use crate::error::GatewayError;
use crate::usage::Usage;
use bytes::Bytes;
use serde::Deserialize;

/// What the gateway reads from a Responses request.
#[derive(Debug, Deserialize)]
pub struct ResponsesView {
    pub model: String,
    #[serde(default)]
    pub input: Option<Input>,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub store: Option<bool>,
}

/// `input`: a string, or a list of items.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Items(Vec<Item>),
}

/// An input item. The gateway reads the fields the model reads, whatever the item's type: a
/// message's `content`, a `function_call`'s `name` and `arguments`, a `function_call_output`'s
/// `output`, a reasoning item's `summary`.
#[derive(Debug, Deserialize)]
pub struct Item {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub name: Option<String>,
    /// JSON, as a string.
    #[serde(default)]
    pub arguments: Option<String>,
    #[serde(default)]
    pub output: Option<Content>,
    #[serde(default)]
    pub summary: Option<Vec<Part>>,
}

/// A string, or a list of parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

/// A content part: its `text` (`input_text`, `output_text`, `summary_text`, …); images and files
/// carry none.
#[derive(Debug, Deserialize)]
pub struct Part {
    #[serde(default)]
    pub text: Option<String>,
}

/// A tool definition. A function tool is flat here (`{"type":"function","name",…}`), with the
/// fields of a chat-completions function: its name, description and parameter schema are read by
/// the model; built-in tools (`web_search`, `file_search`, …) carry none of those.
pub type Tool = super::openai::FunctionDef;

impl Content {
    fn collect<'a>(&'a self, origin: Origin, out: &mut Texts<'a>) {
        match self {
            Content::Text(t) => out.push(origin, t.as_str()),
            Content::Parts(parts) => {
                for p in parts {
                    out.push_opt(origin, p.text.as_deref());
                }
            }
        }
    }
}

impl ResponsesView {
    pub fn streaming(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// The provider keeps state for this request: it may not be answered from the cache.
    pub fn stateful(&self) -> bool {
        self.previous_response_id.is_some() || self.store == Some(true)
    }

    /// Every text the model will read, in order.
    pub fn texts(&self) -> Texts<'_> {
        let mut out = Texts::default();
        out.push_opt(Origin::Message, self.instructions.as_deref());
        match &self.input {
            Some(Input::Text(t)) => out.push(Origin::Message, t.as_str()),
            Some(Input::Items(items)) => {
                for item in items {
                    match item.kind.as_deref() {
                        Some("function_call") => {
                            out.push_opt(Origin::ToolCall, item.name.as_deref());
                            // Decoded as the model reads it, as chat completions' calls are:
                            // an escape inside the JSON string hides nothing.
                            if let Some(args) = &item.arguments {
                                out.push_json_str(Origin::ToolCall, args);
                            }
                        }
                        Some("function_call_output") => {
                            if let Some(o) = &item.output {
                                o.collect(Origin::ToolResult, &mut out);
                            }
                        }
                        _ => {
                            if let Some(c) = &item.content {
                                c.collect(Origin::Message, &mut out);
                            }
                            for p in item.summary.iter().flatten() {
                                out.push_opt(Origin::Message, p.text.as_deref());
                            }
                        }
                    }
                }
            }
            None => {}
        }
        for t in self.tools.iter().flatten() {
            out.push_opt(Origin::ToolSchema, t.name.as_deref());
            out.push_opt(Origin::ToolSchema, t.description.as_deref());
            out.push_opt(Origin::ToolSchema, t.parameters.as_deref());
        }
        out
    }

    /// Input items (messages, calls, outputs), plus one for `instructions` or a string input:
    /// the per-message framing of the estimate.
    pub fn items(&self) -> u64 {
        let items = match &self.input {
            Some(Input::Items(items)) => items.len() as u64,
            Some(Input::Text(_)) => 1,
            None => 0,
        };
        items + u64::from(self.instructions.is_some())
    }

    /// The output cap the client set.
    pub fn output_cap(&self) -> Option<u64> {
        self.max_output_tokens
    }

    /// The body a backend receives: the client's, with the gateway's cap (`inject_cap`, in
    /// `max_output_tokens`, replacing a `null` too) and the backend's model name (`rename`).
    pub fn outbound(&self, raw: Bytes, inject_cap: Option<u64>, rename: Option<&str>) -> Bytes {
        let mut set = Vec::new();
        if let Some(model) = rename {
            set.push(("model", serde_json::Value::from(model).to_string()));
        }
        if let Some(cap) = inject_cap {
            set.push(("max_output_tokens", cap.to_string()));
        }
        json::edit_members(&raw, &set, &[])
    }
}

/// Parses and validates a Responses body.
pub fn parse(body: &[u8]) -> Result<ResponsesView, GatewayError> {
    let view: ResponsesView = serde_json::from_slice(body).map_err(json_error)?;
    if view.model.trim().is_empty() {
        return Err(GatewayError::BadRequest("`model` must not be empty".into()));
    }
    if view.input.is_none() && view.previous_response_id.is_none() {
        return Err(GatewayError::BadRequest("`input` is required".into()));
    }
    if view.max_output_tokens == Some(0) {
        return Err(GatewayError::BadRequest(
            "the output cap must be at least 1 token".into(),
        ));
    }
    Ok(view)
}

#[derive(Deserialize)]
struct ResponseWire {
    #[serde(default)]
    usage: Option<UsageWire>,
}

/// The `usage` of a Responses JSON answer, if it reports one.
pub fn usage(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<ResponseWire>(body)
        .ok()?
        .usage
        .map(Usage::from)
}

#[derive(Deserialize)]
struct EventWire {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    delta: Option<serde_json::Value>,
    #[serde(default)]
    response: Option<ResponseWire>,
}

/// What a Responses stream told so far.
#[derive(Debug, Default)]
pub struct StreamState {
    pub usage: Option<Usage>,
    /// Characters of output forwarded (text, refusal, reasoning and function-call arguments).
    pub delivered_chars: u64,
    /// The stream's terminal event (`response.completed`, `.incomplete` or `.failed`) was seen.
    pub done: bool,
}

impl StreamState {
    /// Reads one event's `data`.
    pub fn observe(&mut self, data: &str) {
        let Ok(event) = serde_json::from_str::<EventWire>(data) else {
            return;
        };
        match event.kind.as_str() {
            "response.completed" | "response.incomplete" | "response.failed" => {
                self.done = true;
                if let Some(u) = event.response.and_then(|r| r.usage) {
                    self.usage = Some(u.into());
                }
            }
            kind if kind.ends_with(".delta") => {
                if let Some(serde_json::Value::String(d)) = event.delta {
                    self.delivered_chars += d.chars().count() as u64;
                }
            }
            _ => {}
        }
    }
}

/// The answer texts of a Responses answer, to check or redact in place: the `text` of every
/// `output_text` part and every `refusal` of its output messages.
pub fn answer_texts_mut(v: &mut serde_json::Value) -> Vec<&mut String> {
    let mut out = Vec::new();
    let Some(items) = v.get_mut("output").and_then(|o| o.as_array_mut()) else {
        return out;
    };
    for item in items {
        let Some(parts) = item.get_mut("content").and_then(|c| c.as_array_mut()) else {
            continue;
        };
        for part in parts {
            let Some(part) = part.as_object_mut() else {
                continue;
            };
            for (key, value) in part.iter_mut() {
                if let ("text" | "refusal", serde_json::Value::String(s)) = (key.as_str(), value) {
                    out.push(s);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts_of(body: &str) -> Vec<(Origin, String)> {
        let view = parse(body.as_bytes()).unwrap();
        view.texts()
            .list
            .into_iter()
            .map(|t| (t.origin, t.text.into_owned()))
            .collect()
    }

    #[test]
    fn every_text_the_model_reads_is_found_in_strings_items_and_tools() {
        assert_eq!(
            texts_of(r#"{"model":"gpt-4o","input":"hello","instructions":"be brief"}"#),
            [
                (Origin::Message, "be brief".to_string()),
                (Origin::Message, "hello".to_string())
            ]
        );
        let body = r#"{"model":"gpt-4o","input":[
            {"role":"user","content":[{"type":"input_text","text":"look this up"},
                                      {"type":"input_image","image_url":"https://x/y.png"}]},
            {"type":"function_call","call_id":"c1","name":"lookup","arguments":"{\"id\":7}"},
            {"type":"function_call_output","call_id":"c1","output":"SSN 123-45-6789"},
            {"type":"reasoning","summary":[{"type":"summary_text","text":"thinking"}]},
            {"role":"assistant","content":"done"}],
            "tools":[{"type":"function","name":"lookup","description":"finds a record",
                      "parameters":{"type":"object","properties":{"id":{"type":"integer"}}}},
                     {"type":"web_search"}]}"#;
        let texts = texts_of(body);
        assert!(texts.contains(&(Origin::Message, "look this up".into())));
        assert!(texts.contains(&(Origin::ToolCall, "lookup".into())));
        assert!(texts
            .iter()
            .any(|(o, t)| *o == Origin::ToolCall && t.contains("id") && t.contains('7')));
        assert!(texts.contains(&(Origin::ToolResult, "SSN 123-45-6789".into())));
        assert!(texts.contains(&(Origin::Message, "thinking".into())));
        assert!(texts.contains(&(Origin::Message, "done".into())));
        assert!(texts.contains(&(Origin::ToolSchema, "finds a record".into())));
        assert!(texts
            .iter()
            .any(|(o, t)| *o == Origin::ToolSchema && t.contains("integer")));
    }

    #[test]
    fn a_function_calls_arguments_are_read_decoded_like_chat_completions_calls() {
        let body = r#"{"model":"m","input":[{"type":"function_call","call_id":"c","name":"f",
            "arguments":"{\"ssn\":\"\\u0031\\u0032\\u0033-45-6789\"}"}]}"#;
        let texts = texts_of(body);
        assert!(
            texts.iter().any(|(_, t)| t.contains("123-45-6789")),
            "{texts:?}"
        );
    }

    #[test]
    fn a_null_cap_is_replaced_by_the_gateways_and_state_keeping_requests_are_marked() {
        let raw = Bytes::from_static(
            br#"{"model":"gpt-4o","input":"hi","max_output_tokens":null,"store":true}"#,
        );
        let view = parse(&raw).unwrap();
        assert_eq!(view.output_cap(), None);
        assert!(view.stateful());
        let out: serde_json::Value =
            serde_json::from_slice(&view.outbound(raw, Some(256), Some("gpt-4o-2024"))).unwrap();
        assert_eq!(out["max_output_tokens"], 256);
        assert_eq!(out["model"], "gpt-4o-2024");
        let chained = parse(br#"{"model":"m","previous_response_id":"resp_1"}"#).unwrap();
        assert!(chained.stateful());
        assert!(!parse(br#"{"model":"m","input":"x"}"#).unwrap().stateful());
        assert!(parse(br#"{"model":"m"}"#).is_err());
        assert!(parse(br#"{"model":"m","input":"x","max_output_tokens":0}"#).is_err());
    }

    #[test]
    fn usage_is_read_from_the_answer_and_from_the_streams_terminal_event() {
        let body = br#"{"id":"resp_1","output":[],"usage":{"input_tokens":20,
            "input_tokens_details":{"cached_tokens":8},"output_tokens":12,
            "output_tokens_details":{"reasoning_tokens":5},"total_tokens":32}}"#;
        let u = usage(body).unwrap();
        assert_eq!((u.input, u.output, u.cached, u.reasoning), (20, 12, 8, 5));
        let mut s = StreamState::default();
        s.observe(r#"{"type":"response.created","response":{"id":"resp_1","usage":null}}"#);
        s.observe(r#"{"type":"response.output_text.delta","delta":"Héllo"}"#);
        s.observe(r#"{"type":"response.function_call_arguments.delta","delta":"{}"}"#);
        assert!(!s.done && s.usage.is_none());
        s.observe(
            r#"{"type":"response.incomplete","response":{"usage":{"input_tokens":3,"output_tokens":4}}}"#,
        );
        assert!(s.done);
        assert_eq!(s.usage.map(|u| (u.input, u.output)), Some((3, 4)));
        assert_eq!(s.delivered_chars, 7);
    }

    #[test]
    fn answer_texts_are_the_output_text_parts_and_refusals() {
        let mut v = serde_json::json!({"output": [
            {"type": "reasoning", "summary": []},
            {"type": "message", "content": [
                {"type": "output_text", "text": "a"},
                {"type": "refusal", "refusal": "b"}]}]});
        let texts: Vec<String> = answer_texts_mut(&mut v)
            .into_iter()
            .map(|s| s.clone())
            .collect();
        assert_eq!(texts, ["a", "b"]);
    }
}
