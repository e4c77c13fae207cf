//! The Anthropic Messages dialect (`POST /v1/messages`) ⇄ the neutral form.
//!
//! Client side: [`decode_request`] reads a Messages request into a [`Chat`], and
//! [`encode_answer`] / [`Encoder`] write a neutral answer or stream as Anthropic's message JSON
//! or event stream. Backend side: [`encode_request`] writes the body an Anthropic backend
//! receives, and [`decode_answer`] / [`Decoder`] read its answer or stream back.
//!
//! What a Messages request says that the neutral form cannot hold is collected into
//! [`Chat::unsupported`] by its path (`system[0].cache_control`,
//! `messages[1].content[0].thinking`, `tools[2].type`, `service_tier`), and refused by the
//! backend's encoder unless its `drop_unsupported` lists it. A member whose value is `null`
//! says nothing and is ignored.
//!
//! | Neutral / client field | Anthropic Messages | Notes |
//! |---|---|---|
//! | `model` | `model` | |
//! | `max_tokens` | `max_tokens` | required by Anthropic: **4096** is sent when the chat has none |
//! | `system` | `system` | one text → a string, several → text blocks; empty texts skipped; `cache_control` (or any other block member) refused |
//! | `messages[].role` | `role` `user` / `assistant` | consecutive messages of one role merged into one (Anthropic alternates) |
//! | `Part::Text` | `{type:text,text}` | empty texts skipped (Anthropic rejects them) |
//! | `Part::Image` base64 / URL | `{type:image,source:{type:base64,media_type,data}}` / `{source:{type:url,url}}` | other sources (`file`) refused |
//! | `Part::ToolCall{id,name,arguments}` | `{type:tool_use,id,name,input}` in an assistant message | `input` is `arguments` parsed; arguments that are not a JSON object → 400 (empty arguments → `{}`) |
//! | `Part::ToolResult{id,content,is_error}` | `{type:tool_result,tool_use_id,content,is_error}` in a user message | a result's text blocks are joined with `\n`; an image (or any non-text block) inside a result is refused |
//! | `tools[]` | `tools[]` `{name,description,input_schema}` | server tools (any `type` but `custom`: web search, bash, text editor, …) refused as `tools[i].type`; `cache_control` and other tool members refused |
//! | `tool_choice` Auto / Required / Tool(n) / None | `{type:auto}` / `{type:any}` / `{type:tool,name}` / `{type:none}` | `disable_parallel_tool_use: true` refused |
//! | `temperature`, `top_p`, `top_k` | same names | |
//! | `stop` | `stop_sequences` | |
//! | `user` | `metadata.user_id` | other `metadata` members refused |
//! | `stream` | `stream` | |
//! | `seed`, `presence_penalty`, `frequency_penalty`, `json_object` (`response_format`) | — | refused (400 naming the field) unless dropped |
//! | any other request member (`thinking`, `service_tier`, `container`, `mcp_servers`, `context_management`, …) | — | refused by its name unless dropped |
//! | content blocks `document`, `thinking`, `redacted_thinking`, `search_result`, `server_tool_use`, … | — | refused as `messages[i].content[j].<type>` |
//! | `Answer.id` | `id` | a fresh `msg_<hex>` when the backend gave none |
//! | `Answer.parts` | `content[]` text / `tool_use` blocks | answer `thinking` / `redacted_thinking` blocks skipped (their tokens are in `usage`); an unparsable argument string is written as `input: {}` |
//! | `Finish` Stop / StopSequence / Length / ToolCalls / ContentFilter | `stop_reason` `end_turn` / `stop_sequence` / `max_tokens` / `tool_use` / `refusal` | read: `pause_turn` → Stop, `model_context_window_exceeded` → Length, unknown → Stop |
//! | `Usage` (`input` holds cache reads and writes) | `usage.input_tokens` (without them), `cache_read_input_tokens`, `cache_creation_input_tokens`, `output_tokens` | |
//!
//! Streams: Anthropic's `message_start` → `Start` (its prompt usage kept), text and `tool_use`
//! blocks → `Text` / `ToolCallStart` / `ToolCallArgs` (tool calls numbered from 0 in order),
//! thinking deltas ignored, `message_delta` → `Finish` and `Usage`, `error` → `Error`. The
//! encoder writes the same events back, holding the finish and usage for `end()`.

mod stream;

pub use stream::{Decoder, Encoder};

use super::{
    asks_for_nothing, role_messages, Answer, Chat, Drops, Finish, Image, Message, Part, Role,
    ToolChoice, ToolDef,
};
use crate::error::GatewayError;
use crate::protocol::anthropic::UsageWire;
use crate::protocol::json::json_error;
use crate::usage::Usage;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The dialect's name in refusals.
const TARGET: &str = "anthropic";

