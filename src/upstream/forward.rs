//! Forwarding one request to a backend with Pingora's pooled connector, from `request_filter`.
//!
//! Why not Pingora's own upstream phase: `request_filter` must read the body to authenticate,
//! filter and account, and Pingora 0.9.1 can then resend it only from a 64 KiB retry buffer
//! (see `docs/architecture.md`). Forwarding here keeps bodies of any size intact, notices a client
//! disconnect at once, and costs the least CPU of the paths measured.
//!
//! Failure modes: connect failure → 503, timeout → 504, anything else before the response header
//! → 502 (all as JSON, written by the caller). A stale pooled connection is retried once on a
//! fresh one. After the response header has reached the client, an upstream failure aborts the
//! client connection so a truncated response can never look complete.

use super::peer::PASSED_DOWNSTREAM;
use super::pool::IdlePool;
use crate::error::GatewayError;
use crate::protocol::sse::SseTap;
use bytes::{Bytes, BytesMut};
use pingora::connectors::http::Connector;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::http::v1::client::{http_req_header_to_wire, HttpSession as Http1Session};
use pingora::protocols::Stream;
use pingora::proxy::Session;
use pingora::upstreams::peer::HttpPeer;
use pingora::upstreams::peer::Peer;
use pingora::{Error, ErrorType};
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Connections to backends: new ones and HTTP/2 through Pingora's connector, idle HTTP/1.x
/// ones in [`IdlePool`] (no task per idle connection).
pub struct Forwarder {
    connector: Connector,
    idle: Arc<IdlePool>,
}

impl Default for Forwarder {
    fn default() -> Self {
        Forwarder {
            connector: Connector::new(None),
            idle: Arc::new(IdlePool::default()),
        }
    }
}

/// A backend's response whose header has arrived; its body is still to be read.
pub struct Upstream<'a> {
    forwarder: &'a Forwarder,
    session: HttpSession,
    peer: HttpPeer,
}

/// How a streamed response ended.
#[derive(Debug, PartialEq, Eq)]
pub enum PipeEnd {
    /// The whole body reached the client.
    Complete,
    /// The client went away; the upstream connection was closed, not pooled.
    ClientGone,
    /// An answer rule withheld the rest of the answer: the stream ended with an error event and
    /// the upstream connection was closed.
    Withheld,
}

/// An error after the response header was sent: the client connection must be aborted.
#[derive(Debug)]
pub struct MidStream(pub GatewayError);

impl Forwarder {
    /// Sends the request and waits for the response header (within the peer's first-byte
    /// timeout), while watching `client`: if it leaves first (a slow first token), the backend
    /// connection is dropped at once. Reads of the body then wait at most `idle` each.
    pub async fn send(
        &self,
        peer: HttpPeer,
        header: RequestHeader,
        body: Bytes,
        idle: Duration,
        client: &mut Session,
    ) -> Result<Upstream<'_>, GatewayError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A retry after a stale connection goes to a fresh one, not to the next idle one.
            let pooled = if attempt == 1 {
                self.idle.take(peer.reuse_hash())
            } else {
                None
            };
            let (conn, reused) = match pooled {
                Some(stream) => (Conn::H1(stream), true),
                None => {
                    let (session, reused) = self
                        .connector
                        .get_http_session(&peer)
                        .await
                        .map_err(|e| map_error(&e))?;
                    match session {
                        HttpSession::H1(h1) => (Conn::H1(h1.into_inner()), reused),
                        other => (Conn::Other(Box::new(other)), reused),
                    }
                }
            };
            let sent = or_client_gone(client, exchange(conn, &peer, &header, &body))
                .await
                .ok_or(GatewayError::ClientGone)?;
            match sent {
                Ok(mut session) => {
                    session.set_read_timeout(Some(idle));
                    return Ok(Upstream {
                        forwarder: self,
                        session,
                        peer,
                    });
                }
                // A pooled connection the backend closed while idle fails on first use; that
                // says nothing about the backend, so try once more on a fresh connection.
                // Timeouts are not retried: the backend may be working on the request.
                Err(e) if reused && attempt == 1 && stale_connection(&e) => continue,
                Err(e) => return Err(map_error(&e)),
            }
        }
    }
}

/// A connection about to carry a request.
enum Conn {
    /// An HTTP/1.x connection, new or idle: the request is written to it directly.
    H1(Stream),
    /// HTTP/2 (or another session kind): its own framing.
    Other(Box<HttpSession>),
}

