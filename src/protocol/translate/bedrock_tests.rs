//! Tests of the Bedrock dialect, through payloads shaped as in AWS's Bedrock Runtime reference
//! and user guide (the `top_song` tool-use walkthrough).

use super::*;
use crate::protocol::translate::{Message, ToolDef};
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue};

const REQUEST: &str = include_str!("fixtures/bedrock/converse_request.json");
const ANSWER_TEXT: &str = include_str!("fixtures/bedrock/converse_answer_text.json");
const ANSWER_TOOL_USE: &str = include_str!("fixtures/bedrock/converse_answer_tool_use.json");
const STREAM: &str = include_str!("fixtures/bedrock/converse_stream.json");
const ERROR: &str = include_str!("fixtures/bedrock/error_validation.json");

const CALL: &str = "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q";
const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn text(t: &str) -> Part {
    Part::Text(t.into())
}

fn user(parts: Vec<Part>) -> Message {
    Message {
        role: Role::User,
        parts,
    }
}

fn assistant(parts: Vec<Part>) -> Message {
    Message {
        role: Role::Assistant,
        parts,
    }
}

/// The neutral form of the request fixture: the tool result and the next user text arrive as
/// two user messages (as an OpenAI client sends a `tool` message then a `user` one).
fn playlist_chat() -> Chat {
    Chat {
        model: "anthropic.claude-3-5-sonnet-20240620-v1:0".into(),
        system: vec![
            "You are an app that creates playlists for a radio station that plays rock and pop music.".into(),
            "Only return song names and the artist.".into(),
        ],
        messages: vec![
            user(vec![
                text("Which radio station is on this sticker?"),
                Part::Image(Image::Base64 {
                    media_type: "image/png".into(),
                    data: PNG.into(),
                }),
            ]),
            assistant(vec![text("That sticker is for WZPZ.")]),
            user(vec![text("What is the most popular song on WZPZ?")]),
            assistant(vec![Part::ToolCall {
                id: CALL.into(),
                name: "top_song".into(),
                arguments: r#"{"sign":"WZPZ"}"#.into(),
            }]),
            user(vec![Part::ToolResult {
                id: CALL.into(),
                name: "top_song".into(),
                content: r#"{"song":"Elemental Hotel","artist":"8 Storey Hike"}"#.into(),
                is_error: false,
            }]),
            user(vec![text("And who plays it?")]),
        ],
        tools: vec![ToolDef {
            name: "top_song".into(),
            description: Some("Get the most popular song played on a radio station.".into()),
            parameters: json!({
                "type": "object",
                "properties": {"sign": {"type": "string", "description":
                    "The call sign for the radio station for which you want the most popular song. Example calls signs are WZPZ and WKRP."}},
                "required": ["sign"]
            }),
        }],
        tool_choice: Some(ToolChoice::Auto),
        max_tokens: Some(512),
        temperature: Some(0.5),
        top_p: Some(0.9),
        top_k: Some(200),
        stop: vec!["</playlist>".into()],
        ..Chat::default()
    }
}

fn encode(chat: &Chat, drops: &[&str]) -> Result<Value, GatewayError> {
    let drops: Vec<String> = drops.iter().map(|d| d.to_string()).collect();
    let body = encode_request(chat, Drops(&drops))?;
    Ok(serde_json::from_slice(&body).unwrap())
}

fn refused(field: &str) -> GatewayError {
    GatewayError::Untranslatable {
        field: field.into(),
        target: "bedrock".into(),
    }
}

