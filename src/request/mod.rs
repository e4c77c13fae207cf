//! The request-body view: what the gateway needs to know from a client's JSON, parsed once in
//! `request_filter`, and the bodies it sends upstream when it must translate.
//!
//! Input: the route and the raw body. Decision: the model, streaming flag, output cap and the
//! text the model will read; or a 400 with the reason. The OpenAI body is forwarded byte for byte;
//! `/chat` bodies are rewritten for the backend's protocol.

pub mod embeddings;
pub mod messages;

use embeddings::EmbeddingsView;
use messages::MessagesView;

use crate::config::Protocol;
use crate::error::{Dialect, GatewayError};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

/// The consumer-plane routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/chat/completions`, OpenAI-compatible.
    ChatCompletions,
    /// `POST /chat`, the lab agent's contract.
    LabChat,
    /// `POST /v1/messages`, the Anthropic Messages API.
    Messages,
    /// `POST /v1/embeddings`, OpenAI-compatible.
    Embeddings,
    /// `GET /v1/models`: the models this consumer may use, answered by the gateway.
    Models,
}

impl Route {
    /// The route for a method and path; unknown paths are 404, other methods 405.
    pub fn resolve(method: &http::Method, path: &str) -> Result<Route, GatewayError> {
        let route = match path.trim_end_matches('/') {
            "/v1/chat/completions" => Route::ChatCompletions,
            "/chat" => Route::LabChat,
            "/v1/messages" => Route::Messages,
            "/v1/embeddings" => Route::Embeddings,
            "/v1/models" => Route::Models,
            _ => return Err(GatewayError::NotFound),
        };
        let expected = match route {
            Route::Models => http::Method::GET,
            _ => http::Method::POST,
        };
        if method != expected {
            return Err(GatewayError::MethodNotAllowed);
        }
        Ok(route)
    }

    /// The error dialect for a path, also for requests that matched no route.
    pub fn dialect_for_path(path: &str) -> Dialect {
        match path.trim_end_matches('/') {
            "/chat" => Dialect::Detail,
            "/v1/messages" => Dialect::Anthropic,
            _ => Dialect::OpenAi,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Route::ChatCompletions => "chat_completions",
            Route::LabChat => "chat",
            Route::Messages => "messages",
            Route::Embeddings => "embeddings",
            Route::Models => "models",
        }
    }

    /// Whether a backend speaking `protocol` can serve this route.
    pub fn accepts(self, protocol: Protocol) -> bool {
        match self {
            Route::ChatCompletions | Route::Embeddings => protocol == Protocol::OpenAi,
            // `/chat` is translated for OpenAI backends.
            Route::LabChat => matches!(protocol, Protocol::LabAgent | Protocol::OpenAi),
            Route::Messages => protocol == Protocol::Anthropic,
            Route::Models => false,
        }
    }
}

/// A parsed, validated request.
#[derive(Debug)]
pub enum RequestView {
    Chat(ChatView),
    Lab(LabView),
    Messages(MessagesView),
    Embeddings(EmbeddingsView),
}

impl RequestView {
    pub fn model(&self) -> &str {
        match self {
            RequestView::Chat(c) => &c.model,
            RequestView::Lab(l) => &l.model,
            RequestView::Messages(m) => &m.model,
            RequestView::Embeddings(e) => &e.model,
        }
    }

    /// Every text the model will read: message contents and text parts, or the `/chat` message.
    pub fn texts(&self) -> Vec<&str> {
        match self {
            RequestView::Lab(l) => vec![l.message.as_str()],
            RequestView::Messages(m) => m.texts(),
            RequestView::Embeddings(e) => e.texts(),
            RequestView::Chat(c) => {
                let mut out = Vec::with_capacity(c.messages.len());
                for m in &c.messages {
                    match &m.content {
                        Some(Content::Text(t)) => out.push(t.as_str()),
                        Some(Content::Parts(parts)) => {
                            out.extend(parts.iter().filter_map(|p| p.text.as_deref()))
                        }
                        None => {}
                    }
                }
                out
            }
        }
    }

