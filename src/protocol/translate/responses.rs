//! The OpenAI Responses API (`POST /v1/responses`) as a client dialect: its request decoded into
//! the neutral [`Chat`], and the neutral answer (whole, or streamed) encoded as a Responses
//! `response` object or as its typed SSE events, for a client of this API served by a backend of
//! another dialect (Anthropic, Gemini, Bedrock).
//!
//! The gateway keeps no state: a request that asks the provider to keep or reuse state
//! (`store: true`, `previous_response_id`, `conversation`, `background`) cannot be served by a
//! translated backend and is refused unless the backend may drop the field. The answer always says
//! `"store": false`.
//!
//! # Mapping table
//!
//! | Responses API (client) | neutral | refused (unsupported, by this name) |
//! | --- | --- | --- |
//! | `model` | `model` | |
//! | `instructions` | `system[0]` | |
//! | `input` (a string) | one user message | |
//! | `input[i]` message, role `user` / `assistant` | a user / assistant message | |
//! | `input[i]` message, role `system` / `developer` | `system` (each text part, in order) | an image in it: `input[i].content[j].type` |
//! | `input_text`, `output_text`, `refusal` parts | `Part::Text` | |
//! | `input_image` `{image_url}` (URL or `data:` URL) | `Part::Image` | `file_id`: `input[i].content[j].file_id`; `detail` other than `auto`: `input[i].content[j].detail` |
//! | `input_file`, other parts | — | `input[i].content[j].type` |
//! | `function_call` `{call_id, name, arguments}` | `Part::ToolCall` in an assistant message (joining the assistant message before it) | |
//! | `function_call_output` `{call_id, output}` (string, or text parts joined) | `Part::ToolResult` in a user message (consecutive results together) | a non-text output part: `input[i].output[j].type` |
//! | `reasoning`, `item_reference`, built-in tool calls, other items | — | `input[i].type` |
//! | `tools[i]` `{type: "function", name, description, parameters}` | `ToolDef` | `strict: true`: `tools[i].strict` |
//! | `tools[i]` built-in (`web_search`, `file_search`, `code_interpreter`, `computer_use_preview`, `mcp`, `image_generation`, …) | — | `tools[i].<type>` |
//! | `tool_choice` `"auto"` / `"none"` / `"required"` / `{type: "function", name}` | `tool_choice` | other forms: `tool_choice` |
//! | `max_output_tokens` | `max_tokens` | |
//! | `temperature`, `top_p` | `temperature`, `top_p` | |
//! | `stream` | `stream` | |
//! | `text.format` `text` / `json_object` | — / `json_object` | `json_schema`: `text.format`; `text.verbosity` other than `medium` |
//! | `user` (else `safety_identifier`) | `user` | |
//! | `store` absent / `false` | — | `true`: `store` |
//! | `truncation` absent / `"disabled"` | — | `"auto"`: `truncation` |
//! | `parallel_tool_calls` absent / `true` | — | `false`: `parallel_tool_calls` |
//! | `previous_response_id`, `conversation`, `reasoning`, `include`, `background`, `prompt`, `service_tier`, `top_logprobs`, `max_tool_calls`, `metadata`, any other member | — | by name, unless at its default (`background: false`, `include: []`, `metadata: {}`, `service_tier: "auto"`, `top_logprobs: 0`) |
//!
//! A `null` member is absent. The answer: text parts → a `message` item with `output_text`
//! content; each tool call → a `function_call` item (`call_id` = the neutral id), in order;
//! `Finish::Length` / `ContentFilter` → `status: "incomplete"` with
//! `incomplete_details.reason` `max_output_tokens` / `content_filter`; usage → `input_tokens`
//! (cache reads and writes included), `input_tokens_details.cached_tokens` /
//! `cache_write_tokens`, `output_tokens`, `output_tokens_details.reasoning_tokens`,
//! `total_tokens`. A stream error → an `error` event, and the stream ends with
//! `response.failed`.

use super::{asks_for_nothing, Chat, Image, Message, Part, Role, ToolChoice};
use crate::error::GatewayError;
use crate::protocol::json::json_error;
use serde_json::{json, Map, Value};

