//! Translation between dialects, through one neutral form.
//!
//! A client speaking one dialect (OpenAI chat completions, Anthropic Messages, the Responses
//! API, the lab's `/chat`) may be served by a backend speaking another (OpenAI, Anthropic,
//! Gemini, Bedrock). Every request is decoded from the client's dialect into [`Chat`], the
//! neutral request, and encoded from it into the backend's; every answer is decoded from the
//! backend's dialect into [`Answer`] (or a stream of [`Event`]s) and encoded into the client's.
//! A pair of dialects is therefore two files: the client's decoder and the backend's encoder,
//! and back. Each dialect's file carries its own mapping table in its doc comment;
//! `docs/providers.md` composes them per pair.
//!
//! What a dialect cannot express is refused with a 400 naming the field
//! ([`GatewayError::Untranslatable`]), never dropped silently, unless the backend's
//! `drop_unsupported` lists that field: then it is dropped and the request goes on.
//!
//! Input: the client's body and the backend chosen. Decision: the backend's body, or a 400.
//! Nothing here touches a socket or the gateway's state.

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod openai;
pub mod pair;
pub mod responses;

use crate::error::GatewayError;
use crate::usage::Usage;
use bytes::BytesMut;

/// A chat request in no provider's dialect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chat {
    /// The model as the backend knows it.
    pub model: String,
    /// System instructions, in order (OpenAI `system`/`developer` messages, Anthropic's
    /// `system`, the Responses API's `instructions`).
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDef>,
    pub tool_choice: Option<ToolChoice>,
    /// The output cap (the client's, or the gateway's when it set none).
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// Anthropic's and Gemini's `top_k`.
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    /// The end user, for the provider's abuse monitoring (OpenAI `user`, Anthropic
    /// `metadata.user_id`).
    pub user: Option<String>,
    /// The client wants a JSON object (OpenAI `response_format: {"type":"json_object"}`).
    pub json_object: bool,
    pub stream: bool,
    /// Client fields with no neutral form, by the name the client used (`logprobs`,
    /// `messages[2].content[0].cache_control`): refused unless the backend may drop them.
    pub unsupported: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    /// The role's name in the dialects that name it so (OpenAI, Anthropic, Bedrock).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// Turns as `{"role", "content"}` messages, the shape Anthropic and Bedrock share.
pub fn role_messages(turns: Vec<(Role, Vec<serde_json::Value>)>) -> Vec<serde_json::Value> {
    turns
        .into_iter()
        .map(|(role, content)| serde_json::json!({"role": role.as_str(), "content": content}))
        .collect()
}

/// The non-empty texts as `{"text": …}` parts, the shape Gemini's and Bedrock's system
/// instructions share.
pub fn text_parts(texts: &[String]) -> Vec<serde_json::Value> {
    texts
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| serde_json::json!({"text": t}))
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image(Image),
    /// A call the model made; `arguments` is a JSON object, as text.
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    /// What a tool returned for the call `id` (`name` is that call's function, found by
    /// [`Chat::name_tool_results`] where the client's dialect does not repeat it).
    ToolResult {
        id: String,
        name: String,
        content: String,
        is_error: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    /// An `http(s)` URL the provider fetches.
    Url(String),
    /// Inline bytes, base64.
    Base64 { media_type: String, data: String },
}

impl Image {
    /// An image given as a URL: a `data:` URL is inline bytes.
    pub fn from_url(url: &str) -> Image {
        let inline = url.strip_prefix("data:").and_then(|rest| {
            let (meta, data) = rest.split_once(',')?;
            let media_type = meta.strip_suffix(";base64")?;
            Some(Image::Base64 {
                media_type: media_type.to_string(),
                data: data.to_string(),
            })
        });
        inline.unwrap_or_else(|| Image::Url(url.to_string()))
    }

    /// The image as a URL (inline bytes as a `data:` URL).
    pub fn to_url(&self) -> String {
        match self {
            Image::Url(u) => u.clone(),
            Image::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object schema; `{"type":"object"}` when the client gave
    /// none).
    pub parameters: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Tool(String),
}

impl Chat {
    /// Fills each tool result's function name from the call it answers (Gemini needs it; OpenAI
    /// and Anthropic results name only the call's id).
    pub fn name_tool_results(&mut self) {
        let mut names = std::collections::HashMap::new();
        for m in &self.messages {
            for p in &m.parts {
                if let Part::ToolCall { id, name, .. } = p {
                    names.insert(id.clone(), name.clone());
                }
            }
        }
        for m in &mut self.messages {
            for p in &mut m.parts {
                if let Part::ToolResult { id, name, .. } = p {
                    if name.is_empty() {
                        if let Some(n) = names.get(id) {
                            name.clone_from(n);
                        }
                    }
                }
            }
        }
    }
}

/// Why an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Finish {
    /// The model finished its turn.
    #[default]
    Stop,
    /// A stop sequence the client gave was produced.
    StopSequence,
    /// The output cap was reached.
    Length,
    /// The model called tools and waits for their results.
    ToolCalls,
    /// The provider withheld the rest (safety, recitation, a guardrail).
    ContentFilter,
}

/// A whole answer in no provider's dialect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    pub id: String,
    /// The model that answered, as the backend named it.
    pub model: String,
    /// Text and tool calls, in order.
    pub parts: Vec<Part>,
    pub finish: Finish,
    pub usage: Option<Usage>,
}

