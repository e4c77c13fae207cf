"""How the SDK scripts build their client.

Without TOLLGATE_CA the SDK is used as a user would use it: its own HTTP client, plain HTTP.
With TOLLGATE_CA=<CA certificate, PEM> the base URL must be https://, the client trusts that CA
and offers HTTP/2 by ALPN (the SDK's `DefaultHttpxClient(http2=True)`, which needs the `h2`
package), and a response hook records the HTTP version of every response, so that a script can
prove HTTP/2 carried all of them: `transport()` exits non-zero if one came over anything else.
"""
import os
import ssl
import sys

import openai

CA = os.environ.get("TOLLGATE_CA")
_versions = []


def client(base_url, api_key, **options):
    """An `openai.OpenAI` for `base_url`, never retrying (a retry would hide a failure)."""
    if CA:
        if not base_url.startswith("https://"):
            sys.exit(f"TOLLGATE_CA is set but the base URL is not https: {base_url}")
        options["http_client"] = openai.DefaultHttpxClient(
            http2=True,
            verify=ssl.create_default_context(cafile=CA),
            event_hooks={"response": [lambda r: _versions.append(r.http_version)]},
        )
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, **options)


def transport():
    """What carried the responses: with TLS, every one over HTTP/2 (else the script fails)."""
    if CA:
        others = [v for v in _versions if v != "HTTP/2"]
        if not _versions or others:
            sys.exit(f"over TLS every response must be HTTP/2; saw {_versions}")
    return {"tls": bool(CA), "responses": len(_versions), "http_versions": sorted(set(_versions))}
