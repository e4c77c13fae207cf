//! The admin API for API keys issued at runtime (`state::keys`), on the admin plane behind the
//! admin token like every admin route. JSON in and out:
//!
//! - `POST /keys` `{"consumer", "label"?, "expires"?, "models"?}` → 201 with the new key, shown
//!   this once (`expires`: `2027-01-31` or `2027-01-31T12:00:00Z`, UTC; `models`: within what
//!   the consumer may use, `[]` or absent: all of it);
//! - `GET /keys[?consumer=ID]` → `{"keys": [...]}`, metadata only (never the key, never its
//!   digest); `GET /keys/{id}` → one key's;
//! - `POST /keys/{id}/revoke` and `DELETE /keys/{id}` → 200, the key refused from now on
//!   (revoking twice keeps the first time);
//! - `POST /keys/{id}/rotate` `{"overlap_seconds"?}` → 201 with a new key for the same consumer,
//!   label, models and expiry, shown once; the old key keeps working for the overlap (default
//!   `keys.rotation_overlap_seconds`), then is refused.
//!
//! Errors are `{"error": "..."}`: 400 a bad body or value, 404 no such key or consumer, 405,
//! 409 a change the key's state forbids (rotating a revoked or expired key), 413 a body over
//! 64 KiB, 503 the key store could not be written (nothing was changed, or it is unknown whether
//! it was: list to see). Changes are logged (target `tollgate::audit`) with ids, consumers and
//! labels only: the key is generated here (256 random bits), returned once, stored only as its
//! SHA-256 digest and never logged.

use crate::config::build::utc_seconds;
use crate::config::{Consumer, KeysConfig};
use crate::digest::{generate_key, to_hex, KeyDigest};
use crate::runtime::Runtime;
use crate::state::keys::{IssuedKeys, KeyRecord, KeysError};
use crate::state::{unix_now, utc_time};
use http::StatusCode;
use pingora::protocols::http::ServerSession;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Largest request body read; beyond it, 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most models one key may list, and the longest label and model name.
const MAX_MODELS: usize = 256;
const MAX_TEXT: usize = 256;

/// An answer: status and JSON body.
type Answer = (StatusCode, Value);

/// Whether `path` is one of these routes.
pub fn is_keys_path(path: &str) -> bool {
    path == "/keys" || path.starts_with("/keys/")
}

/// Reads the request's body (bounded), then answers it. The caller checked the admin token.
pub async fn serve(keys: &IssuedKeys, rt: &Runtime, session: &mut ServerSession) -> Answer {
    let req = session.req_header();
    let method = req.method.as_str().to_string();
    let path = req.uri.path().to_string();
    let query = req.uri.query().map(str::to_string);
    let body = match read_body(session).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    answer(
        keys,
        rt,
        &method,
        &path,
        query.as_deref(),
        &body,
        unix_now(),
    )
    .await
}

/// The body, at most [`MAX_BODY_BYTES`]; a larger one is refused (413) and the connection is
/// not reused (the rest of the body is never read).
async fn read_body(session: &mut ServerSession) -> Result<Vec<u8>, Answer> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        session.set_keepalive(None);
        return Err(too_large());
    }
    let mut body = Vec::new();
    let deadline = tokio::time::Instant::now() + BODY_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, session.read_request_body()).await {
            Ok(Ok(Some(chunk))) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    session.set_keepalive(None);
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Ok(None)) => return Ok(body),
            Ok(Err(_)) => {
                session.set_keepalive(None);
                return Err(error(StatusCode::BAD_REQUEST, "could not read the body"));
            }
            Err(_) => {
                session.set_keepalive(None);
                return Err(error(
                    StatusCode::REQUEST_TIMEOUT,
                    "the body did not arrive in time",
                ));
            }
        }
    }
}

