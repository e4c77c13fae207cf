//! The Anthropic Messages API (`POST /v1/messages`): the request view, the body a backend
//! receives (the client's, with the gateway's `max_tokens` when it set none), usage from the JSON
//! answer or from the `message_start` / `message_delta` events of a stream (which pass through
//! unchanged), and the error shape Anthropic SDKs parse.

use super::json::{self, json_error};
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
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Blocks,
}

/// A string, or a list of content blocks.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Blocks {
    Text(String),
    List(Vec<Block>),
}

#[derive(Debug, Deserialize)]
pub struct Block {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl Blocks {
    fn texts(&self) -> Vec<&str> {
        match self {
            Blocks::Text(t) => vec![t.as_str()],
            Blocks::List(l) => l.iter().filter_map(|b| b.text.as_deref()).collect(),
        }
    }
}

impl MessagesView {
    /// Every text the model will read: the system prompt and every text block.
    pub fn texts(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.system.as_ref().map(Blocks::texts).unwrap_or_default();
        for m in &self.messages {
            out.extend(m.content.texts());
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

#[derive(Deserialize)]
struct UsageWire {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    usage: Option<UsageWire>,
}

/// The `usage` of a Messages JSON answer.
pub fn usage(body: &[u8]) -> Option<Usage> {
    let u = serde_json::from_slice::<Answer>(body).ok()?.usage?;
    Some(Usage {
        input: u.input_tokens?,
        output: u.output_tokens.unwrap_or(0),
        cached: u.cache_read_input_tokens.unwrap_or(0),
        reasoning: 0,
        estimated: false,
    })
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
}

/// What one stream event tells: usage so far, and delivered text.
#[derive(Debug, Default)]
pub struct StreamState {
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cached: u64,
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
                if let Some(u) = e.message.and_then(|m| m.usage) {
                    self.input = u.input_tokens.or(self.input);
                    self.output = u.output_tokens.or(self.output);
                    self.cached = u.cache_read_input_tokens.unwrap_or(self.cached);
                }
            }
            // The output count in `message_delta` is cumulative.
            "message_delta" => {
                if let Some(u) = e.usage {
                    self.output = u.output_tokens.or(self.output);
                    self.input = u.input_tokens.or(self.input);
                }
            }
            "content_block_delta" => {
                if let Some(t) = e.delta.and_then(|d| d.text) {
                    self.delivered_chars += t.chars().count() as u64;
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
            reasoning: 0,
            estimated: false,
        })
    }
}

/// The answer text of a Messages answer (its first content block).
pub fn answer_text(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.pointer("/content/0/text")?.as_str().map(str::to_string)
}

/// `{"type":"error","error":{"type","message"}}`, what Anthropic SDKs parse.
pub fn error_body(e: &GatewayError) -> serde_json::Value {
    let kind = match e.status() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        500 => "api_error",
        502..=504 => "overloaded_error",
        _ => "invalid_request_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": e.message()}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_comes_from_the_json_answer() {
        let body = br#"{"type":"message","content":[],"usage":{"input_tokens":12,"output_tokens":7,"cache_read_input_tokens":3}}"#;
        let u = usage(body).unwrap();
        assert_eq!((u.input, u.output, u.cached), (12, 7, 3));
    }

    #[test]
    fn usage_comes_from_message_start_and_the_last_message_delta() {
        let mut s = StreamState::default();
        s.observe(
            r#"{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}"#,
        );
        s.observe(r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Héllo"}}"#);
        s.observe(r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}"#);
        assert!(s.usage().is_none(), "not before message_stop");
        s.observe(r#"{"type":"message_stop"}"#);
        let u = s.usage().unwrap();
        assert_eq!((u.input, u.output), (25, 15));
        assert_eq!(s.delivered_chars, 5);
    }

    #[test]
    fn texts_include_the_system_prompt_and_every_block() {
        let v = parse(
            br#"{"model":"claude","max_tokens":5,"system":"be kind","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image"}]}]}"#,
        )
        .unwrap();
        assert_eq!(v.texts(), ["be kind", "hi"]);
    }
}
