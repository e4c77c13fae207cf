//! A small HTTP/1.1 client over raw sockets (the gateway is tested byte for byte: framing,
//! keep-alive, slow and abusive clients), and request bodies.

use super::config::KEY_STANDARD;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A connection to a loopback port, reads bounded by 10 s.
pub fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends raw bytes on a fresh connection; returns the status and the whole answer (read to its
/// end, for at most 5 s).
pub fn raw(port: u16, bytes: &[u8]) -> (u16, String) {
    let mut s = connect(port);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let text = read_all(&mut s);
    (status_of(&text), text)
}

/// Everything the peer sends until it closes the connection (or the read timeout passes).
pub fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

/// The status code of a raw HTTP answer (0 when there is none).
pub fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Sends `bytes` one at a time, `gap` apart, until the peer answers or stops taking them.
pub fn trickle(s: &mut TcpStream, bytes: &[u8], gap: Duration) {
    for b in bytes {
        if s.write_all(&[*b]).is_err() {
            return;
        }
        std::thread::sleep(gap);
        s.set_nonblocking(true).unwrap();
        let answered =
            !matches!(s.peek(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock);
        s.set_nonblocking(false).unwrap();
        if answered {
            return;
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads the status line and headers; `None` on EOF or garbage.
pub fn read_head<R: BufRead>(r: &mut R) -> Option<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).ok()?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Some((status, headers))
}

/// Reads a whole response (Content-Length, chunked, or until close). `None` if the body is
/// truncated (connection closed before the framing said it was complete).
pub fn read_response<R: BufRead>(r: &mut R) -> Option<Response> {
    let (status, headers) = read_head(r)?;
    let find = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = find("content-length") {
        let len: usize = len.parse().ok()?;
        body.resize(len, 0);
        r.read_exact(&mut body).ok()?;
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            if r.read_line(&mut size).ok()? == 0 {
                return None;
            }
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            if n == 0 {
                let mut crlf = String::new();
                r.read_line(&mut crlf).ok()?;
                break;
            }
            let start = body.len();
            body.resize(start + n, 0);
            r.read_exact(&mut body[start..]).ok()?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).ok()?;
        }
    } else if status != 100 && status != 204 && status != 304 {
        r.read_to_end(&mut body).ok()?;
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

/// One request on a fresh connection (`Connection: close`), Content-Length framed.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = connect(port);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut BufReader::new(s)).expect("a complete response")
}

/// A `POST` on a fresh connection with extra headers, authenticated as `KEY_STANDARD` unless the
/// headers carry their own `X-API-Key`.
pub fn post_as(port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("x-api-key"))
    {
        all.push(("X-API-Key", KEY_STANDARD));
    }
    request(port, "POST", path, &all, body.as_bytes())
}

pub fn post_json(port: u16, path: &str, key: Option<&str>, body: &str) -> Response {
    let mut headers = vec![("Content-Type", "application/json")];
    let auth;
    if let Some(k) = key {
        auth = k.to_string();
        headers.push(("X-API-Key", &auth));
    }
    request(port, "POST", path, &headers, body.as_bytes())
}

/// A chat-completions body of exactly `total` bytes (the prompt pads it). It sets `max_tokens`
/// (and, streaming, `include_usage`), so the gateway has no reason to amend it and forwards it
/// byte for byte.
pub fn chat_body_of_size(model: &str, stream: bool, total: usize) -> Vec<u8> {
    // A stream that asks for usage itself is not amended either.
    let usage = if stream {
        r#""stream_options":{"include_usage":true},"#
    } else {
        ""
    };
    let prefix = format!(
        r#"{{"model":"{model}","stream":{stream},{usage}"max_tokens":16,"messages":[{{"role":"user","content":""#
    );
    let suffix = r#""}]}"#;
    let pad = total - prefix.len() - suffix.len();
    let mut b = Vec::with_capacity(total);
    b.extend_from_slice(prefix.as_bytes());
    b.extend(std::iter::repeat_n(b'a', pad));
    b.extend_from_slice(suffix.as_bytes());
    assert_eq!(b.len(), total);
    b
}

pub fn sha256_hex(data: &[u8]) -> String {
    tollgate::digest::sha256_hex(data)
}

/// The bytes of one keep-alive `POST` with extra headers, authenticated as `KEY_STANDARD` unless
/// the headers carry their own `X-API-Key`.
pub fn post_bytes(path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: t\r\n");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("x-api-key"))
    {
        head.push_str(&format!("X-API-Key: {KEY_STANDARD}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    head.into_bytes()
}

/// Opens a connection, sends [`post_bytes`], and returns the reader for the answer.
pub fn send_post(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> BufReader<TcpStream> {
    let mut s = connect(port);
    s.write_all(&post_bytes(path, headers, body)).unwrap();
    BufReader::new(s)
}

/// As [`post_as`], but `None` instead of a panic when the connection fails or the answer is cut
/// short (a gateway killed under load).
pub fn try_post(port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> Option<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(&post_bytes(path, headers, body)).ok()?;
    read_response(&mut BufReader::new(s))
}
