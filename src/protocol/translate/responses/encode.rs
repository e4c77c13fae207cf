//! The Responses API's answer: the `response` object ([`encode_answer`]) and its typed SSE
//! events ([`Encoder`]), from the neutral answer (see the mapping table in the parent module).

use super::super::{Answer, Chat, Event, Finish, Part, StreamEncoder, ToolChoice};
use crate::state::unix_now;
use crate::usage::Usage;
use bytes::{Bytes, BytesMut};
use serde_json::{json, Map, Value};

type Obj = Map<String, Value>;

/// The ids of one response: `resp_…`, and the stem its items' ids (`msg_…`, `fc_…`) share.
#[derive(Debug, Clone)]
struct Ids {
    response: String,
    stem: String,
}

impl Ids {
    /// From the backend's answer id (a fresh one when it gave none).
    fn new(answer_id: &str) -> Ids {
        let stem = crate::digest::random_id_hex();
        let response = if answer_id.is_empty() {
            format!("resp_{stem}")
        } else if answer_id.starts_with("resp_") {
            answer_id.to_string()
        } else {
            format!("resp_{answer_id}")
        };
        Ids { response, stem }
    }

    fn message(&self, output_index: usize) -> String {
        format!("msg_{}_{output_index}", self.stem)
    }

    fn call(&self, output_index: usize) -> String {
        format!("fc_{}_{output_index}", self.stem)
    }
}

/// The request's fields a `response` object repeats, and its model.
#[derive(Debug, Clone)]
struct Echo {
    fields: Obj,
    model: String,
}

impl Echo {
    fn new(request: &Chat) -> Echo {
        let tool_choice = match &request.tool_choice {
            None | Some(ToolChoice::Auto) => json!("auto"),
            Some(ToolChoice::None) => json!("none"),
            Some(ToolChoice::Required) => json!("required"),
            Some(ToolChoice::Tool(name)) => json!({"type": "function", "name": name}),
        };
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "name": t.name, "description": t.description,
                    "parameters": t.parameters, "strict": false})
            })
            .collect();
        let instructions = if request.system.is_empty() {
            Value::Null
        } else {
            Value::from(request.system.join("\n"))
        };
        let format = if request.json_object {
            "json_object"
        } else {
            "text"
        };
        let fields = json!({
            "instructions": instructions,
            "parallel_tool_calls": true,
            "tool_choice": tool_choice,
            "tools": tools,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_output_tokens": request.max_tokens,
            "previous_response_id": null,
            "store": false,
            "text": {"format": {"type": format}},
            "truncation": "disabled",
            "metadata": {},
            "user": request.user,
        });
        Echo {
            fields: match fields {
                Value::Object(o) => o,
                _ => Obj::new(),
            },
            model: request.model.clone(),
        }
    }

    /// A `response` object.
    fn response(&self, r: ResponseParts<'_>) -> Value {
        let model = if r.model.is_empty() {
            &self.model
        } else {
            r.model
        };
        let mut v = json!({
            "id": r.id, "object": "response", "created_at": r.created_at, "status": r.status,
            "model": model, "output": r.output, "usage": r.usage.map(usage_json),
            "error": r.error, "incomplete_details": r.incomplete,
        });
        if let Value::Object(o) = &mut v {
            o.extend(self.fields.clone());
        }
        v
    }
}

/// What differs between the `response` objects of one answer.
struct ResponseParts<'a> {
    id: &'a str,
    model: &'a str,
    created_at: u64,
    status: &'a str,
    output: Vec<Value>,
    usage: Option<&'a Usage>,
    error: Value,
    incomplete: Value,
}

/// The response's status and `incomplete_details` for how the answer ended.
fn status(finish: Finish) -> (&'static str, Value) {
    match finish {
        Finish::Length => ("incomplete", json!({"reason": "max_output_tokens"})),
        Finish::ContentFilter => ("incomplete", json!({"reason": "content_filter"})),
        Finish::Stop | Finish::StopSequence | Finish::ToolCalls => ("completed", Value::Null),
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input,
        "input_tokens_details": {"cached_tokens": u.cached, "cache_write_tokens": u.cache_write},
        "output_tokens": u.output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": u.total(),
    })
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
}

fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
        "arguments": arguments, "status": status})
}

