//! Reading the client's request body in `request_filter`, bounded.
//!
//! The gateway forwards bodies itself (see `forward`), so it reads the whole body here, up to
//! `server.max_body_bytes`. A declared `Content-Length` over the limit is refused with 413 before
//! a single byte is read and before any `100 Continue` goes out; a chunked body that grows past
//! the limit is refused as soon as it does. `Expect: 100-continue` is answered before reading, so
//! such uploads do not stall. Failure modes: 413, 400 (unreadable framing), client gone.

use crate::error::GatewayError;
use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;
use std::time::Duration;

/// Largest buffer allocated before the bytes arrive.
const INITIAL_CAPACITY: usize = 256 * 1024;

/// What the client declared about its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    Length(u64),
    Unknown,
}

/// Checks the declared length against the limit; called before authentication so an oversized
/// upload never costs us a read.
pub fn check_declared(
    content_length: Option<&[u8]>,
    limit: usize,
) -> Result<Declared, GatewayError> {
    let Some(raw) = content_length else {
        return Ok(Declared::Unknown);
    };
    let n: u64 = std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| GatewayError::BadRequest("invalid Content-Length".into()))?;
    if n > limit as u64 {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    Ok(Declared::Length(n))
}

/// Whether the client waits for `100 Continue` before sending the body.
pub fn expects_continue(session: &Session) -> bool {
    session
        .req_header()
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Reads the whole body, at most `limit` bytes, each read bounded by `idle_timeout`.
pub async fn read_bounded(
    session: &mut Session,
    declared: Declared,
    limit: usize,
    idle_timeout: Duration,
) -> Result<Bytes, GatewayError> {
    if expects_continue(session) {
        session
            .write_continue_response()
            .await
            .map_err(|_| GatewayError::ClientGone)?;
    }
    session.set_read_timeout(Some(idle_timeout));
    // Grow with what actually arrives: a declared length alone must not make us allocate.
    let capacity = match declared {
        Declared::Length(n) => (n as usize).min(INITIAL_CAPACITY),
        Declared::Unknown => 16 * 1024,
    };
    let mut buf = BytesMut::with_capacity(capacity);
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > limit {
                    return Err(GatewayError::PayloadTooLarge { limit });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(match e.etype() {
                    pingora::ErrorType::ReadTimedout => {
                        GatewayError::BadRequest("timed out reading the request body".into())
                    }
                    pingora::ErrorType::ConnectionClosed | pingora::ErrorType::ReadError => {
                        GatewayError::ClientGone
                    }
                    _ => GatewayError::BadRequest("malformed request body framing".into()),
                })
            }
        }
    }
    Ok(buf.freeze())
}

/// After an early answer (401, 413) to a request whose body was not read: read and discard what
/// the client is still sending, for a bounded time and amount, so it gets to read our answer
/// instead of a connection reset (the "lingering close" of nginx).
pub async fn linger(session: &mut Session, max_time: Duration, max_bytes: usize) {
    let drain = async {
        let mut seen = 0usize;
        while let Ok(Some(chunk)) = session.read_request_body().await {
            seen += chunk.len();
            if seen > max_bytes {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(max_time, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_length_over_the_limit_is_413() {
        assert_eq!(
            check_declared(Some(b"101"), 100),
            Err(GatewayError::PayloadTooLarge { limit: 100 })
        );
        assert_eq!(check_declared(Some(b"100"), 100), Ok(Declared::Length(100)));
        assert_eq!(check_declared(None, 100), Ok(Declared::Unknown));
    }

    #[test]
    fn garbage_content_length_is_400() {
        for bad in [&b"-1"[..], b"abc", b"99999999999999999999999"] {
            assert!(matches!(
                check_declared(Some(bad), 100),
                Err(GatewayError::BadRequest(_))
            ));
        }
    }
}
