//! The lab agent's contract (`POST /chat`): `{"message","session_id","model"}` in,
//! `{"response","gateway_metadata"}` out, errors as FastAPI's `{"detail"}`.
//!
//! A `/chat` request is translated for the backend that serves it: a lab agent gets
//! `{"message","session_id"}` on its own `/chat`; any chat backend a one-message chat in its
//! dialect with the gateway's output cap. The answer's text is read back and wrapped with the
//! gateway's metadata.

use super::json::json_error;
use super::translate;
use crate::config::Protocol;
use crate::error::GatewayError;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

/// The lab agent's `/chat` request.
#[derive(Debug)]
pub struct LabView {
    pub message: String,
    /// The session the client named, if any.
    pub session_id: Option<String>,
    pub model: String,
    /// The session id the agent gets: the client's, namespaced by the consumer; a fresh one when
    /// the client named none (see [`LabView::bind`]).
    pub agent_session: String,
}

#[derive(Deserialize)]
struct LabWire {
    message: String,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

/// Parses and validates a `/chat` body (`model` defaults to `default`).
pub fn parse(body: &[u8]) -> Result<LabView, GatewayError> {
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
        session_id: wire.session_id,
        model,
        agent_session: String::new(),
    })
}

impl LabView {
    /// Ties the session to the consumer sending it: the agent gets `consumer:session`, so two
    /// consumers naming the same session (or none) never share the agent's memory; without a
    /// session the request is a conversation of its own, with a fresh id.
    pub fn bind(&mut self, consumer: &str) {
        self.agent_session = match &self.session_id {
            Some(s) => format!("{consumer}:{s}"),
            None => fresh_session(),
        };
    }

    /// The body a lab agent receives on its `/chat` (other backends get a one-message chat,
    /// translated; see [`crate::protocol::translate`]).
    pub fn outbound(&self) -> Bytes {
        let value = json!({"message": self.message, "session_id": self.agent_session});
        Bytes::from(value.to_string())
    }

    /// What identifies the request for the cache: the agent answers per session (its
    /// namespaced id); a request without one is a fresh conversation, the same for every such
    /// request.
    pub fn cache_identity(&self) -> Vec<u8> {
        let session = self.session_id.as_ref().map(|_| &self.agent_session);
        json!({"message": self.message, "session_id": session})
            .to_string()
            .into_bytes()
    }
}

/// A session id of its own for a request that named none.
fn fresh_session() -> String {
    format!("tg-{}", crate::digest::random_id_hex())
}

/// The answer text in a backend's response to a `/chat` request.
pub fn answer_text(body: &[u8], protocol: Protocol) -> Result<String, GatewayError> {
    if protocol != Protocol::LabAgent {
        return translate::pair::decode_answer(protocol, body).map(|a| a.text());
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("response")?.as_str().map(str::to_string))
        .ok_or_else(|| GatewayError::UpstreamFailed("invalid response body".into()))
}

/// The `/chat` answer: the text and the gateway's metadata.
pub fn answer(text: &str, metadata: serde_json::Value) -> Bytes {
    json!({"response": text, "gateway_metadata": metadata})
        .to_string()
        .into()
}

/// `{"detail":"…"}`, the lab agent's (FastAPI) shape.
pub fn error_body(e: &GatewayError) -> serde_json::Value {
    json!({"detail": e.message()})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::translate::pair::Neutral;
    use crate::protocol::{parse as parse_route, RequestView, Route};

    #[test]
    fn lab_chat_defaults_model_and_session() {
        let RequestView::Lab(l) = parse_route(Route::LabChat, br#"{"message":"hello"}"#).unwrap()
        else {
            panic!("lab view expected")
        };
        assert_eq!(
            (l.model.as_str(), l.session_id.as_deref()),
            ("default", None)
        );
        assert!(parse_route(Route::LabChat, br#"{"session_id":"s"}"#).is_err());
        assert!(parse_route(Route::LabChat, br#"{"message":""}"#).is_err());
    }

    #[test]
    fn lab_chat_is_translated_for_each_protocol() {
        let mut view = LabView {
            message: "hi".into(),
            session_id: Some("s1".into()),
            model: "gpt-4".into(),
            agent_session: String::new(),
        };
        view.bind("team-a");
        let agent: serde_json::Value = serde_json::from_slice(&view.outbound()).unwrap();
        assert_eq!(agent, json!({"message": "hi", "session_id": "team-a:s1"}));
        let request = crate::protocol::RequestView::Lab(view);
        let mut compatible = crate::config::Backend::basic("o", Protocol::OpenAi, &["m"], 1, 1);
        compatible.provider = crate::config::Provider::Compatible;
        compatible.aliases.insert("gpt-4".into(), "dep".into());
        let out = request
            .outbound(Bytes::new(), &compatible, Some(9), &Neutral::default())
            .unwrap();
        let openai: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(out.path, "/v1/chat/completions");
        assert_eq!(openai["messages"][0]["content"], "hi");
        assert_eq!(openai["model"], "dep", "an alias names the backend's model");
        assert_eq!(openai["max_tokens"], 9);
        let anthropic = crate::config::Backend::basic("a", Protocol::Anthropic, &["m"], 1, 1);
        let out = request
            .outbound(Bytes::new(), &anthropic, Some(9), &Neutral::default())
            .unwrap();
        let anthropic: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(out.path, "/v1/messages");
        assert_eq!(anthropic["messages"][0]["content"][0]["text"], "hi");
        assert_eq!(anthropic["max_tokens"], 9);
        compatible.provider = crate::config::Provider::OpenAi;
        let out = request
            .outbound(Bytes::new(), &compatible, Some(9), &Neutral::default())
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            (v["max_completion_tokens"].as_u64(), v.get("max_tokens")),
            (Some(9), None),
            "OpenAI's own API gets the name its reasoning models accept"
        );
    }

    #[test]
    fn answer_text_comes_from_either_protocol() {
        assert_eq!(
            answer_text(br#"{"response":"ok"}"#, Protocol::LabAgent).unwrap(),
            "ok"
        );
        assert_eq!(
            answer_text(
                br#"{"choices":[{"message":{"role":"assistant","content":"yo"}}]}"#,
                Protocol::OpenAi
            )
            .unwrap(),
            "yo"
        );
        assert!(answer_text(b"<html>", Protocol::LabAgent).is_err());
    }

    #[test]
    fn detail_dialect_is_the_seed_shape() {
        assert_eq!(
            error_body(&GatewayError::UpstreamUnreachable),
            json!({"detail": "Backend is unreachable. Try again later."})
        );
    }

    #[test]
    fn sessions_are_namespaced_by_consumer_and_a_missing_one_is_fresh() {
        let view = |session: Option<&str>, consumer: &str| {
            let mut v = LabView {
                message: "hi".into(),
                session_id: session.map(str::to_string),
                model: "m".into(),
                agent_session: String::new(),
            };
            v.bind(consumer);
            v
        };
        assert_ne!(
            view(Some("s"), "a").agent_session,
            view(Some("s"), "b").agent_session
        );
        let (x, y) = (view(None, "a"), view(None, "a"));
        assert_ne!(x.agent_session, y.agent_session);
        assert!(x.agent_session.starts_with("tg-") && x.agent_session != "default");
        assert_eq!(
            x.cache_identity(),
            y.cache_identity(),
            "no session, one key"
        );
        assert_ne!(
            view(Some("s"), "a").cache_identity(),
            view(Some("s"), "b").cache_identity()
        );
    }
}