/// Neutral Answer → a Responses API `response` object (JSON). `request` is the neutral Chat the
/// answer is for (echoed fields: instructions, tools, tool_choice, temperature, top_p,
/// max_output_tokens).
pub fn encode_answer(answer: &Answer, request: &Chat) -> Bytes {
    let ids = Ids::new(&answer.id);
    let (status, incomplete) = status(answer.finish);
    let mut output = Vec::new();
    let mut text: Option<String> = None;
    for part in &answer.parts {
        match part {
            Part::Text(t) => text.get_or_insert_with(String::new).push_str(t),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => {
                if let Some(t) = text.take() {
                    output.push(message_item(&ids.message(output.len()), &t, "completed"));
                }
                let item_id = ids.call(output.len());
                output.push(call_item(&item_id, id, name, arguments, "completed"));
            }
            Part::Image(_) | Part::ToolResult { .. } => {}
        }
    }
    if let Some(t) = text {
        output.push(message_item(&ids.message(output.len()), &t, "completed"));
    }
    // The item the answer was cut in is incomplete, as OpenAI marks it.
    if status == "incomplete" {
        if let Some(Value::Object(last)) = output.last_mut() {
            last.insert("status".into(), json!("incomplete"));
        }
    }
    let response = Echo::new(request).response(ResponseParts {
        id: &ids.response,
        model: &answer.model,
        created_at: unix_now(),
        status,
        output,
        usage: answer.usage.as_ref(),
        error: Value::Null,
        incomplete,
    });
    Bytes::from(response.to_string())
}

// ---- The stream ----

/// The output item being streamed.
#[derive(Debug)]
enum Open {
    None,
    Message {
        text: String,
    },
    Call {
        index: u32,
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// Neutral events → the Responses API's typed SSE events (`event: <type>` and a `data` object
/// with that `type` and a `sequence_number` counting from 0).
#[derive(Debug)]
pub struct Encoder {
    echo: Echo,
    ids: Ids,
    model: String,
    created_at: u64,
    /// The next event's `sequence_number`.
    sequence: u64,
    started: bool,
    /// The items closed so far, as `response.output` lists them.
    items: Vec<Value>,
    open: Open,
    /// Each closed call's neutral index and its position in `items`.
    calls: Vec<(u32, usize)>,
    finish: Finish,
    usage: Option<Usage>,
    /// The backend's failure, when it reported one.
    failed: Option<String>,
}

impl Encoder {
    /// An encoder for the answer to `request`.
    pub fn new(request: &Chat) -> Encoder {
        Encoder {
            echo: Echo::new(request),
            ids: Ids::new(""),
            model: String::new(),
            created_at: unix_now(),
            sequence: 0,
            started: false,
            items: Vec::new(),
            open: Open::None,
            calls: Vec::new(),
            finish: Finish::Stop,
            usage: None,
            failed: None,
        }
    }

    fn emit(&mut self, kind: &str, mut data: Value, out: &mut BytesMut) {
        if let Value::Object(o) = &mut data {
            o.insert("type".into(), json!(kind));
            o.insert("sequence_number".into(), json!(self.sequence));
        }
        self.sequence += 1;
        super::super::sse_event(Some(kind), &data.to_string(), out);
    }

    fn response(&self, status: &str, error: Value, incomplete: Value, output: Vec<Value>) -> Value {
        self.echo.response(ResponseParts {
            id: &self.ids.response,
            model: &self.model,
            created_at: self.created_at,
            status,
            output,
            usage: self.usage.as_ref(),
            error,
            incomplete,
        })
    }

    /// `response.created` and `response.in_progress`, once, before anything else.
    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response("in_progress", Value::Null, Value::Null, Vec::new());
        self.emit("response.created", json!({"response": response}), out);
        self.emit("response.in_progress", json!({"response": response}), out);
    }

    /// Closes the open item with `status` (its `.done` events), moving it to `items`.
    fn close(&mut self, status: &str, out: &mut BytesMut) {
        let index = self.items.len();
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => return,
            Open::Message { text } => {
                let id = self.ids.message(index);
                let base = json!({"item_id": id, "output_index": index, "content_index": 0});
                let with = |extra: Value| merge(base.clone(), extra);
                self.emit(
                    "response.output_text.done",
                    with(json!({"text": text, "logprobs": []})),
                    out,
                );
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                self.emit(
                    "response.content_part.done",
                    with(json!({"part": part})),
                    out,
                );
                self.items.push(message_item(&id, &text, status));
            }
            Open::Call {
                index: call,
                call_id,
                name,
                arguments,
            } => {
                let id = self.ids.call(index);
                self.emit(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": index, "name": name,
                        "arguments": arguments}),
                    out,
                );
                self.items
                    .push(call_item(&id, &call_id, &name, &arguments, status));
                self.calls.push((call, index));
            }
        }
        let item = self.items.get(index).cloned().unwrap_or(Value::Null);
        self.emit(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
            out,
        );
    }

    fn text(&mut self, delta: &str, out: &mut BytesMut) {
        if !matches!(self.open, Open::Message { .. }) {
            self.close("completed", out);
            let index = self.items.len();
            let id = self.ids.message(index);
            let item = json!({"type": "message", "id": id, "status": "in_progress",
                "role": "assistant", "content": []});
            self.emit(
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
                out,
            );
            let part = json!({"type": "output_text", "text": "", "annotations": []});
            self.emit(
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                out,
            );
            self.open = Open::Message {
                text: String::new(),
            };
        }
        if let Open::Message { text } = &mut self.open {
            text.push_str(delta);
        }
        let index = self.items.len();
        self.emit(
            "response.output_text.delta",
            json!({"item_id": self.ids.message(index), "output_index": index, "content_index": 0,
                "delta": delta, "logprobs": []}),
            out,
        );
    }

    fn call_start(&mut self, call: u32, call_id: &str, name: &str, out: &mut BytesMut) {
        self.close("completed", out);
        let index = self.items.len();
        let item = call_item(&self.ids.call(index), call_id, name, "", "in_progress");
        self.emit(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
            out,
        );
        self.open = Open::Call {
            index: call,
            call_id: call_id.to_string(),
            name: name.to_string(),
            arguments: String::new(),
        };
    }

    fn call_args(&mut self, call: u32, delta: &str, out: &mut BytesMut) {
        match &mut self.open {
            Open::Call {
                index, arguments, ..
            } if *index == call => arguments.push_str(delta),
            _ => {
                // Arguments for a call already closed (a backend interleaving its calls): its
                // `.done` events went out, so they can only join the final response.
                let closed = self.calls.iter().find(|(c, _)| *c == call);
                if let Some(args) = closed
                    .and_then(|(_, at)| self.items.get_mut(*at))
                    .and_then(|item| item.get_mut("arguments"))
                {
                    let joined = format!("{}{delta}", args.as_str().unwrap_or_default());
                    *args = Value::from(joined);
                }
                return;
            }
        }
        let index = self.items.len();
        self.emit(
            "response.function_call_arguments.delta",
            json!({"item_id": self.ids.call(index), "output_index": index, "delta": delta}),
            out,
        );
    }
}

