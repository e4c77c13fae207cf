//! A small blocking client for the admin plane, for the commands that call it (`tollgate keys`;
//! `tollgate spend` next): one HTTP/1.1 request per connection (`Connection: close`) over
//! `std::net::TcpStream`, or over TLS (rustls with ring) when the URL is `https://` — trusting
//! only the CA certificates of `--cacert` (no system roots: the admin plane is an operator's own
//! service, usually with a private CA).
//!
//! The admin token comes from an environment variable, never from the command line (it would
//! show in `ps` and shell history); it is held as a [`Secret`] and sent only in the
//! `Authorization` header. Every step is bounded: connecting ([`CONNECT_TIMEOUT`]), each read
//! and write ([`IO_TIMEOUT`]) and the answer's size ([`MAX_RESPONSE_BYTES`]).

use crate::digest::Secret;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The admin plane's default address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9001";
/// The variable the admin token is read from by default.
pub const DEFAULT_TOKEN_ENV: &str = "TOLLGATE_ADMIN_TOKEN";
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// An answer from the admin plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// What went wrong, for a person: the JSON `error` member, else the body as text.
    pub fn error_message(&self) -> String {
        match self.json() {
            Some(v) if v["error"].is_string() => v["error"].as_str().unwrap_or("").to_string(),
            _ => String::from_utf8_lossy(&self.body).trim().to_string(),
        }
    }
}

/// A path segment or query value, percent-encoded beyond the unreserved characters.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// For the CLI's commands: a client from `--admin`, `--token-env` and `--cacert`, or the exit
/// status 2 (it cannot be asked) after saying why, prefixed with `command`.
pub fn from_env_or_exit(
    command: &str,
    url: &str,
    token_env: &str,
    cacert: Option<&Path>,
) -> Result<AdminClient, ExitCode> {
    AdminClient::from_env(url, token_env, cacert).map_err(|e| {
        eprintln!("{command}: {e}");
        ExitCode::from(2)
    })
}

/// For the CLI's commands: the gateway's 2xx answer, or the exit status after saying why: 1
/// when the gateway refused, 2 when it could not be asked.
pub fn answered(command: &str, reply: Result<Reply, String>) -> Result<Reply, ExitCode> {
    match reply {
        Ok(r) if r.ok() => Ok(r),
        Ok(r) => {
            eprintln!("{command}: refused ({}): {}", r.status, r.error_message());
            Err(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("{command}: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// For the CLI's commands: the answer's JSON, or the exit status 2 after saying it is not JSON.
pub fn json_or_exit(command: &str, reply: &Reply) -> Result<Value, ExitCode> {
    reply.json().ok_or_else(|| {
        eprintln!("{command}: the gateway's answer is not JSON");
        ExitCode::from(2)
    })
}

/// Where the admin plane is and how to reach it.
pub struct AdminClient {
    host: String,
    port: u16,
    /// A path prefix from the URL (a reverse proxy's), without the trailing slash.
    base: String,
    token: Secret,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl AdminClient {
    /// A client for `url` (`http://host:port[/prefix]` or `https://…`, which needs `cacert`:
    /// a PEM file of the CA certificates to trust).
    pub fn new(url: &str, token: Secret, cacert: Option<&Path>) -> Result<AdminClient, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(format!(
                "`{url}`: the admin URL must start with http:// or https://"
            ));
        };
        let (authority, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(authority, if tls { 443 } else { 80 })
            .ok_or_else(|| format!("`{url}`: cannot read the host and port"))?;
        let tls = match (tls, cacert) {
            (false, None) => None,
            (false, Some(_)) => return Err("--cacert is for https:// admin URLs".into()),
            (true, None) => {
                return Err("an https:// admin URL needs --cacert FILE (the CA to trust)".into())
            }
            (true, Some(ca)) => Some(tls_config(ca)?),
        };
        Ok(AdminClient {
            host,
            port,
            base: base.to_string(),
            token,
            tls,
        })
    }

    /// As [`AdminClient::new`], the token read from the environment variable `token_env`.
    pub fn from_env(
        url: &str,
        token_env: &str,
        cacert: Option<&Path>,
    ) -> Result<AdminClient, String> {
        let token = std::env::var(token_env)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                format!("set the admin token in the environment variable {token_env}")
            })?;
        AdminClient::new(url, Secret::new(token.trim().to_string()), cacert)
    }

    pub fn get(&self, path: &str) -> Result<Reply, String> {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Reply, String> {
        self.request("POST", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Result<Reply, String> {
        self.request("DELETE", path, None)
    }

    /// Sends `method path` (with a JSON body when given) and reads the whole answer. `Err` only
    /// when no HTTP answer came (connection, TLS, timeout, a malformed answer).
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Reply, String> {
        let payload = body.map(Value::to_string).unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
             Accept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.base,
            self.token.expose(),
            payload.len()
        );
        if body.is_some() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(payload.as_bytes());
        let tcp = self.connect()?;
        let raw = match &self.tls {
            None => exchange(tcp, &request),
            Some(config) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|_| format!("`{}` is not a valid TLS server name", self.host))?;
                let conn = rustls::ClientConnection::new(Arc::clone(config), name)
                    .map_err(|e| format!("TLS: {e}"))?;
                exchange(rustls::StreamOwned::new(conn, tcp), &request)
            }
        }
        .map_err(|e| format!("{}:{}: {e}", self.host, self.port))?;
        parse_response(&raw)
    }

    fn connect(&self) -> Result<TcpStream, String> {
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?;
        let mut last = format!("{} resolves to no address", self.host);
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    s.set_read_timeout(Some(IO_TIMEOUT))
                        .and_then(|()| s.set_write_timeout(Some(IO_TIMEOUT)))
                        .map_err(|e| format!("{addr}: {e}"))?;
                    return Ok(s);
                }
                Err(e) => last = format!("cannot connect to {addr}: {e}"),
            }
        }
        Err(last)
    }
}

