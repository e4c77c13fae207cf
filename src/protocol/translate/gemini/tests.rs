//! The Gemini dialect against payloads shaped as Google's API reference and cookbook record them
//! (`fixtures/gemini/`).

use super::*;
use crate::protocol::translate::{Message, ToolDef};

const REQUEST: &str = include_str!("../fixtures/gemini/request.json");
const ANSWER_TEXT: &str = include_str!("../fixtures/gemini/answer_text.json");
const ANSWER_CALL: &str = include_str!("../fixtures/gemini/answer_function_call.json");
const ANSWER_BLOCKED: &str = include_str!("../fixtures/gemini/answer_blocked.json");
const STREAM: &str = include_str!("../fixtures/gemini/stream.sse");
const STREAM_CALL: &str = include_str!("../fixtures/gemini/stream_function_call.sse");

fn user(parts: Vec<Part>) -> Message {
    Message {
        role: Role::User,
        parts,
    }
}

fn model(parts: Vec<Part>) -> Message {
    Message {
        role: Role::Assistant,
        parts,
    }
}

fn text(t: &str) -> Part {
    Part::Text(t.into())
}

fn encoded(chat: &Chat, drops: &[String]) -> Result<Value, GatewayError> {
    let body = encode_request(chat, Drops(drops))?;
    Ok(serde_json::from_slice(&body).unwrap())
}

/// The conversation of `fixtures/gemini/request.json`, as the neutral form has it.
fn movie_chat() -> Chat {
    let theaters = r#"{"movie":"Barbie","theaters":[
        {"name":"AMC Mountain View 16","address":"2000 W El Camino Real, Mountain View, CA 94040"},
        {"name":"Regal Edwards 14","address":"245 Castro St, Mountain View, CA 94040"}]}"#;
    Chat {
        model: "gemini-2.5-flash".into(),
        system: vec!["You are a helpful movie assistant. Answer briefly.".into()],
        messages: vec![
            user(vec![
                text("What is shown in this picture?"),
                Part::Image(Image::Base64 {
                    media_type: "image/jpeg".into(),
                    data: "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJ".into(),
                }),
            ]),
            model(vec![text("A cinema marquee announcing the Barbie movie.")]),
            user(vec![text("Which theaters in Mountain View show Barbie movie?")]),
            model(vec![text(""), Part::ToolCall {
                id: "call_abc".into(),
                name: "find_theaters".into(),
                arguments: r#"{"location":"Mountain View, CA","movie":"Barbie"}"#.into(),
            }]),
            // An OpenAI-style tool message, then the user's next words: one Gemini user turn.
            user(vec![Part::ToolResult {
                id: "call_abc".into(),
                name: "find_theaters".into(),
                content: theaters.into(),
                is_error: false,
            }]),
            user(vec![text("And which of them is closer to Castro St?")]),
        ],
        tools: vec![
            ToolDef {
                name: "find_movies".into(),
                description: Some("find movie titles currently playing in theaters based on any description, genre, title words, etc.".into()),
                parameters: json!({
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {
                        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA or a zip code e.g. 95616"},
                        "description": {"type": "string", "description": "Any kind of description including category or genre, title words, attributes, etc."}
                    },
                    "required": ["description"],
                    "additionalProperties": false
                }),
            },
            ToolDef {
                name: "find_theaters".into(),
                description: Some("find theaters based on location and optionally movie title which is currently playing in theaters".into()),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA or a zip code e.g. 95616"},
                        "movie": {"type": "string", "description": "Any movie title"}
                    },
                    "required": ["location"]
                }),
            },
        ],
        tool_choice: Some(ToolChoice::Auto),
        max_tokens: Some(256),
        temperature: Some(0.2),
        top_p: Some(0.95),
        top_k: Some(40),
        stop: vec!["Title".into()],
        seed: Some(7),
        presence_penalty: Some(0.5),
        frequency_penalty: Some(0.25),
        stream: true,
        ..Chat::default()
    }
}

#[test]
fn a_chat_encodes_as_the_documented_generate_content_body() {
    let want: Value = serde_json::from_str(REQUEST).unwrap();
    assert_eq!(encoded(&movie_chat(), &[]).unwrap(), want);
}