/// `base` with `extra`'s members added.
fn merge(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        b.extend(e);
    }
    base
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &Event, out: &mut BytesMut) {
        if let Event::Start { id, model } = event {
            if !self.started {
                self.ids = Ids::new(id);
                self.model.clone_from(model);
            }
        }
        self.start(out);
        match event {
            Event::Start { .. } => {}
            Event::Text(t) if t.is_empty() => {}
            Event::Text(t) => self.text(t, out),
            Event::ToolCallStart { index, id, name } => self.call_start(*index, id, name, out),
            Event::ToolCallArgs { index, arguments } => self.call_args(*index, arguments, out),
            Event::Finish(f) => self.finish = *f,
            Event::Usage(u) => self.usage = Some(*u),
            Event::Error { message } => {
                self.emit(
                    "error",
                    json!({"code": "upstream_failed", "message": message, "param": null}),
                    out,
                );
                self.failed = Some(message.clone());
            }
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        self.start(out);
        let (mut status, mut incomplete) = status(self.finish);
        let mut error = Value::Null;
        if let Some(message) = &self.failed {
            (status, incomplete) = ("failed", Value::Null);
            // The `response` object's error codes are a closed list; a backend failure is
            // OpenAI's `server_error` there (the `error` event carried `upstream_failed`).
            error = json!({"code": "server_error", "message": message});
        }
        self.close(
            if status == "completed" {
                "completed"
            } else {
                "incomplete"
            },
            out,
        );
        let response = self.response(status, error, incomplete, self.items.clone());
        self.emit(
            &format!("response.{status}"),
            json!({"response": response}),
            out,
        );
    }
}
