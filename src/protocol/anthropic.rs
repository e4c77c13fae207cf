//! The Anthropic Messages API (`POST /v1/messages`): the request view, the body a backend
//! receives (the client's, with the gateway's `max_tokens` when it set none), usage from the JSON
//! answer or from the `message_start` / `message_delta` events of a stream (which pass through
//! unchanged), and the error shape Anthropic SDKs parse.

use super::json::{self, json_error};
use super::text::{json_as_text, Origin, Texts};
use crate::error::GatewayError;
use crate::usage::Usage;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

/// What the gateway reads from a Messages request.
#[derive(Debug, Deserialize)]
pub struct MessagesView {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub system: Option<Blocks>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub stream: Option<bool>,
    /// Tool definitions the model reads.
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Blocks,
}

/// A tool definition: everything in it is read by the model.
#[derive(Debug, Deserialize)]
pub struct Tool {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "json_as_text")]
    pub input_schema: Option<String>,
}

/// A string, or a list of content blocks.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Blocks {
    Text(String),
    List(Vec<Block>),
}

/// A content block. The gateway reads the fields the model reads, whatever the block's type:
/// `text`; a `tool_use`'s `name` and `input`; a `tool_result`'s `content` (a string or blocks);
/// a `document`'s `title`, `context` and text `source`.
#[derive(Debug, Deserialize)]
pub struct Block {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// A `tool_use`'s input, as the model reads it.
    #[serde(default, deserialize_with = "json_as_text")]
    pub input: Option<String>,
    #[serde(default)]
    pub content: Option<Blocks>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub source: Option<serde_json::Value>,
}

impl Blocks {
    fn collect<'a>(&'a self, origin: Origin, out: &mut Texts<'a>) {
        match self {
            Blocks::Text(t) => out.push(origin, t.as_str()),
            Blocks::List(blocks) => blocks.iter().for_each(|b| b.collect(origin, out)),
        }
    }
}

impl Block {
    fn collect<'a>(&'a self, origin: Origin, out: &mut Texts<'a>) {
        let origin = match self.kind.as_str() {
            "tool_use" | "server_tool_use" => Origin::ToolCall,
            "tool_result" => Origin::ToolResult,
            "document" | "search_result" => Origin::Document,
            _ => origin,
        };
        out.push_opt(origin, self.name.as_deref());
        out.push_opt(origin, self.title.as_deref());
        out.push_opt(origin, self.context.as_deref());
        out.push_opt(origin, self.text.as_deref());
        out.push_opt(origin, self.input.as_deref());
        if let Some(content) = &self.content {
            content.collect(origin, out);
        }
        // A text document (`{"type":"text","data":…}`) or one given as content blocks.
        if let Some(source) = &self.source {
            if source.get("type").and_then(|t| t.as_str()) == Some("text") {
                out.push_opt(origin, source.get("data").and_then(|d| d.as_str()));
            }
            if let Some(blocks) = source.get("content").and_then(|c| c.as_array()) {
                for b in blocks {
                    out.push_opt(origin, b.get("text").and_then(|t| t.as_str()));
                }
            }
        }
    }
}

impl MessagesView {
    /// Every text the model will read, with its origin: the system prompt, every block of every
    /// message (text, earlier tool calls and their results, documents), and the tool
    /// definitions, in the order the model reads them.
    pub fn texts(&self) -> Texts<'_> {
        let mut out = Texts::default();
        if let Some(system) = &self.system {
            system.collect(Origin::Message, &mut out);
        }
        for m in &self.messages {
            m.content.collect(Origin::Message, &mut out);
        }
        for t in self.tools.iter().flatten() {
            out.push_opt(Origin::ToolSchema, t.name.as_deref());
            out.push_opt(Origin::ToolSchema, t.description.as_deref());
            out.push_opt(Origin::ToolSchema, t.input_schema.as_deref());
        }
        out
    }

    pub fn streaming(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// The body a backend receives: the client's, with the gateway's cap (`inject_cap`) and the
    /// backend's model name (`rename`) where needed, each replacing the client's member.
    pub fn outbound(&self, raw: Bytes, inject_cap: Option<u64>, rename: Option<&str>) -> Bytes {
        let mut set = Vec::new();
        if let Some(model) = rename {
            set.push(("model", serde_json::Value::from(model).to_string()));
        }
        if let Some(cap) = inject_cap {
            set.push(("max_tokens", cap.to_string()));
        }
        json::set_members(&raw, &set)
    }
}

/// Parses and validates a Messages body.
pub fn parse(body: &[u8]) -> Result<MessagesView, GatewayError> {
    let v: MessagesView = serde_json::from_slice(body).map_err(json_error)?;
    if v.model.trim().is_empty() {
        return Err(GatewayError::BadRequest("`model` must not be empty".into()));
    }
    if v.messages.is_empty() {
        return Err(GatewayError::BadRequest(
            "`messages` must not be empty".into(),
        ));
    }
    for (i, m) in v.messages.iter().enumerate() {
        if m.role != "user" && m.role != "assistant" {
            return Err(GatewayError::BadRequest(format!(
                "messages[{i}].role must be user or assistant"
            )));
        }
    }
    if v.max_tokens == Some(0) {
        return Err(GatewayError::BadRequest(
            "`max_tokens` must be at least 1".into(),
        ));
    }
    Ok(v)
}

