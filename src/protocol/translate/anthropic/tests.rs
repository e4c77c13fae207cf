//! Tests through the recorded examples of Anthropic's Messages API reference
//! (`fixtures/anthropic/`).

use super::*;
use crate::protocol::anthropic::StreamState;
use crate::protocol::translate::{Event, SseLines, StreamEncoder};
use bytes::BytesMut;

const REQUEST: &str = include_str!("../fixtures/anthropic/request.json");
const MESSAGE_TEXT: &str = include_str!("../fixtures/anthropic/message_text.json");
const MESSAGE_TOOL_USE: &str = include_str!("../fixtures/anthropic/message_tool_use.json");
const STREAM: &str = include_str!("../fixtures/anthropic/stream_tool_use.sse");

fn value(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap()
}

fn decode_all(chunks: &[&[u8]]) -> Vec<Event> {
    crate::protocol::translate::decode_all::<Decoder>(chunks)
}

fn encode_all(events: &[Event]) -> BytesMut {
    let mut e = Encoder::default();
    let mut out = BytesMut::new();
    for ev in events {
        e.event(ev, &mut out);
    }
    e.end(&mut out);
    out
}

#[test]
fn a_documented_request_decodes_into_the_neutral_chat() {
    let chat = decode_request(REQUEST.as_bytes()).unwrap();
    assert_eq!(chat.model, "claude-sonnet-4-5");
    assert_eq!(chat.max_tokens, Some(1024));
    assert_eq!(
        chat.system,
        [
            "You are a helpful weather assistant.",
            "Answer in one sentence."
        ]
    );
    assert_eq!(chat.messages.len(), 5);
    assert_eq!(chat.messages[0].parts, [Part::Text("Hello, Claude".into())]);
    assert_eq!(chat.messages[1].role, Role::Assistant);
    let images = &chat.messages[2].parts;
    assert_eq!(
        images[0],
        Part::Image(Image::Base64 {
            media_type: "image/jpeg".into(),
            data: "/9j/4AAQSkZJRg==".into()
        })
    );
    assert!(matches!(&images[1], Part::Image(Image::Url(u)) if u.starts_with("https://upload.")));
    let Part::ToolCall {
        id,
        name,
        arguments,
    } = &chat.messages[3].parts[1]
    else {
        panic!("a tool call: {:?}", chat.messages[3]);
    };
    assert_eq!(
        (id.as_str(), name.as_str()),
        ("toolu_01A09q90qw90lq917835lq9", "get_weather")
    );
    assert_eq!(
        serde_json::from_str::<Value>(arguments).unwrap(),
        json!({"location": "San Francisco, CA", "unit": "celsius"})
    );
    assert_eq!(
        chat.messages[4].parts,
        [
            Part::ToolResult {
                id: "toolu_01A09q90qw90lq917835lq9".into(),
                name: "get_weather".into(),
                content: "15 degrees".into(),
                is_error: false
            },
            Part::ToolResult {
                id: "toolu_01A09q90qw90lq917835lq9".into(),
                name: "get_weather".into(),
                content: "ConnectionError: the weather service API is not available (HTTP 500)"
                    .into(),
                is_error: true
            }
        ],
        "results are named after the call they answer"
    );
    assert_eq!(chat.tools.len(), 1);
    assert_eq!(chat.tools[0].name, "get_weather");
    assert_eq!(chat.tools[0].parameters["required"], json!(["location"]));
    assert_eq!(chat.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(
        (chat.temperature, chat.top_p, chat.top_k),
        (Some(0.5), Some(0.9), Some(40))
    );
    assert_eq!(chat.stop, ["\n\nHuman:"]);
    assert_eq!(
        chat.user.as_deref(),
        Some("13803d75-b4b5-4c3e-b2a2-6f21399b021b")
    );
    assert!(!chat.stream);
    assert!(chat.unsupported.is_empty(), "{:?}", chat.unsupported);
}

#[test]
fn a_decoded_request_encodes_to_anthropic_and_decodes_back_the_same() {
    let chat = decode_request(REQUEST.as_bytes()).unwrap();
    let body = encode_request(&chat, Drops(&[])).unwrap();
    let v = value(&body);
    assert_eq!(v["max_tokens"], 1024);
    assert_eq!(
        v["system"],
        json!([{"type": "text", "text": "You are a helpful weather assistant."},
               {"type": "text", "text": "Answer in one sentence."}])
    );
    assert_eq!(
        v["messages"][2]["content"][1],
        json!({"type": "image", "source": {"type": "url", "url": "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"}})
    );
    assert_eq!(
        v["messages"][3]["content"][1]["input"],
        json!({"location": "San Francisco, CA", "unit": "celsius"}),
        "tool input is an object again"
    );
    assert_eq!(v["messages"][4]["content"][1]["is_error"], true);
    assert_eq!(v["tool_choice"], json!({"type": "auto"}));
    assert_eq!(v["stop_sequences"], json!(["\n\nHuman:"]));
    assert_eq!(
        v["metadata"],
        json!({"user_id": "13803d75-b4b5-4c3e-b2a2-6f21399b021b"})
    );
    assert!(v.get("stream").is_none(), "false is Anthropic's default");
    assert_eq!(decode_request(&body).unwrap(), chat);
}

#[test]
fn the_output_cap_defaults_to_4096_and_one_system_text_is_a_string() {
    let chat = Chat {
        model: "claude".into(),
        system: vec!["be brief".into(), String::new()],
        messages: vec![Message {
            role: Role::User,
            parts: vec![Part::Text("hi".into())],
        }],
        tool_choice: Some(ToolChoice::Required),
        stream: true,
        ..Chat::default()
    };
    let v = value(&encode_request(&chat, Drops(&[])).unwrap());
    assert_eq!(v["max_tokens"], 4096);
    assert_eq!(v["system"], "be brief");
    assert_eq!(v["tool_choice"], json!({"type": "any"}));
    assert_eq!(v["stream"], true);
    let whole = br#"{"model":"c","max_tokens":5,"temperature":1,"messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(
        decode_request(whole).unwrap().temperature,
        Some(1.0),
        "an integer temperature"
    );
}

