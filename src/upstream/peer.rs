//! The upstream side of one forwarded request: the peer to connect to (address, TLS, timeouts)
//! and the request header it receives.
//!
//! Header hygiene, both ways, by allow lists. Of the client's request headers a backend gets only
//! [`FORWARDED`] (content negotiation, trace context: with `tracing` on, the gateway then puts its
//! own `traceparent` in, see `gateway::failover`) and what its `forward_headers` names; never a
//! credential, a cookie, an organisation or project header, or a beta flag that picks features
//! or billing, since the request goes out with the gateway's credential. The backend's own
//! credential and version headers are added ([`provider::headers`]), `Host` is set to the
//! backend's authority and `Content-Length` to the body actually sent. Of a backend's response
//! headers the client sees only [`PASSED_DOWNSTREAM`]: no cookie, no provider organisation, rate
//! limit, request id or server header.

pub use super::dns::Resolver;
use crate::config::{Backend, BackendUrl};
use crate::error::GatewayError;
use crate::protocol::provider;
use http::{HeaderMap, HeaderName};
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::WrappedX509;
use std::net::SocketAddr;
use std::sync::Arc;

/// Client request headers every backend gets.
pub const FORWARDED: &[&str] = &[
    "content-type",
    "accept",
    "x-request-id",
    "traceparent",
    "tracestate",
];

/// Backend response headers a client sees (the gateway sets the framing and its own headers).
pub const PASSED_DOWNSTREAM: &[&str] = &[
    "content-type",
    "content-encoding",
    "cache-control",
    "retry-after",
];

/// The peers for `backend`, one per address its name resolves to (within its connect timeout),
/// starting at the `turn`th so load spreads over them; the caller tries the next when one
/// refuses. A name that does not resolve is `UpstreamUnreachable`: a backend failure.
pub async fn peers(
    backend: &Backend,
    resolver: &Resolver,
    turn: usize,
) -> Result<Vec<HttpPeer>, GatewayError> {
    let mut addrs = resolver
        .resolve(
            &backend.url.host,
            backend.url.port,
            backend.timeouts.connect,
        )
        .await?;
    let n = addrs.len();
    addrs.rotate_left(turn % n.max(1));
    Ok(addrs.into_iter().map(|a| peer_at(backend, a)).collect())
}

/// The peer for `backend` at `addr` (already resolved): TLS with SNI and verification, every
/// timeout set.
pub fn peer_at(backend: &Backend, addr: SocketAddr) -> HttpPeer {
    let mut peer = verified_peer(&backend.url, addr, backend.ca.as_ref());
    let t = &backend.timeouts;
    let o = &mut peer.options;
    o.connection_timeout = Some(t.connect);
    o.total_connection_timeout = Some(t.connect.saturating_mul(2));
    o.read_timeout = Some(t.first_byte);
    o.write_timeout = Some(t.write);
    o.idle_timeout = Some(t.pool_idle);
    peer
}

/// A peer for `url` at `addr`: over TLS (when the URL says so) with its host as SNI, the
/// certificate and host name verified, and `ca` trusted besides the system's. Timeouts are the
/// caller's to set.
pub fn verified_peer(
    url: &BackendUrl,
    addr: SocketAddr,
    ca: Option<&Arc<[WrappedX509]>>,
) -> HttpPeer {
    let sni = if url.tls {
        url.host.clone()
    } else {
        String::new()
    };
    let mut peer = HttpPeer::new(addr, url.tls, sni);
    peer.options.verify_cert = true;
    peer.options.verify_hostname = true;
    peer.options.ca = ca.map(Arc::clone);
    peer
}