/// Anthropic's usage object. `input_tokens` counts only the prompt tokens after the last cache
/// breakpoint: tokens read from the prompt cache and tokens written to it are reported beside
/// it, and all three are billed (at their own prices).
#[derive(Deserialize)]
pub(super) struct UsageWire {
    #[serde(default)]
    input_tokens: Option<u64>,
    /// Read alone by the translation's stream decoder: a `message_delta`'s cumulative count.
    #[serde(default)]
    pub(super) output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl UsageWire {
    /// This usage over `earlier` (what a stream's `message_start` said): each count it reports
    /// replaces the earlier one, each it leaves out is kept (a `message_delta` that repeats
    /// `input_tokens` without the cache counts must not zero them).
    pub(super) fn over(&self, earlier: Usage) -> Usage {
        let cached = self.cache_read_input_tokens.unwrap_or(earlier.cached);
        let cache_write = self
            .cache_creation_input_tokens
            .unwrap_or(earlier.cache_write);
        let plain = self.input_tokens.unwrap_or_else(|| {
            earlier
                .input
                .saturating_sub(earlier.cached)
                .saturating_sub(earlier.cache_write)
        });
        Usage {
            input: plain.saturating_add(cached).saturating_add(cache_write),
            output: self.output_tokens.unwrap_or(earlier.output),
            cached,
            cache_write,
            reasoning: 0,
            estimated: false,
        }
    }

    /// The usage, with every prompt token in `input` (cache reads and writes inside it).
    pub(super) fn usage(&self) -> Option<Usage> {
        let cached = self.cache_read_input_tokens.unwrap_or(0);
        let cache_write = self.cache_creation_input_tokens.unwrap_or(0);
        Some(Usage {
            input: self
                .input_tokens?
                .saturating_add(cached)
                .saturating_add(cache_write),
            output: self.output_tokens.unwrap_or(0),
            cached,
            cache_write,
            reasoning: 0,
            estimated: false,
        })
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    usage: Option<UsageWire>,
}

/// The `usage` of a Messages JSON answer.
pub fn usage(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<Answer>(body).ok()?.usage?.usage()
}

#[derive(Deserialize)]
struct EventWire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<Answer>,
    #[serde(default)]
    usage: Option<UsageWire>,
    #[serde(default)]
    delta: Option<DeltaWire>,
}

#[derive(Deserialize)]
struct DeltaWire {
    #[serde(default)]
    text: Option<String>,
    /// A tool call's input, streamed in pieces (`input_json_delta`).
    #[serde(default)]
    partial_json: Option<String>,
    /// Extended thinking (`thinking_delta`), billed as output.
    #[serde(default)]
    thinking: Option<String>,
}

/// What one stream event tells: usage so far, and delivered text.
#[derive(Debug, Default)]
pub struct StreamState {
    /// Prompt tokens, cache reads and writes included.
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cached: u64,
    pub cache_write: u64,
    pub delivered_chars: u64,
    pub stopped: bool,
}

impl StreamState {
    /// Reads one event's `data`.
    pub fn observe(&mut self, data: &str) {
        let Ok(e) = serde_json::from_str::<EventWire>(data) else {
            return;
        };
        match e.kind.as_str() {
            "message_start" => {
                if let Some(u) = e.message.and_then(|m| m.usage).and_then(|u| u.usage()) {
                    self.input = Some(u.input);
                    self.output = Some(u.output);
                    self.cached = u.cached;
                    self.cache_write = u.cache_write;
                }
            }
            // The output count in `message_delta` is cumulative; the prompt's counts it repeats
            // replace `message_start`'s, one by one.
            "message_delta" => {
                if let Some(u) = e.usage {
                    let earlier = Usage {
                        input: self.input.unwrap_or(0),
                        output: self.output.unwrap_or(0),
                        cached: self.cached,
                        cache_write: self.cache_write,
                        ..Usage::default()
                    };
                    let merged = u.over(earlier);
                    if self.input.is_some() || u.input_tokens.is_some() {
                        self.input = Some(merged.input);
                    }
                    self.output = u.output_tokens.or(self.output);
                    self.cached = merged.cached;
                    self.cache_write = merged.cache_write;
                }
            }
            "content_block_delta" => {
                if let Some(d) = e.delta {
                    let chars: u64 = [d.text, d.partial_json, d.thinking]
                        .iter()
                        .flatten()
                        .map(|t| t.chars().count() as u64)
                        .sum();
                    self.delivered_chars += chars;
                }
            }
            "message_stop" => self.stopped = true,
            _ => {}
        }
    }

