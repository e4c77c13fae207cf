//! Idle HTTP/1.x connections to backends, kept without a task per connection.
//!
//! Why not Pingora's pool: every release into it spawns a watcher task (with a lock, a one-shot
//! channel and an LRU entry), and taking the connection back must wake that task and wait for it
//! to let go — a task start and two wake-ups per request on the hot path. Here an idle
//! connection is just a value in a list: a release pushes it, a request pops the newest one.
//!
//! What the watcher did is done otherwise: a connection is checked when it is taken (the backend
//! closed it, or sent bytes nobody asked for: dropped) and when it is put back; one sweeper task
//! per pool, running only while connections are idle, closes those past their idle timeout or
//! closed by the backend once a second, so an idle gateway does not sit on half-closed sockets.
//! A connection that still fails on first use is the caller's to retry (`forward.rs`).
//!
//! Bounded: at most [`PER_PEER`] idle connections per backend address; past it the oldest is
//! closed. HTTP/2 connections stay in Pingora's connector (they are shared, not taken).

use futures_util::FutureExt;
use pingora::protocols::Stream;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// Idle connections kept per backend (Pingora's default pool holds 128 in all).
pub const PER_PEER: usize = 128;

/// How often idle connections are checked while any are kept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The idle HTTP/1.x connections of one gateway, by peer (`Peer::reuse_hash`).
#[derive(Default)]
pub struct IdlePool {
    idle: Mutex<HashMap<u64, VecDeque<Idle>>>,
    sweeping: AtomicBool,
}

struct Idle {
    stream: Stream,
    /// When the idle timeout ends; `None`: kept until the backend closes it.
    until: Option<Instant>,
}

impl IdlePool {
    /// The newest idle connection to `peer` that is still usable, if any. Expired and broken
    /// ones met on the way are closed.
    pub fn take(&self, peer: u64) -> Option<Stream> {
        let now = Instant::now();
        let mut closed = Vec::new();
        let found = {
            let mut idle = self.idle.lock().ok()?;
            let list = idle.get_mut(&peer)?;
            let mut found = None;
            while let Some(mut c) = list.pop_back() {
                if c.until.is_some_and(|t| t <= now) || !usable(&mut c.stream) {
                    closed.push(c);
                    continue;
                }
                found = Some(c.stream);
                break;
            }
            found
        };
        drop(closed); // closing sockets is a syscall each: not under the lock
        found
    }

    /// Keeps `stream` for the next request to `peer`, for at most `idle_timeout`. A connection
    /// with bytes waiting or already closed is dropped instead.
    pub fn put(self: &Arc<Self>, peer: u64, mut stream: Stream, idle_timeout: Option<Duration>) {
        if !usable(&mut stream) {
            return;
        }
        let until = idle_timeout.map(|t| Instant::now() + t);
        let evicted = {
            let Ok(mut idle) = self.idle.lock() else {
                return;
            };
            let list = idle.entry(peer).or_default();
            list.push_back(Idle { stream, until });
            (list.len() > PER_PEER).then(|| list.pop_front())
        };
        drop(evicted);
        if !self.sweeping.swap(true, Ordering::AcqRel) {
            self.start_sweeper();
        }
    }

    /// Idle connections kept now, for all peers.
    pub fn len(&self) -> usize {
        self.idle
            .lock()
            .map(|idle| idle.values().map(VecDeque::len).sum())
            .unwrap_or(0)
    }

