//! `chat.completion` answers ⇄ the neutral [`Answer`] (mapping in the parent module's table),
//! and what answers and streams share: finish reasons, the usage object, a fresh id.

use super::tool_call_json;
use crate::error::GatewayError;
use crate::protocol::translate::{Answer, Finish, Part};
use crate::usage::Usage;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

/// What the gateway reads from a `chat.completion` answer.
#[derive(Deserialize)]
struct AnswerWire {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    choices: Vec<ChoiceWire>,
}

#[derive(Deserialize)]
struct ChoiceWire {
    message: MessageWire,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct MessageWire {
    /// A string, `null`, or (some compatible servers) text parts.
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<CallWire>>,
}

#[derive(Deserialize)]
struct CallWire {
    #[serde(default)]
    id: Option<String>,
    function: FunctionWire,
}

#[derive(Deserialize)]
struct FunctionWire {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// Backend side: an OpenAI `chat.completion` answer → neutral [`Answer`] (its first choice).
pub fn decode_answer(body: &[u8]) -> Result<Answer, GatewayError> {
    let invalid = || GatewayError::UpstreamFailed("invalid response body".into());
    let wire: AnswerWire = serde_json::from_slice(body).map_err(|_| invalid())?;
    let choice = wire.choices.into_iter().next().ok_or_else(invalid)?;
    let mut parts = Vec::new();
    match choice.message.content {
        Some(Value::String(s)) if !s.is_empty() => parts.push(Part::Text(s)),
        Some(Value::Array(items)) => {
            let texts = items.iter().filter_map(|p| p.get("text")?.as_str());
            parts.extend(texts.map(|t| Part::Text(t.to_string())));
        }
        _ => {}
    }
    if let Some(refusal) = choice.message.refusal.filter(|r| !r.is_empty()) {
        parts.push(Part::Text(refusal));
    }
    for call in choice.message.tool_calls.unwrap_or_default() {
        parts.push(Part::ToolCall {
            id: call.id.unwrap_or_default(),
            name: call.function.name.unwrap_or_default(),
            arguments: call.function.arguments.unwrap_or_default(),
        });
    }
    Ok(Answer {
        id: wire.id.unwrap_or_default(),
        model: wire.model.unwrap_or_default(),
        parts,
        finish: finish_from(choice.finish_reason.as_deref()),
        usage: crate::protocol::openai::usage(body),
    })
}

/// The neutral finish of an OpenAI `finish_reason` (an unknown or missing one is a stop).
pub(super) fn finish_from(reason: Option<&str>) -> Finish {
    match reason {
        Some("length") => Finish::Length,
        Some("tool_calls" | "function_call") => Finish::ToolCalls,
        Some("content_filter") => Finish::ContentFilter,
        _ => Finish::Stop,
    }
}

pub(super) fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop | Finish::StopSequence => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
        Finish::ContentFilter => "content_filter",
    }
}

/// OpenAI's usage object for `u`.
pub(super) fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.total(),
        "prompt_tokens_details": {"cached_tokens": u.cached},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning},
    })
}

/// A completion id for an answer whose backend named none.
pub(super) fn fresh_id() -> String {
    let mut bytes = [0u8; 12];
    let _ = getrandom::getrandom(&mut bytes);
    format!("chatcmpl-{}", crate::digest::to_hex(&bytes))
}

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Client side: neutral [`Answer`] → an OpenAI `chat.completion` JSON body.
pub fn encode_answer(answer: &Answer) -> Bytes {
    let has_text = answer.parts.iter().any(|p| matches!(p, Part::Text(_)));
    let calls: Vec<Value> = answer
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some(tool_call_json(id, name, arguments)),
            _ => None,
        })
        .collect();
    let mut message = json!({"role": "assistant", "refusal": null});
    message["content"] = if has_text {
        json!(answer.text())
    } else {
        Value::Null
    };
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let id = match answer.id.as_str() {
        "" => fresh_id(),
        id => id.to_string(),
    };
    let mut body = json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": answer.model,
        "choices": [{"index": 0, "message": message, "logprobs": null,
            "finish_reason": finish_reason(answer.finish)}],
    });
    if let Some(u) = &answer.usage {
        body["usage"] = usage_json(u);
    }
    Bytes::from(body.to_string())
}
