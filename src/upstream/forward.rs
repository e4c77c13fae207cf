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
use crate::error::GatewayError;
use crate::protocol::sse::SseTap;
use bytes::{Bytes, BytesMut};
use pingora::connectors::http::Connector;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::client::HttpSession;
use pingora::proxy::Session;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use std::time::Duration;

/// The shared upstream connection pool.
pub struct Forwarder {
    connector: Connector,
}

impl Default for Forwarder {
    fn default() -> Self {
        Forwarder {
            connector: Connector::new(None),
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
            let (mut session, reused) = self
                .connector
                .get_http_session(&peer)
                .await
                .map_err(|e| map_error(&e))?;
            // A pooled session keeps the timeouts of the request that opened it; set ours.
            session.set_read_timeout(peer.options.read_timeout);
            session.set_write_timeout(peer.options.write_timeout);
            let sent = or_client_gone(client, exchange(&mut session, header.clone(), body.clone()))
                .await
                .ok_or(GatewayError::ClientGone)?;
            match sent {
                Ok(()) => {
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

async fn exchange(
    session: &mut HttpSession,
    header: RequestHeader,
    body: Bytes,
) -> pingora::Result<()> {
    session.write_request_header(Box::new(header)).await?;
    if !body.is_empty() {
        session.write_request_body(body, true).await?;
    }
    session.finish_request_body().await?;
    session.read_response_header().await
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
        forwarder
            .connector
            .release_http_session(session, &peer, idle)
            .await;
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
