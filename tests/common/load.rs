//! Load helpers: bursts of concurrent requests and a quiet start inside a rate window.

use super::http::{request, Response};
use std::time::Duration;

/// Fires one chat-completions request per port in `ports` (a port may repeat), all at once;
/// returns the responses in order.
pub fn burst(ports: &[u16], headers: &[(&str, &str)], body: &str) -> Vec<Response> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(ports.len()));
    let handles: Vec<_> = ports
        .iter()
        .map(|&port| {
            let barrier = barrier.clone();
            let h: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let body = body.to_string();
            std::thread::spawn(move || {
                let hs: Vec<(&str, &str)> =
                    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                barrier.wait();
                request(port, "POST", "/v1/chat/completions", &hs, body.as_bytes())
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Waits, if needed, so that a burst starting now does not straddle a minute boundary.
pub fn away_from_a_minute_boundary() {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if secs % 60 >= 50 {
        std::thread::sleep(Duration::from_secs(61 - secs % 60));
    }
}
