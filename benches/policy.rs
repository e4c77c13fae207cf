//! Policy-stage benchmarks: the content filter on 1 KiB and 64 KiB prompts with the demo's rule
//! set (beside the seed's approach, one regex search per rule), the token limiter's
//! reserve + settle alone and under contention, the budget's reserve + settle, the SSE usage
//! parser over a 256-token stream, and the cache key + lookup.
//! Figures and machine: `benches/README.md`.
// A bench that cannot load its fixture has nothing to measure: failing loudly is right here.
#![allow(clippy::panic)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate::config::Role;
use tollgate::protocol::json::canonical;
use tollgate::runtime::{load_str, Runtime};
use tollgate::stages::cache;
use tollgate::state::budget::Budgets;
use tollgate::state::cache::{Cache, Entry, Tiers};
use tollgate::state::limits::{Limiter, Limits};

fn demo() -> Runtime {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml"))
        .unwrap_or_default();
    match load_str(&text, &|_| None) {
        Ok(c) => c,
        Err(p) => panic!("demo config: {p:?}"),
    }
}

/// Benign English text of `n` bytes: every rule must scan all of it.
fn prompt(n: usize) -> String {
    let base = "The quarterly planning meeting covered hiring, the office move and the new \
                support rota. Please summarise the action items for each team in a short list. ";
    base.repeat(n / base.len() + 1)[..n].to_string()
}

/// Benign text with numbers and line breaks, as tickets and reports have: the number rules run
/// and normalisation takes its byte-by-byte path.
fn prompt_with_numbers(n: usize) -> String {
    let base = "Ticket 4821 (opened 2026-11-03):\n  the customer could not log in after\
                 the 2.4 update; 17 similar reports this week.\nPlease draft a reply.\n";
    base.repeat(n / base.len() + 1)[..n].to_string()
}

/// Hostile text: words that start many partial matches of the injection rules' word-gap
/// patterns and complete none, in a fixed pseudo-random order.
fn hostile(n: usize) -> String {
    let words = [
        "your",
        "ur",
        "the",
        "a",
        "of",
        "all",
        "any",
        "every",
        "previous",
        "prior",
        "earlier",
        "original",
        "initial",
        "system",
        "developer",
        "hidden",
        "safety",
        "my",
        "me",
        "us",
        "reveal",
        "show",
        "print",
        "tell",
        "give",
        "what",
        "is",
        "was",
        "were",
        "you",
        "i",
        "am",
        "this",
        "as",
        "from",
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut s = String::with_capacity(n + 16);
    while s.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(words[(x % words.len() as u64) as usize]);
        s.push(' ');
    }
    s.truncate(n);
    s
}

fn filter(c: &mut Criterion) {
    let cfg = demo();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let with_pack = match tollgate::runtime::load_file_with_rule_pack(
        &root.join("conf/demo.yaml"),
        &root.join("conf/filter-intent-rules.yaml"),
    ) {
        Ok(c) => c,
        Err(p) => panic!("intent rule pack: {p:?}"),
    };
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml"))
        .unwrap_or_default();
    // The seed's approach: one case-insensitive regex per rule, searched one after another.
    let naive: Vec<regex::Regex> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pattern: '"))
        .filter_map(|p| p.strip_suffix('\''))
        .filter_map(|p| {
            regex::RegexBuilder::new(p)
                .case_insensitive(true)
                .build()
                .ok()
        })
        .collect();
    let mut g = c.benchmark_group("filter");
    for size in [1024usize, 64 * 1024] {
        g.throughput(Throughput::Bytes(size as u64));
        // (name, configuration, text): the demo's rules on prose, hostile words and ticket-like
        // text; the optional intent-rule pack (conf/filter-intent-rules.yaml) on prose and
        // hostile words.
        let runs = [
            ("normalise_and_match", &cfg, prompt(size)),
            ("hostile_words", &cfg, hostile(size)),
            ("with_numbers_and_newlines", &cfg, prompt_with_numbers(size)),
            ("intent_pack_prose", &with_pack, prompt(size)),
            ("intent_pack_hostile", &with_pack, hostile(size)),
        ];
        for (name, config, p) in &runs {
            g.bench_with_input(BenchmarkId::new(*name, size), p, |b, p| {
                b.iter(|| {
                    config
                        .filter
                        .check([black_box(p.as_str())], Role::Standard)
                        .blocked
                        .is_some()
                })
            });
        }
        let p = prompt(size);
        g.bench_with_input(
            BenchmarkId::new("regex_per_rule_baseline", size),
            &p,
            |b, p| b.iter(|| naive.iter().any(|r| r.is_match(black_box(p)))),
        );
    }
    g.finish();
}