/// Sends the request and reads the response header, returning the session to read the body
/// from. Over HTTP/1.x the request header and body leave in one write: Pingora's session flushes
/// the header on its own first, which costs a second send and a second wake-up of the backend
/// per request. Over HTTP/2 the session's own framing is used.
async fn exchange(
    conn: Conn,
    peer: &HttpPeer,
    header: &RequestHeader,
    body: &Bytes,
) -> pingora::Result<HttpSession> {
    let mut session = match conn {
        // Only a request the gateway framed itself (Content-Length equal to the body, no
        // Transfer-Encoding, Connection or Upgrade, not HEAD) is written raw: the session that
        // reads the answer never saw the request, and those would change how it must be read.
        Conn::H1(stream) if !framed_by_length(header, body) => {
            return Box::pin(exchange(
                Conn::Other(Box::new(HttpSession::H1(Http1Session::new_with_options(
                    stream, peer,
                )))),
                peer,
                header,
                body,
            ))
            .await;
        }
        Conn::H1(mut stream) => {
            let head = http_req_header_to_wire(header).ok_or_else(|| {
                Error::explain(
                    ErrorType::InvalidHTTPHeader,
                    "request line or header not sendable",
                )
            })?;
            let write = write_request(&mut stream, &head, body);
            match peer.options.write_timeout {
                Some(t) => tokio::time::timeout(t, write)
                    .await
                    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
                None => write.await,
            }
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::TimedOut => {
                    Error::because(ErrorType::WriteTimedout, "writing the request", e)
                }
                _ => Error::because(ErrorType::WriteError, "writing the request", e),
            })?;
            // A fresh session reads the response; the one that wrote nothing is gone.
            HttpSession::H1(Http1Session::new_with_options(stream, peer))
        }
        Conn::Other(other) => {
            let mut other = *other;
            other.set_write_timeout(peer.options.write_timeout);
            other.write_request_header(Box::new(header.clone())).await?;
            if !body.is_empty() {
                other.write_request_body(body.clone(), true).await?;
            }
            other.finish_request_body().await?;
            other
        }
    };
    session.set_read_timeout(peer.options.read_timeout);
    session.set_write_timeout(peer.options.write_timeout);
    session.read_response_header().await?;
    Ok(session)
}

/// Whether `header` is the plain request the raw write assumes: not HEAD, its length given by a
/// `Content-Length` equal to `body`'s, and no header that asks for other framing or handling.
fn framed_by_length(header: &RequestHeader, body: &[u8]) -> bool {
    let h = &header.headers;
    header.method != http::Method::HEAD
        && !h.contains_key(http::header::TRANSFER_ENCODING)
        && !h.contains_key(http::header::CONNECTION)
        && !h.contains_key(http::header::UPGRADE)
        && !h.contains_key(http::header::EXPECT)
        && h.get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            == Some(body.len())
}

/// Writes `head` then `body` and flushes: one `writev` (or one `write` of the connection's small
/// write buffer) for a request that fits the socket's send buffer.
async fn write_request<W: AsyncWrite + Unpin>(
    stream: &mut W,
    mut head: &[u8],
    mut body: &[u8],
) -> std::io::Result<()> {
    while !head.is_empty() || !body.is_empty() {
        let n = stream
            .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
            .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        body = &body[n - from_head..];
    }
    stream.flush().await
}

/// Errors that mean "this pooled connection was already dead", not "the backend failed".
fn stale_connection(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ConnectionClosed | ErrorType::WriteError | ErrorType::ReadError
    )
}

