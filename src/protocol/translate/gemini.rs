//! Google's Generative Language API (Gemini `generateContent` / `streamGenerateContent`) as a
//! backend dialect: the neutral [`Chat`] encoded as a `GenerateContentRequest`, and a
//! `GenerateContentResponse` (whole, or the `alt=sse` stream of them) decoded into an [`Answer`]
//! or [`Event`]s.
//!
//! Input: a neutral chat and the backend's `drop_unsupported`; a backend's answer body or stream
//! bytes. Decision: the request body (or a 400 naming what Gemini cannot express), the neutral
//! answer and its usage. The model goes in the URL path ([`path`]), never in the body.
//!
//! | Neutral | Gemini | Notes |
//! |---|---|---|
//! | `model` | path `/models/{model}:generateContent` | `:streamGenerateContent?alt=sse` when streaming |
//! | `system` | `systemInstruction.parts[].text` | |
//! | `messages[].role` User / Assistant | `contents[].role` `"user"` / `"model"` | consecutive same-role contents merged |
//! | `Part::Text` | `parts[].text` | empty texts left out (Gemini refuses them) |
//! | `Part::Image` inline | `parts[].inlineData {mimeType, data}` | |
//! | `Part::Image` URL | — | refused as `image_url` (Gemini takes images inline) unless dropped |
//! | `Part::ToolCall` | `model` part `functionCall {name, args}` | `args` = arguments parsed (a JSON object, else 400); the first call of a model turn carries Google's documented placeholder `thoughtSignature` |
//! | `Part::ToolResult` | `user` part `functionResponse {name, response}` | `response` = the content when it is a JSON object, else `{"output": text}`; an error `{"error": text}`; no function name → 400 naming the call |
//! | `tools[]` | `tools[0].functionDeclarations[] {name, description, parametersJsonSchema}` | the client's JSON Schema as is (root `$schema` removed) |
//! | `tool_choice` auto / none / required / tool | `toolConfig.functionCallingConfig.mode` `AUTO` / `NONE` / `ANY` / `ANY` + `allowedFunctionNames` | |
//! | `max_tokens`, `temperature`, `top_p`, `top_k`, `stop`, `seed`, `presence_penalty`, `frequency_penalty` | `generationConfig.maxOutputTokens`, `temperature`, `topP`, `topK`, `stopSequences`, `seed`, `presencePenalty`, `frequencyPenalty` | |
//! | `json_object` | `generationConfig.responseMimeType: "application/json"` | |
//! | `user` | — | refused as `user` unless dropped |
//! | `unsupported` | — | refused unless dropped |
//! | `stream` | — | the path, not the body |
//!
//! | Gemini answer | Neutral |
//! |---|---|
//! | `responseId`, `modelVersion` | `Answer.id`, `Answer.model` (`Event::Start`) |
//! | `candidates[0].content.parts[].text` | `Part::Text` / `Event::Text`; parts with `thought: true` are reasoning and left out |
//! | `functionCall {id?, name, args}` | `Part::ToolCall {id: id or "call_<n>", name, arguments: args as JSON}` / `ToolCallStart` + `ToolCallArgs` (a call arrives whole) |
//! | `finishReason` `STOP` / `MAX_TOKENS` / `SAFETY`, `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`, `IMAGE_*`, `MODEL_ARMOR` / other | `Stop` (`ToolCalls` when the answer called functions) / `Length` / `ContentFilter` / `Stop` |
//! | no candidates, `promptFeedback.blockReason` | an empty answer, `ContentFilter` |
//! | `usageMetadata` | `Usage {input: promptTokenCount + toolUsePromptTokenCount, cached: cachedContentTokenCount, output: candidatesTokenCount + thoughtsTokenCount, reasoning: thoughtsTokenCount}` |
//! | `{"error": {code, message, status}}` | not an answer (`UpstreamFailed`); in a stream, `Event::Error` |
//!
//! Why these choices (Google's API reference): `promptTokenCount` includes the cached content and
//! `totalTokenCount` is the sum of prompt, candidates, tool-use prompt and thoughts tokens, so
//! `candidatesTokenCount` leaves the thoughts out and `toolUsePromptTokenCount` (what built-in
//! tools fed back to the model) is prompt the model read beside `promptTokenCount`.
//! `FunctionResponse.response` documents `"output"` and `"error"` as its keys.
//! `parametersJsonSchema` takes JSON Schema as clients write it, where the older `parameters` takes
//! an OpenAPI subset that rejects `additionalProperties`, `$ref`, `anyOf` in places and more:
//! passing the schema unchanged loses nothing.
//! `functionCall.id` / `functionResponse.id` are left out: Gemini pairs responses with calls by
//! name and order, and ids from other dialects are not Gemini's. Gemini 3 refuses a turn whose
//! function call lacks the thought signature it issued; the neutral form cannot carry one, so the
//! placeholder Google documents for history it did not produce is sent instead.
//! A stream's `finishReason` is held until the stream ends: older models repeat it on every chunk.

