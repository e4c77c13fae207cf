//! Opens many concurrent SSE streams against a gateway (or the mock directly) and reports what a
//! streaming client sees: how many completed with `[DONE]`, time to first event, and the gaps
//! between events. Used by `loadtest/streams.sh`; loopback only.
//!
//! cargo run --release --example sse_streams -- URL STREAMS RAMP_MS [API_KEY]
//!
//! Prints one JSON object: {"streams", "completed", "failed", "peak_open", "events",
//! "ttft_us": {p50,p99,max}, "gap_us": {p50,p99,max}}.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What one stream saw.
#[derive(Default)]
struct Seen {
    done: bool,
    ttft: Option<Duration>,
    gaps: Vec<Duration>,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn one(
    addr: String,
    path: String,
    key: Option<String>,
    open: Arc<Open>,
) -> Result<Seen, Error> {
    // With the usage chunk asked for, the gateway passes every event on and the client sees the
    // same sequence direct and through it (without, the gateway strips the usage chunk it adds).
    let body = r#"{"model":"gpt-4","stream":true,"stream_options":{"include_usage":true},"max_tokens":64,"messages":[{"role":"user","content":"stream me a story"}]}"#;
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}\
         Cache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let started = Instant::now();
    let mut stream = TcpStream::connect(&addr).await?;
    let _guard = open.enter();
    stream.write_all(request.as_bytes()).await?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    if !line.starts_with("HTTP/1.1 200") {
        return Err(format!("status line {line:?}").into());
    }
    let mut chunked = false;
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if line
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
        {
            chunked = true;
        }
    }
    if !chunked {
        return Err("expected a chunked SSE response".into());
    }
    let mut seen = Seen::default();
    let mut last_event: Option<Instant> = None;
    let mut prev_newline = false;
    let mut tail = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        let size = usize::from_str_radix(line.trim(), 16)?;
        if size == 0 {
            break;
        }
        let mut data = vec![0; size + 2];
        reader.read_exact(&mut data).await?;
        data.truncate(size);
        let now = Instant::now();
        for &b in &data {
            // An event ends at a blank line.
            if b == b'\n' && prev_newline {
                match last_event {
                    None => seen.ttft = Some(now - started),
                    Some(t) => seen.gaps.push(now - t),
                }
                last_event = Some(now);
            }
            prev_newline = b == b'\n';
        }
        tail.extend_from_slice(&data);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
    }
    seen.done = tail.windows(12).any(|w| w == b"data: [DONE]");
    Ok(seen)
}

/// Streams open right now, and the most there were at once.
#[derive(Default)]
struct Open {
    now: AtomicUsize,
    peak: AtomicUsize,
}

struct OpenGuard<'a>(&'a Open);

impl Open {
    fn enter(&self) -> OpenGuard<'_> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        OpenGuard(self)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

fn percentiles(mut v: Vec<Duration>) -> serde_json::Value {
    v.sort();
    let at = |q: f64| -> u128 {
        if v.is_empty() {
            return 0;
        }
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i].as_micros()
    };
    serde_json::json!({"p50": at(0.5), "p99": at(0.99), "max": at(1.0)})
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: sse_streams URL STREAMS RAMP_MS [API_KEY]".into());
    }
    let url = args[1]
        .strip_prefix("http://")
        .ok_or("URL must start with http://")?;
    let (addr, path) = match url.find('/') {
        Some(i) => (url[..i].to_string(), url[i..].to_string()),
        None => (url.to_string(), "/".to_string()),
    };
    if !(addr.starts_with("127.") || addr.starts_with("[::1]") || addr.starts_with("localhost")) {
        return Err("only loopback addresses may be load-tested".into());
    }
    let streams: usize = args[2].parse()?;
    let ramp = Duration::from_millis(args[3].parse()?);
    let key = args.get(4).cloned();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let report = rt.block_on(async move {
        let open = Arc::new(Open::default());
        let mut tasks = Vec::with_capacity(streams);
        let step = ramp / streams.max(1) as u32;
        for _ in 0..streams {
            let task = one(addr.clone(), path.clone(), key.clone(), Arc::clone(&open));
            // Every stream is bounded in time.
            tasks.push(tokio::spawn(tokio::time::timeout(
                Duration::from_secs(60),
                task,
            )));
            tokio::time::sleep(step).await;
        }
        let (mut completed, mut failed, mut events) = (0, 0, 0);
        let (mut ttfts, mut gaps) = (Vec::new(), Vec::new());
        let mut errors = std::collections::BTreeMap::<String, usize>::new();
        for t in tasks {
            match t.await {
                Ok(Ok(Ok(seen))) if seen.done => {
                    completed += 1;
                    events += seen.gaps.len() + usize::from(seen.ttft.is_some());
                    ttfts.extend(seen.ttft);
                    gaps.extend(seen.gaps);
                }
                Ok(Ok(Ok(_))) => {
                    failed += 1;
                    *errors.entry("no [DONE]".into()).or_default() += 1;
                }
                Ok(Ok(Err(e))) => {
                    failed += 1;
                    *errors.entry(e.to_string()).or_default() += 1;
                }
                Ok(Err(_)) => {
                    failed += 1;
                    *errors.entry("timed out".into()).or_default() += 1;
                }
                Err(e) => {
                    failed += 1;
                    *errors.entry(e.to_string()).or_default() += 1;
                }
            }
        }
        serde_json::json!({
            "streams": streams,
            "completed": completed,
            "failed": failed,
            "errors": errors,
            "peak_open": open.peak.load(Ordering::SeqCst),
            "events": events,
            "ttft_us": percentiles(ttfts),
            "gap_us": percentiles(gaps),
        })
    });
    println!("{report}");
    Ok(())
}
