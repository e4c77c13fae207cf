//! Server-sent events as they pass through: the framing every streaming dialect shares, and the
//! dialect's own reader for what the events say (usage, delivered text, the end).
//!
//! The parser is incremental: bytes may be split anywhere (inside a `data:` line, inside a
//! multi-byte character); events are recognised when their blank-line terminator arrives. When
//! nothing has to be removed, every chunk is forwarded the moment it arrives (no added buffering);
//! when the gateway itself asked an OpenAI stream for its usage and the client did not, bytes are
//! forwarded event by event and the usage-only event is removed, so the client sees exactly the
//! stream it would have seen without the gateway. Anthropic streams are never edited.

use super::translate::pair::StreamTranslator;
use super::{anthropic, json, openai, responses};
use crate::stages::output::{Finding, OutputRules, Scanner};
use crate::usage::Usage;
use bytes::{Bytes, BytesMut};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The dialect's reader of event data.
#[derive(Debug)]
enum Reader {
    OpenAi(openai::StreamState),
    Anthropic(anthropic::StreamState),
    Responses(responses::StreamState),
}

impl Default for Reader {
    fn default() -> Self {
        Reader::OpenAi(openai::StreamState::default())
    }
}

/// Watches (and optionally edits) one stream.
#[derive(Debug, Default)]
pub struct SseTap {
    reader: Reader,
    /// Bytes of an event not yet terminated.
    pending: BytesMut,
    /// Remove usage-only events (the gateway added `include_usage`, the client did not ask).
    strip_usage: bool,
    /// When the first bytes of the stream arrived (time to first token).
    pub first_chunk: Option<std::time::Instant>,
    /// How far `pending` has been searched for an event end (resume there, not from 0).
    scanned: usize,
    /// The stream is not SSE-shaped (an event grew past [`MAX_EVENT`]): stop parsing, pass bytes.
    gave_up: bool,
    /// The rules that check the answer as it passes, when any apply.
    checks: Option<StreamChecks>,
    /// Rewrites another dialect's stream into the client's before anything else reads it.
    translator: Option<Box<StreamTranslator>>,
}

/// The answer rules applied to a stream: one scanner per choice (OpenAI) or content block
/// (Anthropic), whose released text replaces each event's.
#[derive(Debug)]
struct StreamChecks {
    rules: Arc<OutputRules>,
    scanners: BTreeMap<u64, Scanner>,
    /// Since when each scanner has held text back.
    held_since: BTreeMap<u64, Instant>,
    /// How long held text waited before it was released, one entry per release after a hold.
    delays: Vec<Duration>,
    blocked: Option<String>,
}

impl StreamChecks {
    fn new(rules: Arc<OutputRules>) -> Self {
        StreamChecks {
            rules,
            scanners: BTreeMap::new(),
            held_since: BTreeMap::new(),
            delays: Vec::new(),
            blocked: None,
        }
    }

    /// `text` of answer `index` arrived; the text to send now.
    fn push(&mut self, index: u64, text: &str) -> String {
        let rules = &self.rules;
        let scanner = self
            .scanners
            .entry(index)
            .or_insert_with(|| rules.scanner());
        let out = scanner.push(text);
        self.after(index, &out);
        out
    }

    /// Answer `index` ended; the rest of its text.
    fn finish(&mut self, index: u64) -> String {
        let Some(scanner) = self.scanners.get_mut(&index) else {
            return String::new();
        };
        let out = scanner.finish();
        self.after(index, &out);
        out
    }

    fn after(&mut self, index: u64, released: &str) {
        let Some(scanner) = self.scanners.get(&index) else {
            return;
        };
        if self.blocked.is_none() {
            self.blocked = scanner.blocked.clone();
        }
        let now = Instant::now();
        if !released.is_empty() {
            if let Some(since) = self.held_since.remove(&index) {
                self.delays.push(now.duration_since(since));
            }
        }
        if scanner.holding() {
            self.held_since.entry(index).or_insert(now);
        }
    }
}

