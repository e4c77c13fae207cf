//! OpenTelemetry traces against a local OTLP/HTTP receiver written here: a request with the
//! client's `traceparent` becomes a SERVER span in the client's trace, with the pipeline's phases
//! and one CLIENT span per upstream attempt (failover shows two), GenAI attributes with the
//! mock's exact token counts, and the backend is told the attempt's span; both wire encodings;
//! a malformed `traceparent` starts a new trace; tracing off exports nothing and leaves the
//! client's headers alone; a collector that never answers costs dropped spans, not requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use prost::Message;
use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
const ASK: &str =
    r#"{"model":"gpt-4o","max_tokens":40,"messages":[{"role":"user","content":"trace me"}]}"#;

/// OTLP span kinds.
const INTERNAL: i32 = 1;
const SERVER: i32 = 2;
const CLIENT: i32 = 3;

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Got {
    service: Option<String>,
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    kind: i32,
    start: u64,
    /// `status.code`: 2 is an error.
    status: i32,
    attrs: Map<String, Value>,
}

impl Got {
    fn attr(&self, key: &str) -> &Value {
        self.attrs.get(key).unwrap_or(&Value::Null)
    }
}

/// A local OTLP/HTTP traces receiver: answers each export (`answer`), or accepts connections and
/// never reads or answers them.
struct Receiver {
    port: u16,
    spans: Arc<Mutex<Vec<Got>>>,
    exports: Arc<Mutex<u64>>,
}

impl Receiver {
    fn start(answer: bool) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let exports = Arc::new(Mutex::new(0));
        let (s, e) = (Arc::clone(&spans), Arc::clone(&exports));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                if answer {
                    let (s, e) = (Arc::clone(&s), Arc::clone(&e));
                    std::thread::spawn(move || serve(conn, &s, &e));
                } else {
                    held.push(conn);
                }
            }
        });
        Receiver {
            port,
            spans,
            exports,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.port)
    }

    fn spans(&self) -> Vec<Got> {
        self.spans.lock().unwrap().clone()
    }

    fn exports(&self) -> u64 {
        *self.exports.lock().unwrap()
    }

    /// The spans of `trace_id` once its SERVER span and `clients` CLIENT spans have arrived.
    fn trace(&self, trace_id: &str, clients: usize) -> Vec<Got> {
        let of_trace = || -> Vec<Got> {
            let mut v: Vec<Got> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            v.sort_by_key(|s| s.start);
            v
        };
        wait_until("the trace's spans reach the receiver", 15, || {
            let v = of_trace();
            v.iter().any(|s| s.kind == SERVER)
                && v.iter().filter(|s| s.kind == CLIENT).count() >= clients
        });
        of_trace()
    }
}

/// Reads OTLP exports off one connection (keep-alive) and answers each with 200.
fn serve(conn: TcpStream, spans: &Mutex<Vec<Got>>, exports: &Mutex<u64>) {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        assert!(line.starts_with("POST /v1/traces "), "{line}");
        let (mut length, mut json) = (0, false);
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "content-type" => json = value.contains("json"),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body).unwrap();
        let req: ExportTraceServiceRequest = if json {
            serde_json::from_slice(&body).unwrap()
        } else {
            ExportTraceServiceRequest::decode(&body[..]).unwrap()
        };
        spans.lock().unwrap().extend(flatten(req));
        *exports.lock().unwrap() += 1;
        let answer = if json { "{}" } else { "" };
        let kind = if json {
            "application/json"
        } else {
            "application/x-protobuf"
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if w.write_all(head.as_bytes()).is_err() {
            return;
        }
    }
}

fn flatten(req: ExportTraceServiceRequest) -> Vec<Got> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let resource = rs
            .resource
            .map(|r| attrs(&r.attributes))
            .unwrap_or_default();
        let service = resource
            .get("service.name")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        for ss in rs.scope_spans {
            for s in ss.spans {
                out.push(Got {
                    service: service.clone(),
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent: hex(&s.parent_span_id),
                    name: s.name,
                    kind: s.kind,
                    start: s.start_time_unix_nano,
                    status: s.status.map(|st| st.code).unwrap_or(0),
                    attrs: attrs(&s.attributes),
                });
            }
        }
    }
    out
}

fn attrs(kvs: &[KeyValue]) -> Map<String, Value> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), any(kv.value.as_ref())))
        .collect()
}