/// The request header for the backend: `path` below the backend's prefix (or the provider's own
/// path), the client's headers the backend may get (see the module header; never one that
/// `Connection` names), plus ours: `X-Forwarded-For` is `forwarded_for` when the gateway sends
/// one (`server.forward_client_address`), never the client's.
///
/// A body the gateway wrote (`json_body`: translated, or the lab's) gets the gateway's own
/// content negotiation, not the client's. A `bedrock` backend's request is signed (SigV4) last,
/// over its host, content type and body.
pub fn request_header(
    backend: &Backend,
    path: &str,
    client: &HeaderMap,
    body: &[u8],
    json_body: bool,
    forwarded_for: Option<&str>,
) -> Result<RequestHeader, GatewayError> {
    let full_path = provider::path(backend, path);
    let mut req = RequestHeader::build("POST", full_path.as_bytes(), Some(client.len() + 4))
        .map_err(|_| GatewayError::Internal)?;
    let named_by_connection: Vec<HeaderName> = client
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for (name, value) in client {
        let n = name.as_str();
        let allowed = FORWARDED.contains(&n) || backend.forwards(n);
        if !allowed
            || provider::GATEWAY_OWNED.contains(&n)
            || named_by_connection.contains(name)
            || (json_body && (n == "content-type" || n == "accept"))
        {
            continue;
        }
        req.append_header(name.clone(), value.clone())
            .map_err(|_| GatewayError::Internal)?;
    }
    let set = |req: &mut RequestHeader, name: &'static str, value: String| {
        req.insert_header(name, value)
            .map_err(|_| GatewayError::Internal)
    };
    let authority = backend.url.authority();
    set(&mut req, "host", authority.clone())?;
    set(&mut req, "content-length", body.len().to_string())?;
    if json_body {
        set(&mut req, "content-type", "application/json".into())?;
    }
    for (name, value) in provider::headers(backend) {
        set(&mut req, name, value)?;
    }
    if let Some(chain) = forwarded_for {
        set(&mut req, "x-forwarded-for", chain.to_string())?;
    }
    if let Some(aws) = &backend.aws {
        let url = format!("https://{authority}{full_path}");
        let content_type = if json_body { "application/json" } else { "" };
        let signed = [("host", authority.as_str()), ("content-type", content_type)];
        let now = std::time::SystemTime::now();
        let headers = super::sigv4::sign(aws, "bedrock", "POST", &url, &signed, body, now)?;
        for (name, value) in headers {
            req.insert_header(name, value)
                .map_err(|_| GatewayError::Internal)?;
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackendUrl, Protocol, Provider};
    use crate::digest::Secret;
    use http::HeaderValue;

    fn backend(url: &str, credential: Option<&str>) -> Backend {
        let mut b = Backend::basic("b", Protocol::OpenAi, &["m"], 1, 1);
        b.url = BackendUrl::parse(url).unwrap();
        b.credential = credential.map(|c| Secret::new(c.into()));
        b
    }

    fn client_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-api-key", "key-team-support"),
            ("authorization", "Bearer key-team-support"),
            ("host", "gateway.local"),
            ("expect", "100-continue"),
            ("accept-encoding", "gzip"),
            ("transfer-encoding", "chunked"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "hop"),
            ("content-type", "application/json"),
            ("x-request-id", "r1"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn client_credentials_and_hop_headers_are_stripped_and_backend_credential_added() {
        let req = request_header(
            &backend("http://10.0.0.1:8080/openai", Some("sk-backend")),
            "/v1/chat/completions",
            &client_headers(),
            &[b'x'; 42],
            false,
            None,
        )
        .unwrap();
        let h = &req.headers;
        assert_eq!(req.uri.path(), "/openai/v1/chat/completions");
        assert!(h.get("x-api-key").is_none());
        assert_eq!(h.get("authorization").unwrap(), "Bearer sk-backend");
        assert_eq!(h.get("host").unwrap(), "10.0.0.1:8080");
        assert_eq!(h.get("content-length").unwrap(), "42");
        for gone in [
            "expect",
            "accept-encoding",
            "transfer-encoding",
            "connection",
            "x-private",
        ] {
            assert!(h.get(gone).is_none(), "{gone} must not be forwarded");
        }
        assert_eq!(h.get("x-request-id").unwrap(), "r1");
        assert_eq!(h.get("content-type").unwrap(), "application/json");
    }

    #[test]
    fn azure_gets_its_deployment_path_and_api_key_header() {
        let mut b = backend("https://res.openai.azure.com", Some("azure-secret"));
        b.provider = Provider::Azure {
            deployment: "gpt4o-prod".into(),
            api_version: "2024-10-21".into(),
        };
        let req = request_header(
            &b,
            "/v1/chat/completions",
            &client_headers(),
            b"x",
            false,
            None,
        )
        .unwrap();
        assert_eq!(
            req.uri.to_string(),
            "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(req.headers.get("api-key").unwrap(), "azure-secret");
        assert!(req.headers.get("authorization").is_none());
        let req =
            request_header(&b, "/v1/responses", &client_headers(), b"x", false, None).unwrap();
        assert_eq!(
            req.uri.to_string(),
            "/openai/responses?api-version=2024-10-21"
        );
    }

    #[test]
    fn without_a_backend_credential_no_authorization_is_sent() {
        let req = request_header(
            &backend("https://api.example.com", None),
            "/chat",
            &client_headers(),
            b"x",
            true,
            None,
        )
        .unwrap();
        assert!(req.headers.get("authorization").is_none());
        assert_eq!(req.headers.get("host").unwrap(), "api.example.com");
    }
}