/// Longest event the tap buffers; a backend sending more without a blank line is not speaking
/// SSE, and its bytes are passed through unparsed.
pub const MAX_EVENT: usize = 1024 * 1024;

impl SseTap {
    /// A tap for an OpenAI chat-completions stream; `strip_usage` removes the usage-only event.
    pub fn new(strip_usage: bool) -> Self {
        SseTap {
            strip_usage,
            ..SseTap::default()
        }
    }

    /// A tap for an Anthropic Messages stream (passed through unchanged unless answer rules
    /// apply).
    pub fn anthropic() -> Self {
        SseTap {
            reader: Reader::Anthropic(anthropic::StreamState::default()),
            ..SseTap::default()
        }
    }

    /// A tap for a Responses API stream (passed through unchanged unless answer rules apply).
    pub fn responses() -> Self {
        SseTap {
            reader: Reader::Responses(responses::StreamState::default()),
            ..SseTap::default()
        }
    }

    /// Translates the backend's stream (another dialect) into this tap's before it is read.
    /// The translator writes only the usage event the client asked for, so none is removed.
    pub fn translating(mut self, translator: StreamTranslator) -> Self {
        self.translator = Some(Box::new(translator));
        self.strip_usage = false;
        self
    }

    /// Checks the answer as it passes with `rules` (see [`crate::stages::output`]): text is
    /// released only once no rule can still match across events, redacted where one did; a
    /// block ends the stream ([`SseTap::blocked`]).
    pub fn with_checks(mut self, rules: Arc<OutputRules>) -> Self {
        self.checks = Some(StreamChecks::new(rules));
        self
    }

    /// The rule that withheld the rest of the answer, once one did.
    pub fn blocked(&self) -> Option<&str> {
        self.checks.as_ref()?.blocked.as_deref()
    }

    /// What the answer rules found, in order.
    pub fn findings(&self) -> Vec<Finding> {
        let Some(c) = &self.checks else {
            return Vec::new();
        };
        c.scanners.values().flat_map(|s| s.found.clone()).collect()
    }

    /// How long held-back text waited, one entry per release after a hold.
    pub fn hold_delays(&self) -> &[Duration] {
        self.checks.as_ref().map_or(&[], |c| &c.delays)
    }

    /// The event that ends a stream an answer rule withheld.
    pub fn blocked_event(&self, rule: &str) -> Bytes {
        let message =
            format!("The rest of the answer was withheld by content policy (rule {rule}).");
        match self.reader {
            Reader::Anthropic(_) => {
                let event = serde_json::json!({"type": "error", "error": {
                    "type": "invalid_request_error", "message": message}});
                Bytes::from(format!("event: error\ndata: {event}\n\n"))
            }
            Reader::Responses(_) => {
                let event = serde_json::json!({"type": "error",
                    "code": "content_policy_violation", "message": message, "param": null});
                Bytes::from(format!("event: error\ndata: {event}\n\n"))
            }
            Reader::OpenAi(_) => {
                let event = serde_json::json!({"error": {
                    "message": message, "type": "invalid_request_error",
                    "code": "content_policy_violation"}});
                Bytes::from(format!("data: {event}\n\n"))
            }
        }
    }

    /// The tap forwards event by event (it may remove or rewrite events).
    fn edits(&self) -> bool {
        self.strip_usage || self.checks.is_some()
    }

    /// Whether a translated stream's answer came whole (a finish reason, no failure); a stream
    /// that is not translated is judged by how its body ended.
    pub fn translated_whole(&self) -> bool {
        self.translator.as_ref().is_none_or(|t| t.complete())
    }

    /// The usage the stream reported, once it did (a translated stream's from the backend's
    /// own report, once it ended).
    pub fn usage(&self) -> Option<Usage> {
        if let Some(t) = &self.translator {
            return t.usage();
        }
        match &self.reader {
            Reader::OpenAi(s) => s.usage,
            Reader::Anthropic(s) => s.usage(),
            Reader::Responses(s) => s.usage,
        }
    }