    /// Whether no connection is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the connections past their idle timeout or closed by the backend; returns how
    /// many are still kept.
    fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut closed = Vec::new();
        let left = {
            let Ok(mut idle) = self.idle.lock() else {
                return 0;
            };
            for list in idle.values_mut() {
                let mut keep = VecDeque::with_capacity(list.len());
                for mut c in list.drain(..) {
                    if c.until.is_some_and(|t| t <= now) || !usable(&mut c.stream) {
                        closed.push(c);
                    } else {
                        keep.push_back(c);
                    }
                }
                *list = keep;
            }
            idle.retain(|_, list| !list.is_empty());
            idle.values().map(VecDeque::len).sum()
        };
        drop(closed);
        left
    }

    /// One task per pool, alive while connections are kept; it holds the pool weakly, so a
    /// dropped gateway ends it.
    fn start_sweeper(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.sweeping.store(false, Ordering::Release);
            return;
        };
        let pool: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let Some(pool) = pool.upgrade() else { return };
                if pool.sweep() > 0 {
                    continue;
                }
                pool.sweeping.store(false, Ordering::Release);
                // A put between the sweep and the store saw `sweeping` still set and started
                // nothing: keep going for it.
                if pool.is_empty() || pool.sweeping.swap(true, Ordering::AcqRel) {
                    return;
                }
            }
        });
    }
}

/// Whether an idle connection can carry a request: a read must find nothing to read. End of
/// stream (the backend closed it), an error, or unrequested bytes all mean no. No syscall is
/// made when the runtime has seen no event on the socket since the last read.
fn usable(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    tokio::task::unconstrained(stream.read(&mut byte))
        .now_or_never()
        .is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair: the gateway's side as a Pingora stream, and the backend's side.
    async fn pair() -> (Stream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let stream: Stream = Box::new(pingora::protocols::l4::stream::Stream::from(
            client.unwrap(),
        ));
        (stream, server.unwrap().0)
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn a_released_connection_is_taken_back_newest_first_and_only_for_its_peer() {
        let pool = Arc::new(IdlePool::default());
        let (a, _ba) = pair().await;
        let (b, _bb) = pair().await;
        let (id_a, id_b) = (a.id(), b.id());
        pool.put(1, a, None);
        pool.put(1, b, None);
        assert!(pool.take(2).is_none());
        assert_eq!(pool.take(1).map(|s| s.id()), Some(id_b));
        assert_eq!(pool.take(1).map(|s| s.id()), Some(id_a));
        assert!(pool.take(1).is_none());
    }

    #[tokio::test]
    async fn a_connection_the_backend_closed_while_idle_is_not_handed_out() {
        let pool = Arc::new(IdlePool::default());
        let (a, backend) = pair().await;
        pool.put(7, a, None);
        drop(backend);
        settle().await;
        assert!(pool.take(7).is_none());
        assert!(pool.is_empty());
    }

    #[tokio::test]
    async fn a_connection_with_unrequested_bytes_is_not_kept() {
        let pool = Arc::new(IdlePool::default());
        let (a, mut backend) = pair().await;
        backend.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        settle().await;
        pool.put(7, a, None);
        assert!(pool.is_empty());
    }

    #[tokio::test]
    async fn a_connection_past_its_idle_timeout_is_closed_not_reused() {
        let pool = Arc::new(IdlePool::default());
        let (a, _backend) = pair().await;
        pool.put(7, a, Some(Duration::from_millis(10)));
        settle().await;
        assert!(pool.take(7).is_none());
    }

    #[tokio::test]
    async fn the_sweeper_closes_idle_connections_the_backend_closed() {
        let pool = Arc::new(IdlePool::default());
        let (a, mut backend) = pair().await;
        pool.put(7, a, None);
        drop(pool.take(9));
        backend.shutdown().await.unwrap();
        // The gateway's side is closed by the sweeper: the backend then reads end of stream.
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), backend.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0))), "{read:?}");
        assert!(pool.is_empty());
    }

    #[tokio::test]
    async fn no_more_than_the_bound_are_kept_per_peer_the_oldest_closed_first() {
        let pool = Arc::new(IdlePool::default());
        let mut backends = Vec::new();
        let mut first = None;
        for _ in 0..=PER_PEER {
            let (s, b) = pair().await;
            first.get_or_insert(s.id());
            backends.push(b);
            pool.put(3, s, None);
        }
        assert_eq!(pool.len(), PER_PEER);
        let mut ids = Vec::new();
        while let Some(s) = pool.take(3) {
            ids.push(s.id());
        }
        assert!(!ids.contains(&first.unwrap()));
    }
}
