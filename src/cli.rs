//! The command line: `run`, `check`, `hash-key`, `mock`, `demo`, and `keys` (the admin API's
//! key routes; in [`crate::keys_cli`]).

use crate::config::Problem;
use crate::digest::{generate_key, KeyDigest};
use crate::mock::MockOptions;
use crate::runtime::{self, Runtime};
use crate::server::{self, MockService};
use crate::stages::filter::eval;
use clap::{Args, Parser, Subcommand};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "An AI gateway: auth, content policy, token limits, budgets, caching and routing for LLM traffic"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway daemon.
    Run {
        /// Configuration file.
        #[arg(short, long, default_value = "conf/tollgate.yaml")]
        config: PathBuf,
        /// Detach into the background (the SIGHUP handler is installed after the fork).
        #[arg(short, long)]
        daemon: bool,
        /// Where the daemon writes its process id.
        #[arg(long, default_value = "/tmp/tollgate.pid")]
        pid_file: PathBuf,
        /// Take over the listening sockets of a running instance (graceful upgrade: start the
        /// new binary with this flag, then send SIGQUIT to the old one).
        #[arg(short, long)]
        upgrade: bool,
        /// The socket the old and new instances hand listeners over on.
        #[arg(long, default_value = "/tmp/tollgate_upgrade.sock")]
        upgrade_sock: PathBuf,
    },
    /// Validate a configuration file; print every problem with its YAML path.
    Check {
        /// Configuration file.
        #[arg(short, long, default_value = "conf/tollgate.yaml")]
        config: PathBuf,
    },
    /// Run a labelled corpus (JSON lines: {"text", "label"}) through the configuration's content
    /// filter and report detection per attack label and false positives on `benign`: by the
    /// rules, by the classifier (when configured) and by both together.
    EvalFilter {
        /// The corpus.
        file: PathBuf,
        /// Configuration whose `content_filter` rules are measured.
        #[arg(short, long, default_value = "conf/demo.yaml")]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also list the texts the filter got wrong (missed attacks, caught benign texts).
        #[arg(long)]
        wrong: bool,
        /// A rule pack (`replaces: [ids]`, `rules: [...]`) applied to the configuration's rules
        /// first, e.g. `conf/filter-intent-rules.yaml`.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// The role whose classifier threshold is measured.
        #[arg(long, default_value = "standard")]
        role: String,
    },
    /// Print the text the content filter and the classifier read: each JSON line's `text`
    /// normalised (NFKC, case folded, look-alike letters folded, whitespace collapsed, long
    /// base64 runs decoded and appended), as one JSON line `{"text": ...}` per input line.
    Normalize {
        /// The shortest base64 run decoded (the configuration's `base64_min_len`).
        #[arg(long, default_value_t = crate::config::file::DEFAULT_BASE64_MIN_LEN)]
        base64_min_len: usize,
    },
    /// Print the SHA-256 digest of an API key for `key_sha256`; with no key, generate one.
    HashKey {
        /// The key to hash; `-` reads it from standard input (keeps it out of shell history).
        key: Option<String>,
    },
    /// Copy the embedded database (ledger, spend, issued keys) to a file, consistently, while
    /// the gateway runs (SQLite's online backup).
    Backup {
        /// Configuration naming the database (`state.database`).
        #[arg(short, long)]
        config: PathBuf,
        /// The copy to write; must not exist yet.
        #[arg(long)]
        to: PathBuf,
    },
    /// Issue, list, revoke and rotate API keys through a running gateway's admin API (the admin
    /// token from an environment variable).
    Keys(crate::keys_cli::KeysArgs),
    /// Print the spend ledger's report (`GET /spend` on a running gateway's admin plane) as a
    /// table, or as CSV or JSON.
    Spend(crate::cli_spend::SpendArgs),
    /// Run the built-in mock LLM backend.
    Mock(MockArgs),
    /// Run the mock and the gateway on the demo configuration, and print requests to try.
    Demo {
        /// Demo configuration file.
        #[arg(short, long, default_value = "conf/demo.yaml")]
        config: PathBuf,
        /// Where the mock listens (the demo backends point here).
        #[arg(long, default_value = "127.0.0.1:9100")]
        mock_listen: String,
        /// Serve the consumer plane over TLS (HTTP/2 and HTTP/1.1) with a certificate made now
        /// for 127.0.0.1 and localhost, signed by a CA made with it (`ca.pem`, for `curl
        /// --cacert`), both written to `--tls-dir`.
        #[arg(long)]
        tls: bool,
        /// Where `--tls` writes the CA, the certificate, its key and the configuration using them.
        #[arg(long, default_value_os_t = std::env::temp_dir().join("tollgate-demo-tls"))]
        tls_dir: PathBuf,
    },
}

