//! `POST /v1/embeddings` (OpenAI): the request view and the body a backend receives. Usage comes
//! back as OpenAI's `prompt_tokens` (read by [`super::openai::usage`]); there is no output.

use super::json::{self, json_error};
use super::text::{Origin, Texts};
use crate::error::GatewayError;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
pub struct EmbeddingsView {
    pub model: String,
    pub input: Input,
}

/// A string, a list of strings, or token arrays (counted as their length).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Input {
    One(String),
    Many(Vec<String>),
    Tokens(Vec<u64>),
    ManyTokens(Vec<Vec<u64>>),
}

impl EmbeddingsView {
    /// The inputs.
    pub fn texts(&self) -> Texts<'_> {
        let mut out = Texts::default();
        let inputs: &[String] = match &self.input {
            Input::One(s) => std::slice::from_ref(s),
            Input::Many(v) => v,
            Input::Tokens(_) | Input::ManyTokens(_) => &[],
        };
        for s in inputs {
            out.push(Origin::Message, s.as_str());
        }
        out
    }

    /// Tokens given directly as token ids.
    pub fn token_ids(&self) -> u64 {
        match &self.input {
            Input::Tokens(t) => t.len() as u64,
            Input::ManyTokens(t) => t.iter().map(|x| x.len() as u64).sum(),
            _ => 0,
        }
    }
}

impl EmbeddingsView {
    /// The body a backend receives: the client's, with the backend's model name (`rename`).
    pub fn outbound(&self, raw: Bytes, rename: Option<&str>) -> Bytes {
        match rename {
            Some(model) => json::set_members(&raw, &[("model", json!(model).to_string())]),
            None => raw,
        }
    }
}

/// Parses and validates an embeddings body.
pub fn parse(body: &[u8]) -> Result<EmbeddingsView, GatewayError> {
    let v: EmbeddingsView = serde_json::from_slice(body).map_err(json_error)?;
    if v.model.trim().is_empty() {
        return Err(GatewayError::BadRequest("`model` must not be empty".into()));
    }
    let empty = match &v.input {
        Input::One(s) => s.is_empty(),
        Input::Many(v) => v.is_empty(),
        Input::Tokens(t) => t.is_empty(),
        Input::ManyTokens(t) => t.is_empty(),
    };
    if empty {
        return Err(GatewayError::BadRequest("`input` must not be empty".into()));
    }
    Ok(v)
}