#[test]
fn the_model_and_streaming_go_in_the_path_not_the_body() {
    assert_eq!(
        path("gemini-2.5-flash", false),
        "/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        path("gemini-2.5-flash", true),
        "/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        path("tunedModels/my-model-1", false),
        "/tunedModels/my-model-1:generateContent"
    );
    assert_eq!(
        path("x?key=1#", false),
        "/models/x%3Fkey%3D1%23:generateContent"
    );
    let body = encoded(&movie_chat(), &[]).unwrap();
    assert!(body.get("model").is_none() && body.get("stream").is_none());
}

#[test]
fn a_text_answer_leaves_thoughts_out_and_counts_them_as_output() {
    let a = decode_answer(ANSWER_TEXT.as_bytes()).unwrap();
    assert_eq!(a.id, "mKdlaOfGF-CljMcPkrKVmQo");
    assert_eq!(a.model, "gemini-2.5-flash");
    assert_eq!(
        a.parts,
        [text("Regal Edwards 14 is closer: it is at 245 Castro St.")]
    );
    assert_eq!(a.finish, Finish::Stop);
    assert_eq!(
        a.usage,
        Some(Usage {
            input: 312,
            cached: 256,
            output: 14 + 764,
            reasoning: 764,
            cache_write: 0,
            estimated: false,
        })
    );
    // Gemini's own total is prompt + candidates + thoughts: nothing lost, nothing counted twice.
    assert_eq!(a.usage.map(|u| u.total()), Some(1090));
}

#[test]
fn function_calls_decode_as_tool_calls_named_in_order() {
    let a = decode_answer(ANSWER_CALL.as_bytes()).unwrap();
    assert_eq!(
        a.parts,
        [
            Part::ToolCall {
                id: "call_0".into(),
                name: "find_theaters".into(),
                arguments: r#"{"location":"Mountain View, CA","movie":"Barbie"}"#.into(),
            },
            Part::ToolCall {
                id: "call_1".into(),
                name: "find_movies".into(),
                arguments: r#"{"description":"comedy","location":"Mountain View, CA"}"#.into(),
            },
        ]
    );
    assert_eq!(a.finish, Finish::ToolCalls);
    let u = a.usage.unwrap();
    assert_eq!((u.input, u.output, u.reasoning), (113, 38 + 68, 68));
}

#[test]
fn a_function_call_keeps_the_id_gemini_gave_and_may_have_no_args() {
    let body = r#"{"candidates":[{"content":{"role":"model","parts":[
        {"functionCall":{"id":"fc-7","name":"enable_lights"}}]},"finishReason":"STOP"}]}"#;
    let a = decode_answer(body.as_bytes()).unwrap();
    assert_eq!(
        a.parts,
        [Part::ToolCall {
            id: "fc-7".into(),
            name: "enable_lights".into(),
            arguments: "{}".into()
        }]
    );
    assert_eq!(a.usage, None);
}

#[test]
fn a_blocked_prompt_is_an_empty_filtered_answer_with_its_usage() {
    let a = decode_answer(ANSWER_BLOCKED.as_bytes()).unwrap();
    assert!(a.parts.is_empty());
    assert_eq!(a.finish, Finish::ContentFilter);
    assert_eq!(a.usage.map(|u| (u.input, u.output)), Some((21, 0)));
}

#[test]
fn finish_reasons_map_to_neutral_ones() {
    for (reason, want) in [
        ("STOP", Finish::Stop),
        ("MAX_TOKENS", Finish::Length),
        ("SAFETY", Finish::ContentFilter),
        ("RECITATION", Finish::ContentFilter),
        ("PROHIBITED_CONTENT", Finish::ContentFilter),
        ("SPII", Finish::ContentFilter),
        ("BLOCKLIST", Finish::ContentFilter),
        ("OTHER", Finish::Stop),
    ] {
        let body = format!(
            r#"{{"candidates":[{{"content":{{"role":"model","parts":[{{"text":"x"}}]}},"finishReason":"{reason}"}}]}}"#
        );
        assert_eq!(
            decode_answer(body.as_bytes()).unwrap().finish,
            want,
            "{reason}"
        );
    }
}