    /// Characters of answer text forwarded to the client so far.
    pub fn delivered_chars(&self) -> u64 {
        match &self.reader {
            Reader::OpenAi(s) => s.delivered_chars,
            Reader::Anthropic(s) => s.delivered_chars,
            Reader::Responses(s) => s.delivered_chars,
        }
    }

    /// The stream said it is finished (`[DONE]`, `message_stop`).
    pub fn done(&self) -> bool {
        match &self.reader {
            Reader::OpenAi(s) => s.done,
            Reader::Anthropic(s) => s.stopped,
            Reader::Responses(s) => s.done,
        }
    }

    /// The event that ends a stream the backend broke off, so the client cannot take the
    /// truncated answer for a complete one (`code` is the failure's label), in the client's
    /// dialect.
    pub fn error_event(&self, code: &str) -> Bytes {
        let message = "The backend failed in the middle of the stream.";
        match self.reader {
            Reader::Anthropic(_) => {
                let event = serde_json::json!({"type": "error", "error": {
                    "type": "api_error", "message": message}});
                Bytes::from(format!("event: error\ndata: {event}\n\n"))
            }
            Reader::Responses(_) => {
                let event = serde_json::json!({"type": "error",
                    "code": code, "message": message, "param": null});
                Bytes::from(format!("event: error\ndata: {event}\n\n"))
            }
            Reader::OpenAi(_) => {
                let event = serde_json::json!({"error": {
                    "message": message, "type": "upstream_error", "code": code}});
                Bytes::from(format!("data: {event}\n\n"))
            }
        }
    }

    /// Takes the next chunk from the backend; returns what to forward to the client now.
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        if self.first_chunk.is_none() && !chunk.is_empty() {
            self.first_chunk = Some(std::time::Instant::now());
        }
        match self.translator.as_mut() {
            Some(t) => {
                let translated = t.feed(chunk);
                self.read(&translated)
            }
            None => self.read(chunk),
        }
    }

    /// Reads (and forwards, or edits) a chunk of the client's dialect.
    fn read(&mut self, chunk: &[u8]) -> Bytes {
        if self.gave_up {
            return Bytes::copy_from_slice(chunk);
        }
        self.pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        while let Some(end) = event_end(&self.pending, self.scanned) {
            let event = self.pending.split_to(end);
            self.scanned = 0;
            if self.blocked().is_some() {
                continue;
            }
            // The event's data is extracted once, for the reader and for the answer rules.
            let data = event_data(&event);
            let keep = self.observe(data.as_deref());
            match data.and_then(|d| self.checked(&d)) {
                Some(rewritten) => out.extend_from_slice(&rewritten),
                None if keep && self.edits() => out.extend_from_slice(&event),
                None => {}
            }
        }
        // Resume the next search near the end (a terminator may straddle two chunks).
        self.scanned = self.pending.len().saturating_sub(2);
        if self.pending.len() > MAX_EVENT {
            self.gave_up = true;
            self.scanned = 0;
            let rest = self.pending.split();
            if self.edits() {
                out.extend_from_slice(&rest);
            }
        }
        if self.edits() {
            out.freeze()
        } else {
            Bytes::copy_from_slice(chunk)
        }
    }

    /// Whatever is left when the stream ends (an unterminated last event; a translated
    /// stream's closing events), to forward as is.
    pub fn finish(&mut self) -> Bytes {
        let closing = match self.translator.as_mut() {
            Some(t) => {
                let tail = t.end();
                self.read(&tail)
            }
            None => Bytes::new(),
        };
        let rest = self.pending.split();
        if !rest.is_empty() && self.blocked().is_none() {
            self.observe(event_data(&rest).as_deref());
        }
        let mut out = BytesMut::from(&closing[..]);
        if self.edits() {
            out.extend_from_slice(&rest);
        }
        // Text still held when the stream ends (it never said an answer was finished).
        if let Some(c) = &mut self.checks {
            let open: Vec<u64> = c.scanners.keys().copied().collect();
            for index in open {
                let text = c.finish(index);
                if !text.is_empty() && c.blocked.is_none() {
                    out.extend_from_slice(&self.reader.text_event(index, &text));
                }
            }
        }
        out.freeze()
    }

    /// The event with the answer rules applied: `None` when it goes out as it came.
    fn checked(&mut self, data: &str) -> Option<Bytes> {
        let checks = self.checks.as_mut()?;
        match &self.reader {
            Reader::OpenAi(_) => openai_checked(checks, data),
            Reader::Anthropic(_) => anthropic_checked(checks, data),
            Reader::Responses(_) => responses_checked(checks, data),
        }
    }

    /// Reads one complete event's data (`None`: it has none); returns whether the client should
    /// see it.
    fn observe(&mut self, data: Option<&str>) -> bool {
        let Some(data) = data else {
            return true;
        };
        match &mut self.reader {
            Reader::OpenAi(state) => state.observe(data, self.strip_usage),
            Reader::Anthropic(state) => {
                state.observe(data);
                true
            }
            Reader::Responses(state) => {
                state.observe(data);
                true
            }
        }
    }
}

