//! Server-sent events as they pass through: the framing every streaming dialect shares, and the
//! dialect's own reader for what the events say (usage, delivered text, the end).
//!
//! The parser is incremental: bytes may be split anywhere (inside a `data:` line, inside a
//! multi-byte character); events are recognised when their blank-line terminator arrives. When
//! nothing has to be removed, every chunk is forwarded the moment it arrives (no added buffering);
//! when the gateway itself asked an OpenAI stream for its usage and the client did not, bytes are
//! forwarded event by event and the usage-only event is removed, so the client sees exactly the
//! stream it would have seen without the gateway. Anthropic streams are never edited.

use super::{anthropic, openai};
use crate::usage::Usage;
use bytes::{Bytes, BytesMut};

/// The dialect's reader of event data.
#[derive(Debug)]
enum Reader {
    OpenAi(openai::StreamState),
    Anthropic(anthropic::StreamState),
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

    /// A tap for an Anthropic Messages stream (always passed through unchanged).
    pub fn anthropic() -> Self {
        SseTap {
            reader: Reader::Anthropic(anthropic::StreamState::default()),
            ..SseTap::default()
        }
    }

    /// The usage the stream reported, once it did.
    pub fn usage(&self) -> Option<Usage> {
        match &self.reader {
            Reader::OpenAi(s) => s.usage,
            Reader::Anthropic(s) => s.usage(),
        }
    }

    /// Characters of answer text forwarded to the client so far.
    pub fn delivered_chars(&self) -> u64 {
        match &self.reader {
            Reader::OpenAi(s) => s.delivered_chars,
            Reader::Anthropic(s) => s.delivered_chars,
        }
    }

    /// The stream said it is finished (`[DONE]`, `message_stop`).
    pub fn done(&self) -> bool {
        match &self.reader {
            Reader::OpenAi(s) => s.done,
            Reader::Anthropic(s) => s.stopped,
        }
    }

    /// The event that ends a stream the backend broke off, so the client cannot take the
    /// truncated answer for a complete one (`code` is the failure's label).
    pub fn error_event(&self, code: &str) -> Bytes {
        let event = serde_json::json!({"error": {
            "message": "The backend failed in the middle of the stream.",
            "type": "upstream_error",
            "code": code,
        }});
        Bytes::from(format!("data: {event}\n\n"))
    }

    /// Takes the next chunk from the backend; returns what to forward to the client now.
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        if self.first_chunk.is_none() && !chunk.is_empty() {
            self.first_chunk = Some(std::time::Instant::now());
        }
        if self.gave_up {
            return Bytes::copy_from_slice(chunk);
        }
        self.pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        while let Some(end) = event_end(&self.pending, self.scanned) {
            let event = self.pending.split_to(end);
            self.scanned = 0;
            let keep = self.observe(&event);
            if self.strip_usage && keep {
                out.extend_from_slice(&event);
            }
        }
        // Resume the next search near the end (a terminator may straddle two chunks).
        self.scanned = self.pending.len().saturating_sub(2);
        if self.pending.len() > MAX_EVENT {
            self.gave_up = true;
            self.scanned = 0;
            let rest = self.pending.split();
            if self.strip_usage {
                out.extend_from_slice(&rest);
            }
        }
        if self.strip_usage {
            out.freeze()
        } else {
            Bytes::copy_from_slice(chunk)
        }
    }

    /// Whatever is left when the stream ends (an unterminated last event), to forward as is.
    pub fn finish(&mut self) -> Bytes {
        let rest = self.pending.split();
        if !rest.is_empty() {
            self.observe(&rest);
        }
        if self.strip_usage {
            rest.freeze()
        } else {
            Bytes::new()
        }
    }

    /// Reads one complete event; returns whether the client should see it.
    fn observe(&mut self, event: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(event) else {
            return true;
        };
        let mut data = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            }
        }
        if data.is_empty() {
            return true;
        }
        match &mut self.reader {
            Reader::OpenAi(state) => state.observe(&data, self.strip_usage),
            Reader::Anthropic(state) => {
                state.observe(&data);
                true
            }
        }
    }
}

/// The length of the first complete event in `buf` (including its blank-line terminator),
/// searching from `from`.
fn event_end(buf: &[u8], from: usize) -> Option<usize> {
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
