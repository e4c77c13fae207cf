//! A client dialect and a backend dialect put together: the request, the whole answer, the
//! stream and the backend's refusal of a translated request, each through the neutral form.
//!
//! Which pairs translate: the request's own dialect is never translated (an OpenAI chat request
//! to an `openai` backend, a Messages request to an `anthropic` one, a Responses request to an
//! `openai` one pass through as they are); every other pair of a chat dialect (chat
//! completions, Messages, Responses, the lab's `/chat`) and a chat backend (`openai`,
//! `anthropic`, `gemini`, `bedrock`) goes through [`Chat`]. Embeddings are OpenAI's only.

use super::{
    anthropic, bedrock, gemini, openai, responses, Answer, Chat, Drops, Event, Message, Part, Role,
    StreamDecoder, StreamEncoder,
};
use crate::config::{Backend, Protocol, Provider};
use crate::error::GatewayError;
use crate::protocol::json;
use crate::protocol::{Dialect, RequestView};
use crate::usage::Usage;
use bytes::{Bytes, BytesMut};
use std::sync::OnceLock;

/// The dialect a client speaks, as far as answers are concerned.
#[derive(Debug, Clone)]
pub enum Client {
    /// OpenAI chat completions; a stream ends with a usage chunk only when the client asked.
    Chat { include_usage: bool },
    /// Anthropic Messages.
    Messages,
    /// The Responses API; the answer echoes parts of the request.
    Responses(Box<Chat>),
    /// The lab's `/chat`: the gateway reads the answer's text.
    Lab,
}

impl Client {
    /// The client dialect of `view`; `raw` is its body and `neutral` the request decoded once
    /// (the Responses API echoes the request).
    pub fn of(view: &RequestView, raw: &[u8], neutral: &Neutral) -> Result<Client, GatewayError> {
        Ok(match view {
            RequestView::Chat(c) => Client::Chat {
                include_usage: c.wants_usage(),
            },
            RequestView::Messages(_) => Client::Messages,
            RequestView::Responses(_) => {
                Client::Responses(Box::new(neutral.get(view, raw)?.clone()))
            }
            RequestView::Lab(_) => Client::Lab,
            RequestView::Embeddings(_) => {
                return Err(GatewayError::BadRequest(
                    "embeddings are served by openai backends only".into(),
                ))
            }
        })
    }
}

/// Whether a request of `view` to a backend speaking `protocol` is translated.
pub fn translated(view: &RequestView, protocol: Protocol) -> bool {
    !matches!(
        (view, protocol),
        (RequestView::Chat(_), Protocol::OpenAi)
            | (RequestView::Responses(_), Protocol::OpenAi)
            | (RequestView::Embeddings(_), Protocol::OpenAi)
            | (RequestView::Messages(_), Protocol::Anthropic)
            | (RequestView::Lab(_), Protocol::LabAgent)
    )
}

/// The client's request in the neutral form, decoded at most once per request however many
/// backends it is translated for (a failover) and whatever reads it (the Responses API's echo).
#[derive(Debug, Default)]
pub struct Neutral(OnceLock<Chat>);

impl Neutral {
    /// The request `raw` (in `view`'s dialect) in the neutral form, as the client wrote it.
    pub fn get(&self, view: &RequestView, raw: &[u8]) -> Result<&Chat, GatewayError> {
        if let Some(chat) = self.0.get() {
            return Ok(chat);
        }
        let chat = decode(view, raw)?;
        Ok(self.0.get_or_init(|| chat))
    }

    /// The request as one backend gets it: `model` (the backend's name for it) and the output
    /// cap the gateway sets (when the client set none).
    pub fn for_backend(
        &self,
        view: &RequestView,
        raw: &[u8],
        model: &str,
        inject_cap: Option<u64>,
    ) -> Result<Chat, GatewayError> {
        let mut chat = self.get(view, raw)?.clone();
        model.clone_into(&mut chat.model);
        if inject_cap.is_some() {
            chat.max_tokens = inject_cap;
        }
        Ok(chat)
    }
}

fn decode(view: &RequestView, raw: &[u8]) -> Result<Chat, GatewayError> {
    Ok(match view {
        RequestView::Chat(_) => openai::decode_request(raw)?,
        RequestView::Messages(_) => anthropic::decode_request(raw)?,
        RequestView::Responses(_) => responses::decode_request(raw)?,
        RequestView::Lab(l) => Chat {
            messages: vec![Message {
                role: Role::User,
                parts: vec![Part::Text(l.message.clone())],
            }],
            ..Chat::default()
        },
        RequestView::Embeddings(_) => {
            return Err(GatewayError::BadRequest(
                "embeddings are served by openai backends only".into(),
            ))
        }
    })
}