fn any(v: Option<&AnyValue>) -> Value {
    match v.and_then(|a| a.value.as_ref()) {
        Some(Any::StringValue(s)) => json!(s),
        Some(Any::IntValue(i)) => json!(i),
        Some(Any::BoolValue(b)) => json!(b),
        Some(Any::DoubleValue(d)) => json!(d),
        Some(Any::ArrayValue(a)) => Value::Array(a.values.iter().map(|x| any(Some(x))).collect()),
        _ => Value::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tracing_yaml(enabled: bool, endpoint: &str, extra: &str) -> String {
    format!(
        "tracing:\n  enabled: {enabled}\n  endpoint: \"{endpoint}\"\n  service_name: tollgate-test\n{extra}"
    )
}

fn backends(items: &[String]) -> String {
    format!("backends:\n{}", items.concat())
}

/// A counter's value in the Prometheus text (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_traced_request_joins_the_clients_trace_with_phases_and_one_span_per_attempt() {
    let mock = MockServer::start(&[]);
    let receiver = Receiver::start(true);
    let dead = free_port();
    let gw = GatewayServer::start_with(
        &backends(&[
            openai_backend("dead", dead, 1, 1, ""),
            openai_backend("live", mock.port, 2, 1, ""),
        ]),
        "",
        &tracing_yaml(true, &receiver.endpoint(), ""),
        &[],
    );
    let client = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("traceparent", &client), ("tracestate", "vendor=abc")],
        ASK,
    );
    assert_eq!(r.status, 200, "{}", r.body_text());

    let spans = receiver.trace(TRACE_ID, 2);
    let server = spans.iter().find(|s| s.kind == SERVER).unwrap();
    assert_eq!(server.parent, CLIENT_SPAN, "a child of the client's span");
    assert_eq!(server.name, "chat gpt-4o");
    assert_eq!(server.service.as_deref(), Some("tollgate-test"));
    let ledger = mock.ledger();
    let (prompt, completion) = (
        ledger["prompt_tokens"].as_i64().unwrap(),
        ledger["completion_tokens"].as_i64().unwrap(),
    );
    assert!(prompt > 0 && completion == 16, "{ledger}");
    for (key, want) in [
        ("gen_ai.operation.name", json!("chat")),
        ("gen_ai.request.model", json!("gpt-4o")),
        ("gen_ai.request.max_tokens", json!(40)),
        ("gen_ai.usage.input_tokens", json!(prompt)),
        ("gen_ai.usage.output_tokens", json!(completion)),
        ("http.response.status_code", json!(200)),
        ("http.route", json!("/v1/chat/completions")),
        ("tollgate.consumer.id", json!("tester")),
        ("tollgate.consumer.team", json!("QA")),
        ("tollgate.cache", json!("miss")),
        ("tollgate.filter", json!("passed")),
        ("tollgate.usage.estimated", json!(false)),
        ("tollgate.backend.id", json!("live")),
        ("tollgate.attempts", json!(2)),
    ] {
        assert_eq!(server.attr(key), &want, "{key} in {:?}", server.attrs);
    }
    assert!(server.attr("tollgate.cost_nanodollars").as_i64().unwrap() > 0);
    assert_eq!(server.attr("error.type"), &Value::Null);

    // The phases, children of the request's span.
    let children: Vec<&str> = spans
        .iter()
        .filter(|s| s.kind == INTERNAL)
        .map(|s| s.name.as_str())
        .collect();
    for phase in [
        "auth",
        "content filter",
        "admission",
        "cache lookup",
        "routing",
        "settlement",
    ] {
        assert!(
            children.contains(&phase),
            "{phase} missing from {children:?}"
        );
    }
    assert!(spans
        .iter()
        .filter(|s| s.kind != SERVER)
        .all(|s| s.parent == server.span_id));

    // One CLIENT span per attempt: the unreachable backend, then the mock.
    let attempts: Vec<&Got> = spans.iter().filter(|s| s.kind == CLIENT).collect();
    assert_eq!(attempts.len(), 2);
    let (first, second) = (attempts[0], attempts[1]);
    assert_eq!(first.attr("tollgate.backend.id"), "dead");
    assert_eq!(first.attr("error.type"), "upstream_unreachable");
    assert_eq!(first.status, 2, "an error");
    assert_eq!(first.attr("server.port"), &json!(dead));
    assert_eq!(second.attr("tollgate.backend.id"), "live");
    for (key, want) in [
        ("gen_ai.operation.name", json!("chat")),
        ("gen_ai.provider.name", json!("openai")),
        ("gen_ai.request.model", json!("gpt-4o")),
        ("gen_ai.usage.input_tokens", json!(prompt)),
        ("gen_ai.usage.output_tokens", json!(completion)),
        ("http.response.status_code", json!(200)),
        ("server.address", json!("127.0.0.1")),
        ("server.port", json!(mock.port)),
    ] {
        assert_eq!(second.attr(key), &want, "{key} in {:?}", second.attrs);
    }

    // The backend was told the trace and the attempt's span, not the client's header as sent;
    // the client's tracestate went along.
    let last = &ledger["last_request"];
    assert_eq!(
        last["traceparent"],
        format!("00-{TRACE_ID}-{}-01", second.span_id)
    );
    assert_eq!(last["tracestate"], "vendor=abc");

    // The exporter counts a batch when the receiver's answer reaches it, which can be just
    // after the receiver handed the spans to this test.
    let exported = "tollgate_trace_batches_total{outcome=\"exported\"}";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let text = loop {
        let text = gw.admin_text("/metrics");
        if metric(&text, exported) >= 1.0 || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(metric(&text, exported) >= 1.0);
    assert_eq!(metric(&text, "tollgate_trace_spans_dropped_total"), 0.0);
    // Never prompt text.
    let everything = format!("{spans:?}");
    assert!(!everything.contains("trace me"), "{everything}");
}