mod encode;
pub use encode::{encode_answer, Encoder};

type Obj = Map<String, Value>;

/// A Responses API request body → neutral Chat.
pub fn decode_request(body: &[u8]) -> Result<Chat, GatewayError> {
    let root: Value = serde_json::from_slice(body).map_err(json_error)?;
    let Value::Object(root) = root else {
        return Err(bad("the body must be a JSON object"));
    };
    let mut chat = Chat {
        model: req_str(&root, "model", "model")?.to_string(),
        ..Chat::default()
    };
    if chat.model.trim().is_empty() {
        return Err(bad("`model` must not be empty"));
    }
    if let Some(s) = opt_str(&root, "instructions", "instructions")? {
        chat.system.push(s.to_string());
    }
    match member(&root, "input") {
        Some(Value::String(s)) => chat.messages.push(Message {
            role: Role::User,
            parts: vec![Part::Text(s.clone())],
        }),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Value::Object(item) = item else {
                    return Err(bad(format!("`input[{i}]` must be an object")));
                };
                decode_item(i, item, &mut chat)?;
            }
        }
        Some(_) => return Err(bad("`input` must be a string or an array of items")),
        // As the gateway's own view of the request: only a continued response may omit it.
        None if member(&root, "previous_response_id").is_none() => {
            return Err(bad("`input` is required"))
        }
        None => {}
    }
    if let Some(tools) = member(&root, "tools") {
        decode_tools(tools, &mut chat)?;
    }
    if let Some(choice) = member(&root, "tool_choice") {
        decode_tool_choice(choice, &mut chat)?;
    }
    if let Some(v) = member(&root, "max_output_tokens") {
        let cap = v
            .as_u64()
            .ok_or_else(|| bad("`max_output_tokens` must be a positive integer"))?;
        if cap == 0 {
            return Err(bad("the output cap must be at least 1 token"));
        }
        chat.max_tokens = Some(cap);
    }
    chat.temperature = opt_f64(&root, "temperature")?;
    chat.top_p = opt_f64(&root, "top_p")?;
    chat.stream = opt_bool(&root, "stream")?.unwrap_or(false);
    if let Some(text) = member(&root, "text") {
        decode_text(text, &mut chat)?;
    }
    // The translated answer is not stored by anyone: `store: true` cannot be honoured.
    if opt_bool(&root, "store")? == Some(true) {
        chat.unsupported.push("store".into());
    }
    if opt_str(&root, "truncation", "truncation")?.is_some_and(|t| t != "disabled") {
        chat.unsupported.push("truncation".into());
    }
    if opt_bool(&root, "parallel_tool_calls")? == Some(false) {
        chat.unsupported.push("parallel_tool_calls".into());
    }
    let user = opt_str(&root, "user", "user")?;
    let safety = opt_str(&root, "safety_identifier", "safety_identifier")?;
    chat.user = user.or(safety).map(str::to_string);
    for (key, value) in &root {
        if !HANDLED.contains(&key.as_str()) && !asks_for_nothing(key, value) {
            chat.unsupported.push(key.clone());
        }
    }
    chat.name_tool_results();
    Ok(chat)
}

/// The top-level members read above; every other one has no neutral form.
const HANDLED: &[&str] = &[
    "model",
    "instructions",
    "input",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "temperature",
    "top_p",
    "stream",
    "text",
    "store",
    "truncation",
    "parallel_tool_calls",
    "user",
    "safety_identifier",
];

