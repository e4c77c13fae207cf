//! The wire formats: what each client dialect looks like, one file each, and the route table
//! that maps a request to its dialect.
//!
//! For every dialect its file owns: parsing a request into the view the stages use (the model,
//! streaming, the output cap, every text the model will read and so the prompt estimate), the
//! body a backend receives (the gateway's output cap, a stream's usage request, a translated
//! body), the usage a backend reports in a whole answer and in a stream, and the error body
//! shape its SDKs parse. [`sse`] is the event framing the streaming dialects share, [`provider`]
//! how each kind of backend is addressed, [`json`] the body edits they share.
//!
//! Input: the route and the raw body. Decision: the view, or a 400 with the reason. Nothing here
//! touches a socket or the gateway's state.

pub mod anthropic;
pub mod embeddings;
pub mod json;
pub mod lab;
pub mod openai;
pub mod provider;
pub mod responses;
pub mod sse;
pub mod text;
pub mod translate;

use crate::config::{Backend, Protocol};
use crate::error::GatewayError;
use crate::usage::{estimate_tokens, Usage, PER_MESSAGE_TOKENS};
use anthropic::MessagesView;
use bytes::Bytes;
use embeddings::EmbeddingsView;
use lab::LabView;
use openai::ChatView;
use responses::ResponsesView;
use sse::SseTap;
use std::borrow::Cow;
pub use text::{Origin, Text, Texts};

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
    /// `POST /v1/responses`, the OpenAI Responses API.
    Responses,
    /// `GET /v1/models`: the models this consumer may use, answered by the gateway.
    Models,
    /// A page about the gateway itself (`GET /health`, the lab's reports), unauthenticated.
    Page(Page),
}

/// The gateway's own pages on the consumer listener: `/health` always, the lab's reports when
/// `server.lab_endpoints` is on (they are the admin plane's otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Health,
    /// The lab's `/metrics`: aggregate statistics as JSON (the admin plane's `/stats`).
    Metrics,
    Costs,
    CacheStats,
}

impl Page {
    pub fn path(self) -> &'static str {
        match self {
            Page::Health => "/health",
            Page::Metrics => "/metrics",
            Page::Costs => "/costs",
            Page::CacheStats => "/cache/stats",
        }
    }
}

/// The JSON error dialect a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `{"error":{"message","type","code"}}`, what OpenAI SDKs parse.
    OpenAi,
    /// `{"detail":"…"}`, the lab agent's (FastAPI) shape.
    Detail,
    /// `{"type":"error","error":{"type","message"}}`, what Anthropic SDKs parse.
    Anthropic,
}

impl Route {
    /// The route for a method and path; unknown paths are 404, other methods 405.
    pub fn resolve(method: &http::Method, path: &str) -> Result<Route, GatewayError> {
        let route = match path.trim_end_matches('/') {
            "/v1/chat/completions" => Route::ChatCompletions,
            "/chat" => Route::LabChat,
            "/v1/messages" => Route::Messages,
            "/v1/embeddings" => Route::Embeddings,
            "/v1/responses" => Route::Responses,
            "/v1/models" => Route::Models,
            "/health" => Route::Page(Page::Health),
            "/metrics" => Route::Page(Page::Metrics),
            "/costs" => Route::Page(Page::Costs),
            "/cache/stats" => Route::Page(Page::CacheStats),
            _ => return Err(GatewayError::NotFound),
        };
        let (expected, allow) = match route {
            Route::Models | Route::Page(_) => (http::Method::GET, "GET"),
            _ => (http::Method::POST, "POST"),
        };
        if method != expected {
            return Err(GatewayError::MethodNotAllowed { allow });
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
            Route::Responses => "responses",
            Route::Models => "models",
            Route::Page(Page::Health) => "health",
            Route::Page(_) => "report",
        }
    }

    /// Whether a backend speaking `protocol` can serve this route: the chat routes are
    /// translated for every chat backend (see [`translate`]); embeddings are OpenAI's, and a lab
    /// agent serves the lab's `/chat` only.
    pub fn accepts(self, protocol: Protocol) -> bool {
        let chat_backend = matches!(
            protocol,
            Protocol::OpenAi | Protocol::Anthropic | Protocol::Gemini | Protocol::Bedrock
        );
        match self {
            Route::ChatCompletions | Route::Messages | Route::Responses => chat_backend,
            Route::Embeddings => protocol == Protocol::OpenAi,
            Route::LabChat => chat_backend || protocol == Protocol::LabAgent,
            Route::Models | Route::Page(_) => false,
        }
    }
}

/// The JSON error body for `e` in `dialect`.
pub fn error_body(e: &GatewayError, dialect: Dialect) -> Bytes {
    let value = match dialect {
        Dialect::OpenAi => openai::error_body(e),
        Dialect::Detail => lab::error_body(e),
        Dialect::Anthropic => anthropic::error_body(e),
    };
    Bytes::from(value.to_string())
}

/// A parsed, validated request.
#[derive(Debug)]
pub enum RequestView {
    Chat(ChatView),
    Lab(LabView),
    Messages(MessagesView),
    Embeddings(EmbeddingsView),
    Responses(ResponsesView),
}

