//! Allocations per request through the real gateway: a count, not a time.
//!
//! The bench process runs the gateway itself (the library's `server::build`, Pingora and all, on
//! a loopback port in a background thread) on the full pipeline `loadtest/compare.sh` measures
//! (`tg_pipeline` in `loadtest/lib.sh`: key check, the demo's content filter, token limits,
//! budget, output cap, cache, metrics, ledger, access log to a file). The mock backend is a
//! separate process (`tollgate mock`), so its allocations are not counted; the client is a raw
//! `TcpStream` writing a prepared request and reading the answer into a reused buffer, so it
//! allocates nothing per request. A counting global allocator (`stats_alloc`, as the package
//! forbids `unsafe` in every target) counts every allocation of the process, on every thread:
//! the gateway's request path, its access-log writer and its ledger writer included.
//!
//! Two criterion measurements read the counter: allocation calls (alloc + realloc) and bytes
//! requested, so criterion reports allocations per request where it reports time elsewhere.
//! Cases: a JSON answer the cache must not serve (`Cache-Control: no-cache`: looked up never,
//! stored), the same request served from the cache, a streamed answer, and a request translated
//! for the mock's Anthropic dialect. How to run and the figures: `benches/README.md`.
//!
//! Ports: the mock on `TG_ALLOC_BENCH_PORT` (default 19650), the gateway on the next one, its
//! admin plane on the one after.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkGroup, Criterion, Throughput};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocation calls so far, whole process: `alloc`, `alloc_zeroed` and `realloc` (a `realloc`
/// is a call to the allocator as costly as a fresh one, and often a copy).
fn allocation_calls() -> u64 {
    let s = GLOBAL.stats();
    (s.allocations + s.reallocations) as u64
}

/// Bytes requested so far, whole process (growth only, for `realloc`).
fn allocated_bytes() -> u64 {
    GLOBAL.stats().bytes_allocated as u64
}

/// A criterion measurement whose value is a process-wide allocator counter.
struct Counter {
    read: fn() -> u64,
    unit: Unit,
}

impl Measurement for Counter {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        (self.read)()
    }
    fn end(&self, start: u64) -> u64 {
        (self.read)().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &self.unit
    }
}

/// Counts printed as they are, with their unit.
struct Unit(&'static str);

impl ValueFormatter for Unit {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        self.0
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let per = match t {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) | Throughput::Elements(n) => *n,
        };
        for v in values {
            *v /= per.max(1) as f64;
        }
        self.0
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        self.0
    }
}

const KEY: &str = "key-allocation-bench";
const PROMPT: &str = "Summarise the quarterly support tickets about login problems and suggest three improvements to the help-centre articles.";

/// One kind of request, prepared once.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    /// The `x-tollgate-cache` value the answer must carry (`MISS` for a stored fresh answer,
    /// `BYPASS` for a stream, which is never cached).
    cache: &'static [u8],
}

fn request(model: &str, stream: bool, no_cache: bool) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"{model}","max_tokens":64,{}"messages":[{{"role":"user","content":"{PROMPT}"}}]}}"#,
        if stream { r#""stream":true,"# } else { "" }
    );
    let mut r = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if no_cache {
        r.push_str("Cache-Control: no-cache\r\n");
    }
    r.push_str("\r\n");
    r.push_str(&body);
    r.into_bytes()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "json_cache_miss",
            request: request("gpt-4", false, true),
            cache: b"MISS",
        },
        Case {
            name: "json_cache_hit",
            request: request("gpt-4", false, false),
            cache: b"HIT",
        },
        Case {
            name: "stream",
            request: request("gpt-4", true, false),
            cache: b"BYPASS",
        },
        Case {
            name: "translated_anthropic",
            request: request("claude-sonnet-4", false, true),
            cache: b"MISS",
        },
    ]
}

/// What the bench checks of an answer.
#[derive(Debug, PartialEq)]
struct Answer<'a> {
    status: u16,
    cache: &'a [u8],
}

/// A keep-alive connection whose answers are read into one buffer, reused: no allocation per
/// request on the client side.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(port: u16) -> io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Client {
            stream,
            buf: vec![0; 1 << 20],
        })
    }

    fn exchange(&mut self, request: &[u8]) -> io::Result<Answer<'_>> {
        self.stream.write_all(request)?;
        let mut filled = 0;
        let end = loop {
            if filled == self.buf.len() {
                return Err(io::Error::other("answer larger than the buffer"));
            }
            let n = self.stream.read(&mut self.buf[filled..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            filled += n;
            if let Some(end) = complete(&self.buf[..filled])? {
                break end;
            }
        };
        if end != filled {
            return Err(io::Error::other("bytes after the answer"));
        }
        Ok(answer(&self.buf[..filled]))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The header lines of an answer (after the status line).
fn header_lines(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        Some((&line[..colon], line[colon + 1..].trim_ascii()))
    })
}