impl Answer {
    /// The answer's text, all its text parts joined.
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// One step of a streamed answer in no provider's dialect. A stream is `Start`, then text and
/// tool-call events in order, then `Finish` and `Usage` (in either order), then the end (a
/// decoder's [`StreamDecoder::end`], or the backend's own terminator).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Start {
        id: String,
        model: String,
    },
    Text(String),
    /// A tool call begins; `index` counts the answer's tool calls from 0.
    ToolCallStart {
        index: u32,
        id: String,
        name: String,
    },
    /// A piece of tool call `index`'s arguments (JSON text, split anywhere).
    ToolCallArgs {
        index: u32,
        arguments: String,
    },
    Finish(Finish),
    /// The usage so far, complete once the stream ends (replaces any earlier one).
    Usage(Usage),
    /// The backend reported a failure inside the stream.
    Error {
        message: String,
    },
}

/// Reads a backend's stream, chunk by chunk (split anywhere), into neutral events.
pub trait StreamDecoder: Send + std::fmt::Debug {
    /// The events completed by `chunk`.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>);
    /// The body ended: the events still pending.
    fn end(&mut self, out: &mut Vec<Event>) {
        let _ = out;
    }
}

/// A decoder of a dialect that streams server-sent events: it reads one event's data at a time
/// (the framing is [`SseLines`]'s, shared).
pub trait SseDecoder: Send + std::fmt::Debug {
    /// The decoder's framing state.
    fn lines(&mut self) -> &mut SseLines;
    /// Reads one event's data.
    fn data(&mut self, data: &str, out: &mut Vec<Event>);
    /// The body ended, after its last event: what the dialect held back.
    fn ended(&mut self, out: &mut Vec<Event>) {
        let _ = out;
    }
}

impl<D: SseDecoder> StreamDecoder for D {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) {
        for data in self.lines().feed(chunk) {
            self.data(&data, out);
        }
    }

    fn end(&mut self, out: &mut Vec<Event>) {
        if let Some(data) = self.lines().end() {
            self.data(&data, out);
        }
        self.ended(out);
    }
}

/// Writes neutral events as a client's stream.
pub trait StreamEncoder: Send + std::fmt::Debug {
    /// The client's bytes for `event`.
    fn event(&mut self, event: &Event, out: &mut BytesMut);
    /// The stream ended: what closes it in the client's dialect (the held finish and usage,
    /// `[DONE]`, `message_stop`, `response.completed`). Called once.
    fn end(&mut self, out: &mut BytesMut);
}

/// The fields the backend may drop instead of refusing (its `drop_unsupported`).
#[derive(Debug, Clone, Copy)]
pub struct Drops<'a>(pub &'a [String]);

impl Drops<'_> {
    /// Whether `field` may be dropped: listed by its name (`logprobs`), or by the last
    /// segment of its path (`cache_control` drops `messages[2].content[0].cache_control`),
    /// or `*`.
    pub fn allows(&self, field: &str) -> bool {
        let last = field.rsplit('.').next().unwrap_or(field);
        let last = last.split('[').next().unwrap_or(last);
        self.0.iter().any(|d| d == "*" || d == field || d == last)
    }

    /// `Ok` when every field in `fields` may be dropped, else the refusal naming the first that
    /// may not (for the backend `target`, a dialect's name).
    pub fn check(&self, fields: &[String], target: &str) -> Result<(), GatewayError> {
        fields.iter().try_for_each(|f| self.refuse(f, target))
    }

    /// `Ok` when `field` may be dropped, else the refusal naming it (for the backend `target`).
    pub fn refuse(&self, field: &str, target: &str) -> Result<(), GatewayError> {
        if self.allows(field) {
            Ok(())
        } else {
            Err(GatewayError::Untranslatable {
                field: field.to_string(),
                target: target.to_string(),
            })
        }
    }
}

/// Whether a request member the neutral form has no place for asks for nothing: `null`, `false`,
/// an empty list or object, a service tier left to the provider (`auto`, `default`), or no log
/// probabilities (`top_logprobs: 0`). Such a
/// member is not refused (`"logprobs": false` changes nothing the backend does).
pub fn asks_for_nothing(name: &str, value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(members) => members.is_empty(),
        Value::String(s) => name == "service_tier" && (s == "auto" || s == "default"),
        Value::Number(n) => name == "top_logprobs" && n.as_u64() == Some(0),
        _ => false,
    }
}