/// Parses and validates a body for `route`.
pub fn parse(route: Route, body: &[u8]) -> Result<RequestView, GatewayError> {
    json::precheck(body)?;
    match route {
        Route::ChatCompletions => openai::parse(body).map(RequestView::Chat),
        Route::LabChat => lab::parse(body).map(RequestView::Lab),
        Route::Messages => anthropic::parse(body).map(RequestView::Messages),
        Route::Embeddings => embeddings::parse(body).map(RequestView::Embeddings),
        Route::Responses => responses::parse(body).map(RequestView::Responses),
        Route::Models | Route::Page(_) => Err(GatewayError::MethodNotAllowed { allow: "GET" }),
    }
}

/// What goes to the backend: the path below its prefix and the body.
#[derive(Debug)]
pub struct Outbound {
    pub path: Cow<'static, str>,
    pub body: Bytes,
    /// The gateway wrote this body (so it sets `Content-Type` itself).
    pub rewritten: bool,
}

impl RequestView {
    pub fn model(&self) -> &str {
        match self {
            RequestView::Chat(c) => &c.model,
            RequestView::Lab(l) => &l.model,
            RequestView::Messages(m) => &m.model,
            RequestView::Embeddings(e) => &e.model,
            RequestView::Responses(r) => &r.model,
        }
    }

    /// Ties what a request names per client to the consumer sending it (a `/chat` session; see
    /// [`LabView::bind`]).
    pub fn bind_consumer(&mut self, consumer: &str) {
        if let RequestView::Lab(l) = self {
            l.bind(consumer);
        }
    }

