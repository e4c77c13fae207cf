//! The admin plane: a separate listener (default `127.0.0.1:9001`) for operators.
//!
//! `GET /health` answers without authentication (liveness). Everything else needs
//! `Authorization: Bearer <admin token>`, checked against the configured digest in constant time;
//! consumer keys never open it. Answers are JSON.

use crate::digest::KeyDigest;
use crate::runtime::LiveState;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};

pub struct Admin {
    live: LiveState,
}

impl Admin {
    pub fn new(live: LiveState) -> Self {
        Admin { live }
    }

    /// Routes one admin request; `token` is the presented bearer token, if any.
    pub fn answer(
        &self,
        method: &http::Method,
        path: &str,
        token: Option<&[u8]>,
    ) -> (StatusCode, Value) {
        let rt = self.live.current();
        if path == "/health" {
            return (
                StatusCode::OK,
                json!({"status": "ok", "service": "tollgate"}),
            );
        }
        let authorized =
            token.is_some_and(|t| KeyDigest::of(t).ct_eq(&rt.config.server.admin.token));
        if !authorized {
            return (
                StatusCode::UNAUTHORIZED,
                json!({"error": "admin token required: Authorization: Bearer <token>"}),
            );
        }
        match (method.as_str(), path) {
            ("GET", "/ready") => (
                StatusCode::OK,
                json!({
                    "status": "ready",
                    "consumers": rt.config.consumers.len(),
                    "backends": rt.config.backends.len(),
                }),
            ),
            (_, "/ready") => (StatusCode::METHOD_NOT_ALLOWED, json!({"error": "use GET"})),
            _ => (
                StatusCode::NOT_FOUND,
                json!({"error": "no such admin endpoint"}),
            ),
        }
    }
}

fn bearer(session: &ServerSession) -> Option<&[u8]> {
    let v = session
        .req_header()
        .headers
        .get(http::header::AUTHORIZATION)?;
    let v = v.as_bytes();
    let (scheme, rest) = v.split_at(v.iter().position(|b| *b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let (status, body) = self.answer(&req.method, req.uri.path(), bearer(session));
        let body = body.to_string().into_bytes();
        let len = body.len();
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("content-length", len)
            .body(body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}