use super::{
    text_parts, Answer, Chat, Drops, Event, Finish, Image, Part, Role, SseDecoder, SseLines,
    ToolChoice,
};
use crate::error::GatewayError;
use crate::usage::Usage;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The dialect's name in refusals.
const TARGET: &str = "gemini";

/// Google's documented thought signature for function calls it did not issue (history from
/// another model, or rebuilt by a client): Gemini 3 then skips the signature check.
const FOREIGN_SIGNATURE: &str = "skip_thought_signature_validator";

/// The path below the backend's base URL (which ends in the API version, e.g.
/// https://generativelanguage.googleapis.com/v1beta): "/models/{model}:generateContent", or
/// "/models/{model}:streamGenerateContent?alt=sse" when streaming.
pub fn path(model: &str, stream: bool) -> String {
    // A full resource name (`tunedModels/x`, `models/x`) is used as given; anything that could
    // end the path segment (`?`, `#`, `:` and the like) is escaped.
    let escaped = super::percent_encode(model, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'/')
    });
    let resource = if escaped.contains('/') {
        escaped
    } else {
        format!("models/{escaped}")
    };
    if stream {
        format!("/{resource}:streamGenerateContent?alt=sse")
    } else {
        format!("/{resource}:generateContent")
    }
}

/// Neutral Chat → the generateContent request body.
pub fn encode_request(chat: &Chat, drops: Drops<'_>) -> Result<Bytes, GatewayError> {
    drops.check(&chat.unsupported, TARGET)?;
    if chat.user.is_some() {
        drops.refuse("user", TARGET)?;
    }
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents(chat, drops)?));
    let system = text_parts(&chat.system);
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    if !chat.tools.is_empty() {
        let declarations: Vec<Value> = chat
            .tools
            .iter()
            .map(|t| {
                let mut d = Map::new();
                d.insert("name".into(), json!(t.name));
                if let Some(desc) = &t.description {
                    d.insert("description".into(), json!(desc));
                }
                d.insert("parametersJsonSchema".into(), schema(&t.parameters));
                Value::Object(d)
            })
            .collect();
        body.insert(
            "tools".into(),
            json!([{"functionDeclarations": declarations}]),
        );
        if let Some(choice) = &chat.tool_choice {
            let config = match choice {
                ToolChoice::Auto => json!({"mode": "AUTO"}),
                ToolChoice::None => json!({"mode": "NONE"}),
                ToolChoice::Required => json!({"mode": "ANY"}),
                ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
            };
            body.insert(
                "toolConfig".into(),
                json!({"functionCallingConfig": config}),
            );
        }
    }
    let config = generation_config(chat);
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Bytes::from(Value::Object(body).to_string()))
}

/// The tool's JSON Schema for `parametersJsonSchema`: unchanged but for the root `$schema`
/// (a meta-schema URL Google's parser does not take).
fn schema(parameters: &Value) -> Value {
    let mut s = parameters.clone();
    if let Value::Object(m) = &mut s {
        m.remove("$schema");
    }
    s
}

fn generation_config(chat: &Chat) -> Map<String, Value> {
    let mut c = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            c.insert(k.to_string(), v);
        }
    };
    put("maxOutputTokens", chat.max_tokens.map(Value::from));
    put("temperature", chat.temperature.map(Value::from));
    put("topP", chat.top_p.map(Value::from));
    put("topK", chat.top_k.map(Value::from));
    put(
        "stopSequences",
        (!chat.stop.is_empty()).then(|| json!(chat.stop)),
    );
    put("seed", chat.seed.map(Value::from));
    put("presencePenalty", chat.presence_penalty.map(Value::from));
    put("frequencyPenalty", chat.frequency_penalty.map(Value::from));
    put(
        "responseMimeType",
        chat.json_object.then(|| json!("application/json")),
    );
    c
}