impl Upstream<'_> {
    /// The backend's `Retry-After`, in seconds, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        let h = self.session.response_header()?;
        let secs: u64 = h
            .headers
            .get("retry-after")?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(Duration::from_secs(secs.clamp(1, 3_600)))
    }

    pub fn status(&self) -> u16 {
        self.session
            .response_header()
            .map(|h| h.status.as_u16())
            .unwrap_or(0)
    }

    /// The response header as the client may see it: the backend's status and the headers in
    /// [`PASSED_DOWNSTREAM`], naming the backend; the caller sets the framing (a whole body's
    /// length, or chunks for a stream, whatever the backend declared).
    pub fn client_header(&self, backend_id: &str) -> Result<ResponseHeader, GatewayError> {
        let upstream = self
            .session
            .response_header()
            .ok_or(GatewayError::Internal)?;
        let mut h = ResponseHeader::build(upstream.status, Some(PASSED_DOWNSTREAM.len() + 4))
            .map_err(|_| GatewayError::Internal)?;
        for name in PASSED_DOWNSTREAM {
            for value in upstream.headers.get_all(*name) {
                h.append_header(*name, value.clone())
                    .map_err(|_| GatewayError::Internal)?;
            }
        }
        h.insert_header("x-tollgate-backend", backend_id)
            .map_err(|_| GatewayError::Internal)?;
        Ok(h)
    }

    /// Reads the whole body (at most `limit` bytes) and returns the connection to the pool;
    /// a client leaving meanwhile drops the backend connection.
    pub async fn read_all(
        mut self,
        limit: usize,
        client: &mut Session,
    ) -> Result<Bytes, GatewayError> {
        let mut buf = BytesMut::new();
        loop {
            let read = or_client_gone(client, self.session.read_response_body())
                .await
                .ok_or(GatewayError::ClientGone)?;
            match read {
                Ok(Some(chunk)) => {
                    if buf.len() + chunk.len() > limit {
                        return Err(GatewayError::UpstreamFailed(
                            "response larger than server.max_response_bytes".into(),
                        ));
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(map_error(&e)),
            }
        }
        self.release().await;
        Ok(buf.freeze())
    }

    /// Discards the response without reading it; the connection is closed, not pooled.
    pub async fn discard(mut self) {
        self.session.shutdown().await;
    }

    /// Streams the response to the client chunk by chunk, while watching the client socket: a
    /// disconnect stops the upstream read at once. Every chunk passes through `tap` (usage,
    /// delivered text, and the removal of an event the gateway itself asked for). If the backend
    /// fails mid-stream, the client gets a terminal SSE error event and the connection is then
    /// aborted, so the stream cannot look complete.
    pub async fn pipe(
        mut self,
        header: ResponseHeader,
        client: &mut Session,
        tap: &mut SseTap,
    ) -> Result<PipeEnd, MidStream> {
        if client
            .write_response_header(Box::new(header), false)
            .await
            .is_err()
        {
            self.session.shutdown().await;
            return Ok(PipeEnd::ClientGone);
        }
        loop {
            // Upstream first: once the body is complete the client may already be sending its
            // next request, and the client branch must not be polled after that.
            let event = tokio::select! {
                biased;
                chunk = self.session.read_response_body() => Event::Upstream(chunk),
                gone = client.read_body_or_idle(true) => Event::Client(gone.is_err()),
            };
            match event {
                Event::Upstream(Ok(Some(chunk))) => {
                    let out = tap.feed(&chunk);
                    if !out.is_empty()
                        && client.write_response_body(Some(out), false).await.is_err()
                    {
                        self.session.shutdown().await;
                        return Ok(PipeEnd::ClientGone);
                    }
                    // An answer rule withheld the rest: the stream ends with its error event.
                    if let Some(rule) = tap.blocked() {
                        self.session.shutdown().await;
                        let event = tap.blocked_event(rule);
                        let _ = client.write_response_body(Some(event), true).await;
                        return Ok(PipeEnd::Withheld);
                    }
                }
                Event::Upstream(Ok(None)) => {
                    self.release().await;
                    let rest = tap.finish();
                    let last = if rest.is_empty() { None } else { Some(rest) };
                    return match client.write_response_body(last, true).await {
                        Ok(()) => Ok(PipeEnd::Complete),
                        Err(_) => Ok(PipeEnd::ClientGone),
                    };
                }
                Event::Upstream(Err(e)) => {
                    self.session.shutdown().await;
                    let err = map_error(&e);
                    let event = tap.error_event(err.label());
                    let _ = client.write_response_body(Some(event), false).await;
                    return Err(MidStream(err));
                }
                // Data or FIN from a client that already sent its whole request: a FIN means
                // it is gone; stray bytes are kept for its next request.
                Event::Client(true) => {
                    self.session.shutdown().await;
                    return Ok(PipeEnd::ClientGone);
                }
                Event::Client(false) => {}
            }
        }
    }

    async fn release(self) {
        let Upstream {
            forwarder,
            session,
            peer,
        } = self;
        let idle = peer.options.idle_timeout;
        match session {
            HttpSession::H1(mut h1) => {
                h1.respect_keepalive();
                if let Some(stream) = h1.reuse().await {
                    forwarder.idle.put(peer.reuse_hash(), stream, idle);
                }
            }
            other => {
                forwarder
                    .connector
                    .release_http_session(other, &peer, idle)
                    .await
            }
        }
    }
}

/// Runs `work` unless the client leaves first (`None`). The client's request body has been read
/// in full, so any activity on its socket now is a FIN, a reset or a protocol error.
async fn or_client_gone<T>(
    client: &mut Session,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        biased;
        v = work => Some(v),
        _ = client.read_body_or_idle(true) => None,
    }
}