#[test]
fn an_error_body_or_garbage_is_not_an_answer() {
    let error = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}"#;
    for body in [error, "not json", "[1,2]"] {
        assert_eq!(
            decode_answer(body.as_bytes()),
            Err(GatewayError::UpstreamFailed("invalid response body".into())),
            "{body}"
        );
    }
}

#[test]
fn fields_gemini_cannot_express_are_refused_unless_dropped() {
    let mut chat = movie_chat();
    chat.messages[0]
        .parts
        .push(Part::Image(Image::Url("https://x.test/a.png".into())));
    let refused = |field: &str| GatewayError::Untranslatable {
        field: field.into(),
        target: "gemini".into(),
    };
    assert_eq!(encoded(&chat, &[]), Err(refused("image_url")));
    let dropped = encoded(&chat, &["image_url".into()]).unwrap();
    assert_eq!(dropped["contents"][0]["parts"].as_array().unwrap().len(), 2);

    let mut chat = movie_chat();
    chat.user = Some("user-1234".into());
    assert_eq!(encoded(&chat, &[]), Err(refused("user")));
    assert!(encoded(&chat, &["user".into()]).is_ok());

    let mut chat = movie_chat();
    chat.unsupported = vec!["logprobs".into()];
    assert_eq!(encoded(&chat, &[]), Err(refused("logprobs")));
    assert!(encoded(&chat, &["*".into()]).is_ok());
}

#[test]
fn a_tool_result_without_its_function_name_is_refused_naming_the_call() {
    let chat = Chat {
        messages: vec![user(vec![Part::ToolResult {
            id: "toolu_01".into(),
            name: String::new(),
            content: "42".into(),
            is_error: false,
        }])],
        ..Chat::default()
    };
    match encoded(&chat, &[]) {
        Err(GatewayError::BadRequest(why)) => assert!(why.contains("toolu_01"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn tool_call_arguments_must_be_a_json_object() {
    let call = |arguments: &str| Chat {
        messages: vec![model(vec![Part::ToolCall {
            id: "c1".into(),
            name: "f".into(),
            arguments: arguments.into(),
        }])],
        ..Chat::default()
    };
    assert!(matches!(
        encoded(&call("[1]"), &[]),
        Err(GatewayError::BadRequest(why)) if why.contains("c1")
    ));
    assert!(matches!(
        encoded(&call("{"), &[]),
        Err(GatewayError::BadRequest(_))
    ));
    let empty = encoded(&call(""), &[]).unwrap();
    assert_eq!(
        empty["contents"][0]["parts"][0]["functionCall"]["args"],
        json!({})
    );
}

#[test]
fn text_tool_results_and_errors_are_wrapped_in_the_documented_keys() {
    let result = |content: &str, is_error: bool| Part::ToolResult {
        id: "c".into(),
        name: "f".into(),
        content: content.into(),
        is_error,
    };
    let chat = Chat {
        messages: vec![user(vec![
            result("72 and sunny", false),
            result("[1,2]", false),
            result("city not found", true),
        ])],
        ..Chat::default()
    };
    let body = encoded(&chat, &[]).unwrap();
    let responses: Vec<&Value> = (0..3)
        .map(|i| &body["contents"][0]["parts"][i]["functionResponse"]["response"])
        .collect();
    assert_eq!(responses[0], &json!({"output": "72 and sunny"}));
    assert_eq!(responses[1], &json!({"output": "[1,2]"}));
    assert_eq!(responses[2], &json!({"error": "city not found"}));
}

#[test]
fn tool_choice_and_json_mode_map_to_gemini_settings() {
    let mut chat = movie_chat();
    for (choice, want) in [
        (ToolChoice::None, json!({"mode": "NONE"})),
        (ToolChoice::Required, json!({"mode": "ANY"})),
        (
            ToolChoice::Tool("find_movies".into()),
            json!({"mode": "ANY", "allowedFunctionNames": ["find_movies"]}),
        ),
    ] {
        chat.tool_choice = Some(choice);
        let body = encoded(&chat, &[]).unwrap();
        assert_eq!(body["toolConfig"]["functionCallingConfig"], want);
    }
    let plain = Chat {
        messages: vec![user(vec![text("List three colours as JSON.")])],
        json_object: true,
        ..Chat::default()
    };
    let body = encoded(&plain, &[]).unwrap();
    assert_eq!(
        body,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "List three colours as JSON."}]}],
            "generationConfig": {"responseMimeType": "application/json"}
        })
    );
}

