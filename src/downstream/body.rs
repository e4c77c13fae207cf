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

/// Largest request header block accepted (names, values and separators); larger gets 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses request framing an edge proxy must not guess at, before anything else: both
/// `Content-Length` and `Transfer-Encoding` (the classic request-smuggling shape), more than one
/// `Content-Length`, a transfer coding other than `chunked`, or a header block over
/// [`MAX_HEADER_BYTES`]. The caller closes the connection after answering.
pub fn check_framing(
    headers: &http::HeaderMap,
    raw: impl FnOnce() -> Option<bytes::Bytes>,
) -> Result<(), GatewayError> {
    use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    // Pingora drops `Content-Length` when `Transfer-Encoding` is present too (and closes the
    // connection afterwards); the header block as received still shows both. It is fetched and
    // scanned only for requests that carry `Transfer-Encoding`.
    let raw = if headers.contains_key(TRANSFER_ENCODING) {
        raw()
    } else {
        None
    };
    if let Some(raw) = raw.as_deref() {
        let named = |name: &[u8]| {
            raw.split(|&b| b == b'\n').any(|line| {
                line.split(|&b| b == b':')
                    .next()
                    .is_some_and(|n| n.trim_ascii().eq_ignore_ascii_case(name))
            })
        };
        if named(b"content-length") && named(b"transfer-encoding") {
            return Err(GatewayError::BadRequest(
                "both Content-Length and Transfer-Encoding are set; send one".into(),
            ));
        }
    }
    let size: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if size > MAX_HEADER_BYTES {
        return Err(GatewayError::HeadersTooLarge {
            limit: MAX_HEADER_BYTES,
        });
    }
    let lengths = headers.get_all(CONTENT_LENGTH).iter().count();
    let codings: Vec<&http::HeaderValue> = headers.get_all(TRANSFER_ENCODING).iter().collect();
    if lengths > 0 && !codings.is_empty() {
        return Err(GatewayError::BadRequest(
            "both Content-Length and Transfer-Encoding are set; send one".into(),
        ));
    }
    if lengths > 1 {
        return Err(GatewayError::BadRequest(
            "more than one Content-Length header".into(),
        ));
    }
    let chunked_only = codings.len() <= 1
        && codings
            .iter()
            .all(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked"));
    if !chunked_only {
        return Err(GatewayError::BadRequest(
            "the only Transfer-Encoding accepted is `chunked`".into(),
        ));
    }
    Ok(())
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

/// Reads the whole body, at most `limit` bytes, each read bounded by `idle_timeout` and the
/// whole body by `total` (a body trickling in a byte at a time is cut too).
pub async fn read_bounded(
    session: &mut Session,
    declared: Declared,
    limit: usize,
    idle_timeout: Duration,
    total: Duration,
) -> Result<Bytes, GatewayError> {
    match tokio::time::timeout(total, read_within(session, declared, limit, idle_timeout)).await {
        Ok(result) => result,
        Err(_) => Err(GatewayError::RequestTimeout { part: "body" }),
    }
}

async fn read_within(
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
    // Pingora's own read timeout bounds each read over HTTP/1; over HTTP/2 it sets none, and
    // each read gets a deadline of ours.
    session.set_read_timeout(Some(idle_timeout));
    let h2 = session.as_downstream().is_http2();
    // Grow with what actually arrives: a declared length alone must not make us allocate.
    let capacity = match declared {
        Declared::Length(n) => (n as usize).min(INITIAL_CAPACITY),
        Declared::Unknown => 16 * 1024,
    };
    let mut buf = BytesMut::with_capacity(capacity);
    loop {
        let read = if h2 {
            tokio::time::timeout(idle_timeout, session.read_request_body())
                .await
                .map_err(|_| GatewayError::RequestTimeout { part: "body" })?
        } else {
            session.read_request_body().await
        };
        match read {
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
                        GatewayError::RequestTimeout { part: "body" }
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

/// Reads off the body of a request refused before its body was read, so the connection can be
/// kept rather than the client told to back off also having to reconnect (nginx does the same).
/// Only for the plainest framing: no `Transfer-Encoding`, one valid `Content-Length` of at most
/// `max` bytes, no `Expect`; and only within `time`. Nothing is kept. True when the body was read
/// to its end; otherwise the caller must close the connection.
pub async fn discard_small(session: &mut Session, max: u64, time: Duration) -> bool {
    use http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
    let headers = &session.req_header().headers;
    if headers.contains_key(TRANSFER_ENCODING) || headers.contains_key(EXPECT) {
        return false;
    }
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    let declared = match (lengths.next(), lengths.next()) {
        (Some(v), None) => v.as_bytes(),
        _ => return false,
    };
    if !matches!(
        check_declared(Some(declared), usize::try_from(max).unwrap_or(usize::MAX)),
        Ok(Declared::Length(_))
    ) {
        return false;
    }
    let drained = matches!(
        tokio::time::timeout(time, session.drain_request_body()).await,
        Ok(Ok(()))
    );
    drained && session.is_body_done()
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