fn limiter(c: &mut Criterion) {
    let limits = Limits::tokens([u64::MAX / 4, u64::MAX / 4, u64::MAX / 4]);
    let mut g = c.benchmark_group("limiter");
    let l = Limiter::default();
    g.bench_function("reserve_settle", |b| {
        b.iter(|| {
            if let Ok((t, _)) = l.reserve(
                black_box("team-support"),
                None,
                limits,
                1_000,
                1_700_000_000,
            ) {
                l.settle("team-support", &t, 500, 1_700_000_000);
            }
        })
    });
    // Two threads hammering the same consumer: the per-consumer lock under contention.
    let shared = Arc::new(Limiter::default());
    g.bench_function("reserve_settle_2_threads_same_consumer", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let l = Arc::clone(&shared);
                    std::thread::spawn(move || {
                        for _ in 0..iters / 2 {
                            if let Ok((t, _)) =
                                l.reserve("team-support", None, limits, 1_000, 1_700_000_000)
                            {
                                l.settle("team-support", &t, 500, 1_700_000_000);
                            }
                        }
                    })
                })
                .collect();
            for h in handles {
                let _ = h.join();
            }
            start.elapsed()
        })
    });
    g.finish();
}

fn budget(c: &mut Criterion) {
    let mut g = c.benchmark_group("budget");
    let ledger = tollgate::state::spend::Ledger::default();
    let budgets = Budgets::daily(u64::MAX / 4);
    g.bench_function("reserve_settle", |b| {
        b.iter(|| {
            if let Ok((t, _)) =
                ledger.reserve(black_box("team-support"), None, &budgets, 30_000, 19_000)
            {
                ledger.settle(
                    "team-support",
                    None,
                    &t,
                    tollgate::state::spend::Recent {
                        timestamp: 0,
                        model: "gpt-4".into(),
                        input_tokens: 10,
                        output_tokens: 10,
                        cost_nanos: 900,
                        estimated: false,
                    },
                    19_000,
                );
            }
        })
    });
    g.finish();
}

