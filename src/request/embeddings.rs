//! `POST /v1/embeddings` (OpenAI): the request view. Usage comes back as `prompt_tokens`.

use crate::error::GatewayError;
use serde::Deserialize;

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
    pub fn texts(&self) -> Vec<&str> {
        match &self.input {
            Input::One(s) => vec![s.as_str()],
            Input::Many(v) => v.iter().map(String::as_str).collect(),
            Input::Tokens(_) | Input::ManyTokens(_) => Vec::new(),
        }
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

pub fn parse(
    body: &[u8],
    json_error: fn(serde_json::Error) -> GatewayError,
) -> Result<EmbeddingsView, GatewayError> {
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