/// The path (below the backend's prefix) and body `backend` receives for `chat`, in its
/// dialect, dropping what its `drop_unsupported` lets go.
pub fn encode_request(chat: &Chat, backend: &Backend) -> Result<(String, Bytes), GatewayError> {
    let drops = Drops(&backend.drop_unsupported);
    Ok(match backend.protocol {
        Protocol::OpenAi => {
            let body = openai::encode_request(chat, drops)?;
            // OpenAI's own API (and Azure's) takes the output cap as `max_completion_tokens`,
            // the only name its reasoning models accept; compatible servers know `max_tokens`.
            let body = match (&backend.provider, chat.max_tokens) {
                (Provider::OpenAi | Provider::Azure { .. }, Some(cap)) => json::edit_members(
                    &body,
                    &[("max_completion_tokens", cap.to_string())],
                    &["max_tokens"],
                ),
                _ => body,
            };
            ("/v1/chat/completions".into(), body)
        }
        Protocol::Anthropic => (
            "/v1/messages".into(),
            anthropic::encode_request(chat, drops)?,
        ),
        Protocol::Gemini => (
            gemini::path(&chat.model, chat.stream),
            gemini::encode_request(chat, drops)?,
        ),
        Protocol::Bedrock => (
            bedrock::path(&chat.model, chat.stream),
            bedrock::encode_request(chat, drops)?,
        ),
        Protocol::LabAgent => {
            return Err(GatewayError::BadRequest(
                "a lab agent serves only the lab's /chat".into(),
            ))
        }
    })
}

/// A backend's whole answer in the neutral form.
pub fn decode_answer(protocol: Protocol, body: &[u8]) -> Result<Answer, GatewayError> {
    match protocol {
        Protocol::OpenAi => openai::decode_answer(body),
        Protocol::Anthropic => anthropic::decode_answer(body),
        Protocol::Gemini => gemini::decode_answer(body),
        Protocol::Bedrock => bedrock::decode_answer(body),
        Protocol::LabAgent => Err(GatewayError::UpstreamFailed("invalid response body".into())),
    }
}

/// A neutral answer as `client` reads it (the lab's `/chat` reads the text itself).
pub fn encode_answer(client: &Client, answer: &Answer) -> Bytes {
    match client {
        Client::Chat { .. } => openai::encode_answer(answer),
        Client::Messages => anthropic::encode_answer(answer),
        Client::Responses(request) => responses::encode_answer(answer, request),
        Client::Lab => Bytes::from(answer.text()),
    }
}

/// A backend's stream, rewritten event by event into the client's dialect. The usage is taken
/// from the backend's own report (richer than some clients' dialects: cache writes, thoughts).
#[derive(Debug)]
pub struct StreamTranslator {
    decoder: Box<dyn StreamDecoder>,
    encoder: Box<dyn StreamEncoder>,
    events: Vec<Event>,
    usage: Option<Usage>,
    /// The backend said why its answer ended.
    saw_finish: bool,
    /// The backend reported a failure inside its stream.
    saw_error: bool,
    /// The backend's stream ended cleanly, with its answer finished.
    finished: bool,
    /// The model the backend was asked for, for a stream that names none (Bedrock's).
    model: String,
}

impl StreamTranslator {
    /// A translator from `protocol`'s stream to `client`'s, for a stream from `model`; `None`
    /// for a pair that does not stream (a lab agent, the lab's `/chat`).
    pub fn new(protocol: Protocol, client: &Client, model: &str) -> Option<StreamTranslator> {
        let decoder: Box<dyn StreamDecoder> = match protocol {
            Protocol::OpenAi => Box::new(openai::Decoder::default()),
            Protocol::Anthropic => Box::new(anthropic::Decoder::default()),
            Protocol::Gemini => Box::new(gemini::Decoder::default()),
            Protocol::Bedrock => Box::new(bedrock::Decoder::default()),
            Protocol::LabAgent => return None,
        };
        let encoder: Box<dyn StreamEncoder> = match client {
            Client::Chat { include_usage } => Box::new(openai::Encoder::new(*include_usage)),
            Client::Messages => Box::new(anthropic::Encoder::default()),
            Client::Responses(request) => Box::new(responses::Encoder::new(request)),
            Client::Lab => return None,
        };
        Some(StreamTranslator {
            decoder,
            encoder,
            events: Vec::new(),
            usage: None,
            saw_finish: false,
            saw_error: false,
            finished: false,
            model: model.to_string(),
        })
    }

