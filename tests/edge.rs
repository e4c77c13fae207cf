//! The gateway as an edge daemon: TLS on its listeners (a CA made for the test), HTTP/2 by ALPN
//! and by prior knowledge, certificate rotation by SIGHUP under load. Clients are `curl` and
//! `openssl s_client`, which `make test` installs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const CHAT: &str =
    r#"{"model":"gpt-4o","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#;
const STREAM: &str = r#"{"model":"gpt-4o","stream":true,"max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#;

/// `curl` with `args`: (exit success, stdout).
fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl is installed by `make test`");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// POSTs `body` to `url` as `KEY_STANDARD`, past the cache, with the curl options `extra`: the
/// answer, and a line with the HTTP version and status.
fn call(url: &str, body: &str, extra: &[&str]) -> (String, String) {
    let auth = format!("Authorization: Bearer {KEY_STANDARD}");
    let mut args = vec![
        "-N",
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "-H",
        "Cache-Control: no-store",
        "-d",
        body,
        "-w",
        "\n%{http_version} %{http_code}",
        url,
    ];
    args.extend_from_slice(extra);
    let (ok, out) = curl(&args);
    assert!(ok, "curl {args:?}: {out}");
    let (answer, last) = out.rsplit_once('\n').unwrap();
    (answer.to_string(), last.to_string())
}

/// A chat request over TLS on `port`, trusting `ca`, with the curl options `extra`.
fn ask(ca: &TestCa, port: u16, body: &str, extra: &[&str]) -> (String, String) {
    let url = format!("https://127.0.0.1:{port}/v1/chat/completions");
    let ca = ca.cert_str();
    let mut all = vec!["--cacert", ca.as_str()];
    all.extend_from_slice(extra);
    call(&url, body, &all)
}

fn tls_lines(pair: &Issued) -> String {
    format!("  tls: {}", pair.tls_yaml(""))
}

/// The subject of the certificate a fresh handshake on `port` gets.
fn served_subject(port: u16) -> String {
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "echo | openssl s_client -connect 127.0.0.1:{port} 2>/dev/null | openssl x509 -noout -subject"
            ),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn tls_serves_http1_and_http2_with_streams_and_refuses_tls_1_1() {
    let ca = TestCa::new("Edge Test CA");
    let pair = ca.server("server");
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), &tls_lines(&pair));

    let (answer, line) = ask(&ca, gw.port, CHAT, &["--http2"]);
    assert_eq!(line, "2 200", "ALPN picks HTTP/2: {answer}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&answer).unwrap()["object"],
        "chat.completion"
    );
    let (_, line) = ask(&ca, gw.port, CHAT, &["--http1.1"]);
    assert_eq!(line, "1.1 200");
    for version in ["--http2", "--http1.1"] {
        let (stream, line) = ask(&ca, gw.port, STREAM, &["-N", version]);
        assert!(line.ends_with(" 200"), "{version}: {line}");
        assert!(
            stream.trim_end().ends_with("data: [DONE]"),
            "{version}: {stream}"
        );
        assert!(
            stream.contains("chat.completion.chunk"),
            "{version}: {stream}"
        );
    }
    // Each is accounted once, whatever the protocol: four requests settled.
    wait_until("four requests settled", 5, || {
        gw.admin("/stats")["aggregate"]["total_requests"] == 4
    });
    // Plain HTTP on the TLS port is not answered as a request.
    let (ok, out) = curl(&[&format!("http://127.0.0.1:{}/health", gw.port)]);
    assert!(!ok || !out.contains("\"status\""), "{out}");
    // TLS 1.2 is accepted; TLS 1.1 is refused by the server.
    let handshake = |flag: &str| {
        let out = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "echo | openssl s_client -connect 127.0.0.1:{} {flag} -cipher DEFAULT@SECLEVEL=0 2>&1",
                    gw.port
                ),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let v12 = handshake("-tls1_2");
    assert!(
        v12.contains("Protocol  : TLSv1.2") || v12.contains("TLSv1.2"),
        "{v12}"
    );
    assert!(!v12.contains("Cipher is (NONE)"), "{v12}");
    let v11 = handshake("-tls1_1");
    assert!(v11.contains("alert"), "refused with an alert: {v11}");
    assert!(
        !v11.contains("Protocol  : TLSv1.1\n    Cipher    : E"),
        "{v11}"
    );
}