/// Routes one request (`now`: Unix seconds).
pub async fn answer(
    keys: &IssuedKeys,
    rt: &Runtime,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    now: u64,
) -> Answer {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("POST", ["keys"]) => create(keys, rt, body, now).await,
        ("GET", ["keys"]) => list(keys, query, now).await,
        ("GET", ["keys", id]) => match keys.get(id).await {
            Ok(Some(r)) => (StatusCode::OK, metadata(&r, now)),
            Ok(None) => no_key(id),
            Err(e) => failed(e, id),
        },
        ("DELETE", ["keys", id]) | ("POST", ["keys", id, "revoke"]) => revoke(keys, id, now).await,
        ("POST", ["keys", id, "rotate"]) => rotate(keys, rt, id, body, now).await,
        (_, ["keys"]) => error(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST"),
        (_, ["keys", _]) => error(StatusCode::METHOD_NOT_ALLOWED, "use GET or DELETE"),
        (_, ["keys", _, "revoke" | "rotate"]) => error(StatusCode::METHOD_NOT_ALLOWED, "use POST"),
        _ => error(StatusCode::NOT_FOUND, "no such admin endpoint"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    consumer: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    expires: Option<String>,
    #[serde(default)]
    models: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    overlap_seconds: Option<u64>,
}

async fn create(keys: &IssuedKeys, rt: &Runtime, body: &[u8], now: u64) -> Answer {
    let b: CreateBody = match parse(body) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "a JSON body is required: {\"consumer\": \"<id>\"}",
            )
        }
        Err(refused) => return refused,
    };
    let Some(consumer) = rt.keys.consumer(&b.consumer) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no consumer `{}` is configured", b.consumer),
        );
    };
    let checked = (|| {
        Ok::<_, String>((
            label(b.label)?,
            expiry(b.expires.as_deref(), now)?,
            models(consumer, b.models)?,
        ))
    })();
    let (label, expires, models) = match checked {
        Ok(c) => c,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let (key, record) = match new_key(Arc::from(consumer.id.as_str()), label, expires, models, now)
    {
        Ok(k) => k,
        Err(refused) => return refused,
    };
    if let Err(e) = keys.create(record.clone()).await {
        return failed(e, &record.id);
    }
    log::info!(
        target: "tollgate::audit",
        "key {} issued for consumer {}{}",
        record.id,
        record.consumer,
        record.label.as_deref().map(|l| format!(" (label {l:?})")).unwrap_or_default()
    );
    (StatusCode::CREATED, with_key(&record, &key, now))
}

async fn list(keys: &IssuedKeys, query: Option<&str>, now: u64) -> Answer {
    let mut consumer = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("consumer", v)) => consumer = Some(v),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "the only query parameter is `consumer`",
                )
            }
        }
    }
    match keys.list().await {
        Ok(all) => {
            let shown: Vec<Value> = all
                .iter()
                .filter(|r| consumer.is_none_or(|c| *r.consumer == *c))
                .map(|r| metadata(r, now))
                .collect();
            (StatusCode::OK, json!({ "keys": shown }))
        }
        Err(e) => failed(e, ""),
    }
}

async fn revoke(keys: &IssuedKeys, id: &str, now: u64) -> Answer {
    match keys.revoke(id, now).await {
        Ok(r) => {
            log::info!(
                target: "tollgate::audit",
                "key {} of consumer {} revoked",
                r.id,
                r.consumer
            );
            (StatusCode::OK, metadata(&r, now))
        }
        Err(e) => failed(e, id),
    }
}

async fn rotate(keys: &IssuedKeys, rt: &Runtime, id: &str, body: &[u8], now: u64) -> Answer {
    let b: RotateBody = match parse(body) {
        Ok(b) => b.unwrap_or_default(),
        Err(refused) => return refused,
    };
    let overlap = b
        .overlap_seconds
        .unwrap_or(rt.config.keys.rotation_overlap_seconds);
    if overlap > KeysConfig::MAX_OVERLAP_SECONDS {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "overlap_seconds must be at most {}",
                KeysConfig::MAX_OVERLAP_SECONDS
            ),
        );
    }
    // Whole seconds, rounded up: the old key works for at least the overlap asked for.
    let until = now
        .saturating_add(overlap)
        .saturating_add(u64::from(overlap > 0));
    let mut made = None;
    let rotated = keys
        .rotate(id, |old| {
            if old.revoked.is_some() {
                return Err(KeysError::Conflict(format!("key `{id}` is revoked")));
            }
            if !old.valid_at(now) {
                return Err(KeysError::Conflict(format!("key `{id}` has expired")));
            }
            if rt.keys.consumer(&old.consumer).is_none() {
                return Err(KeysError::Conflict(format!(
                    "consumer `{}` is no longer configured",
                    old.consumer
                )));
            }
            let (key, new) = new_key(
                Arc::clone(&old.consumer),
                old.label.clone(),
                old.expires,
                Arc::clone(&old.models),
                now,
            )
            .map_err(|_| KeysError::Unavailable("could not generate a key".into()))?;
            made = Some((key, new.clone()));
            Ok((old.expires.map_or(until, |e| e.min(until)), new))
        })
        .await;
    let old = match rotated {
        Ok(old) => old,
        Err(e) => return failed(e, id),
    };
    let Some((key, new)) = made else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the rotation made no key",
        );
    };
    log::info!(
        target: "tollgate::audit",
        "key {} of consumer {} rotated to {}; the old key works until {}",
        old.id,
        old.consumer,
        new.id,
        old.expires.map(utc_time).unwrap_or_default()
    );
    let mut v = with_key(&new, &key, now);
    v["rotated_from"] = json!(&*old.id);
    v["old_key_expires"] = json!(old.expires.map(utc_time));
    (StatusCode::CREATED, v)
}