    /// The usage, once both counts are known and the message finished.
    pub fn usage(&self) -> Option<Usage> {
        if !self.stopped {
            return None;
        }
        Some(Usage {
            input: self.input?,
            output: self.output?,
            cached: self.cached,
            cache_write: self.cache_write,
            reasoning: 0,
            estimated: false,
        })
    }
}

/// The answer texts of a Messages response, to check or redact in place: each `text` block's
/// text.
pub fn answer_texts_mut(v: &mut serde_json::Value) -> Vec<&mut String> {
    let Some(blocks) = v.get_mut("content").and_then(|c| c.as_array_mut()) else {
        return Vec::new();
    };
    blocks
        .iter_mut()
        .filter(|b| b.get("type").and_then(|t| t.as_str()) == Some("text"))
        .filter_map(|b| match b.get_mut("text") {
            Some(serde_json::Value::String(s)) => Some(s),
            _ => None,
        })
        .collect()
}

/// `{"type":"error","error":{"type","message"}}`, what Anthropic SDKs parse.
pub fn error_body(e: &GatewayError) -> serde_json::Value {
    json!({"type": "error", "error": {"type": error_type(e.status()), "message": e.message()}})
}

/// The Anthropic error type for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        500 => "api_error",
        502..=504 => "overloaded_error",
        _ => "invalid_request_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_comes_from_the_json_answer_with_cache_reads_and_writes_in_the_prompt() {
        let body = br#"{"type":"message","content":[],"usage":{"input_tokens":12,"output_tokens":7,"cache_read_input_tokens":3,"cache_creation_input_tokens":5}}"#;
        let u = usage(body).unwrap();
        assert_eq!(
            (u.input, u.output, u.cached, u.cache_write),
            (12 + 3 + 5, 7, 3, 5),
            "Anthropic's input_tokens leaves out what the prompt cache read and wrote"
        );
    }

    #[test]
    fn a_message_delta_repeating_only_input_tokens_keeps_the_cache_counts() {
        let mut s = StreamState::default();
        s.observe(r#"{"type":"message_start","message":{"usage":{"input_tokens":10,"output_tokens":1,"cache_read_input_tokens":100,"cache_creation_input_tokens":40}}}"#);
        s.observe(r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":10,"output_tokens":7}}"#);
        s.observe(r#"{"type":"message_stop"}"#);
        let u = s.usage().unwrap();
        assert_eq!(
            (u.input, u.cached, u.cache_write, u.output),
            (150, 100, 40, 7)
        );
    }

    #[test]
    fn usage_comes_from_message_start_and_the_last_message_delta() {
        let mut s = StreamState::default();
        s.observe(
            r#"{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}"#,
        );
        s.observe(r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Héllo"}}"#);
        s.observe(r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}"#);
        s.observe(r#"{"type":"content_block_delta","index":2,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#);
        s.observe(r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}"#);
        assert!(s.usage().is_none(), "not before message_stop");
        s.observe(r#"{"type":"message_stop"}"#);
        let u = s.usage().unwrap();
        assert_eq!((u.input, u.output), (25, 15));
        assert_eq!(
            s.delivered_chars,
            5 + 4 + 3,
            "text, tool input and thinking"
        );
    }

    #[test]
    fn texts_include_the_system_prompt_and_every_block() {
        let v = parse(
            br#"{"model":"claude","max_tokens":5,"system":"be kind","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image"}]}]}"#,
        )
        .unwrap();
        let texts = v.texts();
        let plain: Vec<&str> = texts.list.iter().map(|t| &*t.text).collect();
        assert_eq!(plain, ["be kind", "hi"]);
    }

    #[test]
    fn tool_calls_results_documents_and_tools_are_read_too() {
        let body = serde_json::json!({
            "model": "claude", "max_tokens": 5,
            "system": [{"type": "text", "text": "sys"}],
            "messages": [
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"ssn": "1"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "plain result"},
                    {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "block result"}]},
                    {"type": "document", "title": "T", "source": {"type": "text", "media_type": "text/plain", "data": "doc text"}},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
                    {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "doc block"}]}}
                ]}
            ],
            "tools": [{"name": "lookup", "description": "desc", "input_schema": {"type": "object"}}]
        })
        .to_string();
        let v = parse(body.as_bytes()).unwrap();
        let got: Vec<(Origin, String)> = v
            .texts()
            .list
            .into_iter()
            .map(|t| (t.origin, t.text.into_owned()))
            .collect();
        use Origin::*;
        let want: Vec<(Origin, &str)> = vec![
            (Message, "sys"),
            (ToolCall, "lookup"),
            (ToolCall, "{\"ssn\":\"1\"}"),
            (ToolResult, "plain result"),
            (ToolResult, "block result"),
            (Document, "T"),
            (Document, "doc text"),
            (Document, "doc block"),
            (ToolSchema, "lookup"),
            (ToolSchema, "desc"),
            (ToolSchema, "{\"type\":\"object\"}"),
        ];
        let got: Vec<(Origin, &str)> = got.iter().map(|(o, t)| (*o, t.as_str())).collect();
        assert_eq!(got, want);
    }
}