/// `s` with every byte `safe` refuses written as `%XX` (a model name as a path segment).
pub fn percent_encode(s: &str, safe: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if safe(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits an SSE byte stream into the `data` of each complete event (bytes may be split
/// anywhere), for the decoders of dialects that stream SSE. An event that grows past
/// [`super::sse::MAX_EVENT`] without its end means the body is not SSE: the rest is ignored (and
/// the translated stream, never finished, ends with an error).
#[derive(Debug, Default)]
pub struct SseLines {
    pending: BytesMut,
    /// How far `pending` has been searched for an event end.
    scanned: usize,
    gave_up: bool,
}

impl SseLines {
    /// The data of every event `chunk` completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        if self.gave_up {
            return out;
        }
        self.pending.extend_from_slice(chunk);
        while let Some(end) = super::sse::event_end(&self.pending, self.scanned) {
            let event = self.pending.split_to(end);
            self.scanned = 0;
            if let Some(data) = super::sse::event_data(&event) {
                out.push(data);
            }
        }
        // A terminator may straddle two chunks: resume just before the end.
        self.scanned = self.pending.len().saturating_sub(2);
        if self.pending.len() > super::sse::MAX_EVENT {
            self.gave_up = true;
            self.pending = BytesMut::new();
        }
        out
    }

    /// The data of an unterminated last event.
    pub fn end(&mut self) -> Option<String> {
        let rest = self.pending.split();
        super::sse::event_data(&rest)
    }
}

/// An SSE event: `event: name` (when given) and one `data:` line.
pub fn sse_event(name: Option<&str>, data: &str, out: &mut BytesMut) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// What a decoder reads from a stream cut into `chunks` (for the dialects' tests).
#[cfg(test)]
pub(crate) fn decode_all<D: StreamDecoder + Default>(chunks: &[&[u8]]) -> Vec<Event> {
    let mut decoder = D::default();
    let mut out = Vec::new();
    for c in chunks {
        decoder.feed(c, &mut out);
    }
    decoder.end(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_url_is_an_inline_image() {
        assert_eq!(
            Image::from_url("data:image/png;base64,iVBORw0K"),
            Image::Base64 {
                media_type: "image/png".into(),
                data: "iVBORw0K".into()
            }
        );
        assert_eq!(
            Image::from_url("https://x.test/a.png"),
            Image::Url("https://x.test/a.png".into())
        );
        assert_eq!(
            Image::from_url("data:image/png;base64,iVBORw0K").to_url(),
            "data:image/png;base64,iVBORw0K"
        );
    }

    #[test]
    fn tool_results_get_the_name_of_the_call_they_answer() {
        let mut chat = Chat {
            messages: vec![
                Message {
                    role: Role::Assistant,
                    parts: vec![Part::ToolCall {
                        id: "c1".into(),
                        name: "lookup".into(),
                        arguments: "{}".into(),
                    }],
                },
                Message {
                    role: Role::User,
                    parts: vec![Part::ToolResult {
                        id: "c1".into(),
                        name: String::new(),
                        content: "42".into(),
                        is_error: false,
                    }],
                },
            ],
            ..Chat::default()
        };
        chat.name_tool_results();
        assert!(
            matches!(&chat.messages[1].parts[0], Part::ToolResult { name, .. } if name == "lookup")
        );
    }

    #[test]
    fn a_member_at_its_default_asks_for_nothing() {
        use serde_json::json;
        for (name, v) in [
            ("logprobs", json!(false)),
            ("metadata", json!({})),
            ("include", json!([])),
            ("service_tier", json!("auto")),
        ] {
            assert!(asks_for_nothing(name, &v), "{name}: {v}");
        }
        for (name, v) in [
            ("logprobs", json!(true)),
            ("metadata", json!({"a": 1})),
            ("service_tier", json!("flex")),
            ("max_tool_calls", json!(0)),
        ] {
            assert!(!asks_for_nothing(name, &v), "{name}: {v}");
        }
    }

    #[test]
    fn drops_match_a_field_by_name_or_last_segment() {
        let listed = ["cache_control".to_string(), "logprobs".to_string()];
        let drops = Drops(&listed);
        assert!(drops.allows("logprobs"));
        assert!(drops.allows("messages[2].content[0].cache_control"));
        assert!(!drops.allows("seed"));
        let err = drops
            .check(&["logprobs".into(), "seed".into()], "anthropic")
            .unwrap_err();
        assert_eq!(
            err,
            GatewayError::Untranslatable {
                field: "seed".into(),
                target: "anthropic".into()
            }
        );
    }

    #[test]
    fn sse_lines_give_up_on_a_body_that_is_not_sse() {
        let mut lines = SseLines::default();
        let big = vec![b'x'; crate::protocol::sse::MAX_EVENT + 1];
        assert!(lines.feed(&big).is_empty());
        assert!(
            lines.feed(b"\n\ndata: 1\n\n").is_empty(),
            "nothing more is read"
        );
        assert_eq!(lines.end(), None);
    }

    #[test]
    fn sse_lines_are_independent_of_how_bytes_are_split() {
        let stream = b"event: a\ndata: {\"x\":1}\n\ndata: [DONE]\n\n";
        for cut in 0..stream.len() {
            let mut lines = SseLines::default();
            let mut got = lines.feed(&stream[..cut]);
            got.extend(lines.feed(&stream[cut..]));
            assert_eq!(got, ["{\"x\":1}", "[DONE]"], "cut at {cut}");
        }
    }
}
