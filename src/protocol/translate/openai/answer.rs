//! `chat.completion` answers ⇄ the neutral [`Answer`] (mapping in the parent module's table),
//! and what answers and streams share: finish reasons, the usage object, a fresh id.

use crate::error::GatewayError;
use crate::protocol::translate::{Answer, Finish, Part};
use crate::usage::Usage;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    serde_json::to_value(UsageOut::of(u)).unwrap_or(Value::Null)
}

/// OpenAI's usage object, written straight from the neutral usage.
#[derive(Serialize)]
pub(super) struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedOut,
    completion_tokens_details: ReasoningOut,
}

#[derive(Serialize)]
struct CachedOut {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningOut {
    reasoning_tokens: u64,
}

impl UsageOut {
    pub(super) fn of(u: &Usage) -> UsageOut {
        UsageOut {
            prompt_tokens: u.input,
            completion_tokens: u.output,
            total_tokens: u.total(),
            prompt_tokens_details: CachedOut {
                cached_tokens: u.cached,
            },
            completion_tokens_details: ReasoningOut {
                reasoning_tokens: u.reasoning,
            },
        }
    }
}

/// A `chat.completion` body, serialized from borrowed parts (no JSON tree built per answer).
#[derive(Serialize)]
struct CompletionOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChoiceOut<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageOut>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    message: MessageOut<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Option<String>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<CallOut<'a>>,
}

#[derive(Serialize)]
struct CallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// A completion id for an answer whose backend named none.
pub(super) fn fresh_id() -> String {
    format!("chatcmpl-{}", crate::digest::random_id_hex())
}

pub(super) use crate::state::unix_now;

/// Client side: neutral [`Answer`] → an OpenAI `chat.completion` JSON body.
pub fn encode_answer(answer: &Answer) -> Bytes {
    let has_text = answer.parts.iter().any(|p| matches!(p, Part::Text(_)));
    let tool_calls = answer
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some(CallOut {
                id,
                kind: "function",
                function: FunctionOut { name, arguments },
            }),
            _ => None,
        })
        .collect();
    let fresh;
    let id = match answer.id.as_str() {
        "" => {
            fresh = fresh_id();
            fresh.as_str()
        }
        id => id,
    };
    let body = CompletionOut {
        id,
        object: "chat.completion",
        created: unix_now(),
        model: &answer.model,
        choices: [ChoiceOut {
            index: 0,
            message: MessageOut {
                role: "assistant",
                content: has_text.then(|| answer.text()),
                refusal: None,
                tool_calls,
            },
            logprobs: None,
            finish_reason: finish_reason(answer.finish),
        }],
        usage: answer.usage.as_ref().map(UsageOut::of),
    };
    // Serializing these plain structs cannot fail.
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}