/// The output cap sent when the chat has none: Anthropic requires one.
const DEFAULT_MAX_TOKENS: u64 = 4096;

#[derive(Deserialize)]
struct RequestWire {
    model: String,
    messages: Vec<MessageWire>,
    #[serde(default)]
    system: Option<Value>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u64>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    /// Every other member: none has a neutral form.
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct MessageWire {
    role: String,
    content: Value,
}

/// Client side: an Anthropic Messages request body → neutral Chat.
pub fn decode_request(body: &[u8]) -> Result<Chat, GatewayError> {
    let req: RequestWire = serde_json::from_slice(body).map_err(json_error)?;
    let mut chat = Chat {
        model: req.model,
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop: req.stop_sequences.unwrap_or_default(),
        stream: req.stream.unwrap_or(false),
        ..Chat::default()
    };
    let unsupported = &mut chat.unsupported;
    for (name, value) in &req.other {
        if !asks_for_nothing(name, value) {
            unsupported.push(name.clone());
        }
    }
    for (key, value) in req.metadata.iter().flatten() {
        match (key.as_str(), value) {
            ("user_id", Value::String(u)) => chat.user = Some(u.clone()),
            (_, Value::Null) => {}
            _ => unsupported.push(format!("metadata.{key}")),
        }
    }
    match &req.system {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => chat.system.push(s.clone()),
        Some(Value::Array(blocks)) => {
            for (k, block) in blocks.iter().enumerate() {
                let path = format!("system[{k}]");
                match block_type(block) {
                    "text" => {
                        extra_members(block, &["type", "text"], &path, unsupported);
                        chat.system.push(str_member(block, "text").to_string());
                    }
                    other => unsupported.push(format!("{path}.{other}")),
                }
            }
        }
        Some(_) => return Err(bad("`system` must be a string or text blocks")),
    }
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => {
                return Err(bad(&format!(
                    "messages[{i}].role must be user or assistant"
                )))
            }
        };
        let parts = match &m.content {
            Value::String(s) => vec![Part::Text(s.clone())],
            Value::Array(blocks) => {
                let mut parts = Vec::with_capacity(blocks.len());
                for (j, block) in blocks.iter().enumerate() {
                    let path = format!("messages[{i}].content[{j}]");
                    if let Some(part) = decode_block(block, &path, unsupported)? {
                        parts.push(part);
                    }
                }
                parts
            }
            _ => {
                return Err(bad(&format!(
                    "messages[{i}].content must be a string or blocks"
                )))
            }
        };
        chat.messages.push(Message { role, parts });
    }
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        let path = format!("tools[{i}]");
        match tool.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(_) => {
                unsupported.push(format!("{path}.type"));
                continue;
            }
        }
        extra_members(
            tool,
            &["type", "name", "description", "input_schema"],
            &path,
            unsupported,
        );
        let name = tool.get("name").and_then(Value::as_str);
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return Err(bad(&format!("{path}.name is required")));
        };
        chat.tools.push(ToolDef {
            name: name.to_string(),
            description: tool
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            parameters: tool
                .get("input_schema")
                .filter(|s| !s.is_null())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"})),
        });
    }
    if let Some(choice) = req.tool_choice.as_ref().filter(|c| !c.is_null()) {
        if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
            unsupported.push("tool_choice.disable_parallel_tool_use".into());
        }
        chat.tool_choice = Some(match block_type(choice) {
            "auto" => ToolChoice::Auto,
            "any" => ToolChoice::Required,
            "none" => ToolChoice::None,
            "tool" => match choice.get("name").and_then(Value::as_str) {
                Some(n) => ToolChoice::Tool(n.to_string()),
                None => return Err(bad("tool_choice.name is required for type tool")),
            },
            _ => return Err(bad("tool_choice.type must be auto, any, tool or none")),
        });
    }
    chat.name_tool_results();
    Ok(chat)
}

