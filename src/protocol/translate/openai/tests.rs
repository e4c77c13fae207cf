//! The OpenAI dialect through the API reference's example payloads
//! (`fixtures/openai/`: a request with a developer message, an image, tools and a tool result;
//! a text answer; a tool-call answer; a streamed tool call with its usage chunk).

use super::answer::{finish_from, finish_reason};
use super::*;
use crate::protocol::openai::StreamState;
use crate::protocol::translate::{Answer, Finish};
use crate::protocol::translate::{Event, StreamEncoder};
use crate::usage::Usage;
use bytes::BytesMut;

const REQUEST: &str = include_str!("../fixtures/openai/request.json");
const ANSWER_TEXT: &str = include_str!("../fixtures/openai/answer_text.json");
const ANSWER_TOOL_CALLS: &str = include_str!("../fixtures/openai/answer_tool_calls.json");
const STREAM_TOOL_CALLS: &str = include_str!("../fixtures/openai/stream_tool_calls.sse");

const NO_DROPS: Drops<'static> = Drops(&[]);

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn weather_call() -> Part {
    Part::ToolCall {
        id: "call_abc123".into(),
        name: "get_current_weather".into(),
        arguments: "{\n\"location\": \"Boston, MA\"\n}".into(),
    }
}

#[test]
fn the_reference_request_decodes_into_the_neutral_form() {
    let chat = decode_request(REQUEST.as_bytes()).unwrap();
    assert_eq!(chat.model, "gpt-4o-mini");
    assert_eq!(chat.system, ["You are a helpful assistant."]);
    assert_eq!(chat.messages.len(), 5);
    assert_eq!(
        chat.messages[0].parts,
        [
            Part::Text("What is in this image?".into()),
            Part::Image(Image::Url("https://upload.wikimedia.org/wikipedia/commons/thumb/d/dd/Gfp-wisconsin-madison-the-nature-boardwalk.jpg/2560px-Gfp-wisconsin-madison-the-nature-boardwalk.jpg".into())),
        ]
    );
    assert_eq!(chat.messages[1].role, Role::Assistant);
    assert_eq!(chat.messages[3].parts, [weather_call()]);
    assert_eq!(
        chat.messages[4],
        Message {
            role: Role::User,
            parts: vec![Part::ToolResult {
                id: "call_abc123".into(),
                name: "get_current_weather".into(),
                content: "{\"temperature\": 22, \"unit\": \"celsius\", \"description\": \"Sunny\"}"
                    .into(),
                is_error: false,
            }],
        },
        "the result is named after the call it answers"
    );
    assert_eq!(chat.tools.len(), 1);
    assert_eq!(chat.tools[0].name, "get_current_weather");
    assert_eq!(chat.tools[0].parameters["required"], json!(["location"]));
    assert_eq!(chat.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(chat.max_tokens, Some(300));
    assert_eq!(chat.temperature, Some(0.7));
    assert_eq!(chat.stop, ["\n\n"]);
    assert_eq!(chat.user.as_deref(), Some("user-1234"));
    assert!(chat.stream);
    assert!(chat.unsupported.is_empty(), "{:?}", chat.unsupported);
}

#[test]
fn the_reference_request_round_trips_to_an_equivalent_body() {
    let chat = decode_request(REQUEST.as_bytes()).unwrap();
    let sent = json_of(&encode_request(&chat, NO_DROPS).unwrap());
    // The same body but for what has one neutral form: `developer` is sent as `system`, and
    // the default `detail: auto` is left out.
    let mut expected: Value = serde_json::from_str(REQUEST).unwrap();
    expected["messages"][0]["role"] = json!("system");
    let image = expected["messages"][1]["content"][1]["image_url"]
        .as_object_mut()
        .unwrap();
    image.remove("detail");
    assert_eq!(sent, expected);
    assert_eq!(decode_request(sent.to_string().as_bytes()).unwrap(), chat);
}

#[test]
fn max_completion_tokens_wins_and_is_sent_as_max_tokens() {
    let body = json!({"model": "m", "max_tokens": 9, "max_completion_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}]});
    let chat = decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(chat.max_tokens, Some(5));
    let sent = json_of(&encode_request(&chat, NO_DROPS).unwrap());
    assert_eq!(sent["max_tokens"], 5);
    assert!(sent.get("max_completion_tokens").is_none());
}

#[test]
fn fields_without_a_neutral_form_are_collected_by_name() {
    let body = json!({
        "model": "m", "n": 2, "logprobs": true, "top_logprobs": 2, "metadata": {"a": "b"},
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        "parallel_tool_calls": false,
        "functions": [{"name": "old"}],
        "messages": [
            {"role": "user", "name": "ann", "content": [
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "high"}},
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                {"type": "file", "file": {"file_id": "file-1"}}]},
            {"role": "assistant", "function_call": {"name": "old", "arguments": "{}"}},
            {"role": "function", "name": "old", "content": "42"}
        ],
        "tools": [{"type": "function", "function": {"name": "f", "strict": true}},
            {"type": "custom", "custom": {"name": "g"}}],
        "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}
    });
    let chat = decode_request(body.to_string().as_bytes()).unwrap();
    let mut got = chat.unsupported.clone();
    got.sort();
    assert_eq!(
        got,
        [
            "functions",
            "logprobs",
            "messages[0].content[0].image_url.detail",
            "messages[0].content[1].input_audio",
            "messages[0].content[2].file",
            "messages[0].name",
            "messages[1].function_call",
            "messages[2].role",
            "metadata",
            "n",
            "parallel_tool_calls",
            "response_format",
            "tool_choice",
            "tools[0].function.strict",
            "tools[1].custom",
            "top_logprobs",
        ]
    );
    assert_eq!(chat.tools.len(), 1, "the function tool is kept");
}

#[test]
fn unsupported_fields_are_refused_unless_the_backend_drops_them() {
    let body = json!({"model": "m", "logprobs": true, "store": true,
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}}]}]});
    let chat = decode_request(body.to_string().as_bytes()).unwrap();
    let err = encode_request(&chat, NO_DROPS).unwrap_err();
    assert!(
        matches!(&err, GatewayError::Untranslatable { field, target } if field == "logprobs" && target == "openai"),
        "{err:?}"
    );
    let some = ["logprobs".to_string(), "detail".to_string()];
    let err = encode_request(&chat, Drops(&some)).unwrap_err();
    assert!(
        matches!(&err, GatewayError::Untranslatable { field, .. } if field == "store"),
        "{err:?}"
    );
    let all = [
        "logprobs".to_string(),
        "detail".to_string(),
        "store".to_string(),
    ];
    let sent = json_of(&encode_request(&chat, Drops(&all)).unwrap());
    assert!(sent.get("logprobs").is_none() && sent.get("store").is_none());
    assert_eq!(
        sent["messages"][0]["content"][0]["image_url"],
        json!({"url": "https://x.test/a.png"})
    );
}

