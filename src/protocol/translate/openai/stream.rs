//! OpenAI chat-completions streams (`chat.completion.chunk` server-sent events) ⇄ neutral
//! [`Event`]s: the [`Decoder`] reads a backend's stream, the [`Encoder`] writes a client's.
//! The mapping is the table in the parent module; only the first choice (`index` 0) is read.

use super::answer::{finish_from, finish_reason, fresh_id, unix_now, usage_json};
use crate::protocol::openai::ToolCallDelta;
use crate::protocol::openai::UsageWire;
use crate::protocol::translate::{sse_event, Event, SseDecoder, SseLines, StreamEncoder};
use crate::usage::Usage;
use bytes::BytesMut;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The part of a stream chunk the decoder reads.
#[derive(Deserialize)]
struct ChunkWire {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<ChoiceWire>>,
    /// `null` on every chunk but the last when the usage was asked for.
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChoiceWire {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    delta: Option<DeltaWire>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct DeltaWire {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

/// Backend side: an OpenAI stream (SSE chunks, split anywhere) → neutral events.
#[derive(Debug, Default)]
pub struct Decoder {
    lines: SseLines,
    started: bool,
    /// Per tool-call index: its id (it may come before its name) and whether it was announced.
    calls: BTreeMap<u32, (String, bool)>,
}

impl Decoder {
    fn read_event(&mut self, data: &str, out: &mut Vec<Event>) {
        if data.trim() == "[DONE]" {
            return;
        }
        let Ok(chunk) = serde_json::from_str::<ChunkWire>(data) else {
            return;
        };
        if let Some(error) = chunk.error.filter(|e| !e.is_null()) {
            let message = match error.get("message").and_then(Value::as_str) {
                Some(m) => m.to_string(),
                None => error.to_string(),
            };
            out.push(Event::Error { message });
            return;
        }
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: chunk.id.unwrap_or_default(),
                model: chunk.model.unwrap_or_default(),
            });
        }
        let choice = chunk
            .choices
            .into_iter()
            .flatten()
            .find(|c| c.index.unwrap_or(0) == 0);
        if let Some(choice) = choice {
            if let Some(delta) = choice.delta {
                self.delta(delta, out);
            }
            if let Some(reason) = choice.finish_reason {
                out.push(Event::Finish(finish_from(Some(&reason))));
            }
        }
        let usage = chunk.usage.filter(|u| !u.is_null());
        if let Some(u) = usage.and_then(|u| serde_json::from_value::<UsageWire>(u).ok()) {
            out.push(Event::Usage(Usage::from(u)));
        }
    }

    fn delta(&mut self, delta: DeltaWire, out: &mut Vec<Event>) {
        for text in [delta.content, delta.refusal].into_iter().flatten() {
            if !text.is_empty() {
                out.push(Event::Text(text));
            }
        }
        for (k, call) in delta.tool_calls.into_iter().flatten().enumerate() {
            let index = call.index.unwrap_or(k as u32);
            let (id, announced) = self.calls.entry(index).or_default();
            if let Some(given) = call.id.filter(|i| !i.is_empty()) {
                *id = given;
            }
            let Some(function) = call.function else {
                continue;
            };
            if let Some(name) = function.name.filter(|n| !n.is_empty() && !*announced) {
                *announced = true;
                out.push(Event::ToolCallStart {
                    index,
                    id: id.clone(),
                    name,
                });
            }
            if let Some(arguments) = function.arguments.filter(|a| !a.is_empty()) {
                out.push(Event::ToolCallArgs { index, arguments });
            }
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
}

/// Client side: neutral events → OpenAI `chat.completion.chunk` events, `data: [DONE]` last.
#[derive(Debug)]
pub struct Encoder {
    include_usage: bool,
    id: String,
    model: String,
    created: u64,
    started: bool,
    usage: Option<Usage>,
}

impl Encoder {
    /// `include_usage`: the client asked for the final usage chunk
    /// (`stream_options.include_usage`).
    pub fn new(include_usage: bool) -> Encoder {
        Encoder {
            include_usage,
            id: String::new(),
            model: String::new(),
            created: 0,
            started: false,
            usage: None,
        }
    }

    /// The first chunk (the assistant's role), once, naming the completion.
    fn start(&mut self, id: &str, model: &str, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = if id.is_empty() {
            fresh_id()
        } else {
            id.to_string()
        };
        self.model = model.to_string();
        self.created = unix_now();
        self.chunk(json!({"role": "assistant", "content": ""}), None, out);
    }

    fn chunk(&self, delta: Value, finish: Option<&str>, out: &mut BytesMut) {
        let v = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        sse_event(None, &v.to_string(), out);
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &Event, out: &mut BytesMut) {
        if let Event::Start { id, model } = event {
            self.start(id, model, out);
            return;
        }
        self.start("", "", out);
        match event {
            Event::Start { .. } => {}
            Event::Text(text) if text.is_empty() => {}
            Event::Text(text) => self.chunk(json!({"content": text}), None, out),
            Event::ToolCallStart { index, id, name } => {
                let call = json!({"index": index, "id": id, "type": "function",
                    "function": {"name": name, "arguments": ""}});
                self.chunk(json!({"tool_calls": [call]}), None, out);
            }
            Event::ToolCallArgs { index, arguments } => {
                let call = json!({"index": index, "function": {"arguments": arguments}});
                self.chunk(json!({"tool_calls": [call]}), None, out);
            }
            Event::Finish(finish) => self.chunk(json!({}), Some(finish_reason(*finish)), out),
            Event::Usage(u) => self.usage = Some(*u),
            Event::Error { message } => {
                let error = json!({"error": {"message": message, "type": "upstream_error",
                    "code": "upstream_failed"}});
                sse_event(None, &error.to_string(), out);
            }
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        // The usage chunk, as OpenAI sends it: no choices. Without a usage known there is
        // nothing true to report, so none is written.
        if let Some(u) = self.usage.filter(|_| self.include_usage && self.started) {
            let v = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": usage_json(&u),
            });
            sse_event(None, &v.to_string(), out);
        }
        sse_event(None, "[DONE]", out);
    }
}
