//! Anthropic's event stream ⇄ neutral events: [`Decoder`] reads a backend's, [`Encoder`]
//! writes a client's (the mapping table is the parent module's).
//!
//! Decoder: `message_start` → `Start` (its usage kept as the prompt's counts); a text block's
//! deltas → `Text`; a `tool_use` block → `ToolCallStart` (tool calls numbered from 0 in order,
//! whatever their block index) and its `input_json_delta`s → `ToolCallArgs`; thinking,
//! signature and citation deltas ignored; `message_delta` → `Finish` and `Usage`; `error` →
//! `Error`; `content_block_stop`, `ping`, `message_stop` → nothing.
//!
//! Encoder: `message_start` first (on `Start`, or on whatever event comes first), one content
//! block per run of text and per tool call (indexes from 0), the finish and usage held for
//! `end()`, which closes the open block and sends `message_delta` and `message_stop`.

use super::{finish_from, fresh_id, stop_reason, usage_json, AnswerWire, BlockWire};
use crate::protocol::anthropic::UsageWire;
use crate::protocol::translate::{sse_event, Event, Finish, SseDecoder, SseLines, StreamEncoder};
use crate::usage::Usage;
use bytes::BytesMut;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Deserialize)]
struct EventWire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<AnswerWire>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    content_block: Option<BlockWire>,
    #[serde(default)]
    delta: Option<DeltaWire>,
    #[serde(default)]
    usage: Option<UsageWire>,
    #[serde(default)]
    error: Option<ErrorWire>,
}

#[derive(Deserialize)]
struct DeltaWire {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct ErrorWire {
    #[serde(default)]
    message: String,
}

/// Backend side: Anthropic SSE stream → neutral events. `Decoder::default()`.
#[derive(Debug, Default)]
pub struct Decoder {
    lines: SseLines,
    /// `message_start`'s usage: the prompt's counts.
    prompt: Option<Usage>,
    /// Content block index → tool call index.
    tools: HashMap<u64, u32>,
    next_tool: u32,
}

impl Decoder {
    fn event(&mut self, data: &str, out: &mut Vec<Event>) {
        let Ok(e) = serde_json::from_str::<EventWire>(data) else {
            return;
        };
        match e.kind.as_str() {
            "message_start" => {
                let Some(m) = e.message else { return };
                self.prompt = m.usage.and_then(|u| u.usage());
                out.push(Event::Start {
                    id: m.id,
                    model: m.model,
                });
            }
            "content_block_start" => {
                let Some(block) = e.content_block else { return };
                match block.kind.as_str() {
                    "text" => {
                        if let Some(t) = block.text.filter(|t| !t.is_empty()) {
                            out.push(Event::Text(t));
                        }
                    }
                    "tool_use" => {
                        let index = self.next_tool;
                        self.next_tool += 1;
                        self.tools.insert(e.index.unwrap_or(0), index);
                        out.push(Event::ToolCallStart {
                            index,
                            id: block.id.unwrap_or_default(),
                            name: block.name.unwrap_or_default(),
                        });
                        // Anthropic starts with `input: {}` and streams the input; a start
                        // that already carries it is passed on.
                        if let Some(input) = block
                            .input
                            .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                        {
                            out.push(Event::ToolCallArgs {
                                index,
                                arguments: input.to_string(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let Some(d) = e.delta else { return };
                match d.kind.as_deref() {
                    Some("text_delta") => {
                        if let Some(t) = d.text.filter(|t| !t.is_empty()) {
                            out.push(Event::Text(t));
                        }
                    }
                    Some("input_json_delta") => {
                        let tool = e.index.and_then(|i| self.tools.get(&i).copied());
                        if let (Some(index), Some(p)) =
                            (tool, d.partial_json.filter(|p| !p.is_empty()))
                        {
                            out.push(Event::ToolCallArgs {
                                index,
                                arguments: p,
                            });
                        }
                    }
                    // Thinking, signatures and citations have no neutral form.
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = e.delta.and_then(|d| d.stop_reason) {
                    out.push(Event::Finish(finish_from(Some(&reason))));
                }
                if let Some(u) = e.usage {
                    // The output count is cumulative; the prompt's counts, where repeated,
                    // replace `message_start`'s one by one (as `StreamState` reads them).
                    out.push(Event::Usage(u.over(self.prompt.unwrap_or_default())));
                }
            }
            "error" => out.push(Event::Error {
                message: e.error.map(|x| x.message).unwrap_or_default(),
            }),
            // `content_block_stop`, `message_stop`, `ping`.
            _ => {}
        }
    }
}

impl SseDecoder for Decoder {
    fn lines(&mut self) -> &mut SseLines {
        &mut self.lines
    }

    fn data(&mut self, data: &str, out: &mut Vec<Event>) {
        self.event(data, out);
    }
}

/// The kind of the content block an encoder has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Tool,
}

/// Client side: neutral events → Anthropic SSE events. `Encoder::default()`.
#[derive(Debug, Default)]
pub struct Encoder {
    started: bool,
    /// The open content block: its index and kind.
    open: Option<(u32, Open)>,
    next_block: u32,
    /// Tool call index → its content block index.
    tools: HashMap<u32, u32>,
    finish: Option<Finish>,
    usage: Option<Usage>,
}

impl Encoder {
    fn start(&mut self, id: &str, model: &str, out: &mut BytesMut) {
        self.started = true;
        let id = if id.is_empty() {
            fresh_id()
        } else {
            id.to_string()
        };
        let data = json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}}});
        sse_event(Some("message_start"), &data.to_string(), out);
    }

    fn close(&mut self, out: &mut BytesMut) {
        if let Some((index, _)) = self.open.take() {
            let data = json!({"type": "content_block_stop", "index": index});
            sse_event(Some("content_block_stop"), &data.to_string(), out);
        }
    }

    /// Opens a new content block, closing the open one.
    fn open(&mut self, kind: Open, block: Value, out: &mut BytesMut) -> u32 {
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, kind));
        let data = json!({"type": "content_block_start", "index": index, "content_block": block});
        sse_event(Some("content_block_start"), &data.to_string(), out);
        index
    }

