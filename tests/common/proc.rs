//! Processes: the real `tollgate` binary as gateway, mock and demo on free loopback ports, killed
//! (by PID, ours only) when their guard drops; readiness polled, never assumed after a sleep.

use super::config::*;
use super::http::{post_json, read_response, request, Response};
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: this build's, or `TOLLGATE_TEST_BIN` when set (to run the tests
/// against another build, e.g. to show that a test fails on the commit before a fix).
pub fn bin() -> String {
    std::env::var("TOLLGATE_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_tollgate").into())
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
    spawn_binary(&bin(), args, envs)
}

/// As [`spawn`], with a given binary.
pub fn spawn_binary(binary: &str, args: &[&str], envs: &[(&str, &str)]) -> Proc {
    let log = temp_dir().join("stderr.log");
    let err = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(binary);
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

pub fn wait_ready_tcp(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} never accepted");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `cond` every 10 ms until it holds; fails after `secs` seconds.
pub fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
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
        // The mock is the test's instrument: always this build's, whichever gateway is tested.
        let proc = spawn_binary(env!("CARGO_BIN_EXE_tollgate"), &args, &[]);
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
        Self::start_edited(backends, server_extra, state_extra, extra_yaml, env, &|y| y)
    }

    /// As [`GatewayServer::start_full`], with `edit` applied to the YAML before it is written
    /// (to move consumers between teams, say).
    pub fn start_edited(
        backends: &str,
        server_extra: &str,
        state_extra: &str,
        extra_yaml: &str,
        env: &[(&str, &str)],
        edit: &dyn Fn(String) -> String,
    ) -> GatewayServer {
        let port = free_port();
        let admin_port = free_port();
        let dir = temp_dir();
        let yaml = edit(gateway_yaml(
            &Ports { port, admin_port },
            &dir,
            backends,
            server_extra,
            state_extra,
            extra_yaml,
        ));
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

    /// The embedded database this gateway keeps its ledger and spend in.
    pub fn database(&self) -> PathBuf {
        self.config.with_file_name("tollgate.db")
    }
}

/// `tollgate demo` on `conf/demo.yaml`, moved to free ports and a temporary database.
pub struct DemoServer {
    pub port: u16,
    pub admin_port: u16,
    pub mock_port: u16,
    pub proc: Proc,
}

impl DemoServer {
    pub fn start() -> DemoServer {
        Self::start_with(&[])
    }

    /// As [`DemoServer::start`], with more arguments to `tollgate demo`.
    pub fn start_with(args: &[&str]) -> DemoServer {
        let (port, admin_port, mock_port) = (free_port(), free_port(), free_port());
        let dir = temp_dir();
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml"))
            .unwrap()
            .replace("127.0.0.1:9000", &format!("127.0.0.1:{port}"))
            .replace("127.0.0.1:9001", &format!("127.0.0.1:{admin_port}"))
            .replace("127.0.0.1:9100", &format!("127.0.0.1:{mock_port}"))
            .replace(
                "/tmp/tollgate-demo.db",
                &dir.join("tollgate.db").display().to_string(),
            );
        // Another build under test (`TOLLGATE_TEST_BIN`) may not know newer settings.
        let text = if std::env::var_os("TOLLGATE_TEST_BIN").is_some() {
            text.lines()
                .filter(|l| !l.trim_start().starts_with("forward_headers:"))
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            text
        };
        let path = dir.join("demo.yaml");
        std::fs::write(&path, text).unwrap();
        let mock_listen = format!("127.0.0.1:{mock_port}");
        let path = path.to_string_lossy();
        let mut all = vec!["demo", "-c", &path, "--mock-listen", &mock_listen];
        all.extend_from_slice(args);
        let proc = spawn(
            &all,
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

/// The JSON lines of an access-log file written so far (none before it exists).
pub fn log_lines(file: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Sums `key=N` over the gateway's per-request log lines (`tollgate::request`) that contain
/// `filter`.
pub fn sum_field(log: &str, filter: &str, key: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("tollgate::request") && l.contains(filter))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{key}=")))
        })
        .filter_map(|v| v.parse::<u64>().ok())
        .sum()
}

/// Waits until `n` requests are logged (one diagnostic line each) and the `tester` consumer has
/// nothing left reserved.
pub fn wait_settled_and_logged(gw: &GatewayServer, n: usize) {
    wait_until("every request is settled and logged", 20, || {
        gw.admin("/costs")["consumers"]["tester"]["reserved_usd"] == "0.000000"
            && gw.proc.log_text().matches("tollgate::request").count() == n
    });
}

/// The tokens (in and out) the gateway settled for requests whose log line names `model`.
pub fn settled_tokens(log: &str, model: &str) -> u64 {
    let filter = format!("model={model}");
    sum_field(log, &filter, "tokens_in") + sum_field(log, &filter, "tokens_out")
}

/// The tokens (prompt and completion) a mock's ledger counted.
pub fn ledger_tokens(mock: &MockServer) -> u64 {
    let truth = mock.ledger();
    truth["prompt_tokens"].as_u64().unwrap() + truth["completion_tokens"].as_u64().unwrap()
}

/// Runs `tests/sdk/<script> BASE_URL KEY_STANDARD MODEL` with `python` (trusting the CA file
/// `ca` over TLS, else without `TOLLGATE_CA`) and returns the JSON line it printed; a failing
/// script fails the test with its stderr.
pub fn run_sdk_script(
    python: &str,
    script: &str,
    base_url: &str,
    model: &str,
    ca: Option<&std::path::Path>,
) -> serde_json::Value {
    let path = format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(python);
    cmd.args([path.as_str(), base_url, KEY_STANDARD, model]);
    match ca {
        Some(ca) => cmd.env("TOLLGATE_CA", ca),
        None => cmd.env_remove("TOLLGATE_CA"),
    };
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{script} against {model} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The access log `log` once `n` requests are in it and the `tester` consumer has nothing left
/// reserved (waiting up to `secs`).
pub fn access_log_settled(
    gw: &GatewayServer,
    log: &std::path::Path,
    n: usize,
    secs: u64,
) -> Vec<serde_json::Value> {
    wait_until(
        "every request is settled and in the access log",
        secs,
        || {
            gw.admin("/costs")["consumers"]["tester"]["reserved_usd"] == "0.000000"
                && log_lines(log).len() >= n
        },
    );
    log_lines(log)
}

/// The Python with the official `openai` SDK (with the Responses API), or `None` to skip the
/// test when the SDK is not installed and `TOLLGATE_REQUIRE_SDK` is not set (`make test` sets
/// it after installing the SDK).
pub fn python_with_sdk() -> Option<String> {
    let python = std::env::var("TOLLGATE_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_sdk = Command::new(&python)
        .args(["-c", "import openai; openai.OpenAI(api_key='x').responses"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_sdk {
        assert!(
            std::env::var_os("TOLLGATE_REQUIRE_SDK").is_none(),
            "TOLLGATE_REQUIRE_SDK is set but `{python}` has no openai SDK (with responses)"
        );
        eprintln!("skipped: the openai Python SDK is not installed (make test installs it)");
        return None;
    }
    Some(python)
}