#[test]
fn top_k_is_refused_unless_dropped() {
    let chat = Chat {
        model: "m".into(),
        top_k: Some(40),
        messages: vec![Message {
            role: Role::User,
            parts: vec![Part::Text("hi".into())],
        }],
        ..Chat::default()
    };
    assert_eq!(
        encode_request(&chat, NO_DROPS).unwrap_err(),
        GatewayError::Untranslatable {
            field: "top_k".into(),
            target: "openai".into()
        }
    );
    let drop = ["top_k".to_string()];
    let sent = json_of(&encode_request(&chat, Drops(&drop)).unwrap());
    assert!(sent.get("top_k").is_none());
    assert_eq!(sent["messages"], json!([{"role": "user", "content": "hi"}]));
}

#[test]
fn null_members_count_as_absent() {
    let body = br#"{"model":"m","logprobs":null,"temperature":null,"stop":null,"tools":null,
        "n":null,"messages":[{"role":"user","name":null,"content":"hi"}]}"#;
    let chat = decode_request(body).unwrap();
    assert!(chat.unsupported.is_empty(), "{:?}", chat.unsupported);
    assert_eq!(chat.temperature, None);
}

#[test]
fn malformed_bodies_are_bad_requests() {
    for (body, needle) in [
        (&b"{not json"[..], "key must be a string"),
        (b"[1]", "must be an object"),
        (br#"{"model":"m"}"#, "messages"),
        (br#"{"model":"m","messages":[]}"#, "messages"),
        (br#"{"messages":[{"role":"user","content":"x"}]}"#, "model"),
        (br#"{"model":"m","messages":"x"}"#, "messages"),
        (
            br#"{"model":"m","temperature":"hot","messages":[{"role":"user","content":"x"}]}"#,
            "temperature",
        ),
        (
            br#"{"model":"m","messages":[{"role":"boss","content":"x"}]}"#,
            "role",
        ),
        (
            br#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#,
            "tool_call_id",
        ),
    ] {
        match decode_request(body) {
            Err(GatewayError::BadRequest(msg)) => assert!(msg.contains(needle), "{msg}"),
            other => panic!("{other:?} for {}", String::from_utf8_lossy(body)),
        }
    }
}

#[test]
fn consecutive_tool_results_and_the_next_user_text_form_one_user_turn() {
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "both"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "1"},
        {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "2"}, {"type": "text", "text": "3"}]},
        {"role": "user", "content": "thanks"}
    ]});
    let chat = decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(chat.messages.len(), 3);
    let result = |id: &str, name: &str, content: &str| Part::ToolResult {
        id: id.into(),
        name: name.into(),
        content: content.into(),
        is_error: false,
    };
    assert_eq!(
        chat.messages[2].parts,
        [
            result("a", "f", "1"),
            result("b", "g", "23"),
            Part::Text("thanks".into())
        ]
    );
    let sent = json_of(&encode_request(&chat, NO_DROPS).unwrap());
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "tool", "user"]);
    assert_eq!(sent["messages"][1]["content"], Value::Null);
}

