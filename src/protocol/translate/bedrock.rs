//! AWS Bedrock Runtime's Converse and ConverseStream API, as a backend dialect.
//!
//! Input: a neutral [`Chat`] (and the backend's `drop_unsupported`). Decision: the Converse body
//! and its path, or a 400 naming the first field Converse cannot express. Back: the Converse
//! answer (JSON) or the ConverseStream body (AWS event-stream binary frames,
//! `application/vnd.amazon.eventstream`) as a neutral [`Answer`] or [`Event`]s. A Bedrock error
//! body's `message` is read with the other dialects' ([`super::pair::error_message`]). Signing
//! the request (SigV4) is `upstream::sigv4`'s.
//!
//! Field names are those of the Bedrock Runtime API reference (Converse, ConverseStream,
//! ContentBlock, ToolConfiguration, TokenUsage; the service model `bedrock-runtime` 2023-09-30).
//! The model is not in the body: it is the path's `{modelId}` label, percent-encoded as one path
//! segment as the AWS SDKs send it (`anthropic.claude-3-5-sonnet-20240620-v1:0` →
//! `anthropic.claude-3-5-sonnet-20240620-v1%3A0`; an ARN's `/` → `%2F`).
//!
//! | Neutral | Converse | Notes |
//! |---|---|---|
//! | `model` | path `/model/{modelId}/converse` (`/converse-stream` when `stream`) | segment percent-encoded, all but `A-Za-z0-9-._~` |
//! | `system[i]` | `system[i].text` | empty texts left out |
//! | `messages[i].role` | `messages[j].role` `user`/`assistant` | consecutive same-role messages merged into one; a message left with no block is left out |
//! | `Part::Text` | `{"text"}` | empty texts left out (Bedrock refuses blank text blocks) |
//! | `Part::Image` base64 | `{"image":{"format","source":{"bytes": base64}}}` | `image/png`→`png`, `image/jpeg`/`image/jpg`→`jpeg`, `image/gif`→`gif`, `image/webp`→`webp`; any other media type refused, the field named by the media type |
//! | `Part::Image` URL | — | refused as `image_url` (Converse takes bytes or S3 only); dropped if allowed |
//! | `Part::ToolCall` | `{"toolUse":{"toolUseId","name","input": object}}` | `arguments` parsed (empty → `{}`); not JSON → 400 |
//! | `Part::ToolResult` | `{"toolResult":{"toolUseId","content":[{"json": object}] or [{"text"}],"status":"error"}}` | a JSON object result goes as `json`, anything else as `text`; `status` only sent for errors (the reference: only Nova and Claude 3/4 support it, so `success`, the default, is left out) |
//! | `max_tokens` | `inferenceConfig.maxTokens` | |
//! | `temperature` | `inferenceConfig.temperature` | |
//! | `top_p` | `inferenceConfig.topP` | |
//! | `stop` | `inferenceConfig.stopSequences` | |
//! | `top_k` | `additionalModelRequestFields.top_k` | MODEL-SPECIFIC: the name Anthropic's Claude models take (AWS's Converse examples); other models may reject it with a ValidationException (never dropped silently) |
//! | `tools[i]` | `toolConfig.tools[i].toolSpec{name,description,inputSchema.json}` | `toolConfig` only when there are tools |
//! | `tool_choice` Auto / Required / Tool(n) | `toolConfig.toolChoice` `{"auto":{}}` / `{"any":{}}` / `{"tool":{"name"}}` | |
//! | `tool_choice` None | — | refused as `tool_choice`; if droppable, `toolChoice` is left out (the model's default, auto) |
//! | `seed`, `presence_penalty`, `frequency_penalty` | — | refused by those names unless droppable |
//! | `json_object` | — | refused as `response_format` unless droppable |
//! | `user` | — | refused as `user` unless droppable (`requestMetadata` only tags invocation logs) |
//! | `unsupported` | — | `drops.check(…, "bedrock")` |
//!
//! | Converse answer | Neutral | Notes |
//! |---|---|---|
//! | `output.message.content[].text` | `Part::Text` | |
//! | `output.message.content[].toolUse` | `Part::ToolCall{id: toolUseId, name, arguments: input as JSON text}` | |
//! | `output.message.content[].reasoningContent` (and other blocks) | — | skipped |
//! | `stopReason` `end_turn` / `stop_sequence` / `max_tokens` / `tool_use` | `Stop` / `StopSequence` / `Length` / `ToolCalls` | |
//! | `stopReason` `guardrail_intervened` / `content_filtered` | `ContentFilter` | |
//! | `stopReason` `model_context_window_exceeded` | `Length` | |
//! | `stopReason` `malformed_model_output` / `malformed_tool_use` / other | `Stop` | |
//! | `usage.inputTokens + cacheReadInputTokens + cacheWriteInputTokens` | `Usage.input` | see below |
//! | `usage.cacheReadInputTokens` / `cacheWriteInputTokens` | `Usage.cached` / `Usage.cache_write` | |
//! | `usage.outputTokens` | `Usage.output` | |
//! | (none) | `Answer.id`, `Answer.model` | Converse names neither: left empty |
//!
//! Usage rule: Bedrock's `inputTokens` counts only the prompt tokens neither read from nor
//! written to the prompt cache (the Bedrock user guide's prompt-caching page: total input =
//! `inputTokens + cacheReadInputTokens + cacheWriteInputTokens`, billed at three rates; as in
//! Anthropic's own API), so the neutral `input`, which counts the whole prompt, is their sum.
//!
//! | ConverseStream frame (`:message-type` `event`, `:event-type`) | Neutral event |
//! |---|---|
//! | `messageStart` | `Start{id: "", model: ""}` |
//! | `contentBlockStart` with `start.toolUse{toolUseId,name}` | `ToolCallStart{index: the answer's tool counter}` (the block's `contentBlockIndex` remembered) |
//! | `contentBlockDelta` `delta.text` | `Text` |
//! | `contentBlockDelta` `delta.toolUse.input` | `ToolCallArgs{index: the tool of that contentBlockIndex}` |
//! | `contentBlockDelta` `delta.reasoningContent`, `contentBlockStop`, unknown events | — |
//! | `messageStop` `stopReason` | `Finish` (as above) |
//! | `metadata` `usage` | `Usage` (as above) |
//! | `:message-type` `exception` (`:exception-type`, payload `{"message"}`) or `error` | `Error` |
//! | a frame failing its CRC or length checks, or a body ending inside a frame | `Error`, then nothing more is read |

