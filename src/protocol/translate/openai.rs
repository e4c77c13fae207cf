//! The OpenAI chat-completions dialect (`POST /v1/chat/completions`) ⇄ the neutral form.
//!
//! Client side: a chat-completions body is decoded into a [`Chat`] ([`decode_request`]) and an
//! [`Answer`] or a stream of [`Event`]s is written back as a `chat.completion` body
//! ([`encode_answer`]) or `chat.completion.chunk` events ([`Encoder`]). Backend side: a [`Chat`]
//! becomes the body an OpenAI(-compatible) backend receives ([`encode_request`]) and its answer
//! is read back ([`decode_answer`], [`Decoder`]).
//!
//! Decoding never fails on a field the neutral form lacks: the field is listed in
//! [`Chat::unsupported`] under the name the client used, and the backend's encoder refuses it
//! (or drops it when `drop_unsupported` lists it). A malformed body is a 400 (`BadRequest`);
//! a `null` member counts as absent.
//!
//! | Neutral | OpenAI chat completions | Notes |
//! |---|---|---|
//! | `model` | `model` | |
//! | `system` | `system` and `developer` messages, in order | their place among the turns is not kept: they all come first when encoded (as `system`) |
//! | `messages[].User` `Text` / `Image` | `user` content: a string, or `text` / `image_url` parts | a single text part is sent as a string; `image_url.detail` other than `auto` is refused (`messages[i].content[j].image_url.detail`); `input_audio`, `file` parts are refused by path (`messages[i].content[j].input_audio`) |
//! | `messages[].Assistant` `Text` | `assistant` content (string or `text` parts), `refusal` (member or part) | a refusal becomes text; texts are joined (`null` when none) when encoded |
//! | `ToolCall { id, name, arguments }` | assistant `tool_calls[] {id, type: function, function: {name, arguments}}` | other call types refused (`messages[i].tool_calls[k].custom`) |
//! | `ToolResult { id, content }` (in a User message) | `tool` message `{tool_call_id, content}` | consecutive `tool` messages (and a `user` message right after them) form one User message; encoded as one `tool` message per result, before the user's other parts; `is_error` has no OpenAI form: the content is sent unchanged; `name` is filled from the call |
//! | `tools[]` | `tools[] {type: function, function: {name, description, parameters}}` | `parameters` defaults to `{"type":"object"}`; `strict: true` refused (`tools[i].function.strict`); other tool types refused (`tools[i].custom`) |
//! | `tool_choice` | `"auto"` / `"none"` / `"required"` / `{type: function, function: {name}}` | `allowed_tools` and custom choices refused (`tool_choice`) |
//! | `max_tokens` | `max_completion_tokens` (wins), else `max_tokens`; encoded as `max_tokens` | |
//! | `temperature`, `top_p`, `seed`, `presence_penalty`, `frequency_penalty`, `user` | same names | |
//! | `stop` | `stop` (string or array); encoded as an array | |
//! | `json_object` | `response_format: {type: json_object}` | `text` is the default (nothing); `json_schema` refused (`response_format`) |
//! | `stream` | `stream`; encoded with `stream_options: {include_usage: true}` | the client's `stream_options` are read by the gateway itself |
//! | `top_k` | — | refused unless dropped (`top_k`) |
//! | `unsupported` | `n` > 1, `parallel_tool_calls: false`, a message's `name`, `function_call`, `audio`, the `function` role (`messages[i].role`), `functions`, and every other top-level member by its name (`logprobs`, `top_logprobs`, `logit_bias`, `metadata`, `store`, `modalities`, `audio`, `prediction`, `service_tier`, `reasoning_effort`, `web_search_options`, …) | refused unless dropped |
//!
//! | Answer | `chat.completion` / `chat.completion.chunk` | Notes |
//! |---|---|---|
//! | `id`, `model` | `id`, `model` | a missing id is generated (`chatcmpl-<hex>`) when encoded |
//! | `Text` parts | `choices[0].message.content` / `delta.content` | `refusal` is read as text; encoded `refusal` is always `null` |
//! | `ToolCall` parts | `message.tool_calls` / `delta.tool_calls[] {index, id, function: {name, arguments}}` | |
//! | `finish` | `finish_reason`: `stop` (and `StopSequence`), `length`, `tool_calls` (`function_call` read as it), `content_filter` | |
//! | `usage` | `usage {prompt_tokens, completion_tokens, total_tokens, prompt_tokens_details.cached_tokens, completion_tokens_details.reasoning_tokens}`; in a stream, the chunk with `choices: []` | `cache_write` has no OpenAI form |
//! | `Event::Error` | `data: {"error": {…}}` | |

