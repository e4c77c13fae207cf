use super::*;
use crate::protocol::responses::{answer_texts_mut, usage, StreamState};
use crate::protocol::translate::{Answer, Drops, Event, Finish, SseLines, StreamEncoder, ToolDef};
use crate::usage::Usage;
use bytes::BytesMut;

const INSTRUCTIONS: &str = include_str!("../fixtures/responses/request_instructions.json");
const FUNCTION_CALL: &str = include_str!("../fixtures/responses/request_function_call.json");
const IMAGE: &str = include_str!("../fixtures/responses/request_image.json");
const STATEFUL: &str = include_str!("../fixtures/responses/request_stateful.json");
const STREAM_TEXT: &str = include_str!("../fixtures/responses/stream_text.sse");
const STREAM_CALL: &str = include_str!("../fixtures/responses/stream_function_call.sse");

fn decode(body: &str) -> Chat {
    decode_request(body.as_bytes()).unwrap()
}

fn unsupported(body: &str) -> Vec<String> {
    decode(body).unsupported
}

fn text(t: &str) -> Part {
    Part::Text(t.into())
}

fn reported() -> Usage {
    Usage {
        input: 120,
        output: 30,
        cached: 100,
        cache_write: 0,
        reasoning: 7,
        estimated: false,
    }
}