    /// The client's bytes for the backend's `chunk`.
    pub fn feed(&mut self, chunk: &[u8]) -> BytesMut {
        self.decoder.feed(chunk, &mut self.events);
        self.encode()
    }

    /// The backend's body ended: what closes the client's stream. A body that ended without
    /// the answer's end (no finish reason: a backend that broke off between events, or an
    /// answer that was not a stream at all) or after a failure closes it with an error event
    /// first, so the client cannot take a truncated answer for a whole one.
    pub fn end(&mut self) -> BytesMut {
        self.decoder.end(&mut self.events);
        let mut out = self.encode();
        if !self.saw_finish && !self.saw_error {
            self.saw_error = true;
            let message = "The backend's stream ended before its answer did.".to_string();
            self.encoder.event(&Event::Error { message }, &mut out);
        }
        self.encoder.end(&mut out);
        self.finished = !self.saw_error;
        out
    }

    /// The backend's answer came whole: its stream ended cleanly after a finish reason and no
    /// failure.
    pub fn complete(&self) -> bool {
        self.finished
    }

    /// The usage the backend reported, once its answer came whole.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.filter(|_| self.finished)
    }

    fn encode(&mut self) -> BytesMut {
        let mut out = BytesMut::new();
        for mut event in self.events.drain(..) {
            match &mut event {
                Event::Usage(u) => self.usage = Some(*u),
                Event::Start { model, .. } if model.is_empty() => model.clone_from(&self.model),
                Event::Finish(_) => self.saw_finish = true,
                Event::Error { .. } => self.saw_error = true,
                _ => {}
            }
            self.encoder.event(&event, &mut out);
        }
        out
    }
}

/// The message of a backend's error body (JSON in any of the four dialects), if it has one.
pub fn error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message = v
        .pointer("/error/message")
        .or_else(|| v.get("message"))
        .or_else(|| v.get("Message"))?;
    message.as_str().map(str::to_string)
}

/// A backend's refusal (a 4xx) of a translated request, in the client's dialect: its status
/// kept, its message (already scrubbed of credentials and account ids) carried over.
pub fn refusal(dialect: Dialect, status: u16, message: &str) -> Bytes {
    let kind = crate::protocol::anthropic::error_type(status);
    let v = match dialect {
        Dialect::OpenAi => serde_json::json!({"error": {
            "message": message,
            "type": if status == 429 { "rate_limit_error" } else { "invalid_request_error" },
            "code": serde_json::Value::Null,
        }}),
        Dialect::Anthropic => {
            serde_json::json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        Dialect::Detail => serde_json::json!({"detail": message}),
    };
    Bytes::from(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemini_chunk(text: &str, finish: Option<&str>) -> String {
        let finish = finish.map_or(String::new(), |f| format!(",\"finishReason\":\"{f}\""));
        format!(
            "data: {{\"candidates\":[{{\"content\":{{\"role\":\"model\",\"parts\":[{{\"text\":\"{text}\"}}]}}{finish}}}],\"usageMetadata\":{{\"promptTokenCount\":3,\"candidatesTokenCount\":2}}}}\r\n\r\n"
        )
    }

    fn translate(chunks: &[String]) -> (String, StreamTranslator) {
        let client = Client::Chat {
            include_usage: true,
        };
        let mut t = StreamTranslator::new(Protocol::Gemini, &client, "gemini-x").unwrap();
        let mut out = BytesMut::new();
        for c in chunks {
            out.extend_from_slice(&t.feed(c.as_bytes()));
        }
        out.extend_from_slice(&t.end());
        (String::from_utf8(out.to_vec()).unwrap(), t)
    }

    #[test]
    fn a_finished_stream_is_whole_and_carries_the_backends_usage() {
        let (text, t) = translate(&[gemini_chunk("Hel", None), gemini_chunk("lo", Some("STOP"))]);
        assert!(t.complete());
        assert_eq!(t.usage().map(|u| (u.input, u.output)), Some((3, 2)));
        assert!(!text.contains("\"error\""), "{text}");
        assert!(
            text.contains("\"model\":\"gemini-x\""),
            "the model the backend was asked for"
        );
        assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    }

    #[test]
    fn a_stream_that_ends_before_its_answer_is_cut_and_says_so() {
        let (text, t) = translate(&[gemini_chunk("Hel", None)]);
        assert!(!t.complete(), "no finish reason: the backend broke off");
        assert_eq!(
            t.usage(),
            None,
            "settled at the worst case, not the partial count"
        );
        assert!(text.contains("\"error\""), "the client is told: {text}");
        let (_, t) = translate(&["<html>not a stream</html>".to_string()]);
        assert!(!t.complete());
    }
}
