//! TLS on the gateway's own listeners, through Pingora's rustls listener.
//!
//! - The certificate is chosen at every handshake from the live configuration ([`LiveCert`]), so
//!   a reload (SIGHUP) that brings a new certificate serves it to new handshakes at once, while
//!   connections already open keep theirs. A pair that fails to load fails the reload, and the
//!   running certificate stays (see `config::tls`).
//! - TLS 1.2 and 1.3 only (Pingora's rustls listener offers nothing older), ALPN `h2` and
//!   `http/1.1` (or `http/1.1` alone when `server.http2` is off).
//! - With `client_ca_file`, client certificates are verified against that CA during the
//!   handshake; the verified leaf's subject and URI SANs ([`PeerIdentity`]) ride on the
//!   connection's TLS digest for the request path to read.

use crate::config::tls::ServerTls;
use crate::runtime::LiveState;
use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use pingora::protocols::ALPN;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::any::Any;
use std::sync::Arc;

/// Which listener a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    Consumer,
    Admin,
}

impl Plane {
    /// The plane's TLS settings in the live configuration.
    pub fn tls(self, rt: &crate::runtime::Runtime) -> Option<&ServerTls> {
        let s = &rt.config.server;
        match self {
            Plane::Consumer => s.tls.as_ref(),
            Plane::Admin => s.admin.tls.as_ref(),
        }
    }
}

/// The certificate of the live configuration, looked up at each handshake.
pub struct LiveCert {
    live: LiveState,
    plane: Plane,
}

impl std::fmt::Debug for LiveCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCert")
            .field("plane", &self.plane)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for LiveCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let rt = self.live.current();
        self.plane.tls(&rt).map(|tls| Arc::clone(&tls.certified))
    }
}

/// Who a verified client certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject, as `CN=bot, O=Corp`: RFC 4514 attribute names and value escaping (a `,` in
    /// a value is `\,`, so no value can pass for two attributes), attributes of one RDN joined
    /// by `+`, RDNs in certificate order; a value that is not a string is `#` and its DER in hex.
    pub subject: String,
    /// The URI subject alternative names (SPIFFE ids among them).
    pub uris: Vec<String>,
}

impl PeerIdentity {
    /// Reads the identity of a DER certificate; `None` when it does not parse.
    pub fn of_der(der: &[u8]) -> Option<PeerIdentity> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert
            .subject()
            .iter_rdn()
            .map(|rdn| {
                rdn.iter()
                    .map(|atv| {
                        let name = x509_parser::objects::oid2abbrev(
                            atv.attr_type(),
                            x509_parser::objects::oid_registry(),
                        )
                        .map(str::to_string)
                        .unwrap_or_else(|_| atv.attr_type().to_id_string());
                        let value = match atv.as_str() {
                            Ok(v) => escape_dn_value(v),
                            Err(_) => format!("#{}", crate::digest::to_hex(atv.attr_value().data)),
                        };
                        format!("{name}={value}")
                    })
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let uris = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::URI(u) => Some(u.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(PeerIdentity { subject, uris })
    }
}

/// A distinguished-name value escaped as RFC 4514 says: `"+,;<>\\` and `=` anywhere, `#` and
/// a space at the start, a space at the end.
fn escape_dn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reads the verified client certificate once, when the handshake completes.
struct ReadPeer;

#[async_trait]
impl TlsAccept for ReadPeer {
    async fn handshake_complete_callback(
        &self,
        ssl: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let identity = PeerIdentity::of_der(ssl.peer_certificate_der()?)?;
        Some(Arc::new(identity))
    }
}

/// Pingora's TLS settings for a listener of `plane` whose configuration is `tls`.
pub fn settings(
    live: &LiveState,
    plane: Plane,
    tls: &ServerTls,
    http2: bool,
) -> Result<TlsSettings, String> {
    let mut settings = TlsSettings::with_callbacks(Box::new(ReadPeer))
        .map_err(|e| format!("TLS settings: {e}"))?;
    settings.set_cert_resolver(Arc::new(LiveCert {
        live: live.clone(),
        plane,
    }));
    if let Some(clients) = &tls.clients {
        settings.set_client_cert_verifier(Arc::clone(&clients.verifier));
    }
    settings.set_alpn(if http2 { ALPN::H2H1 } else { ALPN::H1 });
    Ok(settings)
}

/// The verified client certificate's identity on a connection, if it presented one.
pub fn peer_identity(digest: Option<&pingora::protocols::Digest>) -> Option<&PeerIdentity> {
    digest?.ssl_digest.as_ref()?.extension.get::<PeerIdentity>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(dn: &[(rcgen::DnType, &str)]) -> PeerIdentity {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        for (t, v) in dn {
            params.distinguished_name.push(t.clone(), *v);
        }
        let cert = params.self_signed(&key).unwrap();
        PeerIdentity::of_der(cert.der()).unwrap()
    }

    #[test]
    fn a_comma_in_a_value_cannot_pass_for_a_second_attribute() {
        use rcgen::DnType::{CommonName, OrganizationName};
        let two = identity(&[(CommonName, "bot"), (OrganizationName, "Corp")]);
        assert_eq!(two.subject, "CN=bot, O=Corp");
        let one = identity(&[(CommonName, "bot, O=Corp")]);
        assert_eq!(one.subject, "CN=bot\\, O\\=Corp");
        assert_ne!(one.subject, two.subject);
        assert_eq!(escape_dn_value(" #a+b "), "\\ #a\\+b\\ ");
    }
}