/// The events of an SSE body: (the `event:` name, the data as JSON).
fn events(body: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(body).unwrap();
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut lines = e.lines();
            let name = lines.next().unwrap().strip_prefix("event: ").unwrap();
            let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
            (name.to_string(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn stream(request: &Chat, neutral: &[Event]) -> BytesMut {
    let mut encoder = Encoder::new(request);
    let mut out = BytesMut::new();
    for e in neutral {
        encoder.event(e, &mut out);
    }
    encoder.end(&mut out);
    out
}

/// Every member `recorded` has, `ours` has too (objects compared member by member, arrays item
/// by item): the shape OpenAI's docs show is all there.
fn has_shape(ours: &Value, recorded: &Value, path: &str) {
    match (ours, recorded) {
        (Value::Object(o), Value::Object(r)) => {
            for (k, rv) in r {
                let ov = o
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} missing in {ours}"));
                has_shape(ov, rv, &format!("{path}.{k}"));
            }
        }
        (Value::Array(o), Value::Array(r)) => {
            assert_eq!(o.len(), r.len(), "{path}: {ours} vs {recorded}");
            for (i, (ov, rv)) in o.iter().zip(r).enumerate() {
                has_shape(ov, rv, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}

#[test]
fn a_string_input_with_instructions_is_one_user_message_after_the_system() {
    let chat = decode(INSTRUCTIONS);
    assert_eq!(chat.model, "gpt-4.1");
    assert_eq!(chat.system, ["Talk like a pirate."]);
    assert_eq!(
        chat.messages,
        [Message {
            role: Role::User,
            parts: vec![text("Are semicolons optional in JavaScript?")]
        }]
    );
    assert!(chat.unsupported.is_empty() && !chat.stream);
}

#[test]
fn function_calls_and_their_outputs_become_an_assistant_turn_and_a_user_turn_of_results() {
    let chat = decode(FUNCTION_CALL);
    assert_eq!(
        chat.system,
        ["You are a weather assistant. Answer in one sentence."]
    );
    let result = |id: &str, content: &str| Part::ToolResult {
        id: id.into(),
        name: "get_weather".into(),
        content: content.into(),
        is_error: false,
    };
    let call = |id: &str, args: &str| Part::ToolCall {
        id: id.into(),
        name: "get_weather".into(),
        arguments: args.into(),
    };
    assert_eq!(
        chat.messages,
        [
            Message {
                role: Role::User,
                parts: vec![text("What's the weather like in Paris and Bogotá today?")]
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    call(
                        "call_unLAR8MvFNptuiZK6K6HCy5k",
                        r#"{"location":"Paris, France"}"#
                    ),
                    call(
                        "call_8D1tTqSfaDQvL0dVFLhrBg4m",
                        r#"{"location":"Bogotá, Colombia"}"#
                    ),
                ]
            },
            Message {
                role: Role::User,
                parts: vec![
                    result("call_unLAR8MvFNptuiZK6K6HCy5k", "14"),
                    result("call_8D1tTqSfaDQvL0dVFLhrBg4m", "19"),
                ]
            },
        ]
    );
    assert_eq!(chat.tools.len(), 1);
    let ToolDef {
        name,
        description,
        parameters,
    } = &chat.tools[0];
    assert_eq!(name, "get_weather");
    assert_eq!(
        description.as_deref(),
        Some("Get current temperature for a given location.")
    );
    assert_eq!(parameters["required"], json!(["location"]));
    assert_eq!(chat.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(
        (chat.temperature, chat.max_tokens, chat.stream),
        (Some(0.2), Some(512), false)
    );
    // The docs' tool is strict; no translated backend enforces its schema.
    assert_eq!(chat.unsupported, ["tools[0].strict"]);
}

#[test]
fn an_input_image_is_an_image_by_url_or_inline_bytes() {
    let chat = decode(IMAGE);
    assert!(chat.stream);
    assert!(chat.unsupported.is_empty(), "{:?}", chat.unsupported);
    let parts = &chat.messages[0].parts;
    assert_eq!(parts[0], text("what's in this image?"));
    assert!(matches!(&parts[1], Part::Image(Image::Url(u)) if u.ends_with("boardwalk.jpg")));
    assert!(
        matches!(&parts[2], Part::Image(Image::Base64 { media_type, data })
            if media_type == "image/png" && data.starts_with("iVBORw0K"))
    );
}

#[test]
fn state_kept_at_openai_and_built_in_tools_are_collected_as_unsupported() {
    let chat = decode(STATEFUL);
    for field in [
        "previous_response_id",
        "store",
        "include",
        "tools[0].web_search_preview",
    ] {
        assert!(
            chat.unsupported.iter().any(|f| f == field),
            "{field} in {:?}",
            chat.unsupported
        );
    }
    assert!(chat.tools.is_empty());
    let refused = Drops(&[])
        .check(&chat.unsupported, "anthropic")
        .unwrap_err();
    assert!(
        matches!(refused, GatewayError::Untranslatable { target, .. } if target == "anthropic")
    );
    let drops = [
        "previous_response_id".to_string(),
        "store".into(),
        "include".into(),
        "web_search_preview".into(),
    ];
    assert!(Drops(&drops).check(&chat.unsupported, "anthropic").is_ok());
}

#[test]
fn fields_without_a_neutral_form_are_named_and_defaults_and_nulls_pass() {
    let fine = r#"{"model":"m","input":"hi","store":false,"truncation":"disabled",
        "parallel_tool_calls":true,"metadata":{},"include":[],"background":false,
        "service_tier":"auto","top_logprobs":0,"reasoning":null,"previous_response_id":null,
        "text":{"format":{"type":"text"},"verbosity":"medium"},"temperature":null,
        "tools":[{"type":"function","name":"f","strict":false}],"user":"u-1"}"#;
    let chat = decode(fine);
    assert!(chat.unsupported.is_empty(), "{:?}", chat.unsupported);
    assert_eq!(chat.user.as_deref(), Some("u-1"));
    assert_eq!(chat.tools[0].parameters, json!({"type": "object"}));
    assert!(
        decode(r#"{"model":"m","input":"x","text":{"format":{"type":"json_object"}}}"#).json_object
    );

    let refused = r#"{"model":"m","truncation":"auto","parallel_tool_calls":false,
        "reasoning":{"effort":"high"},"metadata":{"k":"v"},"prompt_cache_key":"k",
        "text":{"format":{"type":"json_schema","name":"x","schema":{}}},
        "tool_choice":{"type":"file_search"},
        "input":[{"type":"reasoning","id":"rs_1","summary":[]},
                 {"type":"item_reference","id":"msg_1"},
                 {"role":"user","content":[
                    {"type":"input_image","image_url":"https://x.test/a.png","detail":"high"},
                    {"type":"input_image","file_id":"file-1"},
                    {"type":"input_file","file_id":"file-2"}]},
                 {"type":"function_call_output","call_id":"c","output":[
                    {"type":"input_image","image_url":"https://x.test/b.png"}]}]}"#;
    let mut got = unsupported(refused);
    got.sort();
    let mut want = [
        "truncation",
        "parallel_tool_calls",
        "reasoning",
        "metadata",
        "prompt_cache_key",
        "text.format",
        "tool_choice",
        "input[0].type",
        "input[1].type",
        "input[2].content[0].detail",
        "input[2].content[1].file_id",
        "input[2].content[2].type",
        "input[3].output[0].type",
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn malformed_bodies_are_bad_requests() {
    for body in [
        "not json",
        "[]",
        r#"{"input":"x"}"#,
        r#"{"model":"","input":"x"}"#,
        r#"{"model":"m"}"#,
        r#"{"model":"m","input":42}"#,
        r#"{"model":"m","input":[{"content":"no role or type"}]}"#,
        r#"{"model":"m","input":[{"role":"robot","content":"x"}]}"#,
        r#"{"model":"m","input":[{"type":"message","content":"x"}]}"#,
        r#"{"model":"m","input":[{"type":"function_call","name":"f","arguments":"{}"}]}"#,
        r#"{"model":"m","input":[{"type":"function_call_output","call_id":"c"}]}"#,
        r#"{"model":"m","input":"x","tool_choice":"sometimes"}"#,
        r#"{"model":"m","input":"x","max_output_tokens":0}"#,
        r#"{"model":"m","input":"x","temperature":"hot"}"#,
        r#"{"model":"m","input":"x","tools":[{"name":"f"}]}"#,
    ] {
        assert!(
            matches!(
                decode_request(body.as_bytes()),
                Err(GatewayError::BadRequest(_))
            ),
            "{body}"
        );
    }
}

fn answer() -> Answer {
    Answer {
        id: "msg_01XFDUDYJgAACzvnptvVoYEL".into(),
        model: "claude-sonnet-4-5".into(),
        parts: vec![
            text("Let me check "),
            text("the weather."),
            Part::ToolCall {
                id: "toolu_01A".into(),
                name: "get_weather".into(),
                arguments: r#"{"location":"Paris, France"}"#.into(),
            },
        ],
        finish: Finish::ToolCalls,
        usage: Some(reported()),
    }
}

#[test]
fn an_answer_is_a_response_object_the_gateway_and_the_sdk_read() {
    let request = decode(FUNCTION_CALL);
    let body = encode_answer(&answer(), &request);
    assert_eq!(usage(&body), Some(reported()));
    let mut v: Value = serde_json::from_slice(&body).unwrap();
    // What the openai SDK's `Response` requires.
    for field in [
        "id",
        "created_at",
        "model",
        "object",
        "output",
        "parallel_tool_calls",
        "tool_choice",
        "tools",
    ] {
        assert!(!v[field].is_null(), "{field}");
    }
    assert_eq!(v["id"], "resp_msg_01XFDUDYJgAACzvnptvVoYEL");
    assert_eq!(
        (&v["object"], &v["status"], &v["model"]),
        (
            &json!("response"),
            &json!("completed"),
            &json!("claude-sonnet-4-5")
        )
    );
    assert_eq!(v["output"][0]["type"], "message");
    assert_eq!(v["output"][0]["role"], "assistant");
    assert_eq!(v["output"][0]["content"][0]["type"], "output_text");
    let call = &v["output"][1];
    assert_eq!(
        (&call["type"], &call["call_id"], &call["name"]),
        (
            &json!("function_call"),
            &json!("toolu_01A"),
            &json!("get_weather")
        )
    );
    assert_eq!(call["arguments"], r#"{"location":"Paris, France"}"#);
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(v["usage"]["total_tokens"], 150);
    assert_eq!(v["usage"]["input_tokens_details"]["cache_write_tokens"], 0);
    assert_eq!(
        v["instructions"],
        "You are a weather assistant. Answer in one sentence."
    );
    assert_eq!(v["tools"][0]["name"], "get_weather");
    assert_eq!(
        (&v["temperature"], &v["max_output_tokens"], &v["store"]),
        (&json!(0.2), &json!(512), &json!(false))
    );
    assert!(v["error"].is_null() && v["incomplete_details"].is_null());
    let texts: Vec<String> = answer_texts_mut(&mut v)
        .into_iter()
        .map(|s| s.clone())
        .collect();
    assert_eq!(texts, ["Let me check the weather."]);
}

#[test]
fn an_answer_cut_by_the_cap_or_a_filter_is_incomplete_with_the_reason() {
    for (finish, reason) in [
        (Finish::Length, "max_output_tokens"),
        (Finish::ContentFilter, "content_filter"),
    ] {
        let cut = Answer {
            id: String::new(),
            parts: vec![text("Once upon")],
            finish,
            ..Answer::default()
        };
        let chat = decode(INSTRUCTIONS);
        let v: Value = serde_json::from_slice(&encode_answer(&cut, &chat)).unwrap();
        assert_eq!(v["status"], "incomplete");
        assert_eq!(v["incomplete_details"]["reason"], reason);
        assert_eq!(v["output"][0]["status"], "incomplete");
        assert_eq!(
            v["model"], "gpt-4.1",
            "the request's model when the answer names none"
        );
        assert!(v["id"].as_str().unwrap().starts_with("resp_"));
        assert!(v["usage"].is_null());
    }
}

fn neutral_text_then_call() -> Vec<Event> {
    vec![
        Event::Start {
            id: "msg_01".into(),
            model: "claude-sonnet-4-5".into(),
        },
        Event::Text("Let me check ".into()),
        Event::Text("the weather.".into()),
        Event::ToolCallStart {
            index: 0,
            id: "toolu_01A".into(),
            name: "get_weather".into(),
        },
        Event::ToolCallArgs {
            index: 0,
            arguments: r#"{"location":"#.into(),
        },
        Event::ToolCallArgs {
            index: 0,
            arguments: r#""Paris, France"}"#.into(),
        },
        Event::Finish(Finish::ToolCalls),
        Event::Usage(reported()),
    ]
}

#[test]
fn the_stream_is_read_by_the_gateway_to_its_end_with_the_exact_usage() {
    let body = stream(&decode(FUNCTION_CALL), &neutral_text_then_call());
    let mut lines = SseLines::default();
    let mut state = StreamState::default();
    for data in lines.feed(&body) {
        state.observe(&data);
    }
    assert!(state.done);
    assert_eq!(state.usage, Some(reported()));
    let delivered = "Let me check the weather.".len() + r#"{"location":"Paris, France"}"#.len();
    assert_eq!(state.delivered_chars, delivered as u64);
}

#[test]
fn every_event_is_typed_and_numbered_in_order_from_zero() {
    let body = stream(&decode(FUNCTION_CALL), &neutral_text_then_call());
    let events = events(&body);
    for (n, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], json!(name));
        assert_eq!(data["sequence_number"], json!(n), "{name}");
    }
    let kinds: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let done = &events.last().unwrap().1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(
        done["output"][0]["content"][0]["text"],
        "Let me check the weather."
    );
    assert_eq!(
        done["output"][1]["arguments"],
        r#"{"location":"Paris, France"}"#
    );
    assert_eq!(done["output"][1]["call_id"], "toolu_01A");
    assert_eq!(done["id"], "resp_msg_01");
    // Item ids and indexes agree between the events that name the same item.
    assert_eq!(events[4].1["item_id"], events[2].1["item"]["id"]);
    assert_eq!(events[10].1["item_id"], events[9].1["item"]["id"]);
    assert_eq!(events[10].1["output_index"], 1);
}

#[test]
fn a_text_stream_has_the_events_and_members_of_openais_recorded_one() {
    let recorded = events(STREAM_TEXT.as_bytes());
    let request = Chat {
        model: "gpt-4.1-2025-04-14".into(),
        system: vec!["You are a helpful assistant.".into()],
        ..Chat::default()
    };
    let ours = events(&stream(
        &request,
        &[
            Event::Start {
                id: "resp_1".into(),
                model: "gpt-4.1-2025-04-14".into(),
            },
            Event::Text("Hi".into()),
            Event::Text(" there!".into()),
            Event::Usage(Usage {
                input: 37,
                output: 11,
                ..Usage::default()
            }),
            Event::Finish(Finish::Stop),
        ],
    ));
    assert_eq!(ours.len(), recorded.len());
    for ((on, ov), (rn, rv)) in ours.iter().zip(&recorded) {
        assert_eq!(on, rn);
        has_shape(ov, rv, on);
    }
    // The recorded stream and ours tell the gateway the same.
    let read = |e: &[(String, Value)]| {
        let mut s = StreamState::default();
        for (_, v) in e {
            s.observe(&v.to_string());
        }
        (s.done, s.usage, s.delivered_chars)
    };
    assert_eq!(read(&ours), read(&recorded));
}

#[test]
fn a_function_call_stream_has_the_events_and_members_of_openais_recorded_one() {
    let recorded = events(STREAM_CALL.as_bytes());
    let ours = events(&stream(
        &Chat::default(),
        &[
            Event::ToolCallStart {
                index: 0,
                id: "call_1234xyz".into(),
                name: "get_weather".into(),
            },
            Event::ToolCallArgs {
                index: 0,
                arguments: "{\"".into(),
            },
            Event::ToolCallArgs {
                index: 0,
                arguments: "location\":\"Paris, France\"}".into(),
            },
            Event::Finish(Finish::ToolCalls),
            Event::Usage(Usage {
                input: 57,
                output: 16,
                ..Usage::default()
            }),
        ],
    ));
    assert_eq!(ours.len(), recorded.len());
    for ((on, ov), (rn, rv)) in ours.iter().zip(&recorded) {
        assert_eq!(on, rn);
        has_shape(ov, rv, on);
    }
}

#[test]
fn a_stream_without_start_still_opens_and_a_cut_one_ends_incomplete() {
    let ours = events(&stream(
        &decode(INSTRUCTIONS),
        &[Event::Text("Arr".into()), Event::Finish(Finish::Length)],
    ));
    assert_eq!(ours[0].0, "response.created");
    assert_eq!(ours[1].0, "response.in_progress");
    assert_eq!(ours[0].1["response"]["model"], "gpt-4.1");
    assert_eq!(ours[0].1["response"]["instructions"], "Talk like a pirate.");
    let (name, last) = ours.last().unwrap();
    assert_eq!(name, "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(last["response"]["output"][0]["status"], "incomplete");
    // Nothing at all still makes a whole stream.
    let empty = events(&stream(&Chat::default(), &[]));
    let kinds: Vec<&str> = empty.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.completed"
        ]
    );
}

#[test]
fn a_backend_error_is_an_error_event_and_the_stream_ends_failed() {
    let ours = events(&stream(
        &Chat::default(),
        &[
            Event::Text("partial".into()),
            Event::Error {
                message: "overloaded".into(),
            },
        ],
    ));
    let error = ours.iter().find(|(n, _)| n == "error").unwrap();
    assert_eq!(error.1["code"], "upstream_failed");
    assert_eq!(error.1["message"], "overloaded");
    assert!(error.1["param"].is_null());
    let (name, last) = ours.last().unwrap();
    assert_eq!(name, "response.failed");
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(last["response"]["error"]["message"], "overloaded");
    let mut state = StreamState::default();
    for (_, v) in &ours {
        state.observe(&v.to_string());
    }
    assert!(state.done);
}

#[test]
fn arguments_for_a_call_already_closed_still_reach_the_final_response() {
    let start = |index: u32, id: &str| Event::ToolCallStart {
        index,
        id: id.into(),
        name: "f".into(),
    };
    let args = |index: u32, a: &str| Event::ToolCallArgs {
        index,
        arguments: a.into(),
    };
    let ours = events(&stream(
        &Chat::default(),
        &[
            start(0, "a"),
            args(0, "{\"x\":"),
            start(1, "b"),
            args(0, "1}"),
            args(1, "{}"),
        ],
    ));
    let output = &ours.last().unwrap().1["response"]["output"];
    assert_eq!(output[0]["arguments"], "{\"x\":1}");
    assert_eq!(output[1]["arguments"], "{}");
}
