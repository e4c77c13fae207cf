//! Stage benchmarks for the spine: key lookup, request-body parsing, backend selection and
//! translation between dialects, each beside a baseline (a naive one, or the passthrough a
//! translation replaces). Figures and machine: `benches/README.md`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::Arc;
use std::time::Duration;
use tollgate::config::{Backend, Consumer, Protocol};
use tollgate::digest::KeyDigest;
use tollgate::protocol::{self as request, Route};
use tollgate::stages::auth::KeyIndex;
use tollgate::stages::routing;

fn consumers(n: usize) -> Vec<Arc<Consumer>> {
    (0..n)
        .map(|i| {
            Arc::new(Consumer::basic(
                &format!("c{i}"),
                "t",
                format!("tg-key-{i:08}").as_bytes(),
            ))
        })
        .collect()
}

fn auth(c: &mut Criterion) {
    let mut g = c.benchmark_group("auth");
    for n in [4usize, 100_000] {
        let cs = consumers(n);
        let index = KeyIndex::new(&cs);
        let key = format!("tg-key-{:08}", n - 1);
        g.bench_with_input(BenchmarkId::new("digest_index", n), &key, |b, key| {
            b.iter(|| index.authenticate(black_box(key.as_bytes())).is_some())
        });
        if n <= 100_000 {
            // Baseline: hash, then a constant-time comparison against every consumer.
            g.bench_with_input(
                BenchmarkId::new("linear_scan_baseline", n),
                &key,
                |b, key| {
                    b.iter(|| {
                        let d = KeyDigest::of(black_box(key.as_bytes()));
                        cs.iter().any(|c| c.keys.iter().any(|k| k.digest.ct_eq(&d)))
                    })
                },
            );
        }
    }
    g.finish();
}

fn chat_body(prompt_bytes: usize) -> Vec<u8> {
    format!(
        r#"{{"model":"gpt-4","stream":false,"max_tokens":256,"messages":[{{"role":"system","content":"You are helpful."}},{{"role":"user","content":"{}"}}]}}"#,
        "lorem ipsum ".repeat(prompt_bytes / 12)
    )
    .into_bytes()
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("request_parse");
    for size in [1024usize, 64 * 1024] {
        let body = chat_body(size);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("typed_view", size), &body, |b, body| {
            b.iter(|| request::parse(Route::ChatCompletions, black_box(body)).is_ok())
        });
        // Baseline: a generic JSON tree, then field lookups.
        g.bench_with_input(
            BenchmarkId::new("value_tree_baseline", size),
            &body,
            |b, body| {
                b.iter(|| {
                    let v: serde_json::Value =
                        serde_json::from_slice(black_box(body)).unwrap_or_default();
                    v.get("model").is_some() && v.get("messages").is_some()
                })
            },
        );
    }
    g.finish();
}

fn select(c: &mut Criterion) {
    let mut g = c.benchmark_group("routing_select");
    for n in [3usize, 100] {
        let backends: Vec<Arc<Backend>> = (0..n)
            .map(|i| {
                let m = format!("m{}", i % 10);
                Arc::new(Backend::basic(
                    &format!("b{i}"),
                    Protocol::OpenAi,
                    &[m.as_str(), "gpt-4"],
                    (i % 3) as u32 + 1,
                    (i % 4) as u32 + 1,
                ))
            })
            .collect();
        let consumer = consumers(1).remove(0);
        let mut tick = 0u64;
        // Candidates (model, protocol, rules), then the usable-group weighted pick, per request.
        g.bench_function(BenchmarkId::new("candidates_and_pick", n), |b| {
            b.iter(|| {
                tick += 1;
                let ask = routing::Ask {
                    model: black_box("gpt-4"),
                    route: Route::ChatCompletions,
                    consumer: &consumer,
                    estimated_tokens: 100,
                };
                let cands = routing::candidates(&backends, &[], &ask);
                routing::pick(&cands, |_| true, tick).is_some()
            })
        });
    }
    g.finish();
}

/// What translation adds per request: the body for an Anthropic backend built from an OpenAI
/// request (the request parsed into the neutral form and written in Anthropic's dialect) beside
/// the passthrough body for an OpenAI backend (the client's bytes with the gateway's edits); and
/// an Anthropic answer written back as an OpenAI one beside reading an OpenAI answer's usage.
fn translate(c: &mut Criterion) {
    use bytes::Bytes;
    use tollgate::protocol::translate::pair;
    let mut g = c.benchmark_group("translate");
    let raw = Bytes::from(chat_body(1024));
    let Ok(view) = request::parse(Route::ChatCompletions, &raw) else {
        return;
    };
    for (name, protocol) in [
        ("request_passthrough_openai", Protocol::OpenAi),
        ("request_to_anthropic", Protocol::Anthropic),
    ] {
        let backend = Backend::basic("b", protocol, &["gpt-4"], 1, 1);
        g.bench_function(name, |b| {
            b.iter(|| {
                view.outbound(raw.clone(), &backend, Some(256), &pair::Neutral::default())
                    .map(|o| o.body.len())
            })
        });
    }
    let words = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 ";
    let anthropic_answer = format!(
        r#"{{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4","content":[{{"type":"text","text":"{words}"}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{{"input_tokens":40,"output_tokens":16}}}}"#
    );
    let openai_answer = format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4","choices":[{{"index":0,"message":{{"role":"assistant","content":"{words}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":40,"completion_tokens":16,"total_tokens":56}}}}"#
    );
    g.bench_function("answer_passthrough_openai_usage", |b| {
        b.iter(|| view.reported_usage(black_box(openai_answer.as_bytes())))
    });
    let Ok(client) = pair::Client::of(&view, &raw, &pair::Neutral::default()) else {
        return;
    };
    g.bench_function("answer_from_anthropic", |b| {
        b.iter(|| {
            pair::decode_answer(Protocol::Anthropic, black_box(anthropic_answer.as_bytes()))
                .map(|a| pair::encode_answer(&client, &a).len())
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = auth, parse, select, translate }
criterion_main!(benches);
