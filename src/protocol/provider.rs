//! How each kind of backend is addressed: the path a request goes to (Azure OpenAI names its
//! deployment in the path), the header that carries the gateway's credential, and the API
//! version header Anthropic requires. The client's own values for these headers never leave the
//! gateway ([`GATEWAY_OWNED`]).

use crate::config::{Backend, Protocol, Provider};

/// Request headers that carry a credential or choose an API version: a client's are never
/// forwarded; the gateway sets the backend's own.
pub const GATEWAY_OWNED: &[&str] = &["x-api-key", "api-key", "authorization", "anthropic-version"];

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
            (Provider::Azure { .. }, _) => ("api-key", secret.to_string()),
            _ => ("authorization", format!("Bearer {secret}")),
        });
    }
    out
}
