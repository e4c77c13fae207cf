"""The official openai SDK against a model served by another provider's dialect (Anthropic,
Gemini, Bedrock) through Tollgate's translation: a completion with a system prompt and an image,
a stream with and without its usage chunk, tool calls whole and streamed, and a turn that sends
a tool's result back.

Usage: python3 openai_translated.py BASE_URL API_KEY MODEL
Prints one JSON line with what the SDK saw; exits non-zero on any SDK error.
"""
import json
import sys

import openai

import sdk_client

base_url, api_key, model = sys.argv[1], sys.argv[2], sys.argv[3]
client = sdk_client.client(base_url, api_key, timeout=30)
TOOL_CALLS = {"x-mock-tool-calls": "1"}
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
TOOLS = [{
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Looks a word up.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    },
}]

completion = client.chat.completions.create(
    model=model,
    messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "Say hello"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
        ]},
    ],
    temperature=0.5,
    max_tokens=64,
)


def stream(**extra):
    text, usage_chunks, usage, finish, model_seen = [], 0, None, None, None
    for chunk in client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello"}], stream=True, **extra
    ):
        model_seen = chunk.model
        if chunk.usage is not None:
            usage_chunks += 1
            usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens]
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    return {"text": "".join(text), "usage_chunks": usage_chunks, "usage": usage,
            "finish": finish, "model": model_seen}


plain = stream()
with_usage = stream(stream_options={"include_usage": True})

called = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "Look up hello"}], tools=TOOLS,
    extra_headers=TOOL_CALLS,
)
call = called.choices[0].message.tool_calls[0]

names, arguments, stream_finish = {}, {}, None
for chunk in client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "Look up hello"}], tools=TOOLS,
    stream=True, extra_headers=TOOL_CALLS,
):
    for choice in chunk.choices:
        for tc in choice.delta.tool_calls or []:
            if tc.function and tc.function.name:
                names[tc.index] = tc.function.name
            if tc.function and tc.function.arguments:
                arguments[tc.index] = arguments.get(tc.index, "") + tc.function.arguments
        if choice.finish_reason:
            stream_finish = choice.finish_reason

answered = client.chat.completions.create(
    model=model,
    messages=[
        {"role": "user", "content": "Look up hello"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "hello: a greeting"},
    ],
    tools=TOOLS,
)

print(json.dumps({
    "content": completion.choices[0].message.content,
    "finish": completion.choices[0].finish_reason,
    "model": completion.model,
    "prompt_tokens": completion.usage.prompt_tokens,
    "completion_tokens": completion.usage.completion_tokens,
    "plain": plain,
    "with_usage": with_usage,
    "tool_name": call.function.name,
    "tool_args": json.loads(call.function.arguments),
    "tool_finish": called.choices[0].finish_reason,
    "stream_tool_name": names.get(0),
    "stream_tool_args": json.loads(arguments.get(0, "null")),
    "stream_tool_finish": stream_finish,
    "after_tool": answered.choices[0].message.content,
}))