#[derive(Args)]
struct MockArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: String,
    /// Delay before each response header, in ms.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Gap between streamed events, in ms.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Completion tokens per answer (one SSE event each).
    #[arg(long, default_value_t = 16)]
    chunks: u64,
    /// Answer every request with this HTTP status (fault injection).
    #[arg(long)]
    fault_status: Option<u16>,
    /// Close the connection after this many streamed events (fault injection).
    #[arg(long)]
    reset_after: Option<u64>,
    /// Send `Retry-After: N` with injected faults.
    #[arg(long)]
    retry_after: Option<u64>,
    /// Serve HTTPS with this certificate (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<String>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<String>,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::EvalFilter {
            file,
            config,
            json,
            wrong,
            rules,
            role,
        } => match crate::config::Role::parse(&role) {
            Some(role) => eval_filter(&file, &config, rules.as_deref(), role, json, wrong),
            None => {
                eprintln!("--role: `{role}` is not one of standard, elevated, admin");
                ExitCode::from(2)
            }
        },
        Command::HashKey { key } => hash_key(key),
        Command::Backup { config, to } => backup(&config, &to),
        Command::Keys(args) => crate::keys_cli::run(args),
        Command::Spend(args) => crate::cli_spend::run(args),
        Command::Normalize { base64_min_len } => normalize_lines(base64_min_len),
        Command::Run {
            config,
            daemon,
            pid_file,
            upgrade,
            upgrade_sock,
        } => {
            crate::logging::init();
            let Some(rt) = load(&config) else {
                return ExitCode::from(2);
            };
            let cfg = &rt.config;
            log::info!(
                "tollgate {} on {} (admin {}), {} consumers, {} backends",
                env!("CARGO_PKG_VERSION"),
                cfg.server.listen,
                cfg.server.admin.listen,
                cfg.consumers.len(),
                cfg.backends.len()
            );
            let process = server::Process {
                daemon,
                pid_file: pid_file.to_string_lossy().into_owned(),
                upgrade,
                upgrade_sock: upgrade_sock.to_string_lossy().into_owned(),
            };
            // A relative path would break after the daemon's chdir and on reload.
            let config = std::fs::canonicalize(&config).unwrap_or(config);
            match server::build_process(rt, &config, None, process) {
                Ok(s) => s.run_forever(),
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Mock(args) => {
            crate::logging::init();
            let Some(options) = mock_options(&args) else {
                return ExitCode::from(2);
            };
            log::info!("tollgate mock on {}", args.listen);
            let tls = args.tls_cert.clone().zip(args.tls_key.clone());
            match server::build_mock(
                MockService {
                    listen: args.listen,
                    threads: args.threads,
                    options,
                },
                tls,
            ) {
                Ok(s) => s.run_forever(),
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Demo {
            config,
            mock_listen,
            tls,
            tls_dir,
        } => {
            crate::logging::init();
            let config = if tls {
                match demo_tls(&config, &tls_dir) {
                    Ok(path) => path,
                    Err(e) => {
                        eprintln!("--tls: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                config
            };
            let Some(rt) = load(&config) else {
                return ExitCode::from(2);
            };
            let tls_ca = rt
                .config
                .server
                .tls
                .is_some()
                .then(|| tls_dir.join("ca.pem"));
            let listen = rt.config.server.listen;
            let admin = rt.config.server.admin.listen;
            let lab_endpoints = rt.config.server.lab_endpoints;
            let mock = MockService {
                listen: mock_listen.clone(),
                threads: 1,
                options: MockOptions::default(),
            };
            match server::build(rt, &config, Some(mock)) {
                Ok(s) => {
                    print_demo(
                        listen,
                        admin,
                        &mock_listen,
                        lab_endpoints,
                        tls_ca.as_deref(),
                    );
                    s.run_forever()
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn mock_options(args: &MockArgs) -> Option<MockOptions> {
    if let Some(s) = args.fault_status {
        if !(200..600).contains(&s) {
            eprintln!("--fault-status must be an HTTP status between 200 and 599");
            return None;
        }
    }
    Some(MockOptions {
        latency_ms: args.latency_ms,
        chunk_delay_ms: args.chunk_delay_ms,
        chunks: args.chunks,
        fault_status: args.fault_status,
        reset_after: args.reset_after,
        retry_after: args.retry_after,
        ..MockOptions::default()
    })
}

fn print_problems(path: &Path, problems: &[Problem]) {
    eprintln!("{}: {} problem(s)", path.display(), problems.len());
    for p in problems {
        eprintln!("  {p}");
    }
}

fn load(path: &Path) -> Option<Runtime> {
    match runtime::load_file(path) {
        Ok(rt) => Some(rt),
        Err(problems) => {
            print_problems(path, &problems);
            None
        }
    }
}

fn check(path: &Path) -> ExitCode {
    match runtime::load_file(path) {
        Ok(Runtime { config: c, .. }) => {
            println!(
                "{}: ok ({} consumers, {} backends, {} priced models)",
                path.display(),
                c.consumers.len(),
                c.backends.len(),
                c.pricing.len()
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            print_problems(path, &problems);
            ExitCode::from(1)
        }
    }
}

fn eval_filter(
    file: &Path,
    config_path: &Path,
    pack: Option<&Path>,
    role: crate::config::Role,
    json: bool,
    wrong: bool,
) -> ExitCode {
    let loaded = match pack {
        None => runtime::load_file(config_path),
        Some(pack) => runtime::load_file_with_rule_pack(config_path, pack),
    };
    let rt = match loaded {
        Ok(c) => c,
        Err(problems) => {
            print_problems(config_path, &problems);
            return ExitCode::from(1);
        }
    };
    let corpus = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    match eval::evaluate(&rt.filter, &corpus, role) {
        Ok(report) if json => {
            println!("{}", eval::json(&report));
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", eval::table(&report));
            if wrong {
                print!("\n{}", eval::wrong(&report));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            ExitCode::from(1)
        }
    }
}

/// `tollgate normalize`: JSON lines in, the normalised `text` of each out, in order.
fn normalize_lines(base64_min_len: usize) -> ExitCode {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let Ok(line) = line else {
            eprintln!("line {}: not UTF-8", n + 1);
            return ExitCode::from(1);
        };
        let text = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(v) => match v.get("text").and_then(|t| t.as_str()) {
                Some(t) => t.to_string(),
                None => {
                    eprintln!("line {}: no string member `text`", n + 1);
                    return ExitCode::from(1);
                }
            },
            Err(e) => {
                eprintln!("line {}: {e}", n + 1);
                return ExitCode::from(1);
            }
        };
        let normalized =
            crate::stages::filter::normalize::scan_texts(&text, base64_min_len).swap_remove(0);
        let row = serde_json::json!({ "text": normalized });
        if writeln!(out, "{row}").is_err() {
            return ExitCode::from(1);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// `tollgate backup`: the configuration's database copied to `to`.
fn backup(config: &Path, to: &Path) -> ExitCode {
    let Some(rt) = load(config) else {
        return ExitCode::from(2);
    };
    let from = &rt.config.state.database;
    match crate::state::store::backup(from, to) {
        Ok(pages) => {
            println!(
                "{} copied to {} ({pages} pages)",
                from.display(),
                to.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("backup failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn hash_key(key: Option<String>) -> ExitCode {
    match key.as_deref() {
        Some("-") => {
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line).is_err() {
                eprintln!("could not read the key from standard input");
                return ExitCode::from(1);
            }
            println!(
                "{}",
                KeyDigest::of(line.trim_end_matches(['\r', '\n']).as_bytes()).to_hex()
            );
        }
        Some(k) => println!("{}", KeyDigest::of(k.as_bytes()).to_hex()),
        None => match generate_key() {
            Ok(k) => {
                println!("key:        {k}");
                println!("key_sha256: {}", KeyDigest::of(k.as_bytes()).to_hex());
                eprintln!(
                    "Give the key to the consumer; put only key_sha256 in the configuration."
                );
            }
            Err(e) => {
                eprintln!("could not generate a key: {e}");
                return ExitCode::from(1);
            }
        },
    }
    ExitCode::SUCCESS
}

/// For `demo --tls`: a CA and a certificate for 127.0.0.1 and localhost signed by it, written to
/// `dir` with the demo configuration serving them (`server.tls`); the path of that
/// configuration. SIGHUP re-reads it (not `config`).
fn demo_tls(config: &Path, dir: &Path) -> Result<PathBuf, String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let fail = |e: rcgen::Error| format!("cannot make the demo certificate: {e}");
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.distinguished_name
        .push(DnType::CommonName, "Tollgate demo CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).map_err(fail)?;
    let key = KeyPair::generate().map_err(fail)?;
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(fail)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "Tollgate demo");
    let leaf = leaf.signed_by(&key, &ca, &ca_key).map_err(fail)?;
    // Only this user may read the key: the directory is 0700 and each file is made anew, 0600
    // (never written through a link someone left in its place).
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let text = std::fs::read_to_string(config)
        .map_err(|e| format!("cannot read {}: {e}", config.display()))?;
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    let tls = format!(
        "  tls: {{cert_file: \"{}\", key_file: \"{}\"}}  # tollgate demo --tls\n",
        cert_file.display(),
        key_file.display()
    );
    let Some(at) = text.find("\nserver:\n").map(|i| i + "\nserver:\n".len()) else {
        return Err(format!("{} has no `server:` section", config.display()));
    };
    let derived = format!("{}{tls}{}", &text[..at], &text[at..]);
    let path = dir.join("demo-tls.yaml");
    for (file, body) in [
        (dir.join("ca.pem"), ca.pem()),
        (cert_file, leaf.pem()),
        (key_file, key.serialize_pem()),
        (path.clone(), derived),
    ] {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot replace {}: {e}", file.display()))
            }
            _ => {}
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| f.write_all(body.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    }
    Ok(path)
}

fn print_demo(
    gw: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    mock_listen: &str,
    lab_endpoints: bool,
    tls_ca: Option<&Path>,
) {
    let host = if gw.ip().is_unspecified() {
        format!("localhost:{}", gw.port())
    } else {
        gw.to_string()
    };
    let (scheme, curl) = match tls_ca {
        Some(ca) => ("https", format!("curl --cacert {}", ca.display())),
        None => ("http", "curl".to_string()),
    };
    let lab = if lab_endpoints {
        format!(
            "\n  # the lab's management commands (server.lab_endpoints is on)\n  {curl} {scheme}://{host}/health\n  \
             {curl} {scheme}://{host}/metrics\n  {curl} {scheme}://{host}/costs\n  {curl} {scheme}://{host}/cache/stats\n"
        )
    } else {
        format!("\n  # health (the lab's reports are on the admin plane)\n  {curl} {scheme}://{host}/health\n")
    };
    println!(
        r#"
Tollgate demo: gateway on {scheme}://{host}, admin on http://{admin}, mock LLM on http://{mock_listen}
The demo keys (key-team-support, key-team-engineering, key-team-intern, key-team-security, and
key-load-test for loadtest/) and the admin token (demo-admin-token) are for this demo only.

  # an authenticated /chat request (the seed's Test 1)
  {curl} -s -X POST {scheme}://{host}/chat -H "X-API-Key: key-team-support" -H "Content-Type: application/json" \
       -d '{{"message": "Look up customer Alice Thornton", "session_id": "gw-test1"}}'

  # no key: 401 (Test 2)
  {curl} -s -X POST {scheme}://{host}/chat -H "Content-Type: application/json" -d '{{"message": "Hello", "session_id": "gw-test2"}}'

  # OpenAI-compatible, streaming
  {curl} -sN {scheme}://{host}/v1/chat/completions -H "Authorization: Bearer key-team-support" -H "Content-Type: application/json" \
       -d '{{"model": "gpt-4", "stream": true, "messages": [{{"role": "user", "content": "Hello"}}]}}'

  # one API to every provider: the same OpenAI request to a model the mock serves in Gemini's
  # dialect (demo-claude: Anthropic's, demo-bedrock: Bedrock's, SigV4-signed); the answer comes
  # back in OpenAI's, x-tollgate-backend and x-tollgate-model saying who answered
  {curl} -si {scheme}://{host}/v1/chat/completions -H "X-API-Key: key-team-engineering" -H "Content-Type: application/json" \
       -d '{{"model": "demo-gemini", "messages": [{{"role": "user", "content": "Hello"}}]}}'

  # Anthropic's Messages API to an OpenAI model, streamed
  {curl} -sN {scheme}://{host}/v1/messages -H "X-API-Key: key-team-engineering" -H "Content-Type: application/json" \
       -d '{{"model": "gpt-4o", "max_tokens": 64, "stream": true, "messages": [{{"role": "user", "content": "Hello"}}]}}'

  # a model the intern may not use: 403
  {curl} -s {scheme}://{host}/v1/chat/completions -H "X-API-Key: key-team-intern" -H "Content-Type: application/json" \
       -d '{{"model": "gpt-4", "messages": [{{"role": "user", "content": "Hello"}}]}}'
{lab}
  # admin plane
  curl -s http://{admin}/health
  curl -s http://{admin}/ready -H "Authorization: Bearer demo-admin-token"

Stop with Ctrl-C.
"#,
    );
}
