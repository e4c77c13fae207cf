//! Test harness: the real `tollgate` binary as gateway and as mock, on free loopback ports, with
//! temp configs; processes are killed (by PID, ours only) when the guard drops. Readiness is
//! polled, never assumed after a sleep.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tollgate::digest::KeyDigest;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const KEY_STANDARD: &str = "tg-test-standard-key-5b7e1c";
pub const KEY_LIMITED: &str = "tg-test-limited-key-9f2d44";
/// A consumer held to 10,000 tokens a minute and $0.10 a day.
pub const KEY_METERED: &str = "tg-test-metered-key-31c0aa";
pub const BACKEND_SECRET: &str = "sk-backend-secret-for-tests";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tollgate")
}

/// A loopback port nobody listens on. Ports come from 20000–32767, below Linux's ephemeral range,
/// so a client connection can never be sitting on one, and a process-wide counter hands each out
/// once, so parallel tests in one binary never pick the same port.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Start at a per-process offset, so binaries run one after another use fresh ports too.
    let offset = (std::process::id() % 64) * 190;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (20_000 + (offset + n) % 12_768) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A child process killed on drop.
pub struct Proc {
    child: Child,
    pub log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (e.g. `HUP`, `TERM`) to this child.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{name} failed");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-test-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Proc {
    let log = temp_dir().join("stderr.log");
    let err = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Proc {
        child: cmd.spawn().unwrap(),
        log,
    }
}