#[test]
fn the_path_names_the_operation_and_percent_encodes_the_model_id() {
    assert_eq!(
        path("anthropic.claude-3-5-sonnet-20240620-v1:0", false),
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    );
    assert_eq!(
        path("us.meta.llama3-2-1b-instruct-v1:0", true),
        "/model/us.meta.llama3-2-1b-instruct-v1%3A0/converse-stream"
    );
    assert_eq!(
        path(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0",
            false
        ),
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
}

#[test]
fn a_multi_turn_chat_with_an_image_tools_and_a_tool_result_encodes_as_the_converse_fixture() {
    let got = encode(&playlist_chat(), &[]).unwrap();
    let want: Value = serde_json::from_str(REQUEST).unwrap();
    assert_eq!(got, want);
}

#[test]
fn empty_texts_and_emptied_messages_are_left_out_and_neighbours_merge() {
    let chat = Chat {
        messages: vec![
            user(vec![text("Hi")]),
            assistant(vec![text("")]),
            user(vec![text("WZPZ?")]),
        ],
        ..Chat::default()
    };
    assert_eq!(
        encode(&chat, &[]).unwrap()["messages"],
        json!([{"role": "user", "content": [{"text": "Hi"}, {"text": "WZPZ?"}]}])
    );
}

#[test]
fn a_failed_tool_result_is_sent_as_text_with_status_error() {
    let chat = Chat {
        messages: vec![user(vec![Part::ToolResult {
            id: CALL.into(),
            name: String::new(),
            content: "Station WZPA not found.".into(),
            is_error: true,
        }])],
        ..Chat::default()
    };
    let got = encode(&chat, &[]).unwrap();
    assert_eq!(
        got["messages"][0]["content"][0],
        json!({"toolResult": {"toolUseId": CALL,
            "content": [{"text": "Station WZPA not found."}], "status": "error"}})
    );
    assert!(got.get("toolConfig").is_none() && got.get("inferenceConfig").is_none());
}

#[test]
fn tool_choices_map_to_auto_any_and_tool() {
    let mut chat = playlist_chat();
    for (choice, want) in [
        (ToolChoice::Required, json!({"any": {}})),
        (
            ToolChoice::Tool("top_song".into()),
            json!({"tool": {"name": "top_song"}}),
        ),
    ] {
        chat.tool_choice = Some(choice);
        assert_eq!(
            encode(&chat, &[]).unwrap()["toolConfig"]["toolChoice"],
            want
        );
    }
}

#[test]
fn tool_choice_none_is_refused_unless_droppable_then_left_out() {
    let mut chat = playlist_chat();
    chat.tool_choice = Some(ToolChoice::None);
    assert_eq!(encode(&chat, &[]).unwrap_err(), refused("tool_choice"));
    let got = encode(&chat, &["tool_choice"]).unwrap();
    assert!(got["toolConfig"].get("toolChoice").is_none(), "{got}");
    assert_eq!(
        got["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "top_song"
    );
}

#[test]
fn fields_converse_cannot_express_are_refused_by_name_unless_droppable() {
    type Set = fn(&mut Chat);
    let cases: [(&str, Set); 5] = [
        ("seed", |c| c.seed = Some(7)),
        ("presence_penalty", |c| c.presence_penalty = Some(0.5)),
        ("frequency_penalty", |c| c.frequency_penalty = Some(0.5)),
        ("response_format", |c| c.json_object = true),
        ("user", |c| c.user = Some("u-42".into())),
    ];
    for (field, set) in cases {
        let mut chat = playlist_chat();
        set(&mut chat);
        assert_eq!(encode(&chat, &[]).unwrap_err(), refused(field), "{field}");
        let dropped = encode(&chat, &[field]).unwrap();
        assert_eq!(dropped, serde_json::from_str::<Value>(REQUEST).unwrap());
    }
    let mut chat = playlist_chat();
    chat.unsupported = vec!["logprobs".into()];
    assert_eq!(encode(&chat, &[]).unwrap_err(), refused("logprobs"));
    assert!(encode(&chat, &["logprobs"]).is_ok());
}

#[test]
fn an_image_url_or_an_unknown_image_type_is_refused_unless_droppable() {
    let mut chat = playlist_chat();
    chat.messages[0].parts[1] = Part::Image(Image::Url("https://example.com/sticker.png".into()));
    assert_eq!(encode(&chat, &[]).unwrap_err(), refused("image_url"));
    let got = encode(&chat, &["image_url"]).unwrap();
    assert_eq!(
        got["messages"][0]["content"],
        json!([{"text": "Which radio station is on this sticker?"}])
    );

    chat.messages[0].parts[1] = Part::Image(Image::Base64 {
        media_type: "image/bmp".into(),
        data: "Qk0=".into(),
    });
    assert_eq!(encode(&chat, &[]).unwrap_err(), refused("image/bmp"));
    assert!(encode(&chat, &["image/bmp"]).is_ok());
}

#[test]
fn tool_call_arguments_that_are_not_json_are_a_bad_request() {
    let mut chat = playlist_chat();
    chat.messages[3].parts[0] = Part::ToolCall {
        id: CALL.into(),
        name: "top_song".into(),
        arguments: "{sign: WZPZ".into(),
    };
    assert!(matches!(
        encode(&chat, &[]).unwrap_err(),
        GatewayError::BadRequest(_)
    ));
}

#[test]
fn a_text_answer_decodes_with_the_cache_counted_inside_the_prompt() {
    let answer = decode_answer(ANSWER_TEXT.as_bytes()).unwrap();
    assert_eq!(
        answer.text(),
        "The most popular song on WZPZ is Elemental Hotel by 8 Storey Hike."
    );
    assert_eq!(answer.finish, Finish::Stop);
    assert_eq!((answer.id.as_str(), answer.model.as_str()), ("", ""));
    assert_eq!(
        answer.usage,
        Some(Usage {
            input: 31 + 1024 + 512,
            output: 18,
            cached: 1024,
            cache_write: 512,
            reasoning: 0,
            estimated: false,
        })
    );
}

#[test]
fn a_tool_use_answer_decodes_to_a_tool_call_and_skips_reasoning() {
    let answer = decode_answer(ANSWER_TOOL_USE.as_bytes()).unwrap();
    assert_eq!(answer.finish, Finish::ToolCalls);
    assert_eq!(answer.parts.len(), 2, "{:?}", answer.parts);
    assert_eq!(answer.parts[0], text("I'll look that up."));
    let Part::ToolCall {
        id,
        name,
        arguments,
    } = &answer.parts[1]
    else {
        panic!("a tool call: {:?}", answer.parts[1]);
    };
    assert_eq!((id.as_str(), name.as_str()), (CALL, "top_song"));
    assert_eq!(
        serde_json::from_str::<Value>(arguments).unwrap(),
        json!({"sign": "WZPZ"})
    );
    let usage = answer.usage.unwrap();
    assert_eq!((usage.input, usage.output, usage.cached), (394, 71, 0));
}

#[test]
fn stop_reasons_map_to_neutral_finishes() {
    for (reason, want) in [
        ("end_turn", Finish::Stop),
        ("stop_sequence", Finish::StopSequence),
        ("max_tokens", Finish::Length),
        ("model_context_window_exceeded", Finish::Length),
        ("tool_use", Finish::ToolCalls),
        ("guardrail_intervened", Finish::ContentFilter),
        ("content_filtered", Finish::ContentFilter),
        ("malformed_model_output", Finish::Stop),
    ] {
        let body = json!({"output": {"message": {"role": "assistant", "content": []}},
            "stopReason": reason, "usage": {"inputTokens": 1, "outputTokens": 0, "totalTokens": 1},
            "metrics": {"latencyMs": 1}});
        let answer = decode_answer(body.to_string().as_bytes()).unwrap();
        assert_eq!(answer.finish, want, "{reason}");
    }
}

#[test]
fn an_unreadable_answer_is_an_upstream_failure() {
    assert_eq!(
        decode_answer(b"<html>").unwrap_err(),
        GatewayError::UpstreamFailed("invalid response body".into())
    );
}

#[test]
fn the_error_body_message_is_read() {
    use crate::protocol::translate::pair::error_message;
    assert_eq!(
        error_message(ERROR.as_bytes()).as_deref(),
        Some("Malformed input request: #: required key [messages] not found, please reformat your input and try again.")
    );
    assert_eq!(
        error_message(br#"{"Message":"User is not authorized"}"#).as_deref(),
        Some("User is not authorized")
    );
    assert_eq!(error_message(b"not json"), None);
}

/// One event-stream frame as Bedrock sends it.
fn frame(headers: &[(&'static str, String)], payload: &str) -> Vec<u8> {
    let headers = headers
        .iter()
        .map(|(n, v)| Header::new(*n, HeaderValue::String(v.clone().into())))
        .collect();
    let message = Frame::new_from_parts(headers, Bytes::from(payload.to_string()));
    let mut out = Vec::new();
    write_message_to(&message, &mut out).unwrap();
    out
}

fn event_frame(event: &str, payload: &Value) -> Vec<u8> {
    frame(
        &[
            (":event-type", event.to_string()),
            (":content-type", "application/json".to_string()),
            (":message-type", "event".to_string()),
        ],
        &payload.to_string(),
    )
}

/// The stream fixture's frames, concatenated.
fn stream_body() -> Vec<u8> {
    let events: Vec<Value> = serde_json::from_str(STREAM).unwrap();
    events
        .iter()
        .flat_map(|e| event_frame(e["event"].as_str().unwrap(), &e["payload"]))
        .collect()
}

fn expected_stream() -> Vec<Event> {
    vec![
        Event::Start {
            id: String::new(),
            model: String::new(),
        },
        Event::Text("I'll look".into()),
        Event::Text(" that up.".into()),
        Event::ToolCallStart {
            index: 0,
            id: CALL.into(),
            name: "top_song".into(),
        },
        Event::ToolCallArgs {
            index: 0,
            arguments: "{\"sign\": ".into(),
        },
        Event::ToolCallArgs {
            index: 0,
            arguments: "\"WZPZ\"}".into(),
        },
        Event::Finish(Finish::ToolCalls),
        Event::Usage(Usage {
            input: 394 + 1570,
            output: 71,
            cached: 1570,
            ..Usage::default()
        }),
    ]
}

fn decode_in_chunks(body: &[u8], size: usize) -> Vec<Event> {
    let chunks: Vec<&[u8]> = body.chunks(size).collect();
    crate::protocol::translate::decode_all::<Decoder>(&chunks)
}

#[test]
fn a_converse_stream_decodes_to_neutral_events() {
    assert_eq!(
        decode_in_chunks(&stream_body(), usize::MAX),
        expected_stream()
    );
}

#[test]
fn the_stream_decodes_the_same_fed_one_byte_at_a_time_or_cut_anywhere() {
    let body = stream_body();
    assert_eq!(decode_in_chunks(&body, 1), expected_stream());
    for cut in (0..body.len()).step_by(7) {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        decoder.feed(&body[..cut], &mut out);
        decoder.feed(&body[cut..], &mut out);
        decoder.end(&mut out);
        assert_eq!(out, expected_stream(), "cut at {cut}");
    }
}

#[test]
fn an_exception_frame_is_an_error_event() {
    let mut body = event_frame("messageStart", &json!({"role": "assistant"}));
    body.extend(frame(
        &[
            (":exception-type", "throttlingException".to_string()),
            (":content-type", "application/json".to_string()),
            (":message-type", "exception".to_string()),
        ],
        r#"{"message":"Too many requests, please wait before trying again."}"#,
    ));
    let events = decode_in_chunks(&body, 5);
    assert_eq!(
        events[1],
        Event::Error {
            message: "throttlingException: Too many requests, please wait before trying again."
                .into()
        }
    );
}

#[test]
fn a_corrupt_frame_is_one_error_and_ends_the_reading() {
    let mut body = stream_body();
    let events: Vec<Value> = serde_json::from_str(STREAM).unwrap();
    let first = event_frame("messageStart", &events[0]["payload"]).len();
    body[first + 20] ^= 0xff; // inside the second frame: its CRC no longer matches
    let events = decode_in_chunks(&body, 3);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(events[0], Event::Start { .. }));
    assert!(matches!(events[1], Event::Error { .. }));
}

#[test]
fn a_body_ending_inside_a_frame_is_an_error() {
    let body = stream_body();
    let events = decode_in_chunks(&body[..body.len() - 3], 64);
    assert!(
        matches!(events.last(), Some(Event::Error { .. })),
        "{events:?}"
    );
    let whole = decode_in_chunks(&body, 64);
    assert!(!whole.iter().any(|e| matches!(e, Event::Error { .. })));
}
