//! The consumer plane's client connections, below HTTP.
//!
//! Pingora 0.9.1 reads a request's header with a timeout per read and no deadline for the whole
//! header, before any gateway code runs. It keeps idle connections without limit, and it answers a
//! header it cannot parse with an empty 400 of its own. [`Connections`] is the consumer plane's
//! `ServerApp`. It runs Pingora's HTTP/1 keep-alive loop itself, with each client stream wrapped in
//! a [`Guarded`] stream. That adds three things:
//!
//! - **A header deadline.** A request's whole header block must arrive within
//!   `server.timeouts.client_header_ms`, counted from the accept for a connection's first request
//!   and from the first byte for later ones. A client that is too slow gets a 408 JSON answer and
//!   the connection is closed. This is the slowloris defence; slow bodies are cut in `body`.
//! - **An idle-connection cap.** A connection is idle from its accept, or from the end of its last
//!   request, until the header of its next request is complete. When more than
//!   `server.max_idle_connections` are idle, the one idle longest is closed if no byte of its next
//!   request has arrived (one whose header is arriving is left to its deadline, so a request is
//!   never cut between its header and the gateway's first hook). A request in progress is never
//!   closed this way, so open connections stay within the cap plus
//!   `server.max_in_flight` plus the few being refused.
//! - **JSON answers where Pingora answers itself.** A response written before the gateway has seen
//!   the request can only be Pingora's own error (a header it cannot parse). It is replaced with a
//!   JSON error in the gateway's format, without Pingora's `Server` header.
//!
//! Both planes run on it. Streams are marked as in a request by [`request_started`], called from
//! each plane's first hook.