/// The `data` of an event (its `data:` lines joined), when it has any.
pub(super) fn event_data(event: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(event).ok()?;
    let mut data = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        }
    }
    (!data.is_empty()).then_some(data)
}

impl Reader {
    /// An event carrying `text` for answer `index` (text released at the end of a stream).
    fn text_event(&self, index: u64, text: &str) -> Bytes {
        match self {
            Reader::OpenAi(_) => openai_text_event(index, text),
            Reader::Anthropic(_) => anthropic_text_event(index, text),
            Reader::Responses(_) => responses_text_event(index, text),
        }
    }
}

fn openai_text_event(index: u64, text: &str) -> Bytes {
    let v = serde_json::json!({"object": "chat.completion.chunk",
        "choices": [{"index": index, "delta": {"content": text}, "finish_reason": null}]});
    Bytes::from(format!("data: {v}\n\n"))
}

fn anthropic_text_event(index: u64, text: &str) -> Bytes {
    let v = serde_json::json!({"type": "content_block_delta", "index": index,
        "delta": {"type": "text_delta", "text": text}});
    Bytes::from(format!("event: content_block_delta\ndata: {v}\n\n"))
}

/// An OpenAI chunk with each choice's `delta.content` replaced by what its scanner releases
/// (and, when the choice finishes, the rest); `[DONE]` first releases what is still held.
fn openai_checked(checks: &mut StreamChecks, data: &str) -> Option<Bytes> {
    if data.trim() == "[DONE]" {
        let mut out = BytesMut::new();
        let open: Vec<u64> = checks.scanners.keys().copied().collect();
        for index in open {
            let text = checks.finish(index);
            if !text.is_empty() && checks.blocked.is_none() {
                out.extend_from_slice(&openai_text_event(index, &text));
            }
        }
        if out.is_empty() {
            return None;
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        return Some(out.freeze());
    }
    // Most events change nothing: their choices are read without a JSON tree, and one is built
    // only to rewrite an event whose text the scanners changed. A chunk not shaped as expected
    // is read the lenient way, as a tree.
    let Ok(chunk) = serde_json::from_str::<ChunkText>(data) else {
        return openai_checked_tree(checks, data);
    };
    let mut rewrites: Vec<(usize, String)> = Vec::new();
    for (at, choice) in chunk.choices.iter().enumerate() {
        let Some(delta) = &choice.delta else {
            continue;
        };
        let index = choice.index.unwrap_or(0);
        let content = delta.content.as_deref();
        let (text, changed) = release(checks, index, content, choice.finish_reason.is_some());
        if changed {
            rewrites.push((at, text));
        }
    }
    if checks.blocked.is_some() {
        return Some(Bytes::new());
    }
    if rewrites.is_empty() {
        return None;
    }
    let mut v: Value = serde_json::from_str(data).ok()?;
    let choices = v.get_mut("choices")?.as_array_mut()?;
    for (at, text) in rewrites {
        let delta = choices.get_mut(at).and_then(|c| c.get_mut("delta"));
        if let Some(delta) = delta.and_then(Value::as_object_mut) {
            delta.insert("content".into(), Value::String(text));
        }
    }
    Some(Bytes::from(format!("data: {v}\n\n")))
}

/// The part of an OpenAI chunk the answer rules read, borrowed from the event.
#[derive(serde::Deserialize)]
struct ChunkText<'a> {
    #[serde(borrow)]
    choices: Vec<ChoiceText<'a>>,
}