fn decode_item(i: usize, item: &Obj, chat: &mut Chat) -> Result<(), GatewayError> {
    let kind = opt_str(item, "type", &format!("input[{i}].type"))?;
    match kind {
        Some("message") => decode_message(i, item, chat),
        None if member(item, "role").is_some() => decode_message(i, item, chat),
        None => Err(bad(format!("`input[{i}].type` is required"))),
        Some("function_call") => {
            let call = Part::ToolCall {
                id: req_str(item, "call_id", &format!("input[{i}].call_id"))?.to_string(),
                name: req_str(item, "name", &format!("input[{i}].name"))?.to_string(),
                arguments: req_str(item, "arguments", &format!("input[{i}].arguments"))?
                    .to_string(),
            };
            // One assistant turn: the text the model wrote, then its calls.
            match chat.messages.last_mut() {
                Some(m) if m.role == Role::Assistant => m.parts.push(call),
                _ => chat.messages.push(Message {
                    role: Role::Assistant,
                    parts: vec![call],
                }),
            }
            Ok(())
        }
        Some("function_call_output") => {
            let id = req_str(item, "call_id", &format!("input[{i}].call_id"))?.to_string();
            let content = match member(item, "output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => output_text(i, parts, chat)?,
                _ => return Err(bad(format!("`input[{i}].output` is required"))),
            };
            let result = Part::ToolResult {
                id,
                name: String::new(),
                content,
                is_error: false,
            };
            // Results of one turn's calls travel together, in a user message of results only
            // (Anthropic wants them first in the turn that follows the calls).
            match chat.messages.last_mut() {
                Some(m)
                    if m.role == Role::User
                        && m.parts.iter().all(|p| matches!(p, Part::ToolResult { .. })) =>
                {
                    m.parts.push(result)
                }
                _ => chat.messages.push(Message {
                    role: Role::User,
                    parts: vec![result],
                }),
            }
            Ok(())
        }
        Some(_) => {
            chat.unsupported.push(format!("input[{i}].type"));
            Ok(())
        }
    }
}

fn decode_message(i: usize, item: &Obj, chat: &mut Chat) -> Result<(), GatewayError> {
    let role = match req_str(item, "role", &format!("input[{i}].role"))? {
        "user" => Some(Role::User),
        "assistant" => Some(Role::Assistant),
        "system" | "developer" => None,
        other => return Err(bad(format!("`input[{i}].role` `{other}` is not a role"))),
    };
    let parts = match member(item, "content") {
        Some(Value::String(s)) => vec![Part::Text(s.clone())],
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let Value::Object(part) = part else {
                    return Err(bad(format!("`input[{i}].content[{j}]` must be an object")));
                };
                if let Some(p) = decode_part(&format!("input[{i}].content[{j}]"), part, chat)? {
                    out.push(p);
                }
            }
            out
        }
        _ => return Err(bad(format!("`input[{i}].content` is required"))),
    };
    match role {
        Some(role) => chat.messages.push(Message { role, parts }),
        None => {
            for (j, part) in parts.into_iter().enumerate() {
                match part {
                    Part::Text(t) => chat.system.push(t),
                    _ => chat
                        .unsupported
                        .push(format!("input[{i}].content[{j}].type")),
                }
            }
        }
    }
    Ok(())
}

/// One content part of a message (`field` names it), or `None` when it has no neutral form
/// (then recorded as unsupported).
fn decode_part(field: &str, part: &Obj, chat: &mut Chat) -> Result<Option<Part>, GatewayError> {
    let kind = req_str(part, "type", &format!("{field}.type"))?;
    let text = match kind {
        "input_text" | "output_text" => req_str(part, "text", &format!("{field}.text"))?,
        "refusal" => req_str(part, "refusal", &format!("{field}.refusal"))?,
        "input_image" => {
            if member(part, "file_id").is_some() {
                chat.unsupported.push(format!("{field}.file_id"));
            }
            if opt_str(part, "detail", &format!("{field}.detail"))?.is_some_and(|d| d != "auto") {
                chat.unsupported.push(format!("{field}.detail"));
            }
            return match opt_str(part, "image_url", &format!("{field}.image_url"))? {
                Some(url) => Ok(Some(Part::Image(Image::from_url(url)))),
                None if member(part, "file_id").is_some() => Ok(None),
                None => Err(bad(format!("`{field}.image_url` is required"))),
            };
        }
        _ => {
            chat.unsupported.push(format!("{field}.type"));
            return Ok(None);
        }
    };
    Ok(Some(Part::Text(text.to_string())))
}

/// A `function_call_output`'s parts: their texts, joined (a neutral tool result is text).
fn output_text(i: usize, parts: &[Value], chat: &mut Chat) -> Result<String, GatewayError> {
    let mut out = String::new();
    for (j, part) in parts.iter().enumerate() {
        let field = format!("input[{i}].output[{j}]");
        let Value::Object(part) = part else {
            return Err(bad(format!("`{field}` must be an object")));
        };
        match req_str(part, "type", &format!("{field}.type"))? {
            "input_text" | "output_text" => {
                out.push_str(req_str(part, "text", &format!("{field}.text"))?)
            }
            _ => chat.unsupported.push(format!("{field}.type")),
        }
    }
    Ok(out)
}

