//! Connections through a load balancer that speaks the PROXY protocol (`server.proxy_protocol`):
//! before anything else on a connection from a trusted peer (`server.trusted_proxies`), its
//! PROXY header (v1 or v2, [`super::proxy_protocol`]) is read within the header deadline, and the
//! client it names becomes the connection's peer address, so every layer above (the access log,
//! IP rules, `X-Forwarded-For`) sees the client. On a TLS listener the header comes before the
//! handshake ([`PreTls`]); on a plain one, before the first request (`connections`).
//!
//! A peer that is not trusted is never read for a header: its bytes are its request, and a
//! PROXY line from it is answered as the malformed request it is. A trusted peer that sends no
//! valid header in time is disconnected.

use super::proxy_protocol;
use crate::config::cidr::CidrSet;
use crate::runtime::LiveState;
use async_trait::async_trait;
use pingora::listeners::PreTlsProcess;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest};
use std::os::unix::io::AsRawFd;

/// Reads the PROXY header of a connection from a trusted peer, `within` a deadline, and takes
/// its client as the connection's peer; connections from other peers are left as they are.
pub async fn take_header(
    l4: &mut L4Stream,
    trusted_proxies: &CidrSet,
    within: std::time::Duration,
) -> Result<(), String> {
    let peer = l4
        .get_socket_digest()
        .and_then(|d| d.peer_addr().and_then(PeerAddr::as_inet).map(|a| a.ip()));
    if !peer.is_some_and(|ip| trusted_proxies.contains(ip)) {
        return Ok(());
    }
    let (source, rest) = proxy_protocol::read_header(l4, within).await?;
    l4.rewind(&rest);
    if let Some(source) = source {
        let digest = SocketDigest::from_raw_fd(l4.as_raw_fd());
        let _ = digest.peer_addr.set(Some(PeerAddr::Inet(source)));
        l4.set_socket_digest(digest);
    }
    Ok(())
}

/// The PROXY header of a TLS listener's connections, read before the handshake.
pub struct PreTls {
    pub live: LiveState,
}

#[async_trait]
impl PreTlsProcess for PreTls {
    async fn process(&self, stream: &mut L4Stream) -> pingora::Result<()> {
        let rt = self.live.current();
        let s = &rt.config.server;
        take_header(stream, &s.trusted_proxies, s.timeouts.client_header)
            .await
            .map_err(|e| {
                log::debug!("connection dropped: {e}");
                pingora::Error::explain(
                    pingora::ErrorType::ConnectionClosed,
                    "no valid PROXY header",
                )
            })
    }
}