#[derive(serde::Deserialize)]
struct ChoiceText<'a> {
    #[serde(default)]
    index: Option<u64>,
    /// Present and not null: the choice finished.
    #[serde(default)]
    finish_reason: Option<serde::de::IgnoredAny>,
    /// Absent or null: the choice is left as it is.
    #[serde(default, borrow)]
    delta: Option<DeltaText<'a>>,
}

#[derive(serde::Deserialize)]
struct DeltaText<'a> {
    #[serde(default, borrow)]
    content: Option<json::Str<'a>>,
}

/// [`openai_checked`] on any JSON shape: the chunk as a tree, each choice's `delta` (when an
/// object) through its scanner, rewritten in place where the text changed.
fn openai_checked_tree(checks: &mut StreamChecks, data: &str) -> Option<Bytes> {
    let mut v: Value = serde_json::from_str(data).ok()?;
    let choices = v.get_mut("choices")?.as_array_mut()?;
    let mut any = false;
    for choice in choices {
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
        let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
        let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) else {
            continue;
        };
        let content = delta.get("content").and_then(Value::as_str);
        let (text, changed) = release(checks, index, content, finished);
        if changed {
            delta.insert("content".into(), Value::String(text));
            any = true;
        }
    }
    if checks.blocked.is_some() {
        return Some(Bytes::new());
    }
    any.then(|| Bytes::from(format!("data: {v}\n\n")))
}

/// What answer `index` releases of an event's `content` (and, when the choice `finished`, the
/// rest its scanner held), and whether that differs from what the event carried.
fn release(
    checks: &mut StreamChecks,
    index: u64,
    content: Option<&str>,
    finished: bool,
) -> (String, bool) {
    let mut changed = false;
    let mut text = match content {
        Some(s) => {
            let released = checks.push(index, s);
            changed |= released != s;
            released
        }
        None => String::new(),
    };
    if finished {
        let rest = checks.finish(index);
        changed |= !rest.is_empty();
        text.push_str(&rest);
    }
    (text, changed)
}

/// An Anthropic event with a text delta replaced by what its block's scanner releases; a
/// block's end first releases what is still held.
fn anthropic_checked(checks: &mut StreamChecks, data: &str) -> Option<Bytes> {
    let mut v: Value = serde_json::from_str(data).ok()?;
    let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
    match v.get("type").and_then(Value::as_str)? {
        "content_block_delta" => {
            let delta = v.get_mut("delta")?.as_object_mut()?;
            if delta.get("type").and_then(Value::as_str) != Some("text_delta") {
                return None;
            }
            let Some(Value::String(text)) = delta.get("text") else {
                return None;
            };
            let released = checks.push(index, text);
            if checks.blocked.is_some() {
                return Some(Bytes::new());
            }
            if released == *text {
                return None;
            }
            if released.is_empty() {
                return Some(Bytes::new());
            }
            delta.insert("text".into(), Value::String(released));
            Some(Bytes::from(format!(
                "event: content_block_delta\ndata: {v}\n\n"
            )))
        }
        "content_block_stop" => {
            let rest = checks.finish(index);
            if checks.blocked.is_some() {
                return Some(Bytes::new());
            }
            if rest.is_empty() {
                return None;
            }
            let mut out = BytesMut::from(&anthropic_text_event(index, &rest)[..]);
            out.extend_from_slice(format!("event: content_block_stop\ndata: {v}\n\n").as_bytes());
            Some(out.freeze())
        }
        _ => None,
    }
}

