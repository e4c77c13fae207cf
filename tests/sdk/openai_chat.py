"""The official openai SDK against a running Tollgate: one completion, then one stream.

Usage: [TOLLGATE_CA=ca.pem] python3 openai_chat.py BASE_URL API_KEY MODEL
Prints one JSON line with what the SDK saw; exits non-zero on any SDK error. With TOLLGATE_CA,
over TLS and HTTP/2 (see sdk_client.py).
"""
import json
import sys

import openai

import sdk_client

base_url, api_key, model = sys.argv[1], sys.argv[2], sys.argv[3]
client = sdk_client.client(base_url, api_key, timeout=30)

completion = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "Say hello"}]
)
def stream(**extra):
    text, chunks, usage_chunks, usage = [], 0, 0, None
    for chunk in client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello"}], stream=True, **extra
    ):
        chunks += 1
        if chunk.usage is not None:
            usage_chunks += 1
            usage = chunk.usage.completion_tokens
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
    return "".join(text), chunks, usage_chunks, usage


streamed, chunks_plain, usage_chunks_plain, _ = stream()
_, chunks_usage, usage_chunks_asked, usage_asked = stream(stream_options={"include_usage": True})

denied = None
try:
    sdk_client.client(base_url, "not-a-key").chat.completions.create(
        model=model, messages=[{"role": "user", "content": "x"}]
    )
except openai.AuthenticationError as e:
    denied = e.status_code

print(json.dumps({
    "content": completion.choices[0].message.content,
    "prompt_tokens": completion.usage.prompt_tokens,
    "completion_tokens": completion.usage.completion_tokens,
    "streamed": streamed,
    "chunks_plain": chunks_plain,
    "usage_chunks_plain": usage_chunks_plain,
    "chunks_with_usage": chunks_usage,
    "usage_chunks_asked": usage_chunks_asked,
    "usage_asked": usage_asked,
    "denied_status": denied,
    "sdk_version": openai.__version__,
    **sdk_client.transport(),
}))