/// A body as `T`; `Ok(None)` when there is none.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, Answer> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))
}

fn label(label: Option<String>) -> Result<Option<String>, String> {
    match label {
        Some(l) if l.chars().count() > MAX_TEXT || l.chars().any(char::is_control) => Err(format!(
            "label must be at most {MAX_TEXT} characters, without control characters"
        )),
        Some(l) if l.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn expiry(text: Option<&str>, now: u64) -> Result<Option<u64>, String> {
    let Some(text) = text else { return Ok(None) };
    match utc_seconds(text) {
        Some(t) if t > now => Ok(Some(t)),
        Some(_) => Err(format!("expires `{text}` is not in the future")),
        None => Err(format!(
            "expires `{text}` is not a UTC date (2027-01-31) or time (2027-01-31T12:00:00Z)"
        )),
    }
}

/// The key's models: each one its consumer may use (else 400), without repeats.
fn models(consumer: &Consumer, asked: Vec<String>) -> Result<Arc<[String]>, String> {
    if asked.len() > MAX_MODELS {
        return Err(format!("at most {MAX_MODELS} models"));
    }
    let mut out: Vec<String> = Vec::with_capacity(asked.len());
    for m in asked {
        if m.is_empty() || m.len() > MAX_TEXT {
            return Err("a model name must be 1 to 256 bytes".into());
        }
        if !consumer.may_use(&m) {
            return Err(format!(
                "consumer `{}` may not use model `{m}`: a key's models must be within its consumer's allowed_models",
                consumer.id
            ));
        }
        if !out.contains(&m) {
            out.push(m);
        }
    }
    Ok(Arc::from(out))
}

/// A fresh key and its record: `tg-` and 256 random bits in hex, id `key_` and 64 more.
fn new_key(
    consumer: Arc<str>,
    label: Option<String>,
    expires: Option<u64>,
    models: Arc<[String]>,
    now: u64,
) -> Result<(String, KeyRecord), Answer> {
    let mut id = [0u8; 8];
    let key = getrandom::getrandom(&mut id)
        .and_then(|()| generate_key())
        .map_err(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not generate a key (no randomness)",
            )
        })?;
    let record = KeyRecord {
        id: Arc::from(format!("key_{}", to_hex(&id))),
        consumer,
        label,
        digest: KeyDigest::of(key.as_bytes()),
        created: now,
        expires,
        revoked: None,
        models,
        last_used: None,
    };
    Ok((key, record))
}

/// What anyone with the admin token may see of a key: never the key, never its digest.
pub fn metadata(r: &KeyRecord, now: u64) -> Value {
    let status = if r.revoked.is_some() {
        "revoked"
    } else if !r.valid_at(now) {
        "expired"
    } else {
        "active"
    };
    json!({
        "id": &*r.id,
        "consumer": &*r.consumer,
        "label": r.label,
        "created": utc_time(r.created),
        "expires": r.expires.map(utc_time),
        "last_used": r.last_used.map(utc_time),
        "revoked": r.revoked.map(utc_time),
        "models": &*r.models,
        "status": status,
    })
}

fn with_key(r: &KeyRecord, key: &str, now: u64) -> Value {
    let mut v = metadata(r, now);
    v["key"] = json!(key);
    v
}

fn error(status: StatusCode, message: impl Into<String>) -> Answer {
    (status, json!({ "error": message.into() }))
}

fn no_key(id: &str) -> Answer {
    error(StatusCode::NOT_FOUND, format!("no key `{id}`"))
}

fn failed(e: KeysError, id: &str) -> Answer {
    match e {
        KeysError::NotFound => no_key(id),
        KeysError::Conflict(why) => error(StatusCode::CONFLICT, why),
        KeysError::Unavailable(why) => {
            log::warn!("issued keys: the key store failed: {why}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the key store is unavailable; see the gateway's log".to_string(),
            )
        }
    }
}

#[cfg(test)]
#[path = "admin_keys_tests.rs"]
mod tests;