use super::{asks_for_nothing, Chat, Drops, Image, Message, Part, Role, ToolChoice, ToolDef};
use crate::error::GatewayError;
use crate::protocol::json::json_error;
use bytes::Bytes;
use serde_json::{json, Map, Value};

mod answer;
mod stream;
pub use answer::{decode_answer, encode_answer};
pub use stream::{Decoder, Encoder};

/// The dialect's name in refusals.
const TARGET: &str = "openai";

fn bad(msg: String) -> GatewayError {
    GatewayError::BadRequest(msg)
}

fn as_str<'a>(v: &'a Value, field: &str) -> Result<&'a str, GatewayError> {
    v.as_str()
        .ok_or_else(|| bad(format!("`{field}` must be a string")))
}

fn as_f64(v: &Value, field: &str) -> Result<f64, GatewayError> {
    v.as_f64()
        .ok_or_else(|| bad(format!("`{field}` must be a number")))
}

fn as_u64(v: &Value, field: &str) -> Result<u64, GatewayError> {
    v.as_u64()
        .ok_or_else(|| bad(format!("`{field}` must be a non-negative integer")))
}

fn as_bool(v: &Value, field: &str) -> Result<bool, GatewayError> {
    v.as_bool()
        .ok_or_else(|| bad(format!("`{field}` must be a boolean")))
}

fn as_object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, GatewayError> {
    v.as_object()
        .ok_or_else(|| bad(format!("`{field}` must be an object")))
}

fn as_array<'a>(v: &'a Value, field: &str) -> Result<&'a Vec<Value>, GatewayError> {
    v.as_array()
        .ok_or_else(|| bad(format!("`{field}` must be an array")))
}

/// A member of `obj`, `null` counting as absent.
fn member<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// Lists under `at.<key>` every non-null member of `obj` not in `known`.
fn unknown_members(obj: &Map<String, Value>, known: &[&str], at: &str, out: &mut Vec<String>) {
    for (key, value) in obj {
        if !value.is_null() && !known.contains(&key.as_str()) {
            out.push(format!("{at}.{key}"));
        }
    }
}