#[test]
fn a_certificate_rotated_by_sighup_reaches_new_handshakes_with_no_failed_request() {
    let ca = TestCa::new("Rotation CA");
    let first = ca.issue(
        "first",
        "/CN=first",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
    );
    let second = ca.issue(
        "second",
        "/CN=second",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
    );
    // The gateway reads the pair from fixed paths, rewritten in place by the rotation.
    let live = Issued {
        cert: ca.dir.join("live.pem"),
        key: ca.dir.join("live.key"),
    };
    std::fs::copy(&first.cert, &live.cert).unwrap();
    std::fs::copy(&first.key, &live.key).unwrap();
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), &tls_lines(&live));
    assert!(served_subject(gw.port).contains("CN = first"));

    // Clients keep asking, each on new connections (new handshakes), while the pair rotates.
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
            let (ca_file, port) = (ca.cert_str(), gw.port);
            std::thread::spawn(move || {
                let url = format!("https://127.0.0.1:{port}/v1/chat/completions");
                let auth = format!("Authorization: Bearer {KEY_STANDARD}");
                while !stop.load(Ordering::Relaxed) {
                    // Three requests per connection: one handshake, then keep-alive.
                    let one = [
                        "--cacert",
                        &ca_file,
                        "-H",
                        &auth,
                        "-H",
                        "Cache-Control: no-store",
                        "-d",
                        CHAT,
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}\n",
                        &url,
                    ];
                    let mut args: Vec<&str> = one.to_vec();
                    for _ in 0..2 {
                        args.push("--next");
                        args.extend_from_slice(&one);
                    }
                    let (ok, out) = curl(&args);
                    let codes: Vec<&str> = out.lines().collect();
                    if ok && codes.len() == 3 && codes.iter().all(|c| *c == "200") {
                        done.fetch_add(3, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed: {out}");
                    }
                }
            })
        })
        .collect();
    wait_until("the clients are under way", 10, || {
        done.load(Ordering::Relaxed) >= 15
    });
    // A broken pair first: refused, and the running configuration and certificate stay.
    std::fs::write(&live.key, "not a key").unwrap();
    gw.proc.signal("HUP");
    wait_until("the bad pair is reported", 5, || {
        gw.proc.log_text().contains("server.tls.key_file")
    });
    assert!(
        served_subject(gw.port).contains("CN = first"),
        "the old pair serves on"
    );
    // Then the new pair.
    std::fs::copy(&second.key, &live.key).unwrap();
    std::fs::copy(&second.cert, &live.cert).unwrap();
    gw.proc.signal("HUP");
    wait_until("new handshakes get the new certificate", 10, || {
        served_subject(gw.port).contains("CN = second")
    });
    let rotated = done.load(Ordering::Relaxed);
    wait_until("more requests after the rotation", 10, || {
        done.load(Ordering::Relaxed) >= rotated + 15
    });
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed");
    assert!(done.load(Ordering::Relaxed) >= 30, "{done:?} requests");
}

#[test]
fn h2c_by_prior_knowledge_beside_http1_on_a_plain_listener() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "  h2c: true");
    let url = format!("http://127.0.0.1:{}/v1/chat/completions", gw.port);
    for (flag, version) in [("--http2-prior-knowledge", "2"), ("--http1.1", "1.1")] {
        let (answer, line) = call(&url, STREAM, &[flag]);
        assert_eq!(line, format!("{version} 200"), "{flag}: {answer}");
        assert!(answer.contains("data: [DONE]"), "{flag}: {answer}");
    }
    // A short HTTP/1.0 request (shorter than the HTTP/2 preface) is answered, not held.
    let (status, _) = raw(gw.port, b"GET /health HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200);
}