use crate::error::GatewayError;
use crate::metrics;
use crate::protocol::{error_body, Dialect};
use crate::runtime::LiveState;
use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ReusedHttpStream, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long a kept-alive connection may wait for the first byte of its next request (Pingora's
/// own default, kept).
const KEEPALIVE_SECONDS: u64 = 60;

/// Waiting for a request: no byte of its header yet.
const IDLE: u8 = 0;
/// Some of a request's header has arrived; the header deadline runs.
const HEADER: u8 = 1;
/// The gateway has the request's header; no deadline and not idle.
const ACTIVE: u8 = 2;
/// Closed by the gateway (evicted or too slow): reads end, writes fail.
const CLOSED: u8 = 3;

/// What one connection shares between its stream, its keep-alive loop and the idle set.
#[derive(Debug)]
struct Conn {
    phase: AtomicU8,
    /// When the header must be complete, in nanoseconds after `born`; 0 = not running.
    deadline_nanos: AtomicU64,
    born: Instant,
    /// Position in the idle set while idle (0 = not in it).
    idle_seq: AtomicU64,
    /// The task waiting to read, woken when the connection is evicted.
    waker: Mutex<Option<Waker>>,
}

impl Conn {
    fn new() -> Self {
        Conn {
            phase: AtomicU8::new(IDLE),
            deadline_nanos: AtomicU64::new(0),
            born: Instant::now(),
            idle_seq: AtomicU64::new(0),
            waker: Mutex::new(None),
        }
    }

    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }

    /// Moves from `IDLE` or `HEADER` to `to`; false when the connection was in neither.
    fn leave_waiting(&self, to: u8) -> bool {
        let mut now = self.phase();
        while now == IDLE || now == HEADER {
            match self
                .phase
                .compare_exchange(now, to, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(seen) => now = seen,
            }
        }
        false
    }

    fn set_deadline(&self, at: Option<Instant>) {
        let nanos = at.map_or(0, |at| {
            let n = at.saturating_duration_since(self.born).as_nanos();
            u64::try_from(n).unwrap_or(u64::MAX).max(1)
        });
        self.deadline_nanos.store(nanos, Ordering::Release);
    }

    fn deadline(&self) -> Option<Instant> {
        match self.deadline_nanos.load(Ordering::Acquire) {
            0 => None,
            n => Some(self.born + Duration::from_nanos(n)),
        }
    }

    fn waker(&self) -> MutexGuard<'_, Option<Waker>> {
        self.waker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes an idle connection from outside: its pending read ends. Only a connection with no
    /// byte of a next request: one whose header is arriving is bounded by its deadline instead,
    /// and is never cut between its header and the gateway's first hook.
    fn evict(&self) -> bool {
        if self
            .phase
            .compare_exchange(IDLE, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        if let Some(w) = self.waker().take() {
            w.wake();
        }
        true
    }
}

/// The idle connections, oldest first.
#[derive(Debug, Default)]
pub struct IdleSet {
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next: AtomicU64,
}

impl IdleSet {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a connection; evicts the longest idle ones while more than `cap` are idle.
    fn enter(&self, conn: &Arc<Conn>, cap: usize) {
        let seq = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        conn.idle_seq.store(seq, Ordering::Release);
        let mut removed = 0i64;
        let mut evicted = 0u64;
        {
            let mut idle = self.lock();
            idle.insert(seq, Arc::clone(conn));
            while idle.len() > cap {
                let Some((_, oldest)) = idle.pop_first() else {
                    break;
                };
                removed += 1;
                oldest.idle_seq.store(0, Ordering::Release);
                if oldest.evict() {
                    evicted += 1;
                }
            }
        }
        // Both planes add to one gauge.
        if let Some(m) = metrics::get() {
            m.idle_connections.add(1 - removed);
            if evicted > 0 {
                m.connections_closed
                    .with_label_values(&["idle_cap"])
                    .inc_by(evicted);
            }
        }
    }

    fn leave(&self, conn: &Conn) {
        let seq = conn.idle_seq.swap(0, Ordering::AcqRel);
        if seq == 0 {
            return;
        }
        let removed = self.lock().remove(&seq).is_some();
        if let (true, Some(m)) = (removed, metrics::get()) {
            m.idle_connections.dec();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The consumer plane's `ServerApp`: Pingora's HTTP/1 loop over guarded streams.
pub struct Connections<A> {
    app: Arc<A>,
    live: LiveState,
    idle: Arc<IdleSet>,
    /// The consumer plane's listener may take h2c and PROXY headers; the admin plane's neither.
    consumer: bool,
}

impl<A> Connections<A> {
    pub fn new(app: A, live: LiveState, plane: super::tls::Plane) -> Self {
        Connections {
            app: Arc::new(app),
            live,
            idle: Arc::new(IdleSet::default()),
            consumer: plane == super::tls::Plane::Consumer,
        }
    }
}

/// Takes a connection out of the idle set however its task ends.
struct Registration {
    idle: Arc<IdleSet>,
    conn: Arc<Conn>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.idle.leave(&self.conn);
    }
}

#[async_trait]
impl<A> ServerApp for Connections<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let rt = self.live.current();
        let s = &rt.config.server;
        let (header_limit, cap) = (s.timeouts.client_header, s.max_idle_connections);
        let h2c = s.h2c && self.consumer;
        let proxy_protocol = s.proxy_protocol && self.consumer;
        // Whatever comes first on the connection (a PROXY header, the HTTP/2 preface, the first
        // request's header) is due a fixed time after the accept.
        let due = Instant::now() + header_limit;
        // A plain connection through a trusted load balancer opens with its PROXY header (a TLS
        // one had it read before the handshake: `proxied::PreTls`).
        let stream = if proxy_protocol && stream.as_any().is::<L4Stream>() {
            let mut l4 = stream.into_any().downcast::<L4Stream>().ok()?;
            let within = due.saturating_duration_since(Instant::now());
            let trusted = &s.trusted_proxies;
            if let Err(e) = super::proxied::take_header(&mut l4, trusted, within).await {
                log::debug!("connection dropped: {e}");
                return None;
            }
            l4 as Stream
        } else {
            stream
        };
        // The connection outlives this configuration: it is not kept.
        drop(rt);
        // HTTP/2 (by ALPN on TLS, or prior knowledge when h2c is on) runs Pingora's own loop:
        // its streams share one connection, so neither the header deadline nor the idle cap
        // (both per HTTP/1 request) applies; Pingora closes an HTTP/2 connection idle for its
        // `h2_idle_timeout`, and each request's body reads have their own deadlines (`body`).
        let stream = if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            let left = due.saturating_duration_since(Instant::now());
            let stream = Box::new(PrefaceDue::new(stream, left));
            return <A as ServerApp>::process_new(&self.app, stream, shutdown).await;
        } else if h2c {
            // The sniff already read the whole preface (and put it back): nothing left to await.
            match sniff_h2c(stream, due).await? {
                (stream, true) => {
                    return <A as ServerApp>::process_new(&self.app, stream, shutdown).await
                }
                (stream, false) => stream,
            }
        } else {
            stream
        };
        let conn = Arc::new(Conn::new());
        let _registration = Registration {
            idle: Arc::clone(&self.idle),
            conn: Arc::clone(&conn),
        };
        // The first request's header is due a fixed time after the accept, bytes or not.
        conn.set_deadline(Some(due));
        self.idle.enter(&conn, cap);
        let guarded = Guarded {
            inner: stream,
            conn: Arc::clone(&conn),
            idle: Arc::clone(&self.idle),
            header_limit,
            timer: None,
            replacing: None,
        };
        let mut session = ServerSession::new_http1(Box::new(guarded));
        session.set_keepalive(if *shutdown.borrow() {
            None
        } else {
            Some(KEEPALIVE_SECONDS)
        });
        session.set_keepalive_reuses_remaining(
            self.app
                .server_options()
                .and_then(|o| o.keepalive_request_limit),
        );
        let mut result = self.app.process_new_http(session, shutdown).await;
        while let Some((stream, settings)) = result.map(ReusedHttpStream::consume) {
            // Later headers are due a fixed time after their first byte.
            conn.set_deadline(None);
            if conn.phase() == CLOSED {
                // Evicted or timed out while Pingora still held the connection: it ends here.
                break;
            }
            conn.phase.store(IDLE, Ordering::Release);
            self.idle.enter(&conn, cap);
            let mut session = ServerSession::new_http1(stream);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
            result = self.app.process_new_http(session, shutdown).await;
        }
        None
    }

    async fn cleanup(&self) {
        self.app.http_cleanup().await;
    }
}