/// One content block of a request message: its part, or `None` when it is refused (its path
/// then in `unsupported`).
fn decode_block(
    block: &Value,
    path: &str,
    unsupported: &mut Vec<String>,
) -> Result<Option<Part>, GatewayError> {
    let kind = block_type(block);
    let part = match kind {
        "text" => {
            extra_members(block, &["type", "text"], path, unsupported);
            Part::Text(str_member(block, "text").to_string())
        }
        "image" => {
            extra_members(block, &["type", "source"], path, unsupported);
            let source = block.get("source").unwrap_or(&Value::Null);
            match block_type(source) {
                "base64" => Part::Image(Image::Base64 {
                    media_type: str_member(source, "media_type").to_string(),
                    data: str_member(source, "data").to_string(),
                }),
                "url" => Part::Image(Image::Url(str_member(source, "url").to_string())),
                _ => {
                    unsupported.push(format!("{path}.source"));
                    return Ok(None);
                }
            }
        }
        "tool_use" => {
            extra_members(block, &["type", "id", "name", "input"], path, unsupported);
            Part::ToolCall {
                id: str_member(block, "id").to_string(),
                name: str_member(block, "name").to_string(),
                arguments: match block.get("input") {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(input) => input.to_string(),
                },
            }
        }
        "tool_result" => {
            let known = ["type", "tool_use_id", "content", "is_error"];
            extra_members(block, &known, path, unsupported);
            let content = match block.get("content") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(inner)) => {
                    let mut texts = Vec::with_capacity(inner.len());
                    for (k, b) in inner.iter().enumerate() {
                        match block_type(b) {
                            "text" => texts.push(str_member(b, "text")),
                            other => unsupported.push(format!("{path}.content[{k}].{other}")),
                        }
                    }
                    texts.join("\n")
                }
                Some(_) => return Err(bad(&format!("{path}.content must be a string or blocks"))),
            };
            Part::ToolResult {
                id: str_member(block, "tool_use_id").to_string(),
                name: String::new(),
                content,
                is_error: block.get("is_error").and_then(Value::as_bool) == Some(true),
            }
        }
        other => {
            unsupported.push(format!("{path}.{other}"));
            return Ok(None);
        }
    };
    Ok(Some(part))
}