/// The access-log entry of the gateway's `n`th request (from `/stats`, once it is recorded).
fn entry(gw: &GatewayServer, n: usize) -> serde_json::Value {
    let mut found = serde_json::Value::Null;
    wait_until("the request is recorded", 5, || {
        let stats = gw.admin("/stats");
        found = stats["recent_entries"][n - 1].clone();
        !found.is_null()
    });
    found
}

/// Among the first `n` recorded requests (once `n` are), the one whose `field` is `value`, else
/// null: requests are recorded when each finishes, so a refusal may be recorded before the answer
/// sent just ahead of it.
fn recorded_with(gw: &GatewayServer, n: usize, field: &str, value: &str) -> serde_json::Value {
    entry(gw, n);
    let stats = gw.admin("/stats");
    stats["recent_entries"]
        .as_array()
        .into_iter()
        .flatten()
        .take(n)
        .find(|e| e[field] == value)
        .cloned()
        .unwrap_or_default()
}

/// A chat request as `key` on a fresh connection, with extra headers.
fn chat_as(port: u16, key: &str, headers: &[(&str, &str)]) -> Response {
    let mut all = vec![("X-API-Key", key)];
    all.extend_from_slice(headers);
    post_as(port, "/v1/chat/completions", &all, CHAT)
}

#[test]
fn a_trusted_proxy_names_the_client_an_untrusted_one_does_not_and_ip_rules_hold() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(
        &backends_for(mock.port),
        "  trusted_proxies: [\"127.0.0.1/32\", \"10.0.0.0/8\"]\n  deny_ips: [\"203.0.113.0/24\"]\n  forward_client_address: true",
    );
    // The peer (127.0.0.1) is trusted: the rightmost untrusted hop is the client.
    let r = chat_as(
        gw.port,
        KEY_STANDARD,
        &[("X-Forwarded-For", "192.0.2.1, 198.51.100.7, 10.1.2.3")],
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(entry(&gw, 1)["client_ip"], "198.51.100.7");
    // The backend gets the chain as received plus the peer, and nothing the client forged
    // beyond it.
    let seen = &mock.ledger()["last_request"]["header_sha256"];
    assert_eq!(
        seen["x-forwarded-for"],
        sha256_hex(b"192.0.2.1, 198.51.100.7, 10.1.2.3, 127.0.0.1")
    );
    // The deny list refuses the client before its key is even looked at.
    let r = chat_as(
        gw.port,
        "no-such-key",
        &[("X-Forwarded-For", "203.0.113.9")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "client_denied");

    // A consumer bound to addresses: refused from elsewhere, with a clear message, and logged.
    let path = gw.config_path().to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "  - id: limited\n",
        "  - id: limited\n    allowed_ips: [\"198.51.100.0/24\"]\n",
    );
    std::fs::write(&path, text).unwrap();
    assert_eq!(gw.reload().status, 200);
    let inside = chat_as(
        gw.port,
        KEY_LIMITED,
        &[("X-Forwarded-For", "198.51.100.20")],
    );
    assert_eq!(inside.status, 200, "{}", inside.body_text());
    let outside = chat_as(gw.port, KEY_LIMITED, &[("X-Forwarded-For", "192.0.2.50")]);
    assert_eq!(outside.status, 403);
    let body = outside.json();
    assert_eq!(body["error"]["code"], "address_not_allowed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'limited'"),
        "{body}"
    );
    assert_eq!(
        recorded_with(&gw, 4, "error", "address_not_allowed")["error"],
        "address_not_allowed"
    );
    assert!(gw.proc.log_text().contains("outside its allowed_ips"));

    // Without trusted proxies, the same header is the client's own claim: ignored, and not
    // passed on; the backend hears of the peer only.
    let plain = GatewayServer::start(&backends_for(mock.port), "  forward_client_address: true");
    let r = chat_as(
        plain.port,
        KEY_STANDARD,
        &[("X-Forwarded-For", "198.51.100.7")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(entry(&plain, 1)["client_ip"], "127.0.0.1");
    let seen = &mock.ledger()["last_request"]["header_sha256"];
    assert_eq!(seen["x-forwarded-for"], sha256_hex(b"127.0.0.1"));
}

/// A PROXY protocol v2 header for a TCP4 connection from `src` to `dst`.
fn proxy_v2(src: ([u8; 4], u16), dst: ([u8; 4], u16)) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&src.0);
    h.extend_from_slice(&dst.0);
    h.extend_from_slice(&src.1.to_be_bytes());
    h.extend_from_slice(&dst.1.to_be_bytes());
    h
}