use super::{
    role_messages, text_parts, Answer, Chat, Drops, Event, Finish, Image, Part, Role,
    StreamDecoder, ToolChoice,
};
use crate::error::GatewayError;
use crate::usage::Usage;
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message as Frame;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The dialect's name in refusals.
const TARGET: &str = "bedrock";

/// The longest frame read: the event-stream format's limit (16 MiB). The frame decoder trusts a
/// frame's declared length until the whole frame is in, so a corrupt length is cut off here.
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// "/model/{modelId}/converse", or "/model/{modelId}/converse-stream" when streaming; the
/// model id percent-encoded as one path segment, as the AWS SDKs encode an `httpLabel`
/// (everything but `A-Za-z0-9-._~`, so `:` is `%3A` and an ARN's `/` is `%2F`).
pub fn path(model: &str, stream: bool) -> String {
    let op = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    let segment = super::percent_encode(model, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
    });
    format!("/model/{segment}/{op}")
}

/// The Converse request body for `chat` (the model goes in [`path`]).
pub fn encode_request(chat: &Chat, drops: Drops<'_>) -> Result<Bytes, GatewayError> {
    drops.check(&chat.unsupported, TARGET)?;
    if chat.seed.is_some() {
        drops.refuse("seed", TARGET)?;
    }
    if chat.presence_penalty.is_some() {
        drops.refuse("presence_penalty", TARGET)?;
    }
    if chat.frequency_penalty.is_some() {
        drops.refuse("frequency_penalty", TARGET)?;
    }
    if chat.json_object {
        drops.refuse("response_format", TARGET)?;
    }
    if chat.user.is_some() {
        drops.refuse("user", TARGET)?;
    }

    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages(chat, drops)?));
    let system = text_parts(&chat.system);
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let mut inference = Map::new();
    if let Some(n) = chat.max_tokens {
        inference.insert("maxTokens".into(), json!(n));
    }
    if let Some(t) = chat.temperature {
        inference.insert("temperature".into(), json!(t));
    }
    if let Some(p) = chat.top_p {
        inference.insert("topP".into(), json!(p));
    }
    if !chat.stop.is_empty() {
        inference.insert("stopSequences".into(), json!(chat.stop));
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(k) = chat.top_k {
        body.insert("additionalModelRequestFields".into(), json!({"top_k": k}));
    }
    if let Some(config) = tool_config(chat, drops)? {
        body.insert("toolConfig".into(), config);
    }
    serde_json::to_vec(&Value::Object(body))
        .map(Bytes::from)
        .map_err(|_| GatewayError::Internal)
}