/// Client side: an OpenAI chat-completions request body → neutral [`Chat`].
///
/// `system` and `developer` messages go to [`Chat::system`] in order; their position among the
/// other turns is not kept. Fields without a neutral form are listed in [`Chat::unsupported`]
/// (the caller checks them with [`Drops`]); a malformed body is a `BadRequest`.
pub fn decode_request(body: &[u8]) -> Result<Chat, GatewayError> {
    let value: Value = serde_json::from_slice(body).map_err(json_error)?;
    let top = as_object(&value, "body")?;
    let mut chat = Chat::default();
    let (mut cap, mut legacy_cap) = (None, None);
    let mut messages = None;
    for (key, v) in top {
        if v.is_null() {
            continue;
        }
        let key = key.as_str();
        match key {
            "model" => chat.model = as_str(v, key)?.to_string(),
            "messages" => messages = Some(as_array(v, key)?),
            "tools" => decode_tools(as_array(v, key)?, &mut chat)?,
            "tool_choice" => chat.tool_choice = decode_tool_choice(v, &mut chat.unsupported)?,
            "max_completion_tokens" => cap = Some(as_u64(v, key)?),
            "max_tokens" => legacy_cap = Some(as_u64(v, key)?),
            "n" => {
                if as_u64(v, key)? > 1 {
                    chat.unsupported.push(key.to_string());
                }
            }
            "temperature" => chat.temperature = Some(as_f64(v, key)?),
            "top_p" => chat.top_p = Some(as_f64(v, key)?),
            "presence_penalty" => chat.presence_penalty = Some(as_f64(v, key)?),
            "frequency_penalty" => chat.frequency_penalty = Some(as_f64(v, key)?),
            "seed" => {
                let seed = v.as_i64();
                chat.seed = Some(seed.ok_or_else(|| bad("`seed` must be an integer".into()))?);
            }
            "stop" => {
                chat.stop = match v {
                    Value::Array(items) => items
                        .iter()
                        .map(|s| as_str(s, key).map(str::to_string))
                        .collect::<Result<_, _>>()?,
                    other => vec![as_str(other, key)?.to_string()],
                }
            }
            "user" => chat.user = Some(as_str(v, key)?.to_string()),
            "response_format" => {
                let format = as_object(v, key)?;
                match member(format, "type").and_then(Value::as_str) {
                    Some("text") => {}
                    Some("json_object") => chat.json_object = true,
                    _ => chat.unsupported.push(key.to_string()),
                }
            }
            "stream" => chat.stream = as_bool(v, key)?,
            // The gateway reads `include_usage` from the client's body itself.
            "stream_options" => {}
            "parallel_tool_calls" => {
                if !as_bool(v, key)? {
                    chat.unsupported.push(key.to_string());
                }
            }
            _ if asks_for_nothing(key, v) => {}
            _ => chat.unsupported.push(key.to_string()),
        }
    }
    if chat.model.trim().is_empty() {
        return Err(bad("`model` must not be empty".into()));
    }
    let messages = messages.filter(|m| !m.is_empty());
    let messages = messages.ok_or_else(|| bad("`messages` must not be empty".into()))?;
    decode_messages(messages, &mut chat)?;
    chat.max_tokens = cap.or(legacy_cap);
    chat.name_tool_results();
    Ok(chat)
}