/// The length of the whole answer once `buf` holds it all (head and body, by `Content-Length` or
/// chunked framing), else `None`.
fn complete(buf: &[u8]) -> io::Result<Option<usize>> {
    let Some(head_end) = find(buf, b"\r\n\r\n").map(|i| i + 4) else {
        return Ok(None);
    };
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for (name, value) in header_lines(&buf[..head_end]) {
        if name.eq_ignore_ascii_case(b"content-length") {
            length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value.eq_ignore_ascii_case(b"chunked");
        }
    }
    if let Some(n) = length {
        return Ok((buf.len() >= head_end + n).then_some(head_end + n));
    }
    if !chunked {
        return Err(io::Error::other("answer without a length"));
    }
    let mut at = head_end;
    loop {
        let Some(eol) = find(&buf[at..], b"\r\n") else {
            return Ok(None);
        };
        let size = std::str::from_utf8(&buf[at..at + eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or(s).trim(), 16).ok())
            .ok_or_else(|| io::Error::other("bad chunk size"))?;
        at += eol + 2;
        // The last chunk has no data and no trailers here: its size line, then an empty line.
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        at += size + 2;
        if size == 0 {
            return Ok(Some(at));
        }
    }
}

fn answer(buf: &[u8]) -> Answer<'_> {
    let head_end = find(buf, b"\r\n\r\n").unwrap_or(buf.len());
    let status = buf
        .get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let cache = header_lines(&buf[..head_end])
        .find(|(n, _)| n.eq_ignore_ascii_case(b"x-tollgate-cache"))
        .map_or(&b""[..], |(_, v)| v);
    Answer { status, cache }
}

/// The mock process and the bench's files, gone when the bench ends.
struct Fixture {
    mock: Child,
    work: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.mock.kill();
        let _ = self.mock.wait();
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

const TOLLGATE: &str = env!("CARGO_BIN_EXE_tollgate");

/// Starts the mock, writes the pipeline's configuration with `loadtest/lib.sh` (the one
/// `compare.sh` measures), and starts the gateway on it in this process.
fn start(base: u16) -> Result<(Fixture, u16), String> {
    let (mock_port, gateway_port, admin_port) = (base, base + 1, base + 2);
    let work = std::env::temp_dir().join(format!("tollgate-alloc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let mock = Command::new(TOLLGATE)
        .args(["mock", "--threads", "1", "--listen"])
        .arg(format!("127.0.0.1:{mock_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the mock: {e}"))?;
    let fixture = Fixture { mock, work };
    let config = fixture.work.join("tollgate.yaml");
    let root = env!("CARGO_MANIFEST_DIR");
    let script = format!(
        "set -euo pipefail; cd '{root}'; . loadtest/lib.sh; \
         tg_pipeline 127.0.0.1:{gateway_port} 127.0.0.1:{admin_port} bench > '{}'",
        config.display()
    );
    let made = Command::new("bash")
        .args(["-c", &script])
        .env("BIN", TOLLGATE)
        .env("WORK", &fixture.work)
        .env("KEY", KEY)
        .env("MOCK", format!("127.0.0.1:{mock_port}"))
        .env("ADMIN_TOKEN", "allocation-bench-admin")
        .env("THREADS", "1")
        .status()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    if !made.success() {
        return Err("tg_pipeline failed".into());
    }
    let runtime = tollgate::runtime::load_file(&config).map_err(|problems| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let daemon = tollgate::server::build(runtime, &config, None)?;
    std::thread::spawn(move || daemon.run_forever());
    Ok((fixture, gateway_port))
}

/// Sends each case until the gateway answers it as expected (the first cacheable request fills
/// the cache), within 30 s.
fn ready(port: u16, cases: &[Case]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for case in cases {
        loop {
            let got = Client::connect(port).and_then(|mut c| {
                c.exchange(&case.request)
                    .map(|a| (a.status, String::from_utf8_lossy(a.cache).into_owned()))
            });
            if let Ok((200, cache)) = &got {
                if cache.as_bytes() == case.cache {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(format!("{}: the gateway answered {got:?}", case.name));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// One benchmark per case, each on its own connection; answers that are not what the case
/// expects are counted and fail the run.
fn bench_cases<M: Measurement>(
    group: &mut BenchmarkGroup<'_, M>,
    port: u16,
    cases: &[Case],
) -> u64 {
    let mut wrong = 0;
    for case in cases {
        let Ok(mut client) = Client::connect(port) else {
            wrong += 1;
            continue;
        };
        group.bench_function(case.name, |b| {
            b.iter(|| match client.exchange(&case.request) {
                Ok(a) if a.status == 200 && a.cache == case.cache => {}
                _ => wrong += 1,
            })
        });
    }
    wrong
}

fn criterion<M: Measurement>(measurement: M) -> Criterion<M> {
    Criterion::default()
        .with_measurement(measurement)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args()
}

fn main() -> ExitCode {
    let base = std::env::var("TG_ALLOC_BENCH_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(19650);
    let cases = cases();
    let (fixture, port) = match start(base) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("allocations bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = ready(port, &cases) {
        eprintln!("allocations bench: {e}");
        return ExitCode::FAILURE;
    }
    let mut wrong = 0;
    let mut c = criterion(Counter {
        read: allocation_calls,
        unit: Unit("allocations"),
    });
    wrong += bench_cases(&mut c.benchmark_group("allocations"), port, &cases);
    c.final_summary();
    let mut c = criterion(Counter {
        read: allocated_bytes,
        unit: Unit("bytes"),
    });
    wrong += bench_cases(&mut c.benchmark_group("allocated_bytes"), port, &cases);
    c.final_summary();
    drop(fixture);
    if wrong > 0 {
        eprintln!("allocations bench: {wrong} answers were not what their case expects");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