    /// Estimated prompt tokens: ceil(characters / 4) of every text, plus per-message framing.
    pub fn prompt_estimate(&self) -> u64 {
        let (messages, token_ids) = match self {
            RequestView::Chat(c) => (c.messages.len() as u64, 0),
            RequestView::Lab(_) => (1, 0),
            RequestView::Messages(m) => (m.messages.len() as u64 + 1, 0),
            RequestView::Embeddings(e) => (0, e.token_ids()),
        };
        self.texts()
            .iter()
            .map(|t| crate::accounting::estimate_tokens(t))
            .sum::<u64>()
            .saturating_add(token_ids)
            .saturating_add(messages.saturating_mul(crate::accounting::PER_MESSAGE_TOKENS))
    }

    /// How many choices (`n`) the request asks for (1 where the API has no such field).
    pub fn choices(&self) -> u64 {
        match self {
            RequestView::Chat(c) => c.n.unwrap_or(1),
            _ => 1,
        }
    }

    /// The output cap the client set, if any (`max_completion_tokens` wins over `max_tokens`),
    /// multiplied by `n` choices.
    pub fn client_output_cap(&self) -> Option<u64> {
        match self {
            RequestView::Chat(c) => c
                .max_completion_tokens
                .or(c.max_tokens)
                .map(|cap| cap.saturating_mul(c.n.unwrap_or(1))),
            RequestView::Messages(m) => m.max_tokens,
            RequestView::Lab(_) => None,
            // Embeddings produce no output tokens.
            RequestView::Embeddings(_) => Some(0),
        }
    }

    pub fn streaming(&self) -> bool {
        match self {
            RequestView::Chat(c) => c.streaming(),
            RequestView::Messages(m) => m.stream.unwrap_or(false),
            _ => false,
        }
    }
}

/// What the gateway reads from an OpenAI chat-completions body.
#[derive(Debug, Deserialize)]
pub struct ChatView {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub n: Option<u64>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
}

/// `stream_options` of a chat request.
#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