#[test]
fn a_failed_tool_result_is_sent_with_its_content_unchanged() {
    let chat = Chat {
        model: "m".into(),
        messages: vec![Message {
            role: Role::User,
            parts: vec![
                Part::Text("after".into()),
                Part::ToolResult {
                    id: "c1".into(),
                    name: "f".into(),
                    content: "timeout".into(),
                    is_error: true,
                },
            ],
        }],
        ..Chat::default()
    };
    let sent = json_of(&encode_request(&chat, NO_DROPS).unwrap());
    assert_eq!(
        sent["messages"],
        json!([{"role": "tool", "tool_call_id": "c1", "content": "timeout"},
               {"role": "user", "content": "after"}])
    );
}

#[test]
fn json_object_and_a_named_tool_choice_round_trip() {
    let body = json!({"model": "m", "seed": 7, "presence_penalty": 0.5, "frequency_penalty": -0.5,
        "top_p": 0.9, "stop": "END", "response_format": {"type": "json_object"},
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "messages": [{"role": "system", "content": [{"type": "text", "text": "be json"}]},
                     {"role": "user", "content": "hi"}]});
    let chat = decode_request(body.to_string().as_bytes()).unwrap();
    assert!(chat.json_object);
    assert_eq!(chat.tool_choice, Some(ToolChoice::Tool("f".into())));
    assert_eq!(chat.tools[0].parameters, json!({"type": "object"}));
    assert_eq!(chat.system, ["be json"]);
    let sent = json_of(&encode_request(&chat, NO_DROPS).unwrap());
    assert_eq!(sent["response_format"], json!({"type": "json_object"}));
    assert_eq!(sent["stop"], json!(["END"]));
    assert_eq!(sent["seed"], 7);
    assert_eq!(decode_request(sent.to_string().as_bytes()).unwrap(), chat);
}

#[test]
fn the_reference_text_answer_decodes_with_its_usage() {
    let answer = decode_answer(ANSWER_TEXT.as_bytes()).unwrap();
    assert_eq!(answer.id, "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
    assert_eq!(answer.model, "gpt-4.1-2025-04-14");
    assert_eq!(
        answer.parts,
        [Part::Text("Hello! How can I assist you today?".into())]
    );
    assert_eq!(answer.finish, Finish::Stop);
    let usage = answer.usage.unwrap();
    assert_eq!((usage.input, usage.output, usage.cached), (19, 10, 0));
    assert!(!usage.estimated);
}

#[test]
fn the_reference_tool_call_answer_decodes_to_a_tool_call() {
    let answer = decode_answer(ANSWER_TOOL_CALLS.as_bytes()).unwrap();
    assert_eq!(answer.parts, [weather_call()]);
    assert_eq!(answer.finish, Finish::ToolCalls);
    assert_eq!(answer.usage.map(|u| u.total()), Some(99));
}

#[test]
fn an_unreadable_answer_is_an_upstream_failure() {
    for body in [
        &b"<html>"[..],
        br#"{"choices":[]}"#,
        br#"{"error":{"message":"x"}}"#,
    ] {
        assert_eq!(
            decode_answer(body).unwrap_err(),
            GatewayError::UpstreamFailed("invalid response body".into())
        );
    }
}

#[test]
fn finish_reasons_map_both_ways() {
    for (wire, finish) in [
        ("stop", Finish::Stop),
        ("length", Finish::Length),
        ("tool_calls", Finish::ToolCalls),
        ("function_call", Finish::ToolCalls),
        ("content_filter", Finish::ContentFilter),
    ] {
        assert_eq!(finish_from(Some(wire)), finish);
    }
    assert_eq!(finish_reason(Finish::StopSequence), "stop");
    assert_eq!(finish_reason(Finish::ContentFilter), "content_filter");
}

#[test]
fn an_answer_encodes_as_a_chat_completion_and_reads_back_the_same() {
    let answer = decode_answer(ANSWER_TOOL_CALLS.as_bytes()).unwrap();
    let body = encode_answer(&answer);
    let v = json_of(&body);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(v["choices"][0]["message"]["refusal"], Value::Null);
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["type"],
        "function"
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}})
    );
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(decode_answer(&body).unwrap(), answer);
    assert_eq!(
        crate::protocol::openai::answer_text(&body).as_deref(),
        Some("")
    );
}