/// `toolConfig`, when the chat has tools.
fn tool_config(chat: &Chat, drops: Drops<'_>) -> Result<Option<Value>, GatewayError> {
    if chat.tools.is_empty() {
        return Ok(None);
    }
    let tools: Vec<Value> = chat
        .tools
        .iter()
        .map(|t| {
            let mut spec = Map::new();
            spec.insert("name".into(), json!(t.name));
            if let Some(d) = t.description.as_deref().filter(|d| !d.is_empty()) {
                spec.insert("description".into(), json!(d));
            }
            spec.insert("inputSchema".into(), json!({"json": t.parameters}));
            json!({"toolSpec": spec})
        })
        .collect();
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(tools));
    let choice = match &chat.tool_choice {
        None => None,
        Some(ToolChoice::Auto) => Some(json!({"auto": {}})),
        Some(ToolChoice::Required) => Some(json!({"any": {}})),
        Some(ToolChoice::Tool(name)) => Some(json!({"tool": {"name": name}})),
        Some(ToolChoice::None) => {
            // Converse has no "call no tool"; dropping it leaves the model's default (auto).
            drops.refuse("tool_choice", TARGET)?;
            None
        }
    };
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Ok(Some(Value::Object(config)))
}

/// The `messages`, same-role neighbours merged (Converse wants the roles to alternate).
fn messages(chat: &Chat, drops: Drops<'_>) -> Result<Vec<Value>, GatewayError> {
    let mut out: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in &chat.messages {
        let mut blocks = Vec::with_capacity(m.parts.len());
        for part in &m.parts {
            if let Some(block) = content_block(part, drops)? {
                blocks.push(block);
            }
        }
        if blocks.is_empty() {
            // Converse refuses an empty `content`; its neighbours may then merge.
            continue;
        }
        match out.last_mut() {
            Some((role, content)) if *role == m.role => content.extend(blocks),
            _ => out.push((m.role, blocks)),
        }
    }
    Ok(role_messages(out))
}