    /// Every text the model will read, with its origin (see [`text`]).
    pub fn texts(&self) -> Vec<Text<'_>> {
        match self {
            RequestView::Lab(l) => {
                let mut t = Texts::default();
                t.push(Origin::Message, l.message.as_str());
                t.list
            }
            RequestView::Messages(m) => m.texts().list,
            RequestView::Embeddings(e) => e.texts().list,
            RequestView::Chat(c) => c.texts().list,
            RequestView::Responses(r) => r.texts().list,
        }
    }

    /// Estimated prompt tokens of `texts` (this view's [`RequestView::texts`]): ceil(characters
    /// / 4) of every text the model reads, tool schemas and tool calls included, plus
    /// per-message framing and tokens given as ids.
    pub fn prompt_estimate(&self, texts: &[Text<'_>]) -> u64 {
        let (messages, token_ids) = match self {
            RequestView::Chat(c) => (c.messages.len() as u64, 0),
            RequestView::Lab(_) => (1, 0),
            RequestView::Messages(m) => (m.messages.len() as u64 + 1, 0),
            RequestView::Embeddings(e) => (0, e.token_ids()),
            RequestView::Responses(r) => (r.items(), 0),
        };
        texts
            .iter()
            .map(|t| estimate_tokens(&t.text))
            .sum::<u64>()
            .saturating_add(token_ids)
            .saturating_add(messages.saturating_mul(PER_MESSAGE_TOKENS))
    }

    /// How many choices (`n`) the request asks for (1 where the API has no such field).
    pub fn choices(&self) -> u64 {
        match self {
            RequestView::Chat(c) => c.n.unwrap_or(1),
            _ => 1,
        }
    }

    /// The output cap the client set, if any, for all its choices.
    pub fn client_output_cap(&self) -> Option<u64> {
        match self {
            RequestView::Chat(c) => c.output_cap(),
            RequestView::Messages(m) => m.max_tokens,
            RequestView::Lab(_) => None,
            RequestView::Responses(r) => r.output_cap(),
            // Embeddings produce no output tokens.
            RequestView::Embeddings(_) => Some(0),
        }
    }

    pub fn streaming(&self) -> bool {
        match self {
            RequestView::Chat(c) => c.streaming(),
            RequestView::Messages(m) => m.streaming(),
            RequestView::Responses(r) => r.streaming(),
            _ => false,
        }
    }

    /// The request as `backend` receives it, with the gateway's output cap (`inject_cap`, when
    /// the client set none) and the backend's own model name (an alias): the client's body,
    /// edited where needed, when the backend speaks its dialect; otherwise translated (see
    /// [`translate`]), or a 400 naming a field the backend's dialect cannot express and its
    /// `drop_unsupported` does not let go.
    pub fn outbound(
        &self,
        raw: Bytes,
        backend: &Backend,
        inject_cap: Option<u64>,
        neutral: &translate::pair::Neutral,
    ) -> Result<Outbound, GatewayError> {
        let rename = backend.renamed(self.model());
        let (path, body) = match self {
            _ if translate::pair::translated(self, backend.protocol) => {
                let model = rename.unwrap_or(self.model());
                let chat = neutral.for_backend(self, &raw, model, inject_cap)?;
                let (path, body) = translate::pair::encode_request(&chat, backend)?;
                return Ok(Outbound {
                    path: Cow::Owned(path),
                    body,
                    rewritten: true,
                });
            }
            RequestView::Lab(l) => {
                return Ok(Outbound {
                    path: Cow::Borrowed("/chat"),
                    body: l.outbound(),
                    rewritten: true,
                })
            }
            RequestView::Chat(c) => ("/v1/chat/completions", c.outbound(raw, inject_cap, rename)),
            RequestView::Messages(m) => ("/v1/messages", m.outbound(raw, inject_cap, rename)),
            RequestView::Embeddings(e) => ("/v1/embeddings", e.outbound(raw, rename)),
            RequestView::Responses(r) => ("/v1/responses", r.outbound(raw, inject_cap, rename)),
        };
        Ok(Outbound {
            path: Cow::Borrowed(path),
            body,
            rewritten: false,
        })
    }

    /// What identifies the request for the response cache: the canonical body as the backend
    /// receives it (the gateway's cap included), or the `/chat` message and session. `None` when
    /// the body cannot be canonicalised (it is then not cached).
    pub fn cache_identity(&self, raw: &Bytes, inject_cap: Option<u64>) -> Option<Vec<u8>> {
        let edited = match self {
            RequestView::Lab(l) => return Some(l.cache_identity()),
            RequestView::Chat(c) => c.outbound(raw.clone(), inject_cap, None),
            RequestView::Messages(m) => m.outbound(raw.clone(), inject_cap, None),
            RequestView::Embeddings(e) => e.outbound(raw.clone(), None),
            // The provider keeps state for it: never answered from the cache.
            RequestView::Responses(r) if r.stateful() => return None,
            RequestView::Responses(r) => r.outbound(raw.clone(), inject_cap, None),
        };
        json::canonical(&edited, None)
    }

    /// The usage a backend speaking this request's own dialect reported in a whole
    /// (non-streamed) answer (a translated answer's usage comes from its translation).
    pub fn reported_usage(&self, body: &[u8]) -> Option<Usage> {
        match self {
            RequestView::Messages(_) => anthropic::usage(body),
            RequestView::Responses(_) => responses::usage(body),
            RequestView::Chat(_) | RequestView::Embeddings(_) => openai::usage(body),
            RequestView::Lab(_) => None,
        }
    }

    /// The reader for this request's event stream from a backend speaking `protocol`, asked for
    /// `model`. The gateway asked an OpenAI stream for its usage when the client did not; that
    /// event is removed from what the client sees. Another dialect's stream is translated into
    /// the client's as it passes.
    pub fn stream_tap(
        &self,
        protocol: Protocol,
        model: &str,
        raw: &[u8],
        neutral: &translate::pair::Neutral,
    ) -> Result<SseTap, GatewayError> {
        let tap = match self {
            RequestView::Messages(_) => SseTap::anthropic(),
            RequestView::Chat(c) => SseTap::new(!c.wants_usage()),
            RequestView::Responses(_) => SseTap::responses(),
            _ => SseTap::new(false),
        };
        if !translate::pair::translated(self, protocol) {
            return Ok(tap);
        }
        let client = translate::pair::Client::of(self, raw, neutral)?;
        let translator = translate::pair::StreamTranslator::new(protocol, &client, model)
            .ok_or(GatewayError::Internal)?;
        // The translator writes the usage event the client asked for, and no other.
        Ok(tap.translating(translator))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Err(GatewayError::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            Route::resolve(&Method::POST, "/admin"),
            Err(GatewayError::NotFound)
        );
    }

    #[test]
    fn each_route_speaks_its_error_dialect() {
        let e = GatewayError::UpstreamTimeout;
        let body = |path| -> serde_json::Value {
            serde_json::from_slice(&error_body(&e, Route::dialect_for_path(path))).unwrap()
        };
        assert_eq!(
            body("/v1/chat/completions")["error"]["code"],
            "upstream_timeout"
        );
        assert_eq!(body("/v1/messages")["error"]["type"], "overloaded_error");
        assert_eq!(body("/chat")["detail"], "Backend did not answer in time.");
        assert!(
            body("/nowhere").get("error").is_some(),
            "OpenAI's by default"
        );
    }

    #[test]
    fn the_cache_identity_counts_the_injected_cap_and_ignores_key_order() {
        let a = Bytes::from_static(br#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#);
        let b = Bytes::from_static(br#"{"messages":[{"content":"x","role":"user"}],"model":"m"}"#);
        let view = parse(Route::ChatCompletions, &a).unwrap();
        assert_eq!(
            view.cache_identity(&a, Some(5)),
            view.cache_identity(&b, Some(5))
        );
        assert_ne!(
            view.cache_identity(&a, Some(5)),
            view.cache_identity(&a, None)
        );
        let mut lab = parse(Route::LabChat, br#"{"message":"hi","session_id":"s"}"#).unwrap();
        let mut other = parse(Route::LabChat, br#"{"message":"hi","session_id":"t"}"#).unwrap();
        lab.bind_consumer("c");
        other.bind_consumer("c");
        assert_ne!(
            lab.cache_identity(&Bytes::new(), None),
            other.cache_identity(&Bytes::new(), None),
            "a lab agent answers per session"
        );
    }
}