#[test]
fn consecutive_messages_of_one_role_merge_and_empty_texts_are_skipped() {
    // As an OpenAI client sends them: one tool message per result, then the user's text.
    let result = |id: &str| Message {
        role: Role::User,
        parts: vec![Part::ToolResult {
            id: id.into(),
            name: "f".into(),
            content: "ok".into(),
            is_error: false,
        }],
    };
    let chat = Chat {
        model: "claude".into(),
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![Part::Text("go".into())],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Text(String::new()),
                    Part::ToolCall {
                        id: "a".into(),
                        name: "f".into(),
                        arguments: "{}".into(),
                    },
                    Part::ToolCall {
                        id: "b".into(),
                        name: "f".into(),
                        arguments: String::new(),
                    },
                ],
            },
            result("a"),
            result("b"),
            Message {
                role: Role::User,
                parts: vec![Part::Text("thanks".into())],
            },
        ],
        tool_choice: Some(ToolChoice::Tool("f".into())),
        ..Chat::default()
    };
    let v = value(&encode_request(&chat, Drops(&[])).unwrap());
    let messages = v["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{v}");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(
        messages[1]["content"],
        json!([{"type": "tool_use", "id": "a", "name": "f", "input": {}},
               {"type": "tool_use", "id": "b", "name": "f", "input": {}}])
    );
    assert_eq!(
        messages[2]["content"],
        json!([{"type": "tool_result", "tool_use_id": "a", "content": "ok"},
               {"type": "tool_result", "tool_use_id": "b", "content": "ok"},
               {"type": "text", "text": "thanks"}])
    );
    assert_eq!(v["tool_choice"], json!({"type": "tool", "name": "f"}));
}

#[test]
fn tool_call_arguments_that_are_not_an_object_are_a_bad_request() {
    let chat = Chat {
        model: "claude".into(),
        messages: vec![Message {
            role: Role::Assistant,
            parts: vec![Part::ToolCall {
                id: "call_9".into(),
                name: "f".into(),
                arguments: "[1,2]".into(),
            }],
        }],
        ..Chat::default()
    };
    let err = encode_request(&chat, Drops(&[])).unwrap_err();
    assert!(
        matches!(&err, GatewayError::BadRequest(r) if r.contains("call_9")),
        "{err:?}"
    );
}

#[test]
fn fields_without_a_neutral_form_are_collected_by_their_path() {
    let body = json!({
        "model": "claude", "max_tokens": 10,
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "service_tier": "standard_only",
        "container": null,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "u1", "trace": "x"},
        "messages": [
            {"role": "user", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "answer"}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": [
                    {"type": "text", "text": "seen"},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}]},
                {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}
        ],
        "tools": [
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
            {"name": "f", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}
    });
    let chat = decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        chat.unsupported,
        [
            "service_tier",
            "thinking",
            "metadata.trace",
            "system[0].cache_control",
            "messages[0].content[0].document",
            "messages[1].content[0].thinking",
            "messages[2].content[0].content[1].image",
            "messages[2].content[1].cache_control",
            "tools[0].type",
            "tools[1].cache_control",
            "tool_choice.disable_parallel_tool_use",
        ]
    );
    assert_eq!(chat.user.as_deref(), Some("u1"));
    assert_eq!(chat.tools.len(), 1, "the server tool is not a function");
    assert_eq!(chat.messages[1].parts, [Part::Text("answer".into())]);
}

