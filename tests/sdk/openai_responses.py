"""The official openai SDK's Responses API through the gateway: a whole answer, a stream, and a
refusal (an SSN in a function_call_output item). Prints one JSON object."""
import json
import sys

import openai

base, key, model = sys.argv[1:4]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
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
print(json.dumps(out))