/// An OpenAI stream of `tokens` content events plus the usage event the gateway strips.
fn sse_stream(tokens: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..tokens {
        s.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    s.push_str("data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":256,\"total_tokens\":266}}\n\n");
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

fn sse(c: &mut Criterion) {
    let stream = sse_stream(256);
    let mut g = c.benchmark_group("sse_usage_parse");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    for (name, strip) in [("pass_through", false), ("strip_added_usage", true)] {
        g.bench_function(BenchmarkId::new(name, stream.len()), |b| {
            b.iter(|| {
                let mut tap = tollgate::protocol::sse::SseTap::new(strip);
                // Backend reads of ~1.5 KiB, as a socket delivers them.
                for chunk in black_box(&stream).chunks(1_500) {
                    black_box(tap.feed(chunk));
                }
                tap.finish();
                tap.usage().map(|u| u.output)
            })
        });
    }
    g.finish();
}

fn cache_key(c: &mut Criterion) {
    let cfg = demo();
    let body = format!(
        r#"{{"model":"gpt-4","temperature":0.2,"max_tokens":256,"messages":[{{"role":"system","content":"You are helpful."}},{{"role":"user","content":"{}"}}]}}"#,
        prompt(1024)
    );
    let cache = Cache::default();
    let mut g = c.benchmark_group("cache");
    g.bench_function("key_1KiB_body", |b| {
        b.iter(|| {
            let canonical = canonical(black_box(body.as_bytes()), None).unwrap_or_default();
            cache::key(
                "consumer",
                "team-support",
                "chat_completions",
                "gpt-4",
                &canonical,
            )
        })
    });
    let key = cache::key(
        "consumer",
        "team-support",
        "chat_completions",
        "gpt-4",
        body.as_bytes(),
    );
    cache.put(
        key,
        Entry {
            body: bytes::Bytes::from(body.clone()),
            expires: Instant::now() + Duration::from_secs(3600),
            input_tokens: 1,
            output_tokens: 1,
        },
        &cfg.config.cache,
    );
    g.bench_function("lookup_hit", |b| {
        // A hit in this instance's tier completes without waiting: polled once.
        b.iter(|| {
            poll_once(cache.lookup(black_box(&key), &cfg.config.cache, Tiers::Local)).is_some()
        })
    });
    g.finish();
}

/// Polls a future that completes without waiting (a local cache lookup) to its value.
fn poll_once<T>(f: impl std::future::Future<Output = Option<T>>) -> Option<T> {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = std::task::Waker::from(Arc::new(Noop));
    let mut cx = std::task::Context::from_waker(&waker);
    match std::pin::pin!(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a local lookup never waits"),
    }
}

/// The injection classifier on text already normalised (as the filter hands it over), and with
/// the normalisation counted: prose and ticket-like text, 1 KiB and 64 KiB.
fn classifier(c: &mut Criterion) {
    use tollgate::stages::classifier::Model;
    use tollgate::stages::filter::normalize::scan_texts;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = match Model::load(&root.join("conf/models/injection.tgc")) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    let mut g = c.benchmark_group("classifier");
    for size in [1024usize, 64 * 1024] {
        g.throughput(Throughput::Bytes(size as u64));
        for (name, text) in [
            ("prose", prompt(size)),
            ("tickets", prompt_with_numbers(size)),
        ] {
            let normalised = scan_texts(&text, 24).swap_remove(0);
            g.bench_with_input(BenchmarkId::new(name, size), &normalised, |b, t| {
                b.iter(|| model.score(black_box(t.as_bytes())))
            });
            g.bench_with_input(
                BenchmarkId::new(format!("{name}_with_normalisation"), size),
                &text,
                |b, t| b.iter(|| model.score(scan_texts(black_box(t), 24)[0].as_bytes())),
            );
        }
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

/// A chat request with 64 KiB of tool definitions (names, descriptions and parameter schemas, as
/// an agent framework sends them) after a short conversation.
pub fn tools_request() -> String {
    let words = "search the customer records by name email or account number and return the most \
                 recent orders with their status totals and delivery dates for the support team";
    let mut tools = Vec::new();
    let mut size = 0;
    let mut i = 0;
    while size < 64 * 1024 {
        let tool = serde_json::json!({"type": "function", "function": {
            "name": format!("tool_{i}"),
            "description": words,
            "parameters": {"type": "object", "properties": {
                "query": {"type": "string", "description": words},
                "limit": {"type": "integer", "description": "how many results to return at most"},
                "fields": {"type": "array", "items": {"type": "string"}, "description": words},
            }, "required": ["query"]},
        }});
        size += tool.to_string().len();
        tools.push(tool);
        i += 1;
    }
    serde_json::json!({"model": "gpt-4", "messages": [
        {"role": "system", "content": "You are a helpful support assistant."},
        {"role": "user", "content": "Find the last three orders of Alice Thornton."},
    ], "tools": tools})
    .to_string()
}

fn request_texts(c: &mut Criterion) {
    use tollgate::protocol::{parse, Route};
    let rt = demo();
    let body = tools_request();
    let mut g = c.benchmark_group("tool_schemas_64KiB");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| parse(Route::ChatCompletions, black_box(body.as_bytes())).is_ok())
    });
    let view = match parse(Route::ChatCompletions, body.as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("tools request: {e:?}"),
    };
    g.bench_function("texts_and_estimate", |b| {
        b.iter(|| {
            let texts = view.texts();
            view.prompt_estimate(black_box(&texts))
        })
    });
    let texts = view.texts();
    g.bench_function("filter", |b| {
        b.iter(|| {
            rt.filter
                .check_request(black_box(&texts), Role::Standard)
                .blocked
                .is_some()
        })
    });
    g.finish();
    // Text in another script: the confusable folding runs on every non-ASCII character.
    let russian = "Служба поддержки рассмотрела квартальные заявки о проблемах со входом и \
                   подготовила краткий отчёт для каждой команды. ";
    let mut g = c.benchmark_group("filter_non_ascii");
    for size in [1024usize, 64 * 1024] {
        let mut text = russian.repeat(size / russian.len() + 1);
        while text.len() > size {
            text.pop();
        }
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::new("russian_prose", size), &text, |b, t| {
            b.iter(|| {
                rt.filter
                    .check([black_box(t.as_str())], Role::Standard)
                    .blocked
                    .is_some()
            })
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = config(); targets = filter, limiter, budget, sse, cache_key, request_texts, classifier }
criterion_main!(benches);