/// One content block, or `None` for a part left out (empty text, an allowed drop).
fn content_block(part: &Part, drops: Drops<'_>) -> Result<Option<Value>, GatewayError> {
    Ok(match part {
        Part::Text(t) if t.is_empty() => None,
        Part::Text(t) => Some(json!({"text": t})),
        Part::Image(Image::Url(_)) => {
            drops.refuse("image_url", TARGET)?;
            None
        }
        Part::Image(Image::Base64 { media_type, data }) => {
            let format = match media_type.to_ascii_lowercase().as_str() {
                "image/png" => "png",
                "image/jpeg" | "image/jpg" => "jpeg",
                "image/gif" => "gif",
                "image/webp" => "webp",
                _ => {
                    drops.refuse(media_type, TARGET)?;
                    return Ok(None);
                }
            };
            // The JSON wire form of a blob is its base64 text.
            Some(json!({"image": {"format": format, "source": {"bytes": data}}}))
        }
        Part::ToolCall {
            id,
            name,
            arguments,
        } => {
            let input: Value = if arguments.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(arguments).map_err(|_| {
                    GatewayError::BadRequest(format!(
                        "the arguments of tool call {id} are not JSON"
                    ))
                })?
            };
            Some(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}))
        }
        Part::ToolResult {
            id,
            content,
            is_error,
            ..
        } => {
            let item = match serde_json::from_str::<Value>(content) {
                Ok(v @ Value::Object(_)) => json!({"json": v}),
                _ => json!({"text": content}),
            };
            let mut result = json!({"toolUseId": id, "content": [item]});
            if *is_error {
                result["status"] = json!("error");
            }
            Some(json!({"toolResult": result}))
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseAnswer {
    #[serde(default)]
    output: Option<ConverseOutput>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct ConverseOutput {
    #[serde(default)]
    message: Option<OutputMessage>,
}

#[derive(Deserialize)]
struct OutputMessage {
    #[serde(default)]
    content: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
    #[serde(default)]
    cache_write_input_tokens: u64,
}

impl TokenUsage {
    /// The neutral usage: Bedrock's `inputTokens` leaves the cache's reads and writes out.
    fn neutral(&self) -> Usage {
        let cached = self.cache_read_input_tokens;
        let cache_write = self.cache_write_input_tokens;
        Usage {
            input: self
                .input_tokens
                .saturating_add(cached)
                .saturating_add(cache_write),
            output: self.output_tokens,
            cached,
            cache_write,
            reasoning: 0,
            estimated: false,
        }
    }
}

fn finish(stop_reason: &str) -> Finish {
    match stop_reason {
        "stop_sequence" => Finish::StopSequence,
        "max_tokens" | "model_context_window_exceeded" => Finish::Length,
        "tool_use" => Finish::ToolCalls,
        "guardrail_intervened" | "content_filtered" => Finish::ContentFilter,
        _ => Finish::Stop,
    }
}

/// A Converse answer as a neutral [`Answer`] (no id or model: Converse names neither).
pub fn decode_answer(body: &[u8]) -> Result<Answer, GatewayError> {
    let answer: ConverseAnswer = serde_json::from_slice(body)
        .map_err(|_| GatewayError::UpstreamFailed("invalid response body".into()))?;
    let blocks = answer
        .output
        .and_then(|o| o.message)
        .map(|m| m.content)
        .unwrap_or_default();
    let mut parts = Vec::new();
    for block in blocks {
        if let Some(text) = block.get("text").and_then(Value::as_str) {
            parts.push(Part::Text(text.to_string()));
        } else if let Some(call) = block.get("toolUse") {
            let text = |k: &str| {
                call.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            parts.push(Part::ToolCall {
                id: text("toolUseId"),
                name: text("name"),
                arguments: call
                    .get("input")
                    .map_or_else(|| "{}".into(), Value::to_string),
            });
        }
        // reasoningContent, citations and the rest carry nothing the neutral answer holds.
    }
    Ok(Answer {
        id: String::new(),
        model: String::new(),
        parts,
        finish: answer.stop_reason.as_deref().map_or(Finish::Stop, finish),
        usage: answer.usage.map(|u| u.neutral()),
    })
}

/// Reads a ConverseStream body: AWS event-stream frames, decoded by aws-smithy-eventstream's
/// frame decoder, into neutral events.
#[derive(Debug, Default)]
pub struct Decoder {
    frames: MessageFrameDecoder,
    pending: BytesMut,
    /// Bytes of the frame in progress already taken out of `pending` (its prelude).
    taken: usize,
    /// `contentBlockIndex` → the answer's tool index, for the tool-use blocks begun.
    tools: Vec<(u64, u32)>,
    /// A frame failed its checks: nothing more is read.
    broken: bool,
}

impl Decoder {
    fn message(&mut self, frame: &Frame, out: &mut Vec<Event>) {
        let header = |name: &str| {
            frame
                .headers()
                .iter()
                .find(|h| h.name().as_str() == name)
                .and_then(|h| h.value().as_string().ok())
                .map(|s| s.as_str().to_string())
        };
        let payload: Value = serde_json::from_slice(frame.payload()).unwrap_or(Value::Null);
        match header(":message-type").as_deref() {
            Some("event") => {}
            Some("exception") => {
                let kind = header(":exception-type").unwrap_or_else(|| "exception".into());
                let message = payload
                    .get("message")
                    .or_else(|| payload.get("Message"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                out.push(Event::Error {
                    message: format!("{kind}: {message}"),
                });
                return;
            }
            Some("error") => {
                let code = header(":error-code").unwrap_or_else(|| "error".into());
                let message = header(":error-message").unwrap_or_default();
                out.push(Event::Error {
                    message: format!("{code}: {message}"),
                });
                return;
            }
            _ => return,
        }
        let block = payload.get("contentBlockIndex").and_then(Value::as_u64);
        match header(":event-type").as_deref() {
            Some("messageStart") => out.push(Event::Start {
                id: String::new(),
                model: String::new(),
            }),
            Some("contentBlockStart") => {
                if let Some(call) = payload.pointer("/start/toolUse") {
                    let index = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                    self.tools.push((block.unwrap_or(u64::MAX), index));
                    let text = |k: &str| call.get(k).and_then(Value::as_str).unwrap_or("");
                    out.push(Event::ToolCallStart {
                        index,
                        id: text("toolUseId").to_string(),
                        name: text("name").to_string(),
                    });
                }
            }
            Some("contentBlockDelta") => {
                let Some(delta) = payload.get("delta") else {
                    return;
                };
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        out.push(Event::Text(text.to_string()));
                    }
                } else if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str)
                {
                    let tool = self
                        .tools
                        .iter()
                        .find(|(b, _)| Some(*b) == block)
                        .map(|(_, i)| *i);
                    if let Some(index) = tool.filter(|_| !input.is_empty()) {
                        out.push(Event::ToolCallArgs {
                            index,
                            arguments: input.to_string(),
                        });
                    }
                }
                // reasoningContent and citation deltas are not part of the neutral answer.
            }
            Some("messageStop") => {
                let reason = payload
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                out.push(Event::Finish(finish(reason)));
            }
            Some("metadata") => {
                if let Some(usage) = payload
                    .get("usage")
                    .and_then(|u| TokenUsage::deserialize(u).ok())
                {
                    out.push(Event::Usage(usage.neutral()));
                }
            }
            _ => {}
        }
    }
}

impl StreamDecoder for Decoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) {
        if self.broken {
            return;
        }
        self.pending.extend_from_slice(chunk);
        loop {
            let before = self.pending.len();
            let decoded = self.frames.decode_frame(&mut self.pending);
            self.taken += before - self.pending.len();
            match decoded {
                Ok(DecodedFrame::Complete(frame)) => {
                    self.taken = 0;
                    self.message(&frame, out);
                }
                Ok(DecodedFrame::Incomplete) if self.taken + self.pending.len() > MAX_FRAME => {
                    out.push(Event::Error {
                        message: "an event-stream frame from the backend is too long".into(),
                    });
                    self.broken = true;
                    self.pending.clear();
                    break;
                }
                Ok(DecodedFrame::Incomplete) => break,
                Err(e) => {
                    out.push(Event::Error {
                        message: format!("invalid event stream from the backend: {e}"),
                    });
                    self.broken = true;
                    self.pending.clear();
                    break;
                }
            }
        }
    }

    fn end(&mut self, out: &mut Vec<Event>) {
        if !self.broken && (self.taken > 0 || !self.pending.is_empty()) {
            out.push(Event::Error {
                message: "the backend's event stream ended inside a frame".into(),
            });
            self.broken = true;
        }
    }
}

#[cfg(test)]
#[path = "bedrock_tests.rs"]
mod tests;