/// A Responses text part's key among the stream's scanners: its output item and content part.
fn responses_key(v: &Value) -> u64 {
    let at = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    at("output_index") * 1_000 + at("content_index")
}

fn responses_text_event(key: u64, text: &str) -> Bytes {
    let v = serde_json::json!({"type": "response.output_text.delta",
        "output_index": key / 1_000, "content_index": key % 1_000, "delta": text});
    Bytes::from(format!("event: response.output_text.delta\ndata: {v}\n\n"))
}

/// `text`, redacted whole by the rules (the full text a Responses stream repeats in its `done`
/// and terminal events, whose deltas the scanners checked).
fn redact_whole(rules: &Arc<OutputRules>, text: &mut String) -> bool {
    let out = rules.scanner().whole(text);
    let changed = out != *text;
    *text = out;
    changed
}

/// A Responses event with the answer rules applied: text deltas through their part's scanner;
/// the full text repeated in `*.done` and terminal events redacted whole; a part's end (or the
/// response's) first releases what its scanner still holds.
fn responses_checked(checks: &mut StreamChecks, data: &str) -> Option<Bytes> {
    let mut v: Value = serde_json::from_str(data).ok()?;
    let kind = v.get("type").and_then(Value::as_str)?.to_string();
    let rules = Arc::clone(&checks.rules);
    let mut before = BytesMut::new();
    let mut changed = false;
    match kind.as_str() {
        "response.output_text.delta" => {
            let key = responses_key(&v);
            let Some(Value::String(delta)) = v.get("delta") else {
                return None;
            };
            let released = checks.push(key, delta);
            if checks.blocked.is_some() {
                return Some(Bytes::new());
            }
            if released == *delta {
                return None;
            }
            if released.is_empty() {
                return Some(Bytes::new());
            }
            v["delta"] = Value::String(released);
            changed = true;
        }
        "response.output_text.done" => {
            let rest = checks.finish(responses_key(&v));
            if !rest.is_empty() {
                before.extend_from_slice(&responses_text_event(responses_key(&v), &rest));
            }
            if let Some(Value::String(text)) = v.get_mut("text") {
                changed |= redact_whole(&rules, text);
            }
        }
        "response.content_part.done" => {
            if let Some(Value::String(text)) = v.pointer_mut("/part/text") {
                changed |= redact_whole(&rules, text);
            }
        }
        "response.output_item.done"
        | "response.completed"
        | "response.incomplete"
        | "response.failed" => {
            // The response's end (not an item's) releases what every scanner still holds.
            if kind != "response.output_item.done" {
                let open: Vec<u64> = checks.scanners.keys().copied().collect();
                for key in open {
                    let rest = checks.finish(key);
                    if !rest.is_empty() {
                        before.extend_from_slice(&responses_text_event(key, &rest));
                    }
                }
            }
            let items: Vec<&mut Value> = match v.pointer_mut("/response/output") {
                Some(Value::Array(items)) => items.iter_mut().collect(),
                _ => v.get_mut("item").into_iter().collect(),
            };
            for item in items {
                for part in item
                    .get_mut("content")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(Value::String(text)) = part.get_mut("text") {
                        changed |= redact_whole(&rules, text);
                    }
                }
            }
        }
        _ => return None,
    }
    if checks.blocked.is_some() {
        return Some(Bytes::new());
    }
    if !changed && before.is_empty() {
        return None;
    }
    before.extend_from_slice(format!("event: {kind}\ndata: {v}\n\n").as_bytes());
    Some(before.freeze())
}