#[test]
fn a_malformed_traceparent_starts_a_new_trace_exported_as_json() {
    let mock = MockServer::start(&[]);
    let receiver = Receiver::start(true);
    let gw = GatewayServer::start_with(
        &backends(&[openai_backend("live", mock.port, 1, 1, "")]),
        "",
        &tracing_yaml(true, &receiver.endpoint(), "  protocol: http/json\n"),
        &[],
    );
    let malformed = format!("00-{}-{CLIENT_SPAN}-01", TRACE_ID.to_uppercase());
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("traceparent", &malformed), ("tracestate", "vendor=abc")],
        ASK,
    );
    assert_eq!(r.status, 200, "a malformed traceparent is no error");

    let sent = mock.ledger()["last_request"]["traceparent"]
        .as_str()
        .unwrap()
        .to_string();
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    let trace_id = parts[1];
    assert_ne!(trace_id, TRACE_ID.to_lowercase());
    assert_ne!(trace_id, "0".repeat(32));
    assert_eq!(parts[3], "01", "sample_ratio 1.0 records every new trace");
    assert_eq!(
        mock.ledger()["last_request"]["tracestate"],
        Value::Null,
        "the old trace's state does not follow a new trace"
    );
    let spans = receiver.trace(trace_id, 1);
    let server = spans.iter().find(|s| s.kind == SERVER).unwrap();
    assert_eq!(server.parent, "", "a root span");
    let attempt = spans.iter().find(|s| s.kind == CLIENT).unwrap();
    assert_eq!(attempt.span_id, parts[2]);
    assert_eq!(
        attempt.attr("gen_ai.usage.output_tokens"),
        &json!(mock.ledger()["completion_tokens"])
    );
}

#[test]
fn with_tracing_off_nothing_is_exported_and_the_clients_headers_pass_as_before() {
    let mock = MockServer::start(&[]);
    let receiver = Receiver::start(true);
    let gw = GatewayServer::start_with(
        &backends(&[openai_backend("live", mock.port, 1, 1, "")]),
        "",
        &tracing_yaml(false, &receiver.endpoint(), ""),
        &[],
    );
    let client = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let r = post_as(
        gw.port,
        "/v1/chat/completions",
        &[("traceparent", &client), ("tracestate", "vendor=abc")],
        ASK,
    );
    assert_eq!(r.status, 200);
    let last = &mock.ledger()["last_request"];
    assert_eq!(last["traceparent"], client.as_str());
    assert_eq!(last["tracestate"], "vendor=abc");
    // Absence can only be waited for: long past the exporter's 200 ms gathering.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(receiver.exports(), 0);
    assert!(!gw
        .admin_text("/metrics")
        .contains("tollgate_trace_batches_total{"));
}

#[test]
fn a_collector_that_never_answers_costs_dropped_spans_not_request_time() {
    let mock = MockServer::start(&[]);
    let receiver = Receiver::start(false);
    let gw = GatewayServer::start_with(
        &backends(&[openai_backend("live", mock.port, 1, 1, "")]),
        "",
        &tracing_yaml(
            true,
            &receiver.endpoint(),
            "  queue: 16\n  export_timeout_ms: 30000\n",
        ),
        &[],
    );
    let started = Instant::now();
    for i in 0..12 {
        let t = Instant::now();
        let r = post_as(
            gw.port,
            "/v1/chat/completions",
            &[("Cache-Control", "no-store")],
            ASK,
        );
        assert_eq!(r.status, 200, "request {i}");
        // The exporter is stuck for 30 s; a request waits for nothing of it.
        assert!(t.elapsed() < Duration::from_secs(5), "request {i}");
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    wait_until("spans are dropped and counted", 10, || {
        metric(
            &gw.admin_text("/metrics"),
            "tollgate_trace_spans_dropped_total",
        ) > 0.0
    });
    assert_eq!(receiver.exports(), 0);
    assert_eq!(mock.requests(), 12);
}
