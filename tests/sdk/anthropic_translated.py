"""The official anthropic SDK against a model served by an OpenAI backend through Tollgate's
translation: a message with a system prompt, a stream read by the SDK's own accumulator, tool
use whole and streamed, a tool result sent back, and a bad key.

Usage: python3 anthropic_translated.py BASE_URL API_KEY MODEL   (BASE_URL without /v1)
Prints one JSON line with what the SDK saw; exits non-zero on any SDK error.
"""
import json
import sys

import anthropic

base_url, api_key, model = sys.argv[1], sys.argv[2], sys.argv[3]
client = anthropic.Anthropic(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
TOOL_CALLS = {"x-mock-tool-calls": "1"}
TOOLS = [{
    "name": "lookup",
    "description": "Looks a word up.",
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
}]

message = client.messages.create(
    model=model, max_tokens=64, system="Be brief.",
    messages=[{"role": "user", "content": "Say hello"}],
)

with client.messages.stream(
    model=model, max_tokens=64, messages=[{"role": "user", "content": "Say hello"}],
) as s:
    streamed = "".join(s.text_stream)
    final = s.get_final_message()

used = client.messages.create(
    model=model, max_tokens=64, tools=TOOLS,
    messages=[{"role": "user", "content": "Look up hello"}], extra_headers=TOOL_CALLS,
)
tool_use = next(b for b in used.content if b.type == "tool_use")

with client.messages.stream(
    model=model, max_tokens=64, tools=TOOLS,
    messages=[{"role": "user", "content": "Look up hello"}], extra_headers=TOOL_CALLS,
) as s:
    streamed_use = s.get_final_message()
streamed_tool = next(b for b in streamed_use.content if b.type == "tool_use")

answered = client.messages.create(
    model=model, max_tokens=64, tools=TOOLS,
    messages=[
        {"role": "user", "content": "Look up hello"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": tool_use.id, "name": tool_use.name, "input": tool_use.input}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tool_use.id, "content": "hello: a greeting"}]},
    ],
)

denied = None
try:
    anthropic.Anthropic(base_url=base_url, api_key="not-a-key", max_retries=0).messages.create(
        model=model, max_tokens=8, messages=[{"role": "user", "content": "x"}]
    )
except anthropic.AuthenticationError as e:
    denied = e.status_code

print(json.dumps({
    "text": message.content[0].text,
    "stop_reason": message.stop_reason,
    "model": message.model,
    "input_tokens": message.usage.input_tokens,
    "output_tokens": message.usage.output_tokens,
    "streamed": streamed,
    "stream_stop_reason": final.stop_reason,
    "stream_usage": [final.usage.input_tokens, final.usage.output_tokens],
    "tool_name": tool_use.name,
    "tool_input": tool_use.input,
    "tool_stop_reason": used.stop_reason,
    "stream_tool_name": streamed_tool.name,
    "stream_tool_input": streamed_tool.input,
    "stream_tool_stop_reason": streamed_use.stop_reason,
    "after_tool": answered.content[0].text,
    "denied_status": denied,
    "sdk_version": anthropic.__version__,
}))
