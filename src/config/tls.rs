//! TLS on the gateway's own listeners: the certificate chain and key each listener presents,
//! read and checked when the configuration is loaded (and so at every reload), and the CA that
//! client certificates must chain to when a listener asks for them (mutual TLS).
//!
//! A pair that cannot be read, is not PEM, or whose key does not match the certificate is a
//! configuration problem at the setting's path: at start the gateway refuses to run, at a reload
//! the running configuration (and its certificate) stays.

use super::file::TlsSection;
use super::Problem;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use std::sync::Arc;

/// The crypto provider every TLS listener uses (rustls with *ring*, as Pingora's).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A listener's TLS settings, loaded.
#[derive(Clone)]
pub struct ServerTls {
    pub cert_file: String,
    pub key_file: String,
    /// The chain and its signing key, checked to belong together.
    pub certified: Arc<CertifiedKey>,
    /// SHA-256 of the leaf certificate, hex: tells two loaded certificates apart.
    pub fingerprint: String,
    /// Client certificates, when the listener asks for them.
    pub clients: Option<ClientAuth>,
}

/// Mutual TLS: the CA client certificates must chain to.
#[derive(Clone)]
pub struct ClientAuth {
    pub ca_file: String,
    /// Without a certificate the handshake fails (`required`), or succeeds and the request is
    /// judged on its key alone (`optional`).
    pub required: bool,
    pub verifier: Arc<dyn ClientCertVerifier>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("fingerprint", &self.fingerprint)
            .field("client_ca_file", &self.clients.as_ref().map(|c| &c.ca_file))
            .finish_non_exhaustive()
    }
}

/// Reads and checks the `tls:` section at `path`.
pub fn build(s: &TlsSection, path: &str, problems: &mut Vec<Problem>) -> Option<ServerTls> {
    let provider = provider();
    let chain = read_chain(&s.cert_file)
        .map_err(|e| problems.push(Problem::new(format!("{path}.cert_file"), e)))
        .ok();
    let key = PrivateKeyDer::from_pem_file(&s.key_file)
        .map_err(|e| {
            problems.push(Problem::new(
                format!("{path}.key_file"),
                format!("no PEM private key could be read from {}: {e}", s.key_file),
            ))
        })
        .ok();
    let clients = match (&s.client_ca_file, s.client_auth.as_deref()) {
        (None, None) => None,
        (None, Some(_)) => {
            problems.push(Problem::new(
                format!("{path}.client_auth"),
                "needs client_ca_file: the CA client certificates must chain to",
            ));
            None
        }
        (Some(ca), auth) => {
            let required = match auth.unwrap_or("required") {
                "required" => Some(true),
                "optional" => Some(false),
                other => {
                    problems.push(Problem::new(
                        format!("{path}.client_auth"),
                        format!("`{other}` is not one of required, optional"),
                    ));
                    None
                }
            };
            let verifier = client_verifier(ca, required.unwrap_or(true), &provider)
                .map_err(|e| problems.push(Problem::new(format!("{path}.client_ca_file"), e)))
                .ok();
            match (required, verifier) {
                (Some(required), Some(verifier)) => Some(ClientAuth {
                    ca_file: ca.clone(),
                    required,
                    verifier,
                }),
                _ => None,
            }
        }
    };
    let (chain, key) = (chain?, key?);
    let fingerprint = chain
        .first()
        .map(|leaf| crate::digest::sha256_hex(leaf.as_ref()))
        .unwrap_or_default();
    let certified = CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| {
            problems.push(Problem::new(
                format!("{path}.key_file"),
                format!(
                    "{} does not go with the certificate in {}: {e}",
                    s.key_file, s.cert_file
                ),
            ))
        })
        .ok()?;
    if s.client_ca_file.is_some() && clients.is_none() {
        return None;
    }
    Some(ServerTls {
        cert_file: s.cert_file.clone(),
        key_file: s.key_file.clone(),
        certified: Arc::new(certified),
        fingerprint,
        clients,
    })
}

/// The certificates of a PEM file, leaf first, each checked to be valid X.509.
pub(super) fn read_chain(file: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(file)
        .map_err(|e| format!("cannot read {file}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{file}: not a PEM certificate chain: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{file} holds no PEM certificate"));
    }
    for der in &chain {
        if x509_parser::parse_x509_certificate(der.as_ref()).is_err() {
            return Err(format!("{file}: a certificate is not valid X.509"));
        }
    }
    Ok(chain)
}

/// A verifier of client certificates issued by the CAs in `ca_file`.
fn client_verifier(
    ca_file: &str,
    required: bool,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for der in read_chain(ca_file)? {
        roots
            .add(der)
            .map_err(|e| format!("{ca_file}: not a usable CA certificate: {e}"))?;
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder
        .build()
        .map_err(|e| format!("{ca_file}: cannot verify clients with it: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for 127.0.0.1 and its key, PEM, written to `dir` as `name`.
    fn pair(dir: &std::path::Path, name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c.display().to_string(), k.display().to_string())
    }

    fn section(cert: &str, key: &str) -> TlsSection {
        TlsSection {
            cert_file: cert.into(),
            key_file: key.into(),
            client_ca_file: None,
            client_auth: None,
        }
    }

    #[test]
    fn a_pair_loads_and_a_mismatched_or_unreadable_one_is_a_problem_at_its_path() {
        let dir = std::env::temp_dir().join(format!("tollgate-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a_cert, a_key) = pair(&dir, "a");
        let (_, b_key) = pair(&dir, "b");
        let mut problems = Vec::new();
        let tls = build(&section(&a_cert, &a_key), "server.tls", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(tls.map(|t| t.fingerprint.len()), Some(64));

        let mut problems = Vec::new();
        assert!(build(&section(&a_cert, &b_key), "server.tls", &mut problems).is_none());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "server.tls.key_file");
        assert!(
            problems[0].message.contains("does not go with"),
            "{problems:?}"
        );

        let mut problems = Vec::new();
        let missing = dir.join("nothing.pem").display().to_string();
        assert!(build(&section(&missing, &a_key), "server.tls", &mut problems).is_none());
        assert_eq!(problems[0].path, "server.tls.cert_file");

        let mut problems = Vec::new();
        let mut s = section(&a_cert, &a_key);
        s.client_auth = Some("sometimes".into());
        s.client_ca_file = Some(a_cert.clone());
        assert!(build(&s, "server.tls", &mut problems).is_none());
        assert_eq!(problems[0].path, "server.tls.client_auth");
        std::fs::remove_dir_all(&dir).ok();
    }
}