/// The HTTP/2 connection preface a prior-knowledge client opens with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether a plain connection opens with the HTTP/2 preface, read as far as it matches (by
/// `due`, the connection's first deadline); the bytes read are put back either way. A client too
/// slow to tell is left to the HTTP/1 header deadline, which has then passed (a 408); `None`
/// when it went away.
async fn sniff_h2c(stream: Stream, due: Instant) -> Option<(Stream, bool)> {
    use tokio::io::AsyncReadExt;
    // Only a plain TCP stream can take bytes back; TLS streams use ALPN instead.
    if !stream.as_any().is::<L4Stream>() {
        return Some((stream, false));
    }
    let mut l4 = stream.into_any().downcast::<L4Stream>().ok()?;
    let mut seen = Vec::with_capacity(H2_PREFACE.len());
    let read = async {
        let mut buf = [0u8; 24];
        while seen.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(&seen) {
            let want = H2_PREFACE.len() - seen.len();
            let n = l4.read(&mut buf[..want]).await.ok()?;
            if n == 0 {
                return None;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        Some(())
    };
    let gone = matches!(tokio::time::timeout_at(due.into(), read).await, Ok(None));
    let is_h2 = seen == H2_PREFACE;
    l4.rewind(&seen);
    (!gone).then_some((l4 as Stream, is_h2))
}

/// Marks the session's connection as in a request: no header deadline, not idle. Called from the
/// first hook of each plane, once Pingora has parsed the header. False when the gateway already
/// closed the connection (the idle cap took it while a pipelined request sat in Pingora's
/// buffer): the request must then be dropped, as its answer could not be written.
pub fn request_started(session: &ServerSession) -> bool {
    let Some(stream) = session.stream() else {
        return true;
    };
    let Some(g) = stream.as_any().downcast_ref::<Guarded>() else {
        return true;
    };
    if g.conn.leave_waiting(ACTIVE) {
        g.idle.leave(&g.conn);
    }
    g.conn.phase() == ACTIVE
}

/// A JSON answer written straight to the socket, with `Connection: close`.
fn raw_answer(e: &GatewayError) -> Vec<u8> {
    let body = error_body(e, Dialect::OpenAi);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        e.status(),
        http::StatusCode::from_u16(e.status())
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error"),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The status of a response head Pingora is writing (`HTTP/1.1 400 ...`).
fn status_in(buf: &[u8]) -> Option<u16> {
    let code = buf.strip_prefix(b"HTTP/1.")?.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// Our answer in place of one Pingora writes before the gateway has seen the request: its empty
/// 400 for a header it cannot parse, its 405 for `CONNECT`. Other answers pass unchanged.
fn replacement_for(status: Option<u16>) -> Option<GatewayError> {
    match status {
        Some(400) => Some(GatewayError::BadRequest(
            "the request's HTTP header could not be parsed".into(),
        )),
        // Pingora refuses `CONNECT`; every route takes GET or POST.
        Some(405) => Some(GatewayError::MethodNotAllowed { allow: "GET, POST" }),
        _ => None,
    }
}

/// Bytes being written in place of what Pingora asked to write.
#[derive(Debug)]
struct Replacement {
    bytes: Vec<u8>,
    written: usize,
}

/// A client stream with a header deadline, an eviction signal and replaced Pingora answers.
pub struct Guarded {
    inner: Stream,
    conn: Arc<Conn>,
    idle: Arc<IdleSet>,
    header_limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    replacing: Option<Replacement>,
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("inner", &self.inner)
            .field("phase", &self.conn.phase())
            .finish()
    }
}

impl Guarded {
    /// The header deadline passed: answer 408 (best effort) and end the connection.
    fn time_out(&mut self, cx: &mut Context<'_>) {
        if !self.conn.leave_waiting(CLOSED) {
            return;
        }
        self.idle.leave(&self.conn);
        let answer = raw_answer(&GatewayError::RequestTimeout { part: "header" });
        // The socket's send buffer is empty at this point, so one write normally takes it all;
        // if not, the connection is closed anyway.
        let _ = Pin::new(&mut self.inner).poll_write(cx, &answer);
        if let Some(m) = metrics::get() {
            m.connections_closed
                .with_label_values(&["header_timeout"])
                .inc();
        }
    }

    /// Polls the header timer; true when the deadline has passed.
    fn deadline_passed(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(at) = self.conn.deadline() else {
            return false;
        };
        if Instant::now() >= at {
            return true;
        }
        let at = tokio::time::Instant::from_std(at);
        let timer = match &mut self.timer {
            Some(t) => {
                if t.deadline() != at {
                    t.as_mut().reset(at);
                }
                t
            }
            None => self.timer.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        timer.as_mut().poll(cx).is_ready()
    }

    fn write_replacement(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<usize>> {
        let Some(r) = self.replacing.as_mut() else {
            return Poll::Ready(Ok(len));
        };
        while r.written < r.bytes.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &r.bytes[r.written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => r.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        // What Pingora wrote is dropped: it has been answered for.
        Poll::Ready(Ok(len))
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let phase = this.conn.phase();
        if phase == ACTIVE {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if phase == CLOSED {
            // End of stream: Pingora closes the connection.
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before
                    && phase == IDLE
                    && this
                        .conn
                        .phase
                        .compare_exchange(IDLE, HEADER, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    && this.conn.deadline().is_none()
                {
                    this.conn
                        .set_deadline(Some(Instant::now() + this.header_limit));
                }
                if this.conn.deadline().is_some_and(|at| Instant::now() >= at) {
                    this.time_out(cx);
                    buf.set_filled(before);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                {
                    let mut w = this.conn.waker();
                    match w.as_ref() {
                        Some(old) if old.will_wake(cx.waker()) => {}
                        _ => *w = Some(cx.waker().clone()),
                    }
                }
                // Evicted between the phase check and the waker being stored.
                if this.conn.phase() == CLOSED {
                    return Poll::Ready(Ok(()));
                }
                if this.deadline_passed(cx) {
                    this.time_out(cx);
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            match this.conn.phase() {
                ACTIVE => return Pin::new(&mut this.inner).poll_write(cx, buf),
                // Closed by the gateway: nothing more goes out.
                CLOSED => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                _ => {}
            }
            // Written before the gateway saw a request: Pingora's own answer.
            let status = status_in(buf);
            let Some(e) = replacement_for(status) else {
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            };
            this.replacing = Some(Replacement {
                bytes: raw_answer(&e),
                written: 0,
            });
            if let (Some(400), Some(m)) = (status, metrics::get()) {
                m.connections_closed
                    .with_label_values(&["unparsable_request"])
                    .inc();
            }
        }
        this.write_replacement(cx, buf.len())
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() && this.conn.phase() == ACTIVE {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
        Pin::new(this).poll_write(cx, first)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replacing.is_some() {
            std::task::ready!(this.write_replacement(cx, 0))?;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The transport traits of a wrapper stream, passed through to its `inner` stream.
macro_rules! pass_through_transport {
    ($wrapper:ty) => {
        #[async_trait]
        impl Shutdown for $wrapper {
            async fn shutdown(&mut self) {
                self.inner.shutdown().await
            }
        }

        impl UniqueID for $wrapper {
            fn id(&self) -> UniqueIDType {
                self.inner.id()
            }
        }

        impl Ssl for $wrapper {
            fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
                self.inner.get_ssl()
            }

            fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
                self.inner.get_ssl_digest()
            }

            fn selected_alpn_proto(&self) -> Option<ALPN> {
                self.inner.selected_alpn_proto()
            }
        }

        impl GetTimingDigest for $wrapper {
            fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
                self.inner.get_timing_digest()
            }

            fn get_read_pending_time(&self) -> Duration {
                self.inner.get_read_pending_time()
            }

            fn get_write_pending_time(&self) -> Duration {
                self.inner.get_write_pending_time()
            }
        }

        impl GetProxyDigest for $wrapper {
            fn get_proxy_digest(
                &self,
            ) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
                self.inner.get_proxy_digest()
            }

            fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
                self.inner.set_proxy_digest(digest)
            }
        }

        impl GetSocketDigest for $wrapper {
            fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
                self.inner.get_socket_digest()
            }

            fn set_socket_digest(&mut self, digest: SocketDigest) {
                self.inner.set_socket_digest(digest)
            }
        }

        #[async_trait]
        impl Peek for $wrapper {
            async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
                self.inner.try_peek(buf).await
            }
        }
    };
}

pass_through_transport!(Guarded);
pass_through_transport!(PrefaceDue);

/// An HTTP/2 connection whose client preface must arrive by a deadline: Pingora awaits the
/// HTTP/2 handshake without one, so a client that negotiated `h2` and then sent nothing would
/// hold its connection forever. Reads fail once the deadline passes with fewer than the
/// preface's 24 bytes read; after that it is a plain stream.
#[derive(Debug)]
struct PrefaceDue {
    inner: Stream,
    read: usize,
    timer: Option<Pin<Box<Sleep>>>,
}

impl PrefaceDue {
    fn new(inner: Stream, limit: Duration) -> Self {
        PrefaceDue {
            inner,
            read: 0,
            timer: Some(Box::pin(tokio::time::sleep(limit))),
        }
    }
}

impl AsyncRead for PrefaceDue {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.read += buf.filled().len() - before;
        if this.read >= H2_PREFACE.len() {
            this.timer = None;
        } else if let (Poll::Pending, Some(timer)) = (&result, this.timer.as_mut()) {
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no HTTP/2 preface in time",
                )));
            }
        }
        result
    }
}

impl AsyncWrite for PrefaceDue {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pingoras_own_400_and_405_are_replaced_and_nothing_else() {
        assert_eq!(status_in(b"HTTP/1.1 400 Bad Request\r\n"), Some(400));
        assert_eq!(status_in(b"HTTP/1.1 4"), None);
        assert!(replacement_for(status_in(b"HTTP/1.1 400 Bad Request\r\n")).is_some());
        assert_eq!(
            replacement_for(Some(405)),
            Some(GatewayError::MethodNotAllowed { allow: "GET, POST" })
        );
        assert_eq!(replacement_for(Some(500)), None);
        assert_eq!(replacement_for(None), None);
    }

    #[test]
    fn a_connection_whose_header_is_arriving_is_not_evicted() {
        let set = IdleSet::default();
        let (a, b) = (Arc::new(Conn::new()), Arc::new(Conn::new()));
        set.enter(&a, 1);
        a.phase.store(HEADER, Ordering::Release);
        set.enter(&b, 1);
        assert_eq!(a.phase(), HEADER, "bounded by its deadline, not the cap");
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn the_idle_set_evicts_the_longest_idle_first_and_never_a_busy_connection() {
        let set = IdleSet::default();
        let conns: Vec<_> = (0..5).map(|_| Arc::new(Conn::new())).collect();
        for c in &conns[..3] {
            set.enter(c, 3);
        }
        // The second one is in a request: it leaves the set and cannot be evicted.
        assert!(conns[1].leave_waiting(ACTIVE));
        set.leave(&conns[1]);
        set.enter(&conns[3], 3);
        assert_eq!(set.len(), 3);
        set.enter(&conns[4], 3);
        assert_eq!(set.len(), 3);
        let phases: Vec<u8> = conns.iter().map(|c| c.phase()).collect();
        assert_eq!(phases, [CLOSED, ACTIVE, IDLE, IDLE, IDLE]);
        assert!(
            !conns[1].evict(),
            "a connection in a request is never evicted"
        );
    }

    #[test]
    fn an_evicted_connection_wakes_its_reader() {
        let conn = Conn::new();
        let waker = Arc::new(Flag::default());
        *conn.waker() = Some(Waker::from(Arc::clone(&waker)));
        assert!(conn.evict());
        assert!(waker.0.load(Ordering::Acquire) == 1);
        assert!(!conn.evict(), "evicted once");
    }

    #[derive(Default)]
    struct Flag(AtomicU8);

    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(1, Ordering::Release);
        }
    }
}