fn decode_all(chunks: &[&[u8]]) -> Vec<Event> {
    crate::protocol::translate::decode_all::<Decoder>(chunks)
}

fn usage(input: u64, output: u64, reasoning: u64) -> Event {
    Event::Usage(Usage {
        input,
        output,
        reasoning,
        ..Usage::default()
    })
}

#[test]
fn the_stream_decodes_the_same_however_its_bytes_are_split() {
    let want = vec![
        Event::Start {
            id: "HKhlaNrBGsWJjMcPq9Tb0Ac".into(),
            model: "gemini-2.5-flash".into(),
        },
        Event::Text("In a sunlit cottage".into()),
        usage(7, 4, 0),
        Event::Text(" lived two cats, Mittens and Whiskers.".into()),
        usage(7, 13, 0),
        Event::Text(
            " Every afternoon they napped on the windowsill – 😺 – and dreamed of adventure."
                .into(),
        ),
        usage(7, 31 + 482, 482),
        Event::Finish(Finish::Stop),
    ];
    let bytes = STREAM.as_bytes();
    assert_eq!(decode_all(&[bytes]), want);
    for cut in 0..bytes.len() {
        assert_eq!(
            decode_all(&[&bytes[..cut], &bytes[cut..]]),
            want,
            "cut at {cut}"
        );
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode_all(&singles), want);
}

#[test]
fn a_streamed_function_call_arrives_whole_and_finishes_as_tool_calls() {
    let bytes = STREAM_CALL.as_bytes();
    let want = vec![
        Event::Start {
            id: "W6hlaM2lJJOBjMcP1pCI-Ao".into(),
            model: "gemini-2.5-flash".into(),
        },
        Event::Text("Let me look that up.".into()),
        usage(113, 6, 0),
        Event::ToolCallStart {
            index: 0,
            id: "call_0".into(),
            name: "find_theaters".into(),
        },
        Event::ToolCallArgs {
            index: 0,
            arguments: r#"{"location":"Mountain View, CA","movie":"Barbie"}"#.into(),
        },
        usage(113, 24, 0),
        Event::Finish(Finish::ToolCalls),
    ];
    for cut in 0..bytes.len() {
        assert_eq!(
            decode_all(&[&bytes[..cut], &bytes[cut..]]),
            want,
            "cut at {cut}"
        );
    }
}

#[test]
fn a_finish_reason_repeated_on_every_chunk_finishes_once_at_the_end() {
    // Older models (the cookbook's `gemini-pro` stream) mark every chunk STOP.
    let chunk = |t: &str, reason: &str| {
        format!(
            "data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \"{t}\"}}],\"role\": \"model\"}},\"finishReason\": \"{reason}\",\"index\": 0}}]}}\r\n\r\n"
        )
    };
    let stream = chunk("In the quaint cottage", "STOP") + &chunk(" two cats lived.", "MAX_TOKENS");
    assert_eq!(
        decode_all(&[stream.as_bytes()]),
        [
            Event::Start {
                id: String::new(),
                model: String::new()
            },
            Event::Text("In the quaint cottage".into()),
            Event::Text(" two cats lived.".into()),
            Event::Finish(Finish::Length),
        ]
    );
}

#[test]
fn an_error_in_the_stream_is_an_error_event() {
    let stream = "data: {\"error\": {\"code\": 429, \"message\": \"Resource has been exhausted (e.g. check quota).\", \"status\": \"RESOURCE_EXHAUSTED\"}}\r\n\r\n";
    assert_eq!(
        decode_all(&[stream.as_bytes()]),
        [Event::Error {
            message: "RESOURCE_EXHAUSTED: Resource has been exhausted (e.g. check quota).".into()
        }]
    );
}

#[test]
fn a_blocked_prompt_streams_as_a_filtered_finish() {
    let stream = format!("data: {}\r\n\r\n", ANSWER_BLOCKED.replace('\n', ""));
    let events = decode_all(&[stream.as_bytes()]);
    assert_eq!(events.last(), Some(&Event::Finish(Finish::ContentFilter)));
    assert!(events.contains(&usage(21, 0, 0)));
}