#[test]
fn untranslatable_fields_are_refused_unless_the_backend_drops_them() {
    let body = br#"{"model":"claude","max_tokens":10,"service_tier":"standard_only","messages":[{"role":"user","content":"hi"}]}"#;
    let chat = decode_request(body).unwrap();
    assert_eq!(
        encode_request(&chat, Drops(&[])).unwrap_err(),
        GatewayError::Untranslatable {
            field: "service_tier".into(),
            target: "anthropic".into()
        }
    );
    let dropped = ["service_tier".to_string()];
    let v = value(&encode_request(&chat, Drops(&dropped)).unwrap());
    assert!(v.get("service_tier").is_none());

    let fields = [
        (
            "seed",
            Chat {
                seed: Some(7),
                ..Chat::default()
            },
        ),
        (
            "presence_penalty",
            Chat {
                presence_penalty: Some(0.5),
                ..Chat::default()
            },
        ),
        (
            "frequency_penalty",
            Chat {
                frequency_penalty: Some(0.5),
                ..Chat::default()
            },
        ),
        (
            "response_format",
            Chat {
                json_object: true,
                ..Chat::default()
            },
        ),
    ];
    for (field, chat) in fields {
        assert_eq!(
            encode_request(&chat, Drops(&[])).unwrap_err(),
            GatewayError::Untranslatable {
                field: field.into(),
                target: "anthropic".into()
            }
        );
        let listed = [field.to_string()];
        assert!(encode_request(&chat, Drops(&listed)).is_ok(), "{field}");
    }
}

#[test]
fn a_text_answer_decodes_with_cache_reads_and_writes_inside_the_prompt() {
    let a = decode_answer(MESSAGE_TEXT.as_bytes()).unwrap();
    assert_eq!(a.id, "msg_013Zva2CMHLNnXjNJJKqJ2EF");
    assert_eq!(a.model, "claude-sonnet-4-5-20250929");
    assert_eq!(a.text(), "Hi! My name is Claude.");
    assert_eq!(a.finish, Finish::Stop);
    assert_eq!(
        a.usage,
        Some(Usage {
            input: 2095 + 2051 + 2051,
            output: 503,
            cached: 2051,
            cache_write: 2051,
            reasoning: 0,
            estimated: false
        })
    );
}

#[test]
fn a_tool_use_answer_decodes_to_a_tool_call_without_its_thinking() {
    let a = decode_answer(MESSAGE_TOOL_USE.as_bytes()).unwrap();
    assert_eq!(a.finish, Finish::ToolCalls);
    assert_eq!(a.parts.len(), 2, "{:?}", a.parts);
    assert_eq!(
        a.parts[0],
        Part::Text("I'll check the current weather in San Francisco for you.".into())
    );
    let Part::ToolCall {
        id,
        name,
        arguments,
    } = &a.parts[1]
    else {
        panic!("{:?}", a.parts[1]);
    };
    assert_eq!(
        (id.as_str(), name.as_str()),
        ("toolu_01A09q90qw90lq917835lq9", "get_weather")
    );
    assert_eq!(
        value(arguments.as_bytes()),
        json!({"location": "San Francisco, CA", "unit": "celsius"})
    );
}

#[test]
fn an_encoded_answer_is_read_back_the_same_and_its_usage_by_the_gateway_parser() {
    for fixture in [MESSAGE_TEXT, MESSAGE_TOOL_USE] {
        let a = decode_answer(fixture.as_bytes()).unwrap();
        let body = encode_answer(&a);
        assert_eq!(decode_answer(&body).unwrap(), a);
        assert_eq!(crate::protocol::anthropic::usage(&body), a.usage);
        let v = value(&body);
        let original = value(fixture.as_bytes());
        for key in [
            "id",
            "type",
            "role",
            "model",
            "stop_reason",
            "stop_sequence",
            "usage",
        ] {
            assert_eq!(v[key], original[key], "{key}");
        }
    }
}