/// `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

fn tls_config(cacert: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let shown = cacert.display();
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(cacert)
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown}: not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{shown} holds no PEM certificate"));
    }
    for c in certs {
        roots
            .add(c)
            .map_err(|e| format!("{shown}: not a usable CA certificate: {e}"))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Writes the request, then reads until the server closes (at most [`MAX_RESPONSE_BYTES`]).
fn exchange(mut s: impl Read + Write, request: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(request)?;
    s.flush()?;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_RESPONSE_BYTES {
                    return Err(std::io::Error::other("the answer is too large"));
                }
            }
            // A TLS peer closing without close_notify: what arrived is checked for completeness
            // by its framing below.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The status and body of a whole HTTP/1.1 answer (`Content-Length`, chunked, or up to close).
fn parse_response(raw: &[u8]) -> Result<Reply, String> {
    let malformed = || "a malformed HTTP answer".to_string();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| "the connection closed before an HTTP answer".to_string())?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| malformed())?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(malformed)?;
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    };
    let rest = &raw[end + 4..];
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest).ok_or_else(|| "a truncated chunked answer".to_string())?
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|_| malformed())?;
        rest.get(..len)
            .ok_or_else(|| "the answer was cut short".to_string())?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Reply { status, body })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_host_port_and_prefix() {
        let c = AdminClient::new("http://127.0.0.1:9001", Secret::new("t".into()), None).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.base.as_str()),
            ("127.0.0.1", 9001, "")
        );
        let c = AdminClient::new("http://[::1]/admin/", Secret::new("t".into()), None).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.base.as_str()),
            ("::1", 80, "/admin")
        );
        for bad in ["127.0.0.1:9001", "ftp://x", "http://:9", "http://h:port"] {
            assert!(
                AdminClient::new(bad, Secret::new("t".into()), None).is_err(),
                "{bad}"
            );
        }
        let e = AdminClient::new("https://h", Secret::new("t".into()), None).unwrap_err();
        assert!(e.contains("--cacert"), "{e}");
    }

    #[test]
    fn answers_are_read_by_length_chunks_or_close() {
        let r =
            parse_response(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}extra").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &b"{}"[..]));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n{\"error\":\"no key\"}").unwrap();
        assert_eq!((r.status, r.error_message().as_str()), (404, "no key"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let c = AdminClient::new("http://h:1", Secret::new("s3cret-token".into()), None).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn a_request_reaches_a_server_with_the_token_and_the_body() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.ends_with(b"{\"a\":1}") {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndone")
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        let c = AdminClient::new(
            &format!("http://127.0.0.1:{port}"),
            Secret::new("tok".into()),
            None,
        )
        .unwrap();
        let r = c.post("/keys", &serde_json::json!({"a": 1})).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"done"[..]));
        let seen = server.join().unwrap();
        assert!(seen.starts_with("POST /keys HTTP/1.1\r\n"), "{seen}");
        assert!(seen.contains("Authorization: Bearer tok\r\n"), "{seen}");
        assert!(seen.contains("Content-Length: 7\r\n"), "{seen}");
    }
}