/// The conversation as Gemini contents: each part under the role Gemini wants it in (calls are
/// the model's, results the user's), consecutive parts of one role in one content.
fn contents(chat: &Chat, drops: Drops<'_>) -> Result<Vec<Value>, GatewayError> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in &chat.messages {
        let own = match m.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        for p in &m.parts {
            let Some((role, part)) = encode_part(p, own, drops)? else {
                continue;
            };
            match out.last_mut() {
                Some((r, parts)) if *r == role => parts.push(part),
                _ => out.push((role, vec![part])),
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|(role, mut parts)| {
            if role == "model" {
                // Only the first call of a step carries a signature, as Gemini issues them.
                if let Some(Value::Object(first)) =
                    parts.iter_mut().find(|p| p.get("functionCall").is_some())
                {
                    first.insert("thoughtSignature".into(), json!(FOREIGN_SIGNATURE));
                }
            }
            json!({"role": role, "parts": parts})
        })
        .collect())
}

/// One part as Gemini's, with the role it belongs to; `None` when left out.
fn encode_part(
    part: &Part,
    own: &'static str,
    drops: Drops<'_>,
) -> Result<Option<(&'static str, Value)>, GatewayError> {
    Ok(Some(match part {
        Part::Text(t) if t.is_empty() => return Ok(None),
        Part::Text(t) => (own, json!({"text": t})),
        Part::Image(Image::Base64 { media_type, data }) => (
            own,
            json!({"inlineData": {"mimeType": media_type, "data": data}}),
        ),
        Part::Image(Image::Url(_)) => {
            drops.refuse("image_url", TARGET)?;
            return Ok(None);
        }
        Part::ToolCall {
            id,
            name,
            arguments,
        } => {
            let args = if arguments.trim().is_empty() {
                json!({})
            } else {
                match serde_json::from_str::<Value>(arguments) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => {
                        return Err(GatewayError::BadRequest(format!(
                            "the arguments of tool call {id} are not a JSON object"
                        )))
                    }
                }
            };
            (
                "model",
                json!({"functionCall": {"name": name, "args": args}}),
            )
        }
        Part::ToolResult {
            id,
            name,
            content,
            is_error,
        } => {
            if name.is_empty() {
                return Err(GatewayError::BadRequest(format!(
                    "the tool result for call {id} answers no known call (Gemini needs the function's name)"
                )));
            }
            let response = if *is_error {
                json!({"error": content})
            } else {
                match serde_json::from_str::<Value>(content) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({"output": content}),
                }
            };
            (
                "user",
                json!({"functionResponse": {"name": name, "response": response}}),
            )
        }
    }))
}

