//! The mock's ledger: the truth about what the mock received and produced, for comparing with the
//! gateway's accounting. Header values are recorded only as SHA-256 digests, so the ledger can
//! prove which credential arrived without ever showing one; the trace context (`traceparent`,
//! `tracestate`: ids, never secrets) is recorded as received, so a test can follow a trace.

use crate::digest::sha256_hex;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct Ledger {
    requests: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    last: Mutex<Option<Value>>,
    /// `/chat` turns per session id, as an agent with memory keeps them.
    sessions: Mutex<Map<String, Value>>,
}

impl Ledger {
    /// Records one request as received.
    pub fn record_request(&self, method: &str, path: &str, headers: &http::HeaderMap, body: &[u8]) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut h = Map::new();
        for (name, value) in headers {
            h.insert(
                name.as_str().to_string(),
                Value::String(sha256_hex(value.as_bytes())),
            );
        }
        let clear = |name: &str| {
            headers
                .get(name)
                .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
        };
        let entry = json!({
            "method": method,
            "path": path,
            "body_bytes": body.len(),
            "body_sha256": sha256_hex(body),
            "header_sha256": h,
            "traceparent": clear("traceparent"),
            "tracestate": clear("tracestate"),
        });
        if let Ok(mut last) = self.last.lock() {
            *last = Some(entry);
        }
    }

    /// Counts a `/chat` turn of `session`; returns how many that session has had.
    pub fn turn(&self, session: &str) -> u64 {
        let Ok(mut sessions) = self.sessions.lock() else {
            return 0;
        };
        let n = sessions.get(session).and_then(Value::as_u64).unwrap_or(0) + 1;
        sessions.insert(session.to_string(), Value::from(n));
        n
    }

    pub fn add_tokens(&self, prompt: u64, completion: u64) {
        self.prompt_tokens.fetch_add(prompt, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(completion, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Value {
        let last = self.last.lock().ok().and_then(|l| l.clone());
        let sessions = self.sessions.lock().map(|s| s.clone()).unwrap_or_default();
        json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "prompt_tokens": self.prompt_tokens.load(Ordering::Relaxed),
            "completion_tokens": self.completion_tokens.load(Ordering::Relaxed),
            "last_request": last,
            "sessions": sessions,
        })
    }

    pub fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.prompt_tokens.store(0, Ordering::Relaxed);
        self.completion_tokens.store(0, Ordering::Relaxed);
        if let Ok(mut last) = self.last.lock() {
            *last = None;
        }
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.clear();
        }
    }
}