#[test]
fn an_answer_without_an_id_gets_a_fresh_one_and_unparsable_arguments_an_empty_input() {
    let a = Answer {
        model: "gpt-4o".into(),
        parts: vec![Part::ToolCall {
            id: "call_1".into(),
            name: "f".into(),
            arguments: "{\"x\":".into(),
        }],
        finish: Finish::Length,
        ..Answer::default()
    };
    let v = value(&encode_answer(&a));
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("msg_") && id.len() == 4 + 24, "{id}");
    assert_eq!(v["content"][0]["input"], json!({}));
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0})
    );
}

#[test]
fn an_unreadable_answer_is_an_upstream_failure() {
    assert_eq!(
        decode_answer(b"<html>").unwrap_err(),
        GatewayError::UpstreamFailed("invalid response body".into())
    );
}

fn documented_stream_events() -> Vec<Event> {
    let args = [
        "{\"location\":",
        " \"San",
        " Francisc",
        "o,",
        " CA\"",
        ", ",
        "\"unit\": \"fah",
        "renheit\"}",
    ];
    let mut want = vec![
        Event::Start {
            id: "msg_014p7gG3wDgGV9EUtLvnow3U".into(),
            model: "claude-sonnet-4-5-20250929".into(),
        },
        Event::Text("Okay".into()),
        Event::Text(",".into()),
        Event::Text(" let's check the weather for San Francisco, CA:".into()),
        Event::ToolCallStart {
            index: 0,
            id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
            name: "get_weather".into(),
        },
    ];
    want.extend(args.iter().map(|a| Event::ToolCallArgs {
        index: 0,
        arguments: a.to_string(),
    }));
    want.push(Event::Finish(Finish::ToolCalls));
    want.push(Event::Usage(Usage {
        input: 472 + 100,
        output: 89,
        cached: 100,
        cache_write: 0,
        reasoning: 0,
        estimated: false,
    }));
    want
}

#[test]
fn the_documented_stream_decodes_into_neutral_events() {
    assert_eq!(decode_all(&[STREAM.as_bytes()]), documented_stream_events());
}

#[test]
fn the_stream_decoder_does_not_depend_on_how_bytes_are_split() {
    let bytes = STREAM.as_bytes();
    let want = documented_stream_events();
    for cut in 0..=bytes.len() {
        assert_eq!(
            decode_all(&[&bytes[..cut], &bytes[cut..]]),
            want,
            "cut at {cut}"
        );
    }
    let ones: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode_all(&ones), want);
    let unterminated = STREAM.trim_end();
    assert_eq!(decode_all(&[unterminated.as_bytes()]), want);
}

#[test]
fn a_message_delta_repeating_the_prompt_counts_replaces_message_start_s_and_errors_pass_on() {
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":30,\"output_tokens\":5}}\n\n",
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    );
    let events = decode_all(&[stream.as_bytes()]);
    assert_eq!(
        events[1..],
        [
            Event::Finish(Finish::Length),
            Event::Usage(Usage {
                input: 42,
                output: 5,
                cached: 0,
                cache_write: 30,
                reasoning: 0,
                estimated: false
            }),
            Event::Error {
                message: "Overloaded".into()
            }
        ]
    );
}

#[test]
fn the_encoded_stream_is_read_by_the_gateway_stream_state_and_decodes_back() {
    let events = documented_stream_events();
    let bytes = encode_all(&events);
    let mut lines = SseLines::default();
    let mut state = StreamState::default();
    for data in lines.feed(&bytes) {
        state.observe(&data);
    }
    assert!(state.stopped, "message_stop is sent");
    assert_eq!(
        state.usage(),
        Some(Usage {
            input: 572,
            output: 89,
            cached: 100,
            cache_write: 0,
            reasoning: 0,
            estimated: false
        })
    );
    assert_eq!(decode_all(&[&bytes]), events);
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    let mut want = vec!["message_start", "content_block_start"];
    want.extend(["content_block_delta"; 3]);
    want.extend(["content_block_stop", "content_block_start"]);
    want.extend(["content_block_delta"; 8]);
    want.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, want);
    assert!(text.contains(r#"{"content_block":{"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","input":{},"name":"get_weather","type":"tool_use"},"index":1,"type":"content_block_start"}"#), "{text}");
}

#[test]
fn an_encoder_without_start_still_opens_the_message_and_reports_errors() {
    let bytes = encode_all(&[
        Event::Text("hi".into()),
        Event::Error {
            message: "backend gone".into(),
        },
    ]);
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(text.starts_with("event: message_start\n"), "{text}");
    assert!(text.contains(
        "event: error\ndata: {\"error\":{\"message\":\"backend gone\",\"type\":\"api_error\"},\"type\":\"error\"}\n\n"
    ));
    assert!(text.contains("\"stop_reason\":\"end_turn\""));
    assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}