    fn delta(index: u32, delta: Value, out: &mut BytesMut) {
        let data = json!({"type": "content_block_delta", "index": index, "delta": delta});
        sse_event(Some("content_block_delta"), &data.to_string(), out);
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &Event, out: &mut BytesMut) {
        if !self.started {
            match event {
                Event::Start { id, model } => return self.start(id, model, out),
                _ => self.start("", "", out),
            }
        }
        match event {
            Event::Start { .. } => {}
            Event::Text(text) => {
                let index = match self.open {
                    Some((index, Open::Text)) => index,
                    _ => self.open(Open::Text, json!({"type": "text", "text": ""}), out),
                };
                Self::delta(index, json!({"type": "text_delta", "text": text}), out);
            }
            Event::ToolCallStart { index, id, name } => {
                let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                let block_index = self.open(Open::Tool, block, out);
                self.tools.insert(*index, block_index);
            }
            Event::ToolCallArgs { index, arguments } => {
                if let Some(block) = self.tools.get(index).copied() {
                    let delta = json!({"type": "input_json_delta", "partial_json": arguments});
                    Self::delta(block, delta, out);
                }
            }
            Event::Finish(f) => self.finish = Some(*f),
            Event::Usage(u) => self.usage = Some(*u),
            Event::Error { message } => {
                let data =
                    json!({"type": "error", "error": {"type": "api_error", "message": message}});
                sse_event(Some("error"), &data.to_string(), out);
            }
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        if !self.started {
            self.start("", "", out);
        }
        self.close(out);
        let data = json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason(self.finish.unwrap_or_default()), "stop_sequence": null},
            "usage": usage_json(self.usage.as_ref())});
        sse_event(Some("message_delta"), &data.to_string(), out);
        sse_event(Some("message_stop"), r#"{"type":"message_stop"}"#, out);
    }
}