/// Polls `GET path` until it answers 200, for at most 20 s.
pub fn wait_ready(port: u16, path: &str, token: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() {
                if let Some(r) = read_response(&mut BufReader::new(s)) {
                    if r.status == 200 {
                        return;
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "port {port} never became ready on {path}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct MockServer {
    pub port: u16,
    pub proc: Proc,
}

impl MockServer {
    pub fn start(extra: &[&str]) -> MockServer {
        Self::start_on(free_port(), extra)
    }

    /// A mock on a given port (to bring a stopped backend back where it was).
    pub fn start_on(port: u16, extra: &[&str]) -> MockServer {
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["mock", "--listen", &listen];
        args.extend_from_slice(extra);
        let proc = spawn(&args, &[]);
        if !extra.contains(&"--tls-cert") {
            wait_ready(port, "/health", None);
        } else {
            wait_ready_tcp(port);
        }
        MockServer { port, proc }
    }

    /// Requests the mock has seen.
    pub fn requests(&self) -> u64 {
        self.ledger()["requests"].as_u64().unwrap_or(0)
    }

    pub fn ledger(&self) -> serde_json::Value {
        let r = request(self.port, "GET", "/ledger", &[], b"");
        serde_json::from_slice(&r.body).unwrap()
    }
}

pub struct GatewayServer {
    pub port: u16,
    pub admin_port: u16,
    pub proc: Proc,
    config: PathBuf,
    envs: Vec<(String, String)>,
}

/// One OpenAI backend serving `gpt-4o` (YAML list item), with extra lines (indented by four).
pub fn openai_backend(id: &str, port: u16, priority: u32, weight: u32, extra: &str) -> String {
    format!(
        "  - id: {id}\n    url: \"http://127.0.0.1:{port}\"\n    protocol: openai\n    models: [gpt-4o]\n    priority: {priority}\n    weight: {weight}\n    max_context_tokens: {LARGE_CONTEXT}\n{extra}"
    )
}

/// Backends section for a mock on `mock_port`: an OpenAI backend (with a credential) serving
/// `gpt-4`/`gpt-4o`, and a lab agent serving `default`.
/// The test backends' context: large enough for the multi-MiB bodies the body tests send (the
/// default, 128,000 tokens, would refuse them before forwarding).
pub const LARGE_CONTEXT: u64 = 4_000_000;

pub fn backends_for(mock_port: u16) -> String {
    format!(
        r#"backends:
  - id: mock-openai
    url: "http://127.0.0.1:{mock_port}"
    protocol: openai
    models: [gpt-4, gpt-4o]
    credential_env: TG_TEST_BACKEND_KEY
    max_context_tokens: {LARGE_CONTEXT}
  - id: agent
    url: "http://127.0.0.1:{mock_port}"
    protocol: lab-agent
    models: [default]
    max_context_tokens: {LARGE_CONTEXT}
"#
    )
}

impl GatewayServer {
    /// Starts the gateway with three consumers (`KEY_STANDARD`: all models, generous limits;
    /// `KEY_LIMITED`: `gpt-4o` and `default` only; `KEY_METERED`: 10,000 tokens a minute and
    /// $0.10 a day), `backends` (YAML) and `server_extra` lines (indented by two spaces) added
    /// under `server:`.
    pub fn start(backends: &str, server_extra: &str) -> GatewayServer {
        Self::start_with(backends, server_extra, "", &[])
    }

    pub fn start_with_env(
        backends: &str,
        server_extra: &str,
        env: &[(&str, &str)],
    ) -> GatewayServer {
        Self::start_with(backends, server_extra, "", env)
    }

    /// As [`GatewayServer::start`], with `extra_yaml` appended at the top level (filter, cache…).
    pub fn start_with(
        backends: &str,
        server_extra: &str,
        extra_yaml: &str,
        env: &[(&str, &str)],
    ) -> GatewayServer {
        Self::start_full(backends, server_extra, "", extra_yaml, env)
    }

    /// As [`GatewayServer::start_with`], with `state_extra` lines (indented by two) added to the
    /// `state:` section.
    pub fn start_full(
        backends: &str,
        server_extra: &str,
        state_extra: &str,
        extra_yaml: &str,
        env: &[(&str, &str)],
    ) -> GatewayServer {
        let port = free_port();
        let admin_port = free_port();
        let dir = temp_dir();
        let yaml = format!(
            r#"server:
  listen: "127.0.0.1:{port}"
  threads: 2
{grace}{server_extra}
  admin:
    listen: "127.0.0.1:{admin_port}"
    token_sha256: "{admin}"
consumers:
  - id: tester
    team: QA
    key_sha256: "{k1}"
    daily_budget_usd: 100
    tokens_per_minute: 100000000
    tokens_per_hour: 100000000
    tokens_per_day: 100000000
  - id: limited
    team: Interns
    key_sha256: "{k2}"
    daily_budget_usd: 1
    allowed_models: [gpt-4o, default]
  - id: metered
    team: Metered
    key_sha256: "{k3}"
    daily_budget_usd: "0.10"
    tokens_per_minute: 10000
    tokens_per_hour: 100000
    tokens_per_day: 500000
pricing:
  gpt-4: {{input_per_million_usd: 30, output_per_million_usd: 60}}
  default: {{input_per_million_usd: "0.01", output_per_million_usd: "0.02"}}
state:
  spend_file: "{spend}"
  persist_interval_ms: 50
{state_extra}
{backends}
{extra_yaml}"#,
            admin = KeyDigest::of(ADMIN_TOKEN.as_bytes()).to_hex(),
            k1 = KeyDigest::of(KEY_STANDARD.as_bytes()).to_hex(),
            k2 = KeyDigest::of(KEY_LIMITED.as_bytes()).to_hex(),
            k3 = KeyDigest::of(KEY_METERED.as_bytes()).to_hex(),
            spend = dir.join("spend.json").display(),
            grace = if server_extra.contains("grace_period_seconds") {
                ""
            } else {
                "  grace_period_seconds: 0\n"
            },
        );
        let path = dir.join("tollgate.yaml");
        std::fs::write(&path, yaml).unwrap();
        let mut envs: Vec<(String, String)> = vec![
            ("TG_TEST_BACKEND_KEY".into(), BACKEND_SECRET.into()),
            ("RUST_LOG".into(), "trace".into()),
        ];
        envs.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Self::spawn_at(&path, port, admin_port, envs)
    }

    fn spawn_at(
        path: &std::path::Path,
        port: u16,
        admin_port: u16,
        envs: Vec<(String, String)>,
    ) -> GatewayServer {
        let path_s = path.to_string_lossy().to_string();
        let env_refs: Vec<(&str, &str)> =
            envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let proc = spawn(&["run", "-c", &path_s], &env_refs);
        wait_ready(admin_port, "/ready", Some(ADMIN_TOKEN));
        wait_ready_tcp(port);
        GatewayServer {
            port,
            admin_port,
            proc,
            config: path.to_path_buf(),
            envs,
        }
    }

    /// Kills the gateway (SIGKILL: no chance to flush anything) and starts it again on the same
    /// configuration and ports.
    pub fn restart(self) -> GatewayServer {
        let GatewayServer {
            port,
            admin_port,
            proc,
            config,
            envs,
        } = self;
        drop(proc);
        Self::spawn_at(&config, port, admin_port, envs)
    }

    /// `method path` on the admin plane with the admin token.
    fn admin_request(&self, method: &str, path: &str) -> Response {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        request(
            self.admin_port,
            method,
            path,
            &[("Authorization", &auth)],
            b"",
        )
    }

    /// `POST /admin/reload`, authenticated.
    pub fn reload(&self) -> Response {
        self.admin_request("POST", "/admin/reload")
    }

    /// `GET path` on the admin plane as text (e.g. `/metrics`).
    pub fn admin_text(&self, path: &str) -> String {
        let r = self.admin_request("GET", path);
        assert_eq!(r.status, 200, "{path}");
        r.body_text()
    }

    pub fn admin(&self, path: &str) -> serde_json::Value {
        let r = self.admin_request("GET", path);
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// The configuration file this gateway runs on.
    pub fn config_path(&self) -> &std::path::Path {
        &self.config
    }

    /// The active configuration's version (`GET /admin/config`).
    pub fn version(&self) -> String {
        self.admin("/admin/config")["version"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The spend file this gateway persists to.
    pub fn spend_file(&self) -> PathBuf {
        self.config.with_file_name("spend.json")
    }
}

pub fn wait_ready_tcp(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} never accepted");
        std::thread::sleep(Duration::from_millis(20));
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
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
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
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&post_bytes(path, headers, body)).unwrap();
    BufReader::new(s)
}

/// Polls `cond` every 10 ms until it holds; fails after `secs` seconds.
pub fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `tollgate demo` on `conf/demo.yaml`, moved to free ports and a temporary spend file.
pub struct DemoServer {
    pub port: u16,
    pub admin_port: u16,
    pub mock_port: u16,
    pub proc: Proc,
}

impl DemoServer {
    pub fn start() -> DemoServer {
        let (port, admin_port, mock_port) = (free_port(), free_port(), free_port());
        let dir = temp_dir();
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml"))
            .unwrap()
            .replace("127.0.0.1:9000", &format!("127.0.0.1:{port}"))
            .replace("127.0.0.1:9001", &format!("127.0.0.1:{admin_port}"))
            .replace("127.0.0.1:9100", &format!("127.0.0.1:{mock_port}"))
            .replace(
                "/tmp/tollgate-demo-spend.json",
                &dir.join("spend.json").display().to_string(),
            );
        let path = dir.join("demo.yaml");
        std::fs::write(&path, text).unwrap();
        let mock_listen = format!("127.0.0.1:{mock_port}");
        let proc = spawn(
            &[
                "demo",
                "-c",
                &path.to_string_lossy(),
                "--mock-listen",
                &mock_listen,
            ],
            // The per-request diagnostic line is at debug.
            &[("RUST_LOG", "info,tollgate::request=debug")],
        );
        wait_ready(admin_port, "/ready", Some("demo-admin-token"));
        wait_ready(mock_port, "/health", None);
        wait_ready_tcp(port);
        DemoServer {
            port,
            admin_port,
            mock_port,
            proc,
        }
    }

    pub fn chat(&self, key: &str, message: &str, session: &str) -> Response {
        let body = serde_json::json!({"message": message, "session_id": session}).to_string();
        post_json(self.port, "/chat", Some(key), &body)
    }
}

/// Fires one chat-completions request per port in `ports` (a port may repeat), all at once;
/// returns the responses in order.
pub fn burst(ports: &[u16], headers: &[(&str, &str)], body: &str) -> Vec<Response> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(ports.len()));
    let handles: Vec<_> = ports
        .iter()
        .map(|&port| {
            let barrier = barrier.clone();
            let h: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let body = body.to_string();
            std::thread::spawn(move || {
                let hs: Vec<(&str, &str)> =
                    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                barrier.wait();
                request(port, "POST", "/v1/chat/completions", &hs, body.as_bytes())
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Waits, if needed, so that a burst starting now does not straddle a minute boundary.
pub fn away_from_a_minute_boundary() {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if secs % 60 >= 50 {
        std::thread::sleep(Duration::from_secs(61 - secs % 60));
    }
}