#[test]
fn an_answer_without_id_or_usage_gets_a_fresh_id_and_no_usage() {
    let answer = Answer {
        model: "m".into(),
        parts: vec![Part::Text("hi".into())],
        finish: Finish::StopSequence,
        ..Answer::default()
    };
    let v = json_of(&encode_answer(&answer));
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-") && id.len() > 20, "{id}");
    assert!(v.get("usage").is_none());
    assert_eq!(v["choices"][0]["message"]["content"], "hi");
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

fn decode_all(chunks: &[&[u8]]) -> Vec<Event> {
    crate::protocol::translate::decode_all::<Decoder>(chunks)
}

fn reference_stream_events() -> Vec<Event> {
    let arg = |a: &str| Event::ToolCallArgs {
        index: 0,
        arguments: a.into(),
    };
    vec![
        Event::Start {
            id: "chatcmpl-123".into(),
            model: "gpt-4o-mini".into(),
        },
        Event::Text("Let me check.".into()),
        Event::ToolCallStart {
            index: 0,
            id: "call_DdmO9pD3xa9XTPNJ32zg2hcA".into(),
            name: "get_current_weather".into(),
        },
        arg("{\""),
        arg("location"),
        arg("\":\""),
        arg("Boston, MA"),
        arg("\"}"),
        Event::Finish(Finish::ToolCalls),
        Event::Usage(Usage {
            input: 82,
            output: 17,
            cached: 64,
            ..Usage::default()
        }),
    ]
}

#[test]
fn the_reference_stream_decodes_to_neutral_events() {
    assert_eq!(
        decode_all(&[STREAM_TOOL_CALLS.as_bytes()]),
        reference_stream_events()
    );
}

#[test]
fn the_decoded_stream_does_not_depend_on_how_bytes_are_split() {
    let bytes = STREAM_TOOL_CALLS.as_bytes();
    let expected = reference_stream_events();
    for cut in 0..bytes.len() {
        assert_eq!(
            decode_all(&[&bytes[..cut], &bytes[cut..]]),
            expected,
            "cut at {cut}"
        );
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode_all(&singles), expected);
}

#[test]
fn an_error_inside_the_stream_is_an_error_event() {
    let events = decode_all(&[
        b"data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n",
        b"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n",
    ]);
    assert_eq!(
        events[2],
        Event::Error {
            message: "overloaded".into()
        }
    );
}

fn encode_all(encoder: &mut Encoder, events: &[Event]) -> String {
    let mut out = BytesMut::new();
    for e in events {
        encoder.event(e, &mut out);
    }
    encoder.end(&mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

#[test]
fn encoded_chunks_carry_the_usage_the_gateway_reads() {
    let events = reference_stream_events();
    let text = encode_all(&mut Encoder::new(true), &events);
    let mut state = StreamState::default();
    let mut datas = Vec::new();
    for event in text.split("\n\n").filter(|e| !e.is_empty()) {
        let data = event.strip_prefix("data: ").unwrap();
        state.observe(data, false);
        datas.push(data.to_string());
    }
    assert!(state.done, "ends with [DONE]");
    assert_eq!(
        state.usage.map(|u| (u.input, u.output, u.cached)),
        Some((82, 17, 64))
    );
    assert_eq!(
        state.delivered_chars,
        ("Let me check.".len()
            + "get_current_weather".len()
            + "{\"location\":\"Boston, MA\"}".len()) as u64
    );
    let first = json_of(datas[0].as_bytes());
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["id"], "chatcmpl-123");
    assert_eq!(
        first["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(first["choices"][0]["finish_reason"], Value::Null);
    // What the encoder writes, the decoder reads back as the same events.
    assert_eq!(decode_all(&[text.as_bytes()]), events);
}

#[test]
fn without_include_usage_the_stream_has_no_usage_chunk() {
    let text = encode_all(&mut Encoder::new(false), &reference_stream_events());
    assert!(!text.contains("\"usage\""), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[test]
fn an_event_before_start_is_preceded_by_the_role_chunk() {
    let text = encode_all(
        &mut Encoder::new(false),
        &[
            Event::Text("hi".into()),
            Event::Error {
                message: "boom".into(),
            },
        ],
    );
    let datas: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| json_of(d.as_bytes()))
        .collect();
    assert_eq!(datas[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(datas[0]["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(datas[1]["choices"][0]["delta"]["content"], "hi");
    assert_eq!(datas[1]["id"], datas[0]["id"]);
    assert_eq!(
        datas[2],
        json!({"error": {"message": "boom", "type": "upstream_error", "code": "upstream_failed"}})
    );
}