fn decode_tools(tools: &Value, chat: &mut Chat) -> Result<(), GatewayError> {
    let Value::Array(tools) = tools else {
        return Err(bad("`tools` must be an array"));
    };
    for (i, tool) in tools.iter().enumerate() {
        let Value::Object(tool) = tool else {
            return Err(bad(format!("`tools[{i}]` must be an object")));
        };
        let kind = req_str(tool, "type", &format!("tools[{i}].type"))?;
        if kind != "function" {
            // Built-in tools run at OpenAI; no other provider runs them for this client.
            chat.unsupported.push(format!("tools[{i}].{kind}"));
            continue;
        }
        if opt_bool_at(tool, "strict", &format!("tools[{i}].strict"))? == Some(true) {
            chat.unsupported.push(format!("tools[{i}].strict"));
        }
        let parameters = match member(tool, "parameters") {
            None => json!({"type": "object"}),
            Some(p @ Value::Object(_)) => p.clone(),
            Some(_) => return Err(bad(format!("`tools[{i}].parameters` must be an object"))),
        };
        chat.tools.push(super::ToolDef {
            name: req_str(tool, "name", &format!("tools[{i}].name"))?.to_string(),
            description: opt_str(tool, "description", &format!("tools[{i}].description"))?
                .map(str::to_string),
            parameters,
        });
    }
    Ok(())
}

fn decode_tool_choice(choice: &Value, chat: &mut Chat) -> Result<(), GatewayError> {
    chat.tool_choice = match choice {
        Value::String(s) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => return Err(bad(format!("`tool_choice` `{other}` is not a choice"))),
        }),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => Some(
            ToolChoice::Tool(req_str(o, "name", "tool_choice.name")?.to_string()),
        ),
        // A built-in tool, `allowed_tools`, `mcp`, `custom`: no neutral form.
        Value::Object(_) => {
            chat.unsupported.push("tool_choice".into());
            None
        }
        _ => return Err(bad("`tool_choice` must be a string or an object")),
    };
    Ok(())
}

fn decode_text(text: &Value, chat: &mut Chat) -> Result<(), GatewayError> {
    let Value::Object(text) = text else {
        return Err(bad("`text` must be an object"));
    };
    for (key, value) in text {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("format", Value::Object(format)) => {
                match req_str(format, "type", "text.format.type")? {
                    "text" => {}
                    "json_object" => chat.json_object = true,
                    _ => chat.unsupported.push("text.format".into()),
                }
            }
            ("format", _) => return Err(bad("`text.format` must be an object")),
            ("verbosity", Value::String(v)) if v == "medium" => {}
            _ => chat.unsupported.push(format!("text.{key}")),
        }
    }
    Ok(())
}

fn bad(reason: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest(reason.into())
}

/// A member, `null` counting as absent.
fn member<'a>(obj: &'a Obj, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn opt_str<'a>(obj: &'a Obj, key: &str, field: &str) -> Result<Option<&'a str>, GatewayError> {
    match member(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("`{field}` must be a string"))),
    }
}

fn req_str<'a>(obj: &'a Obj, key: &str, field: &str) -> Result<&'a str, GatewayError> {
    opt_str(obj, key, field)?.ok_or_else(|| bad(format!("`{field}` is required")))
}

fn opt_bool_at(obj: &Obj, key: &str, field: &str) -> Result<Option<bool>, GatewayError> {
    match member(obj, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(format!("`{field}` must be a boolean"))),
    }
}

fn opt_bool(obj: &Obj, key: &str) -> Result<Option<bool>, GatewayError> {
    opt_bool_at(obj, key, key)
}

fn opt_f64(obj: &Obj, key: &str) -> Result<Option<f64>, GatewayError> {
    match member(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| bad(format!("`{key}` must be a number"))),
    }
}

#[cfg(test)]
mod tests;
