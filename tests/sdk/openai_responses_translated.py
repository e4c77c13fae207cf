"""The official openai SDK's Responses API against a model served by another provider's dialect
through Tollgate's translation: a response with instructions, a stream, and a function call.

Usage: python3 openai_responses_translated.py BASE_URL API_KEY MODEL
Prints one JSON line with what the SDK saw; exits non-zero on any SDK error.
"""
import json
import sys

import sdk_client

base_url, api_key, model = sys.argv[1], sys.argv[2], sys.argv[3]
client = sdk_client.client(base_url, api_key, timeout=30)
TOOLS = [{
    "type": "function", "name": "lookup", "description": "Looks a word up.",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
}]

response = client.responses.create(
    model=model, instructions="Be brief.", input="Say hello", max_output_tokens=64, store=False,
)

deltas, events, completed = [], [], None
for event in client.responses.create(model=model, input="Say hello", stream=True, store=False):
    events.append(event.type)
    if event.type == "response.output_text.delta":
        deltas.append(event.delta)
    if event.type == "response.completed":
        completed = event.response

called = client.responses.create(
    model=model, input="Look up hello", tools=TOOLS, store=False,
    extra_headers={"x-mock-tool-calls": "1"},
)
call = next(item for item in called.output if item.type == "function_call")

print(json.dumps({
    "text": response.output_text,
    "status": response.status,
    "model": response.model,
    "input_tokens": response.usage.input_tokens,
    "output_tokens": response.usage.output_tokens,
    "streamed": "".join(deltas),
    "first_event": events[0],
    "last_event": events[-1],
    "stream_output_tokens": completed.usage.output_tokens if completed else None,
    "tool_name": call.name,
    "tool_args": json.loads(call.arguments),
}))