/// The length of the first complete event in `buf` (including its blank-line terminator),
/// searching from `from`.
pub(super) fn event_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' && buf[i + 1] == b'\n' {
            return Some(i + 2);
        }
        if buf[i] == b'\n' && buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
            return Some(i + 3);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(with_usage: bool) -> Vec<u8> {
        let mut s = String::new();
        s.push_str("data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n");
        for w in ["Héllo", " wörld", " 😀"] {
            s.push_str(&format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{w}\"}}}}]}}\n\n"
            ));
        }
        s.push_str(
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        );
        if with_usage {
            s.push_str("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10,\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n");
        }
        s.push_str("data: [DONE]\n\n");
        s.into_bytes()
    }

    /// xorshift: deterministic "random" chunkings without a dependency.
    fn splits(seed: u64, len: usize) -> Vec<usize> {
        let mut x = seed | 1;
        let mut cuts = Vec::new();
        let mut at = 0;
        while at < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            at += 1 + (x % 23) as usize;
            cuts.push(at.min(len));
        }
        cuts
    }

    fn run(bytes: &[u8], strip: bool, seed: u64) -> (Vec<u8>, SseTap) {
        let mut tap = SseTap::new(strip);
        let mut out = Vec::new();
        let mut from = 0;
        for to in splits(seed, bytes.len()) {
            out.extend_from_slice(&tap.feed(&bytes[from..to]));
            from = to;
        }
        out.extend_from_slice(&tap.finish());
        (out, tap)
    }

    /// The typed reading of a chunk and the JSON-tree one release, rewrite, find and block the
    /// same, event by event, whatever the chunk's shape.
    #[test]
    fn a_chunk_read_typed_is_checked_as_one_read_as_a_tree() {
        use crate::config::screen::Mode;
        use crate::stages::output::{ssn_rules, OutputAction};
        let events = [
            r#"{"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"SSN 123-45-6789 ok"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"it is 12\u0033-45-"}},{"index":1,"delta":{"content":"fine"},"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"6789"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":2.0,"delta":{"content":"123-45-6789 x"}}]}"#,
            r#"{"choices":[{"index":3,"delta":{"content":["123-45-6789 "]},"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"index":0,"delta":null,"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"index":4,"delta":{"content":null}}, 7, {"delta":"text"}]}"#,
            r#"{"choices":[{"index":5,"delta":{"content":"a\"b 123-45-6789 "}}],"choices":[]}"#,
            r#"{"choices":[{"index":6,"delta":{"content":"x 123-45-6789 y"},"delta":{}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[]}"#,
            r#"{"usage":{"prompt_tokens":1}}"#,
            r#"[1]"#,
            r#"not json"#,
            "[DONE]",
        ];
        for action in [
            OutputAction::Redact,
            OutputAction::Warn,
            OutputAction::Block,
        ] {
            for mode in [Mode::Enforce, Mode::Shadow] {
                let rules = ssn_rules(action, mode);
                let mut typed = StreamChecks::new(Arc::clone(&rules));
                let mut tree = StreamChecks::new(rules);
                for e in events {
                    let read = if e == "[DONE]" {
                        openai_checked(&mut tree, e)
                    } else {
                        openai_checked_tree(&mut tree, e)
                    };
                    assert_eq!(
                        openai_checked(&mut typed, e),
                        read,
                        "{action:?} {mode:?} {e}"
                    );
                    assert_eq!(typed.blocked, tree.blocked);
                }
                let found = |c: &StreamChecks| -> Vec<Finding> {
                    c.scanners.values().flat_map(|s| s.found.clone()).collect()
                };
                assert_eq!(found(&typed), found(&tree));
            }
        }
    }

    /// An SSN in an answer, each piece's characters written as `\u` escapes, chunked anywhere
    /// (inside an escape too): the client never sees it, and the rest of the text is intact.
    #[test]
    fn an_answer_rule_sees_text_split_across_events_and_escapes_whatever_the_chunking() {
        use crate::config::screen::Mode;
        use crate::stages::output::{ssn_rules, OutputAction};
        let rules = ssn_rules(OutputAction::Redact, Mode::Enforce);
        let mut s = String::new();
        for piece in ["It is 12", "3-45-6", "789, ok", "."] {
            let escaped: String = piece
                .chars()
                .map(|c| format!("\\u{:04x}", c as u32))
                .collect();
            s.push_str(&format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{escaped}\"}}}}]}}\n\n"
            ));
        }
        s.push_str(
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        );
        s.push_str("data: [DONE]\n\n");
        for seed in 1..200 {
            let mut tap = SseTap::new(false).with_checks(Arc::clone(&rules));
            let mut out = Vec::new();
            let mut from = 0;
            for to in splits(seed, s.len()) {
                out.extend_from_slice(&tap.feed(&s.as_bytes()[from..to]));
                from = to;
            }
            out.extend_from_slice(&tap.finish());
            let out = String::from_utf8(out).unwrap();
            let mut text = String::new();
            for line in out.lines().filter_map(|l| l.strip_prefix("data: ")) {
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    if let Some(t) = v
                        .pointer("/choices/0/delta/content")
                        .and_then(Value::as_str)
                    {
                        text.push_str(t);
                    }
                }
            }
            assert_eq!(text, "It is [REDACTED:ssn], ok.", "seed {seed}: {out}");
            assert!(out.ends_with("data: [DONE]\n\n"));
            assert_eq!(tap.findings().len(), 1);
        }
    }

    #[test]
    fn usage_and_text_are_read_whatever_the_chunking() {
        let s = stream(true);
        for seed in 1..500 {
            let (out, tap) = run(&s, false, seed);
            assert_eq!(out, s, "pass-through is byte-exact (seed {seed})");
            let u = tap.usage().unwrap();
            assert_eq!((u.input, u.output, u.reasoning), (7, 3, 1), "seed {seed}");
            assert_eq!(tap.delivered_chars(), 5 + 6 + 2, "seed {seed}");
            assert!(tap.done());
        }
    }

    #[test]
    fn the_added_usage_event_is_removed_and_nothing_else() {
        let with = stream(true);
        let without = stream(false);
        for seed in 1..500 {
            let (out, tap) = run(&with, true, seed);
            assert_eq!(out, without, "seed {seed}");
            assert_eq!(tap.usage().map(|u| u.total()), Some(10));
        }
    }

    #[test]
    fn one_byte_at_a_time_works_too() {
        let s = stream(true);
        let mut tap = SseTap::new(true);
        let mut out = Vec::new();
        for b in &s {
            out.extend_from_slice(&tap.feed(std::slice::from_ref(b)));
        }
        assert_eq!(out, stream(false));
    }

    #[test]
    fn crlf_framing_and_comments_are_understood() {
        let s = b": keep-alive\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\r\n\r\ndata: [DONE]\n\n";
        let (out, tap) = run(s, true, 7);
        assert_eq!(out, b": keep-alive\n\ndata: [DONE]\n\n");
        assert_eq!(tap.usage().map(|u| u.output), Some(2));
    }

    #[test]
    fn anthropic_streams_report_usage_from_their_events() {
        let s = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hé\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":4}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        for seed in 1..200 {
            let mut tap = SseTap::anthropic();
            let mut out = Vec::new();
            let mut from = 0;
            for to in splits(seed, s.len()) {
                out.extend_from_slice(&tap.feed(&s.as_bytes()[from..to]));
                from = to;
            }
            assert_eq!(out, s.as_bytes(), "passed through unchanged");
            let u = tap.usage().unwrap();
            assert_eq!(
                (u.input, u.output, tap.delivered_chars()),
                (9, 4, 2),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn a_body_that_is_not_sse_is_passed_through_without_growing_buffers() {
        let mut tap = SseTap::new(true);
        let blob = vec![b'x'; 64 * 1024];
        let mut out = 0usize;
        for _ in 0..40 {
            out += tap.feed(&blob).len();
        }
        out += tap.finish().len();
        assert_eq!(out, 40 * 64 * 1024, "every byte reaches the client");
        assert!(tap.pending.is_empty());
    }

    #[test]
    fn a_stream_without_usage_reports_none() {
        let (_, tap) = run(&stream(false), false, 3);
        assert!(tap.usage().is_none());
    }
}
