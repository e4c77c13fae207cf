//! How each kind of backend is addressed: the path a request goes to (Azure OpenAI names its
//! deployment in the path; Gemini and Bedrock name the model in theirs, see
//! [`super::translate`]), the header that carries the gateway's credential (`Authorization:
//! Bearer`, Azure's `api-key`, Anthropic's `x-api-key`, Gemini's `x-goog-api-key`; Bedrock's
//! requests are SigV4-signed instead), and the API version header Anthropic requires. The client's own values for these headers never leave the
//! gateway ([`GATEWAY_OWNED`]).

use crate::config::{Backend, Protocol, Provider};

/// Request headers that carry a credential, choose an API version or name the client: a
/// client's are never forwarded (not even by a backend's `forward_headers`); the gateway sets
/// the backend's own, and `X-Forwarded-For` when `server.forward_client_address` says so.
pub const GATEWAY_OWNED: &[&str] = &[
    "x-api-key",
    "x-goog-api-key",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "api-key",
    "authorization",
    "anthropic-version",
    "x-forwarded-for",
    "forwarded",
];

/// The path on `backend` for a request the dialect sends to `path` (below the backend's prefix).
pub fn path(backend: &Backend, path: &str) -> String {
    let prefix = &backend.url.path_prefix;
    match (&backend.provider, path) {
        (
            Provider::Azure {
                deployment,
                api_version,
            },
            "/v1/chat/completions",
        ) => format!(
            "{prefix}/openai/deployments/{deployment}/chat/completions?api-version={api_version}"
        ),
        // Azure's Responses API is per resource; the body's `model` names the deployment.
        (Provider::Azure { api_version, .. }, "/v1/responses") => {
            format!("{prefix}/openai/responses?api-version={api_version}")
        }
        _ => format!("{prefix}{path}"),
    }
}

/// The headers the gateway adds for `backend`: its API version and its credential.
pub fn headers(backend: &Backend) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(2);
    if backend.protocol == Protocol::Anthropic {
        out.push(("anthropic-version", backend.anthropic_version.clone()));
    }
    if let Some(cred) = &backend.credential {
        let secret = cred.expose();
        out.push(match (&backend.provider, backend.protocol) {
            (_, Protocol::Anthropic) => ("x-api-key", secret.to_string()),
            (_, Protocol::Gemini) => ("x-goog-api-key", secret.to_string()),
            (Provider::Azure { .. }, _) => ("api-key", secret.to_string()),
            _ => ("authorization", format!("Bearer {secret}")),
        });
    }
    out
}

/// Whether a 4xx refusal says the gateway's credential is wrong, where the status alone does
/// not: Gemini answers an invalid API key with 400 `INVALID_ARGUMENT`, reason
/// `API_KEY_INVALID` (401 and 403 say so for every provider).
pub fn refused_key(backend: &Backend, status: u16, body: &[u8]) -> bool {
    backend.protocol == Protocol::Gemini
        && status == 400
        && memchr::memmem::find(body, b"API_KEY_INVALID").is_some()
}

/// Identifiers a provider puts in its error messages that the client must not see: API keys
/// (also partly masked, `sk-…abcd`), organisation and project ids, 32-hex-digit keys (Azure).
/// (A constant pattern: the unit test below shows it compiles.)
fn secret_pattern() -> Option<&'static regex::Regex> {
    static PATTERN: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    PATTERN
        .get_or_init(|| {
            regex::Regex::new(
                r"sk-[A-Za-z0-9_\-.*…]{2,}|\borg-[A-Za-z0-9]{6,}|\bproj_[A-Za-z0-9]{6,}|\b[0-9a-fA-F]{32}\b",
            )
            .ok()
        })
        .as_ref()
}

/// Members of an error body that name the account billed.
const ACCOUNT_FIELDS: &[&str] = &[
    "organization",
    "organization_id",
    "org_id",
    "project",
    "project_id",
];

/// A backend's 4xx error body as the client may see it: its type and message kept, credentials
/// and organisation and project ids removed. `None` when it is not JSON (the gateway answers
/// with an error of its own then).
pub fn scrub_error(body: &[u8]) -> Option<bytes::Bytes> {
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    scrub(&mut v);
    Some(bytes::Bytes::from(v.to_string()))
}

fn scrub(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if let Some(p) = secret_pattern().filter(|p| p.is_match(s)) {
                *s = p.replace_all(s, "[redacted]").into_owned();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(map) => {
            map.retain(|k, _| !ACCOUNT_FIELDS.contains(&k.as_str()));
            map.values_mut().for_each(scrub);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_keep_their_meaning_and_lose_keys_and_account_ids() {
        assert!(secret_pattern().is_some());
        let body = br#"{"error":{"message":"Incorrect API key provided: sk-proj-****abcd. Rate limit reached in organization org-AbC123xyz for project proj_Zx9876abc.","type":"invalid_request_error","code":"invalid_api_key","param":null,"organization":"org-AbC123xyz"}}"#;
        let out = String::from_utf8(scrub_error(body).unwrap().to_vec()).unwrap();
        for gone in [
            "sk-proj",
            "abcd",
            "org-AbC123xyz",
            "proj_Zx9876abc",
            "\"organization\"",
        ] {
            assert!(!out.contains(gone), "{gone} in {out}");
        }
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Incorrect API key provided: [redacted]"));
        assert!(scrub_error(b"<html>bad gateway</html>").is_none());
        let azure = br#"{"error":{"message":"key 0123456789abcdef0123456789ABCDEF is invalid"}}"#;
        assert!(!String::from_utf8_lossy(&scrub_error(azure).unwrap()).contains("0123456789abcdef"));
    }
}