impl ChatView {
    pub fn streaming(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// The client asked for the final usage chunk itself.
    pub fn wants_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
}

/// A message's content: a string or a list of typed parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

/// The lab agent's `/chat` request.
#[derive(Debug)]
pub struct LabView {
    pub message: String,
    pub session_id: String,
    pub model: String,
}

#[derive(Deserialize)]
struct LabWire {
    message: String,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// Parses and validates a body for `route`.
pub fn parse(route: Route, body: &[u8]) -> Result<RequestView, GatewayError> {
    if body.is_empty() {
        return Err(GatewayError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    if nested_deeper_than(body, MAX_JSON_DEPTH) {
        return Err(GatewayError::BadRequest(format!(
            "the JSON is nested deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    match route {
        Route::ChatCompletions => parse_chat(body).map(RequestView::Chat),
        Route::LabChat => parse_lab(body).map(RequestView::Lab),
        Route::Messages => messages::parse(body, json_error).map(RequestView::Messages),
        Route::Embeddings => embeddings::parse(body, json_error).map(RequestView::Embeddings),
        Route::Models => Err(GatewayError::MethodNotAllowed),
    }
}

/// Deepest JSON nesting accepted. Parts of a body the gateway does not read are still forwarded,
/// so a depth bomb must be refused here, not left to a backend's parser.
pub const MAX_JSON_DEPTH: usize = 64;

/// Whether `[`/`{` nest deeper than `limit` anywhere outside strings (one pass, no allocation).
fn nested_deeper_than(body: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

pub(crate) fn json_error(e: serde_json::Error) -> GatewayError {
    // serde's message names the field and the expected type; strip the position noise.
    let msg = e.to_string();
    let msg = match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    GatewayError::BadRequest(msg)
}

fn parse_chat(body: &[u8]) -> Result<ChatView, GatewayError> {
    let view: ChatView = serde_json::from_slice(body).map_err(json_error)?;
    if view.model.trim().is_empty() {
        return Err(GatewayError::BadRequest("`model` must not be empty".into()));
    }
    if view.messages.is_empty() {
        return Err(GatewayError::BadRequest(
            "`messages` must not be empty".into(),
        ));
    }
    for (i, m) in view.messages.iter().enumerate() {
        if !ROLES.contains(&m.role.as_str()) {
            return Err(GatewayError::BadRequest(format!(
                "messages[{i}].role must be one of {}",
                ROLES.join(", ")
            )));
        }
    }
    if view.max_tokens == Some(0) || view.max_completion_tokens == Some(0) {
        return Err(GatewayError::BadRequest(
            "the output cap must be at least 1 token".into(),
        ));
    }
    if view.n == Some(0) {
        return Err(GatewayError::BadRequest("`n` must be at least 1".into()));
    }
    Ok(view)
}

fn parse_lab(body: &[u8]) -> Result<LabView, GatewayError> {
    let wire: LabWire = serde_json::from_slice(body).map_err(json_error)?;
    if wire.message.is_empty() {
        return Err(GatewayError::BadRequest(
            "`message` must not be empty".into(),
        ));
    }
    let model = wire.model.unwrap_or_else(|| "default".into());
    if model.trim().is_empty() {
        return Err(GatewayError::BadRequest("`model` must not be empty".into()));
    }
    Ok(LabView {
        message: wire.message,
        session_id: wire.session_id.unwrap_or_else(|| "default".into()),
        model,
    })
}

/// What goes to the backend: the path below its prefix and the body.
#[derive(Debug)]
pub struct Outbound {
    pub path: &'static str,
    pub body: Bytes,
    /// The gateway wrote this body (so it sets `Content-Type` itself).
    pub rewritten: bool,
}

/// The request as a backend speaking `protocol` receives it: OpenAI bodies byte for byte unless
/// the gateway must add its output cap (`inject_cap`, when the client set none) or name the
/// backend's own model (`rename`, an alias); `/chat` translated.
pub fn outbound(
    view: &RequestView,
    raw: Bytes,
    protocol: Protocol,
    inject_cap: Option<u64>,
    rename: Option<&str>,
) -> Outbound {
    match view {
        RequestView::Chat(chat) => {
            // A stream the client did not ask usage for gets it anyway (the gateway settles on
            // it and removes that event from what the client sees).
            let add_usage = chat.streaming() && !chat.wants_usage();
            let body = if rename.is_some() || (add_usage && chat.stream_options.is_some()) {
                rewritten(&raw, rename, inject_cap, add_usage)
            } else {
                let mut members = Vec::new();
                if let Some(cap) = inject_cap {
                    members.push(format!("\"max_tokens\":{cap}"));
                }
                if add_usage {
                    members.push("\"stream_options\":{\"include_usage\":true}".to_string());
                }
                with_members(&raw, &members)
            };
            Outbound {
                path: "/v1/chat/completions",
                body,
                rewritten: false,
            }
        }
        RequestView::Lab(lab) => Outbound {
            path: match protocol {
                Protocol::LabAgent => "/chat",
                _ => "/v1/chat/completions",
            },
            body: lab_upstream_body(lab, protocol, inject_cap, rename),
            rewritten: true,
        },
        RequestView::Messages(_) => Outbound {
            path: "/v1/messages",
            body: match rename {
                Some(_) => rewritten(&raw, rename, inject_cap, false),
                None => match inject_cap {
                    Some(cap) => with_max_tokens(&raw, cap),
                    None => raw,
                },
            },
            rewritten: false,
        },
        RequestView::Embeddings(_) => Outbound {
            path: "/v1/embeddings",
            body: match rename {
                Some(_) => rewritten(&raw, rename, None, false),
                None => raw,
            },
            rewritten: false,
        },
    }
}

/// The body re-serialised with `model` replaced, the cap added and usage asked for: done only
/// when a textual insertion cannot do it (an alias, or `stream_options` to amend).
fn rewritten(raw: &Bytes, model: Option<&str>, cap: Option<u64>, add_usage: bool) -> Bytes {
    match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(mut v) => {
            if let Some(obj) = v.as_object_mut() {
                if let Some(model) = model {
                    obj.insert("model".into(), json!(model));
                }
                if let Some(cap) = cap {
                    obj.insert("max_tokens".into(), json!(cap));
                }
                if add_usage {
                    let opts = obj.entry("stream_options").or_insert_with(|| json!({}));
                    if let Some(o) = opts.as_object_mut() {
                        o.insert("include_usage".into(), json!(true));
                    }
                }
            }
            Bytes::from(v.to_string())
        }
        // Unreachable: the body was parsed before; forward it as it came.
        Err(_) => raw.clone(),
    }
}

/// Adds JSON members (`"name":value` texts) at the start of the object in `raw`, leaving every
/// other byte as it was.
fn with_members(raw: &Bytes, members: &[String]) -> Bytes {
    if members.is_empty() {
        return raw.clone();
    }
    let open = raw.iter().position(|b| *b == b'{').unwrap_or(0);
    let insert = format!("{},", members.join(","));
    let mut out = Vec::with_capacity(raw.len() + insert.len());
    out.extend_from_slice(&raw[..=open]);
    out.extend_from_slice(insert.as_bytes());
    out.extend_from_slice(&raw[open + 1..]);
    Bytes::from(out)
}

/// Adds `"max_tokens": cap` as the first member of the JSON object in `raw` (which the parser
/// already accepted and which has no output cap), leaving every other byte as it was.
pub fn with_max_tokens(raw: &Bytes, cap: u64) -> Bytes {
    with_members(raw, &[format!("\"max_tokens\":{cap}")])
}

/// The body a `/chat` request becomes for a backend of `protocol`.
fn lab_upstream_body(
    view: &LabView,
    protocol: Protocol,
    cap: Option<u64>,
    rename: Option<&str>,
) -> Bytes {
    let value = match protocol {
        Protocol::LabAgent => json!({"message": view.message, "session_id": view.session_id}),
        Protocol::OpenAi | Protocol::Anthropic => {
            let mut v = json!({
                "model": rename.unwrap_or(&view.model),
                "messages": [{"role": "user", "content": view.message}],
            });
            if let (Some(cap), Some(obj)) = (cap, v.as_object_mut()) {
                obj.insert("max_tokens".into(), json!(cap));
            }
            v
        }
    };
    Bytes::from(value.to_string())
}

/// The usage a backend reported in a whole (non-streamed) answer, by the protocol it speaks.
pub fn reported_usage(
    view: &RequestView,
    protocol: Protocol,
    body: &[u8],
) -> Option<crate::accounting::Usage> {
    match (view, protocol) {
        (RequestView::Messages(_), _) | (_, Protocol::Anthropic) => messages::usage(body),
        (_, Protocol::OpenAi) => crate::accounting::openai_usage(body),
        (_, Protocol::LabAgent) => None,
    }
}

/// Extracts the answer text from a backend's `/chat` (or translated OpenAI) response body.
pub fn lab_response_text(body: &[u8], protocol: Protocol) -> Result<String, GatewayError> {
    let invalid = || GatewayError::UpstreamFailed("invalid response body".into());
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| invalid())?;
    let text = match protocol {
        Protocol::LabAgent => v.get("response"),
        Protocol::OpenAi => v.pointer("/choices/0/message/content"),
        Protocol::Anthropic => v.pointer("/content/0/text"),
    };
    match text {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        // A tool-call-only completion has null content: an empty answer, not an error.
        Some(serde_json::Value::Null) if protocol == Protocol::OpenAi => Ok(String::new()),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_measured_outside_strings_only() {
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(nested_deeper_than(deep.as_bytes(), 64));
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(!nested_deeper_than(ok.as_bytes(), 64));
        let quoted = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(100), "{".repeat(100));
        assert!(!nested_deeper_than(quoted.as_bytes(), 64));
    }

    #[test]
    fn routes_resolve_by_method_and_path() {
        use http::Method;
        assert_eq!(
            Route::resolve(&Method::POST, "/v1/chat/completions"),
            Ok(Route::ChatCompletions)
        );
        assert_eq!(Route::resolve(&Method::POST, "/chat"), Ok(Route::LabChat));
        assert_eq!(
            Route::resolve(&Method::GET, "/chat"),
            Err(GatewayError::MethodNotAllowed)
        );
        assert_eq!(
            Route::resolve(&Method::POST, "/admin"),
            Err(GatewayError::NotFound)
        );
    }

    #[test]
    fn parses_an_openai_body_with_string_and_part_contents() {
        let body = br#"{"model":"gpt-4","stream":true,"max_tokens":5,"messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        let RequestView::Chat(c) = parse(Route::ChatCompletions, body).unwrap() else {
            panic!("chat view expected")
        };
        assert_eq!(c.model, "gpt-4");
        assert!(c.streaming());
        assert_eq!(c.max_tokens, Some(5));
        assert_eq!(c.messages.len(), 2);
    }

    #[test]
    fn rejects_bad_openai_bodies_with_a_reason() {
        for (body, needle) in [
            (
                &br#"{"messages":[{"role":"user","content":"x"}]}"#[..],
                "model",
            ),
            (br#"{"model":"m","messages":[]}"#, "messages"),
            (br#"{"model":"m","messages":"x"}"#, "invalid type"),
            (
                br#"{"model":5,"messages":[{"role":"user","content":"x"}]}"#,
                "invalid type",
            ),
            (
                br#"{"model":"m","messages":[{"role":"boss","content":"x"}]}"#,
                "role",
            ),
            (
                br#"{"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]}"#,
                "invalid type",
            ),
            (
                br#"{"model":"m","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}"#,
                "invalid value",
            ),
            (b"{not json", "key must be a string"),
            (b"", "JSON object"),
        ] {
            match parse(Route::ChatCompletions, body) {
                Err(GatewayError::BadRequest(msg)) => assert!(msg.contains(needle), "{msg}"),
                other => panic!("{other:?} for {}", String::from_utf8_lossy(body)),
            }
        }
    }

    #[test]
    fn lab_chat_defaults_model_and_session() {
        let RequestView::Lab(l) = parse(Route::LabChat, br#"{"message":"hello"}"#).unwrap() else {
            panic!("lab view expected")
        };
        assert_eq!(
            (l.model.as_str(), l.session_id.as_str()),
            ("default", "default")
        );
        assert!(parse(Route::LabChat, br#"{"session_id":"s"}"#).is_err());
        assert!(parse(Route::LabChat, br#"{"message":""}"#).is_err());
    }

    #[test]
    fn lab_chat_is_translated_for_each_protocol() {
        let view = LabView {
            message: "hi".into(),
            session_id: "s1".into(),
            model: "gpt-4".into(),
        };
        let agent: serde_json::Value =
            serde_json::from_slice(&lab_upstream_body(&view, Protocol::LabAgent, Some(9), None))
                .unwrap();
        assert_eq!(agent, json!({"message": "hi", "session_id": "s1"}));
        let openai: serde_json::Value = serde_json::from_slice(&lab_upstream_body(
            &view,
            Protocol::OpenAi,
            Some(9),
            Some("dep"),
        ))
        .unwrap();
        assert_eq!(openai["messages"][0]["content"], "hi");
        assert_eq!(openai["model"], "dep", "an alias names the backend's model");
        assert_eq!(openai["max_tokens"], 9);
    }

    #[test]
    fn the_output_cap_is_added_without_touching_other_bytes() {
        let raw = Bytes::from_static(
            b" {\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"{x}\"}]}",
        );
        let out = with_max_tokens(&raw, 256);
        assert_eq!(
            &out[..],
            &b" {\"max_tokens\":256,\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"{x}\"}]}"[..]
        );
        let RequestView::Chat(c) = parse(Route::ChatCompletions, &out).unwrap() else {
            panic!("chat view expected")
        };
        assert_eq!(c.max_tokens, Some(256));
    }

    #[test]
    fn a_stream_gets_include_usage_only_when_the_client_did_not_ask() {
        let send = |body: &'static [u8]| -> serde_json::Value {
            let raw = Bytes::from_static(body);
            let view = parse(Route::ChatCompletions, &raw).unwrap();
            let out = outbound(&view, raw, Protocol::OpenAi, None, None);
            serde_json::from_slice(&out.body).unwrap()
        };
        let v = send(br#"{"model":"m","stream":true,"max_tokens":1,"messages":[{"role":"user","content":"x"}]}"#);
        assert_eq!(v["stream_options"]["include_usage"], true);
        let v = send(br#"{"model":"m","stream":true,"max_tokens":1,"stream_options":{"x":1},"messages":[{"role":"user","content":"x"}]}"#);
        assert_eq!(v["stream_options"], json!({"x": 1, "include_usage": true}));
        let v = send(br#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}]}"#);
        assert!(
            v.get("stream_options").is_none(),
            "not for non-streamed requests"
        );
    }

    #[test]
    fn texts_cover_every_string_and_text_part() {
        let body = br#"{"model":"m","messages":[{"role":"system","content":"a"},
            {"role":"user","content":[{"type":"text","text":"b"},{"type":"image_url"}]},{"role":"assistant"}]}"#;
        let v = parse(Route::ChatCompletions, body).unwrap();
        assert_eq!(v.texts(), ["a", "b"]);
        assert_eq!(v.prompt_estimate(), 1 + 1 + 3 * 4);
    }

    #[test]
    fn answer_text_comes_from_either_protocol() {
        assert_eq!(
            lab_response_text(br#"{"response":"ok"}"#, Protocol::LabAgent).unwrap(),
            "ok"
        );
        assert_eq!(
            lab_response_text(
                br#"{"choices":[{"message":{"role":"assistant","content":"yo"}}]}"#,
                Protocol::OpenAi
            )
            .unwrap(),
            "yo"
        );
        assert!(lab_response_text(b"<html>", Protocol::LabAgent).is_err());
    }
}