#[test]
fn the_proxy_protocol_names_the_client_for_trusted_peers_only() {
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(
        &backends_for(mock.port),
        "  trusted_proxies: [\"127.0.0.1/32\"]\n  proxy_protocol: true",
    );
    // v2, then the request on the same connection.
    let mut bytes = proxy_v2(([192, 0, 2, 55], 40_000), ([127, 0, 0, 1], gw.port));
    bytes.extend_from_slice(&post_bytes(
        "/v1/chat/completions",
        &[("Connection", "close")],
        CHAT,
    ));
    let (status, answer) = raw(gw.port, &bytes);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(entry(&gw, 1)["client_ip"], "192.0.2.55");
    // v1, as curl sends it (the real addresses).
    let (ok, out) = curl(&[
        "--haproxy-protocol",
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        &format!("http://127.0.0.1:{}/health", gw.port),
    ]);
    assert!(ok && out == "200", "{out}");
    // A trusted peer that sends no header is not served: the request is not taken for one.
    let (status, answer) = raw(
        gw.port,
        &post_bytes("/v1/chat/completions", &[("Connection", "close")], CHAT),
    );
    assert_ne!(status, 200, "{answer}");
}

#[test]
fn mutual_tls_identifies_consumers_by_certificate_and_refuses_the_wrong_ones() {
    let ca = TestCa::new("Server CA");
    let server = ca.server("server");
    let clients = TestCa::new("Client CA");
    let robot = clients.issue(
        "robot",
        "/CN=robot/O=Corp",
        "subjectAltName=URI:spiffe://corp/ns/a/sa/bot\nextendedKeyUsage=clientAuth",
    );
    let limited = clients.issue(
        "limited",
        "/CN=limited-client/O=Corp",
        "extendedKeyUsage=clientAuth",
    );
    let stranger =
        TestCa::new("Other CA").issue("x", "/CN=robot/O=Corp", "extendedKeyUsage=clientAuth");
    let tls = |auth: &str| {
        let ca = format!(
            ", client_ca_file: \"{}\", client_auth: {auth}",
            clients.cert_str()
        );
        format!("  tls: {}", server.tls_yaml(&ca))
    };
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), &tls("optional"));
    // A consumer known by its certificate alone, and one whose key also needs its certificate.
    let path = gw.config_path().to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap()
        .replace(
            "  - id: limited\n",
            "  - id: robot\n    team: Robots\n    client_cert: {uri: \"spiffe://corp/ns/a/sa/bot\"}\n  - id: limited\n    client_cert: {subject: \"CN=limited-client, O=Corp\"}\n",
        );
    std::fs::write(&path, text).unwrap();
    assert_eq!(gw.reload().status, 200, "{}", gw.proc.log_text());

    let url = format!("https://127.0.0.1:{}/v1/chat/completions", gw.port);
    let ca_file = ca.cert_str();
    let call = |cert: Option<&Issued>, key: Option<&str>| -> (bool, String) {
        let mut args: Vec<String> = [
            "--cacert",
            &ca_file,
            "-H",
            "Content-Type: application/json",
            "-H",
            "Cache-Control: no-store",
            "-d",
            CHAT,
            "-w",
            "\n%{http_code}",
            &url,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(c) = cert {
            args.extend(["--cert".into(), c.cert_str(), "--key".into(), c.key_str()]);
        }
        if let Some(k) = key {
            args.extend(["-H".into(), format!("Authorization: Bearer {k}")]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&refs)
    };
    let (ok, out) = call(Some(&robot), None);
    assert!(
        ok && out.ends_with("\n200"),
        "the certificate is the credential: {out}"
    );
    assert_eq!(entry(&gw, 1)["consumer_id"], "robot");
    let (ok, out) = call(None, None);
    assert!(ok && out.ends_with("\n401"), "{out}");
    let (ok, out) = call(None, Some(KEY_LIMITED));
    assert!(
        ok && out.ends_with("\n403"),
        "the key alone is not enough: {out}"
    );
    assert!(out.contains("certificate_required"), "{out}");
    let (ok, out) = call(Some(&robot), Some(KEY_LIMITED));
    assert!(
        ok && out.ends_with("\n403"),
        "another consumer's certificate: {out}"
    );
    let (ok, out) = call(Some(&limited), Some(KEY_LIMITED));
    assert!(ok && out.ends_with("\n200"), "{out}");
    // Keys alone still work for consumers not bound to a certificate.
    let (ok, out) = call(None, Some(KEY_STANDARD));
    assert!(ok && out.ends_with("\n200"), "{out}");
    // A certificate from another CA fails the handshake.
    let (ok, out) = call(Some(&stranger), None);
    assert!(!ok, "{out}");

    // Required: no certificate, no handshake.
    let strict = GatewayServer::start(&backends_for(mock.port), &tls("required"));
    let url = format!("https://127.0.0.1:{}/health", strict.port);
    let (ok, _) = curl(&["--cacert", &ca_file, &url]);
    assert!(!ok, "refused without a certificate");
    let (ok, out) = curl(&[
        "--cacert",
        &ca_file,
        "--cert",
        &limited.cert_str(),
        "--key",
        &limited.key_str(),
        &url,
    ]);
    assert!(ok && out.contains("\"ok\""), "{out}");
}

#[test]
fn the_demo_serves_tls_with_a_certificate_it_makes() {
    let dir = temp_dir().join("demo-tls");
    let dir_s = dir.display().to_string();
    let demo = DemoServer::start_with(&["--tls", "--tls-dir", &dir_s]);
    let ca = dir.join("ca.pem").display().to_string();
    let (ok, out) = curl(&[
        "--cacert",
        &ca,
        "-w",
        "\n%{http_version}",
        &format!("https://localhost:{}/health", demo.port),
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("\"status\":\"ok\"") && out.ends_with("\n2"),
        "{out}"
    );
    // The configuration it serves is the demo's with the certificate added.
    let served = std::fs::read_to_string(dir.join("demo-tls.yaml")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = |f: &str| std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        (mode("key.pem"), mode(".")),
        (0o600, 0o700),
        "only its user reads the key"
    );
    assert!(served.contains("tollgate demo --tls") && served.contains("lab_endpoints: true"));
}

#[test]
fn a_reload_that_drops_tls_keeps_the_running_listener_serving_it() {
    let ca = TestCa::new("Reload CA");
    let pair = ca.server("server");
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), &tls_lines(&pair));
    let path = gw.config_path().to_path_buf();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&tls_lines(&pair), "");
    std::fs::write(&path, text).unwrap();
    let r = gw.reload();
    assert_eq!(r.status, 200);
    assert!(
        r.body_text().contains("server.tls"),
        "reported as not applied: {}",
        r.body_text()
    );
    let (_, line) = ask(&ca, gw.port, CHAT, &[]);
    assert_eq!(line, "2 200", "new handshakes still get the certificate");
}