/// A block's `type` (`""` when it has none).
fn block_type(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

fn str_member<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Records `path.member` for each non-null member of `v` not in `known` (`cache_control`,
/// `citations`, a tool's `strict`): the neutral form has no place for them.
fn extra_members(v: &Value, known: &[&str], path: &str, unsupported: &mut Vec<String>) {
    if let Value::Object(members) = v {
        for (key, value) in members {
            if !value.is_null() && !known.contains(&key.as_str()) {
                unsupported.push(format!("{path}.{key}"));
            }
        }
    }
}

fn bad(reason: &str) -> GatewayError {
    GatewayError::BadRequest(reason.to_string())
}

/// Backend side: neutral Chat → the body an Anthropic backend receives (POST /v1/messages).
pub fn encode_request(chat: &Chat, drops: Drops<'_>) -> Result<Bytes, GatewayError> {
    drops.check(&chat.unsupported, TARGET)?;
    let refused = [
        ("seed", chat.seed.is_some()),
        ("presence_penalty", chat.presence_penalty.is_some()),
        ("frequency_penalty", chat.frequency_penalty.is_some()),
        ("response_format", chat.json_object),
    ];
    for (field, present) in refused {
        if present {
            drops.refuse(field, TARGET)?;
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(chat.model));
    body.insert(
        "max_tokens".into(),
        json!(chat.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    let system: Vec<&String> = chat.system.iter().filter(|s| !s.is_empty()).collect();
    match system.as_slice() {
        [] => {}
        [one] => {
            body.insert("system".into(), json!(one));
        }
        many => {
            let blocks: Vec<Value> = many
                .iter()
                .map(|t| json!({"type": "text", "text": t}))
                .collect();
            body.insert("system".into(), Value::Array(blocks));
        }
    }
    body.insert("messages".into(), Value::Array(encode_messages(chat)?));
    if !chat.tools.is_empty() {
        let tools: Vec<Value> = chat
            .tools
            .iter()
            .map(|t| {
                let mut tool = Map::new();
                tool.insert("name".into(), json!(t.name));
                if let Some(d) = &t.description {
                    tool.insert("description".into(), json!(d));
                }
                tool.insert("input_schema".into(), t.parameters.clone());
                Value::Object(tool)
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &chat.tool_choice {
        let choice = match choice {
            ToolChoice::Auto => json!({"type": "auto"}),
            ToolChoice::Required => json!({"type": "any"}),
            ToolChoice::None => json!({"type": "none"}),
            ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
        };
        body.insert("tool_choice".into(), choice);
    }
    if !chat.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(chat.stop));
    }
    if let Some(t) = chat.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = chat.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(k) = chat.top_k {
        body.insert("top_k".into(), json!(k));
    }
    if let Some(user) = &chat.user {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if chat.stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    Ok(Bytes::from(Value::Object(body).to_string()))
}

/// The chat's messages as Anthropic's: tool calls in assistant turns, tool results in user
/// turns, consecutive blocks of one role in one message (Anthropic alternates roles).
fn encode_messages(chat: &Chat) -> Result<Vec<Value>, GatewayError> {
    let mut out: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in &chat.messages {
        for part in &m.parts {
            let (role, block) = match part {
                Part::Text(t) if t.is_empty() => continue,
                Part::Text(t) => (m.role, json!({"type": "text", "text": t})),
                Part::Image(Image::Base64 { media_type, data }) => (
                    m.role,
                    json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}),
                ),
                Part::Image(Image::Url(url)) => (
                    m.role,
                    json!({"type": "image", "source": {"type": "url", "url": url}}),
                ),
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                } => {
                    let input = if arguments.trim().is_empty() {
                        json!({})
                    } else {
                        match serde_json::from_str::<Value>(arguments) {
                            Ok(v @ Value::Object(_)) => v,
                            _ => {
                                return Err(bad(&format!(
                                    "the arguments of tool call `{id}` are not a JSON object"
                                )))
                            }
                        }
                    };
                    (
                        Role::Assistant,
                        json!({"type": "tool_use", "id": id, "name": name, "input": input}),
                    )
                }
                Part::ToolResult {
                    id,
                    content,
                    is_error,
                    ..
                } => {
                    let mut block =
                        json!({"type": "tool_result", "tool_use_id": id, "content": content});
                    if *is_error {
                        block["is_error"] = Value::Bool(true);
                    }
                    (Role::User, block)
                }
            };
            match out.last_mut() {
                Some((last, blocks)) if *last == role => blocks.push(block),
                _ => out.push((role, vec![block])),
            }
        }
    }
    Ok(role_messages(out))
}

#[derive(Deserialize)]
struct AnswerWire {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    content: Vec<BlockWire>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<UsageWire>,
}

/// An answer's content block (a stream's `content_block` too).
#[derive(Deserialize)]
struct BlockWire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

/// Backend side: an Anthropic message answer → neutral Answer.
pub fn decode_answer(body: &[u8]) -> Result<Answer, GatewayError> {
    let wire: AnswerWire = serde_json::from_slice(body)
        .map_err(|_| GatewayError::UpstreamFailed("invalid response body".into()))?;
    let parts = wire
        .content
        .into_iter()
        .filter_map(|b| match b.kind.as_str() {
            "text" => Some(Part::Text(b.text.unwrap_or_default())),
            "tool_use" => Some(Part::ToolCall {
                id: b.id.unwrap_or_default(),
                name: b.name.unwrap_or_default(),
                arguments: b.input.map_or_else(|| "{}".to_string(), |i| i.to_string()),
            }),
            // Thinking is not part of the answer; its tokens are in `usage.output_tokens`.
            _ => None,
        })
        .collect();
    Ok(Answer {
        id: wire.id,
        model: wire.model,
        parts,
        finish: finish_from(wire.stop_reason.as_deref()),
        usage: wire.usage.and_then(|u| u.usage()),
    })
}

fn finish_from(stop_reason: Option<&str>) -> Finish {
    match stop_reason {
        Some("stop_sequence") => Finish::StopSequence,
        Some("max_tokens") | Some("model_context_window_exceeded") => Finish::Length,
        Some("tool_use") => Finish::ToolCalls,
        Some("refusal") => Finish::ContentFilter,
        // `end_turn`, `pause_turn` (a server tool paused the turn), and anything new.
        _ => Finish::Stop,
    }
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::StopSequence => "stop_sequence",
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
        Finish::ContentFilter => "refusal",
    }
}

/// Anthropic's usage object: `input_tokens` leaves out the prompt cache's reads and writes.
fn usage_json(usage: Option<&Usage>) -> Value {
    let u = usage.copied().unwrap_or_default();
    json!({
        "input_tokens": u.input.saturating_sub(u.cached).saturating_sub(u.cache_write),
        "output_tokens": u.output,
        "cache_read_input_tokens": u.cached,
        "cache_creation_input_tokens": u.cache_write,
    })
}

/// A fresh message id, for an answer whose backend gave none.
fn fresh_id() -> String {
    format!("msg_{}", crate::digest::random_id_hex())
}

/// Client side: neutral Answer → an Anthropic message JSON body.
pub fn encode_answer(answer: &Answer) -> Bytes {
    let content: Vec<Value> = answer
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) if !t.is_empty() => Some(json!({"type": "text", "text": t})),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => {
                // Anthropic's `input` is an object; arguments that do not parse as one (a
                // backend's malformed call) are written as `{}` rather than failing the answer.
                let input = match serde_json::from_str::<Value>(arguments) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({}),
                };
                Some(json!({"type": "tool_use", "id": id, "name": name, "input": input}))
            }
            _ => None,
        })
        .collect();
    let id = if answer.id.is_empty() {
        fresh_id()
    } else {
        answer.id.clone()
    };
    let body = json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": content,
        "stop_reason": stop_reason(answer.finish),
        "stop_sequence": null,
        "usage": usage_json(answer.usage.as_ref()),
    });
    Bytes::from(body.to_string())
}

#[cfg(test)]
mod tests;
