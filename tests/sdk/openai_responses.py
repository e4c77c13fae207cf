"""The official openai SDK's Responses API through the gateway: a whole answer, a stream, and a
refusal (an SSN in a function_call_output item). Prints one JSON object.

Usage: [TOLLGATE_CA=ca.pem] python3 openai_responses.py BASE_URL API_KEY MODEL (with TOLLGATE_CA,
over TLS and HTTP/2: see sdk_client.py)."""
import json
import sys

import openai

import sdk_client

base, key, model = sys.argv[1:4]
client = sdk_client.client(base, key)
out = {}
r = client.responses.create(model=model, input="hello there", instructions="be brief")
out["text"] = r.output_text
out["status"] = r.status
out["output_tokens"] = r.usage.output_tokens
out["input_tokens"] = r.usage.input_tokens
streamed, kinds, final_usage = "", [], None
with client.responses.create(model=model, input=[{"role": "user", "content": "stream it"}],
                             stream=True) as stream:
    for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            streamed += event.delta
        if event.type == "response.completed":
            final_usage = event.response.usage.output_tokens
out["streamed"] = streamed
out["first_event"] = kinds[0]
out["last_event"] = kinds[-1]
out["stream_output_tokens"] = final_usage
try:
    client.responses.create(model=model, input=[
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "the SSN is 123-45-6789"},
    ])
    out["refused"] = None
except openai.BadRequestError as e:
    out["refused"] = e.status_code
    out["refused_code"] = (e.body or {}).get("code")
out.update(sdk_client.transport())
print(json.dumps(out))