enum Event {
    Upstream(pingora::Result<Option<Bytes>>),
    Client(bool),
}

/// Maps a Pingora error on the upstream side to what the client is told.
pub fn map_error(e: &Error) -> GatewayError {
    use ErrorType::*;
    match e.etype() {
        ConnectTimedout | ConnectRefused | ConnectNoRoute | ConnectError | BindError
        | SocketError | TLSHandshakeFailure | TLSHandshakeTimedout | InvalidCert
        | HandshakeError | ConnectProxyFailure => GatewayError::UpstreamUnreachable,
        ReadTimedout | WriteTimedout => GatewayError::UpstreamTimeout,
        InvalidHTTPHeader | H1Error | H2Error | InvalidH2 => {
            GatewayError::UpstreamFailed("invalid HTTP response".into())
        }
        _ => GatewayError::UpstreamFailed("connection failed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::write_request;
    use std::io::IoSlice;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::AsyncWrite;

    /// Records every write call; accepts at most `max` bytes per call.
    struct Recorder {
        max: usize,
        calls: Vec<Vec<u8>>,
        flushed: usize,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.calls.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            let n = all.len().min(self.max);
            self.calls.push(all[..n].to_vec());
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            self.flushed += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn header_and_body_leave_in_one_write_then_one_flush() {
        let mut w = Recorder {
            max: usize::MAX,
            calls: Vec::new(),
            flushed: 0,
        };
        write_request(&mut w, b"POST / HTTP/1.1\r\n\r\n", b"{}")
            .await
            .unwrap();
        assert_eq!(w.calls, vec![b"POST / HTTP/1.1\r\n\r\n{}".to_vec()]);
        assert_eq!(w.flushed, 1);
    }

    #[tokio::test]
    async fn a_short_write_resumes_where_it_stopped_across_header_and_body() {
        let mut w = Recorder {
            max: 4,
            calls: Vec::new(),
            flushed: 0,
        };
        write_request(&mut w, b"HEAD12", b"body-bytes")
            .await
            .unwrap();
        let sent: Vec<u8> = w.calls.concat();
        assert_eq!(sent, b"HEAD12body-bytes".to_vec());
        assert_eq!(w.calls.len(), 4);
    }

    #[test]
    fn only_a_request_framed_by_its_content_length_is_written_raw() {
        use super::framed_by_length;
        use pingora::http::RequestHeader;
        let req = |method: &str, headers: &[(&'static str, &str)]| {
            let mut h = RequestHeader::build(method, b"/v1/chat/completions", None).unwrap();
            for (k, v) in headers {
                h.insert_header(*k, *v).unwrap();
            }
            h
        };
        assert!(framed_by_length(
            &req("POST", &[("content-length", "2")]),
            b"{}"
        ));
        assert!(!framed_by_length(
            &req("POST", &[("content-length", "3")]),
            b"{}"
        ));
        assert!(!framed_by_length(&req("POST", &[]), b"{}"));
        assert!(!framed_by_length(
            &req("HEAD", &[("content-length", "0")]),
            b""
        ));
        for extra in ["connection", "upgrade", "transfer-encoding", "expect"] {
            let h = req("POST", &[("content-length", "2"), (extra, "x")]);
            assert!(!framed_by_length(&h, b"{}"), "{extra}");
        }
    }

    #[tokio::test]
    async fn an_empty_body_sends_the_header_alone() {
        let mut w = Recorder {
            max: usize::MAX,
            calls: Vec::new(),
            flushed: 0,
        };
        write_request(&mut w, b"GET / HTTP/1.1\r\n\r\n", b"")
            .await
            .unwrap();
        assert_eq!(w.calls, vec![b"GET / HTTP/1.1\r\n\r\n".to_vec()]);
    }
}