/// A `GenerateContentResponse`, as far as the gateway reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Response {
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: Option<UsageMetadata>,
    model_version: Option<String>,
    response_id: Option<String>,
    error: Option<ErrorBody>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Content {
    parts: Vec<PartIn>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PartIn {
    text: Option<String>,
    thought: bool,
    function_call: Option<FunctionCall>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FunctionCall {
    id: Option<String>,
    name: String,
    args: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    tool_use_prompt_token_count: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    message: String,
    status: String,
}

impl UsageMetadata {
    /// Whether any count is reported (Vertex's early stream chunks carry only `trafficType`).
    fn counts(&self) -> bool {
        self.prompt_token_count.is_some()
            || self.candidates_token_count.is_some()
            || self.thoughts_token_count.is_some()
    }

    fn usage(&self) -> Usage {
        let n = |v: Option<u64>| v.unwrap_or(0);
        let thoughts = n(self.thoughts_token_count);
        Usage {
            input: n(self.prompt_token_count).saturating_add(n(self.tool_use_prompt_token_count)),
            output: n(self.candidates_token_count).saturating_add(thoughts),
            cached: n(self.cached_content_token_count),
            cache_write: 0,
            reasoning: thoughts,
            estimated: false,
        }
    }
}

impl ErrorBody {
    fn describe(&self) -> String {
        match (self.status.is_empty(), self.message.is_empty()) {
            (false, false) => format!("{}: {}", self.status, self.message),
            (false, true) => self.status.clone(),
            _ => self.message.clone(),
        }
    }
}

/// Finish reasons meaning Google withheld the output (safety, recitation, a blocklist, …).
const FILTERED: &[&str] = &[
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "MODEL_ARMOR",
];

fn finish(reason: Option<&str>, called: bool) -> Finish {
    match reason {
        Some("MAX_TOKENS") => Finish::Length,
        Some(r) if FILTERED.contains(&r) => Finish::ContentFilter,
        _ if called => Finish::ToolCalls,
        _ => Finish::Stop,
    }
}

fn call_id(call: &FunctionCall, index: usize) -> String {
    match &call.id {
        Some(id) if !id.is_empty() => id.clone(),
        _ => format!("call_{index}"),
    }
}

fn call_args(call: &FunctionCall) -> String {
    call.args
        .as_ref()
        .map_or_else(|| "{}".to_string(), Value::to_string)
}

fn invalid() -> GatewayError {
    GatewayError::UpstreamFailed("invalid response body".into())
}

/// A GenerateContentResponse → neutral Answer (with usage).
pub fn decode_answer(body: &[u8]) -> Result<Answer, GatewayError> {
    let r: Response = serde_json::from_slice(body).map_err(|_| invalid())?;
    if r.error.is_some() && r.candidates.is_empty() {
        return Err(invalid());
    }
    let mut answer = Answer {
        id: r.response_id.unwrap_or_default(),
        model: r.model_version.unwrap_or_default(),
        usage: r.usage_metadata.as_ref().map(UsageMetadata::usage),
        ..Answer::default()
    };
    let Some(candidate) = r.candidates.into_iter().next() else {
        let blocked = r.prompt_feedback.is_some_and(|f| f.block_reason.is_some());
        answer.finish = if blocked {
            Finish::ContentFilter
        } else {
            Finish::Stop
        };
        return Ok(answer);
    };
    let mut calls = 0;
    for p in candidate.content.map(|c| c.parts).unwrap_or_default() {
        if let Some(call) = &p.function_call {
            answer.parts.push(Part::ToolCall {
                id: call_id(call, calls),
                name: call.name.clone(),
                arguments: call_args(call),
            });
            calls += 1;
        } else if let Some(text) = p.text.filter(|t| !p.thought && !t.is_empty()) {
            // Adjacent text parts are one text to the client.
            match answer.parts.last_mut() {
                Some(Part::Text(t)) => t.push_str(&text),
                _ => answer.parts.push(Part::Text(text)),
            }
        }
    }
    answer.finish = finish(candidate.finish_reason.as_deref(), calls > 0);
    Ok(answer)
}

/// The `alt=sse` stream (each event's data one GenerateContentResponse) → neutral events.
#[derive(Debug, Default)]
pub struct Decoder {
    lines: SseLines,
    started: bool,
    /// Function calls seen so far (the next call's index).
    calls: u32,
    /// The last finish reason seen, sent when the stream ends.
    finish_reason: Option<String>,
    /// The prompt was blocked (no candidates, `promptFeedback.blockReason`).
    blocked: bool,
}

impl Decoder {
    fn read_event(&mut self, data: &str, out: &mut Vec<Event>) {
        if data.trim().is_empty() {
            return;
        }
        let Ok(r) = serde_json::from_str::<Response>(data) else {
            out.push(Event::Error {
                message: "invalid stream event from the backend".into(),
            });
            return;
        };
        if let Some(e) = &r.error {
            out.push(Event::Error {
                message: e.describe(),
            });
            return;
        }
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: r.response_id.clone().unwrap_or_default(),
                model: r.model_version.clone().unwrap_or_default(),
            });
        }
        if r.candidates.is_empty()
            && r.prompt_feedback
                .as_ref()
                .is_some_and(|f| f.block_reason.is_some())
        {
            self.blocked = true;
        }
        if let Some(candidate) = r.candidates.into_iter().next() {
            for p in candidate.content.map(|c| c.parts).unwrap_or_default() {
                if let Some(call) = &p.function_call {
                    let index = self.calls;
                    self.calls += 1;
                    out.push(Event::ToolCallStart {
                        index,
                        id: call_id(call, index as usize),
                        name: call.name.clone(),
                    });
                    out.push(Event::ToolCallArgs {
                        index,
                        arguments: call_args(call),
                    });
                } else if let Some(text) = p.text.filter(|t| !p.thought && !t.is_empty()) {
                    out.push(Event::Text(text));
                }
            }
            if candidate.finish_reason.is_some() {
                self.finish_reason = candidate.finish_reason;
            }
        }
        if let Some(u) = r.usage_metadata.filter(UsageMetadata::counts) {
            out.push(Event::Usage(u.usage()));
        }
    }
}

impl SseDecoder for Decoder {
    fn lines(&mut self) -> &mut SseLines {
        &mut self.lines
    }

    fn data(&mut self, data: &str, out: &mut Vec<Event>) {
        self.read_event(data, out);
    }

    fn ended(&mut self, out: &mut Vec<Event>) {
        if self.blocked {
            out.push(Event::Finish(Finish::ContentFilter));
        } else if let Some(reason) = self.finish_reason.take() {
            out.push(Event::Finish(finish(Some(&reason), self.calls > 0)));
        }
        self.blocked = false;
    }
}

#[cfg(test)]
mod tests;