fn decode_messages(items: &[Value], chat: &mut Chat) -> Result<(), GatewayError> {
    for (i, m) in items.iter().enumerate() {
        let at = format!("messages[{i}]");
        let m = as_object(m, &at)?;
        let role = member(m, "role").and_then(Value::as_str);
        let role = role.ok_or_else(|| bad(format!("`{at}.role` must be a string")))?;
        let known: &[&str] = match role {
            "system" | "developer" | "user" => &["role", "content"],
            "assistant" => &["role", "content", "refusal", "tool_calls"],
            "tool" => &["role", "content", "tool_call_id"],
            // The legacy function role has no neutral form (its results name no call).
            "function" => {
                chat.unsupported.push(format!("{at}.role"));
                continue;
            }
            other => return Err(bad(format!("`{at}.role` `{other}` is not a chat role"))),
        };
        unknown_members(m, known, &at, &mut chat.unsupported);
        let content = member(m, "content");
        match role {
            "system" | "developer" => {
                let text = joined_text(content, &at, &mut chat.unsupported)?;
                if !text.is_empty() {
                    chat.system.push(text);
                }
            }
            "user" => {
                let parts =
                    content_parts(content, &at, &["text", "image_url"], &mut chat.unsupported)?;
                push_user(chat, parts);
            }
            "tool" => {
                let id = member(m, "tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("`{at}.tool_call_id` must be a string")))?;
                let content = joined_text(content, &at, &mut chat.unsupported)?;
                let result = Part::ToolResult {
                    id: id.to_string(),
                    name: String::new(),
                    content,
                    is_error: false,
                };
                push_user(chat, vec![result]);
            }
            _ => {
                let mut parts =
                    content_parts(content, &at, &["text", "refusal"], &mut chat.unsupported)?;
                // An empty content beside tool calls is the SDKs' way of saying "none".
                parts.retain(|p| !matches!(p, Part::Text(t) if t.is_empty()));
                if let Some(refusal) = member(m, "refusal") {
                    parts.push(Part::Text(
                        as_str(refusal, &format!("{at}.refusal"))?.into(),
                    ));
                }
                if let Some(calls) = member(m, "tool_calls") {
                    let calls = as_array(calls, &format!("{at}.tool_calls"))?;
                    decode_calls(calls, &at, &mut parts, &mut chat.unsupported)?;
                }
                if !parts.is_empty() {
                    chat.messages.push(Message {
                        role: Role::Assistant,
                        parts,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Adds a user turn. Tool results open a user message the next tool results and the user's
/// own next message join: one turn, results first, as Anthropic requires.
fn push_user(chat: &mut Chat, parts: Vec<Part>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = chat.messages.last_mut() {
        let only_results = last
            .parts
            .iter()
            .all(|p| matches!(p, Part::ToolResult { .. }));
        if last.role == Role::User && only_results {
            last.parts.extend(parts);
            return;
        }
    }
    chat.messages.push(Message {
        role: Role::User,
        parts,
    });
}

/// The parts of a message's `content` (a string is one text part); part types not in
/// `allowed` are listed as unsupported by their path.
fn content_parts(
    content: Option<&Value>,
    at: &str,
    allowed: &[&str],
    unsupported: &mut Vec<String>,
) -> Result<Vec<Part>, GatewayError> {
    let items = match content {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![Part::Text(s.clone())]),
        Some(v) => as_array(v, &format!("{at}.content"))?,
    };
    let mut parts = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let here = format!("{at}.content[{j}]");
        let item = as_object(item, &here)?;
        let kind = member(item, "type").and_then(Value::as_str);
        let kind = kind.ok_or_else(|| bad(format!("`{here}.type` must be a string")))?;
        if !allowed.contains(&kind) {
            unsupported.push(format!("{here}.{kind}"));
            continue;
        }
        unknown_members(item, &["type", kind], &here, unsupported);
        let field = format!("{here}.{kind}");
        let value = member(item, kind).ok_or_else(|| bad(format!("`{field}` is required")))?;
        match kind {
            "image_url" => {
                let image = as_object(value, &field)?;
                let url = member(image, "url")
                    .ok_or_else(|| bad(format!("`{field}.url` is required")))?;
                let detail = member(image, "detail").and_then(Value::as_str);
                if detail.is_some_and(|d| d != "auto") {
                    unsupported.push(format!("{field}.detail"));
                }
                let url = as_str(url, &format!("{field}.url"))?;
                parts.push(Part::Image(Image::from_url(url)));
            }
            // `text` and `refusal` both carry their string under their own name.
            _ => parts.push(Part::Text(as_str(value, &field)?.to_string())),
        }
    }
    Ok(parts)
}

/// A `system`, `developer` or `tool` message's text: the string, or its text parts joined.
fn joined_text(
    content: Option<&Value>,
    at: &str,
    unsupported: &mut Vec<String>,
) -> Result<String, GatewayError> {
    let parts = content_parts(content, at, &["text"], unsupported)?;
    Ok(parts
        .into_iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t),
            _ => None,
        })
        .collect())
}

fn decode_calls(
    calls: &[Value],
    at: &str,
    parts: &mut Vec<Part>,
    unsupported: &mut Vec<String>,
) -> Result<(), GatewayError> {
    for (k, call) in calls.iter().enumerate() {
        let here = format!("{at}.tool_calls[{k}]");
        let call = as_object(call, &here)?;
        let kind = member(call, "type")
            .and_then(Value::as_str)
            .unwrap_or("function");
        if kind != "function" {
            unsupported.push(format!("{here}.{kind}"));
            continue;
        }
        let id = member(call, "id").ok_or_else(|| bad(format!("`{here}.id` is required")))?;
        let function = member(call, "function")
            .ok_or_else(|| bad(format!("`{here}.function` is required")))?;
        let function = as_object(function, &format!("{here}.function"))?;
        let name = member(function, "name")
            .ok_or_else(|| bad(format!("`{here}.function.name` is required")))?;
        let arguments = match member(function, "arguments") {
            Some(a) => as_str(a, &format!("{here}.function.arguments"))?,
            None => "{}",
        };
        parts.push(Part::ToolCall {
            id: as_str(id, &format!("{here}.id"))?.to_string(),
            name: as_str(name, &format!("{here}.function.name"))?.to_string(),
            arguments: arguments.to_string(),
        });
    }
    Ok(())
}

fn decode_tools(tools: &[Value], chat: &mut Chat) -> Result<(), GatewayError> {
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        let tool = as_object(tool, &at)?;
        let kind = member(tool, "type")
            .and_then(Value::as_str)
            .unwrap_or("function");
        if kind != "function" {
            chat.unsupported.push(format!("{at}.{kind}"));
            continue;
        }
        let f =
            member(tool, "function").ok_or_else(|| bad(format!("`{at}.function` is required")))?;
        let here = format!("{at}.function");
        let f = as_object(f, &here)?;
        let known = ["name", "description", "parameters", "strict"];
        unknown_members(f, &known, &here, &mut chat.unsupported);
        if let Some(strict) = member(f, "strict") {
            if as_bool(strict, &format!("{here}.strict"))? {
                chat.unsupported.push(format!("{here}.strict"));
            }
        }
        let name = member(f, "name").ok_or_else(|| bad(format!("`{here}.name` is required")))?;
        let description = match member(f, "description") {
            Some(d) => Some(as_str(d, &format!("{here}.description"))?.to_string()),
            None => None,
        };
        let parameters = match member(f, "parameters") {
            Some(p) => Value::Object(as_object(p, &format!("{here}.parameters"))?.clone()),
            None => json!({"type": "object"}),
        };
        chat.tools.push(ToolDef {
            name: as_str(name, &format!("{here}.name"))?.to_string(),
            description,
            parameters,
        });
    }
    Ok(())
}

fn decode_tool_choice(
    v: &Value,
    unsupported: &mut Vec<String>,
) -> Result<Option<ToolChoice>, GatewayError> {
    let choice = match v {
        Value::String(s) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => return Err(bad(format!("`tool_choice` `{other}` is not a choice"))),
        },
        _ => {
            let name = v
                .pointer("/function/name")
                .and_then(Value::as_str)
                .filter(|_| v.get("type").and_then(Value::as_str) == Some("function"));
            match name {
                Some(name) => ToolChoice::Tool(name.to_string()),
                // `allowed_tools` and custom-tool choices have no neutral form.
                None => {
                    unsupported.push("tool_choice".into());
                    return Ok(None);
                }
            }
        }
    };
    Ok(Some(choice))
}

/// Backend side: neutral [`Chat`] → the body an OpenAI(-compatible) backend receives.
///
/// Refuses (`Untranslatable`) the client's unsupported fields and `top_k` unless `drops`
/// allows them.
pub fn encode_request(chat: &Chat, drops: Drops<'_>) -> Result<Bytes, GatewayError> {
    drops.check(&chat.unsupported, TARGET)?;
    if chat.top_k.is_some() {
        drops.refuse("top_k", TARGET)?;
    }
    let mut messages: Vec<Value> = chat
        .system
        .iter()
        .map(|s| json!({"role": "system", "content": s}))
        .collect();
    for (i, m) in chat.messages.iter().enumerate() {
        match m.role {
            Role::User => encode_user(i, m, drops, &mut messages)?,
            Role::Assistant => messages.push(encode_assistant(i, m, drops)?),
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(chat.model));
    body.insert("messages".into(), Value::Array(messages));
    if !chat.tools.is_empty() {
        let tools = chat.tools.iter().map(|t| {
            let mut f = json!({"name": t.name, "parameters": t.parameters});
            if let Some(d) = &t.description {
                f["description"] = json!(d);
            }
            json!({"type": "function", "function": f})
        });
        body.insert("tools".into(), tools.collect());
    }
    if let Some(choice) = &chat.tool_choice {
        let choice = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        };
        body.insert("tool_choice".into(), choice);
    }
    let numbers = [
        ("max_tokens", chat.max_tokens.map(Value::from)),
        ("temperature", chat.temperature.map(Value::from)),
        ("top_p", chat.top_p.map(Value::from)),
        ("seed", chat.seed.map(Value::from)),
        ("presence_penalty", chat.presence_penalty.map(Value::from)),
        ("frequency_penalty", chat.frequency_penalty.map(Value::from)),
        ("user", chat.user.as_deref().map(Value::from)),
    ];
    for (name, value) in numbers {
        if let Some(value) = value {
            body.insert(name.into(), value);
        }
    }
    if !chat.stop.is_empty() {
        body.insert("stop".into(), json!(chat.stop));
    }
    if chat.json_object {
        body.insert("response_format".into(), json!({"type": "json_object"}));
    }
    if chat.stream {
        body.insert("stream".into(), json!(true));
        // The gateway settles on the stream's own usage report.
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Bytes::from(Value::Object(body).to_string()))
}

/// A user message: its tool results as `tool` messages first, then the rest as one `user`
/// message.
fn encode_user(
    i: usize,
    m: &Message,
    drops: Drops<'_>,
    out: &mut Vec<Value>,
) -> Result<(), GatewayError> {
    let mut content = Vec::new();
    let mut had_results = false;
    for p in &m.parts {
        match p {
            Part::ToolResult { id, content: c, .. } => {
                had_results = true;
                // `is_error` has no OpenAI form: the model reads the result's text as it is.
                out.push(json!({"role": "tool", "tool_call_id": id, "content": c}));
            }
            Part::Text(t) => content.push(json!({"type": "text", "text": t})),
            Part::Image(img) => {
                content.push(json!({"type": "image_url", "image_url": {"url": img.to_url()}}))
            }
            Part::ToolCall { .. } => drops.refuse(&format!("messages[{i}].tool_call"), TARGET)?,
        }
    }
    if had_results && content.is_empty() {
        return Ok(());
    }
    let content = match content.as_slice() {
        [one] if one["type"] == "text" => one["text"].clone(),
        [] => json!(""),
        _ => Value::Array(content),
    };
    out.push(json!({"role": "user", "content": content}));
    Ok(())
}

fn encode_assistant(i: usize, m: &Message, drops: Drops<'_>) -> Result<Value, GatewayError> {
    let mut text: Option<String> = None;
    let mut calls = Vec::new();
    for p in &m.parts {
        match p {
            Part::Text(t) => text.get_or_insert_with(String::new).push_str(t),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => calls.push(tool_call_json(id, name, arguments)),
            Part::Image(_) => drops.refuse(&format!("messages[{i}].image"), TARGET)?,
            Part::ToolResult { .. } => {
                drops.refuse(&format!("messages[{i}].tool_result"), TARGET)?
            }
        }
    }
    let mut message = json!({"role": "assistant"});
    message["content"] = match text {
        Some(t) => json!(t),
        None if calls.is_empty() => json!(""),
        None => Value::Null,
    };
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    Ok(message)
}

/// A call as OpenAI writes it in a message.
fn tool_call_json(id: &str, name: &str, arguments: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
}

#[cfg(test)]
mod tests;