#[test]
fn every_route_works_over_http2_and_is_accounted_as_over_http1() {
    let ca = TestCa::new("Routes CA");
    let pair = ca.server("server");
    let mock = MockServer::start(&[]);
    let backends = format!(
        "{}  - id: claude\n    url: \"http://127.0.0.1:{port}\"\n    protocol: anthropic\n    models: [claude-sonnet]\n    credential_env: TG_TEST_BACKEND_KEY\n  - id: embedder\n    url: \"http://127.0.0.1:{port}\"\n    protocol: openai\n    models: [text-embedding-3-small]\n",
        backends_for(mock.port),
        port = mock.port
    );
    let routes = [
        ("/v1/chat/completions", CHAT),
        ("/v1/chat/completions", STREAM),
        ("/chat", r#"{"message":"hello there","session_id":"h2"}"#),
        (
            "/v1/messages",
            r#"{"model":"claude-sonnet","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#,
        ),
        (
            "/v1/messages",
            r#"{"model":"claude-sonnet","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        ),
        (
            "/v1/embeddings",
            r#"{"model":"text-embedding-3-small","input":"hello"}"#,
        ),
        (
            "/v1/responses",
            r#"{"model":"gpt-4","input":"hi","max_output_tokens":8}"#,
        ),
        (
            "/v1/responses",
            r#"{"model":"gpt-4","input":"hi","stream":true,"max_output_tokens":8}"#,
        ),
    ];
    // The same requests over HTTP/1.1 (plain) and HTTP/2 (TLS): the same tokens and cost.
    let mut totals = Vec::new();
    for tls in [false, true] {
        let extra = if tls { tls_lines(&pair) } else { String::new() };
        let gw = GatewayServer::start(&backends, &extra);
        let scheme = if tls { "https" } else { "http" };
        let ca_file = ca.cert_str();
        let options: &[&str] = if tls {
            &["--cacert", &ca_file, "--http2"]
        } else {
            &[]
        };
        for (path, body) in routes {
            let url = format!("{scheme}://127.0.0.1:{}{path}", gw.port);
            let (answer, line) = call(&url, body, options);
            let want = if tls { "2 200" } else { "1.1 200" };
            assert_eq!(line, want, "{path} {body}: {answer}");
        }
        let mut costs = serde_json::Value::Null;
        wait_until("every request settled", 5, || {
            costs = gw.admin("/costs")["consumers"]["tester"].clone();
            costs["recent_requests"].as_array().map(Vec::len) == Some(routes.len())
                && costs["reserved_usd"] == "0.000000"
        });
        let stats = gw.admin("/stats")["aggregate"].clone();
        totals.push((
            costs["spent_today_nanos"].clone(),
            stats["total_input_tokens"].clone(),
            stats["total_output_tokens"].clone(),
        ));
    }
    assert_eq!(
        totals[0], totals[1],
        "HTTP/1.1 and HTTP/2 are accounted alike"
    );
    assert_ne!(totals[0].0, 0);
}

#[test]
fn the_admin_plane_can_speak_tls_too() {
    let ca = TestCa::new("Admin CA");
    let pair = ca.server("admin");
    let mock = MockServer::start(&[]);
    let (_gw, _port, admin_port) = gateway_with_admin_tls(&pair, mock.port);
    let url = format!("https://127.0.0.1:{admin_port}/ready");
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let ca_file = ca.cert_str();
    let mut answer = String::new();
    wait_until("the admin plane answers over TLS", 20, || {
        let (ok, out) = curl(&["--cacert", &ca_file, "-H", &auth, &url]);
        answer = out;
        ok && answer.contains("\"ready\"")
    });
    let (ok, out) = curl(&[&format!("http://127.0.0.1:{admin_port}/ready"), "-H", &auth]);
    assert!(!ok || !out.contains("\"ready\""), "not in clear: {out}");
}

#[test]
fn an_http2_client_that_sends_no_preface_is_cut_at_the_header_deadline() {
    let ca = TestCa::new("Preface CA");
    let pair = ca.server("server");
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(
        &backends_for(mock.port),
        &format!(
            "{}\n  timeouts:\n    client_header_ms: 800",
            tls_lines(&pair)
        ),
    );
    // ALPN h2, then silence: the stdin pipe stays open, so only the server can end this.
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-alpn",
            "h2",
            "-connect",
            &format!("127.0.0.1:{}", gw.port),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut closed = false;
    while started.elapsed() < std::time::Duration::from_secs(8) {
        if client.try_wait().unwrap().is_some() {
            closed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = client.kill();
    let _ = client.wait();
    assert!(closed, "the connection was still open after 8 s");
    assert!(started.elapsed() >= std::time::Duration::from_millis(700));
    // A real HTTP/2 client is unaffected.
    let (_, line) = ask(&ca, gw.port, CHAT, &["--http2"]);
    assert_eq!(line, "2 200");
}
