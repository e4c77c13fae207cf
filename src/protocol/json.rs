//! JSON helpers every dialect shares: the depth limit checked before parsing, serde's error made
//! readable, and the two ways the gateway edits a body it forwards (members inserted in place,
//! leaving every other byte alone; or the body re-serialised with members set).

use crate::error::GatewayError;
use bytes::Bytes;
use serde_json::Value;

/// Deepest JSON nesting accepted. Parts of a body the gateway does not read are still forwarded,
/// so a depth bomb must be refused here, not left to a backend's parser.
pub const MAX_JSON_DEPTH: usize = 64;

/// Refuses an empty body or one nested deeper than [`MAX_JSON_DEPTH`], before serde sees it.
pub fn precheck(body: &[u8]) -> Result<(), GatewayError> {
    if body.is_empty() {
        return Err(GatewayError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    if nested_deeper_than(body, MAX_JSON_DEPTH) {
        return Err(GatewayError::BadRequest(format!(
            "the JSON is nested deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    Ok(())
}

/// Whether `[`/`{` nest deeper than `limit` anywhere outside strings (one pass, no allocation).
pub fn nested_deeper_than(body: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A serde error as the client reads it: the field and the expected type, without positions.
pub fn json_error(e: serde_json::Error) -> GatewayError {
    let msg = e.to_string();
    let msg = match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    GatewayError::BadRequest(msg)
}

/// Adds JSON members (`"name":value` texts) at the start of the object in `raw`, leaving every
/// other byte as it was.
pub fn with_members(raw: &Bytes, members: &[String]) -> Bytes {
    if members.is_empty() {
        return raw.clone();
    }
    let open = raw.iter().position(|b| *b == b'{').unwrap_or(0);
    let insert = format!("{},", members.join(","));
    let mut out = Vec::with_capacity(raw.len() + insert.len());
    out.extend_from_slice(&raw[..=open]);
    out.extend_from_slice(insert.as_bytes());
    out.extend_from_slice(&raw[open + 1..]);
    Bytes::from(out)
}

/// The body re-serialised after `edit` changed its top-level object: done only when a textual
/// insertion cannot do it (a model renamed, a member to amend).
pub fn rewritten(raw: &Bytes, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Bytes {
    match serde_json::from_slice::<Value>(raw) {
        Ok(mut v) => {
            if let Some(obj) = v.as_object_mut() {
                edit(obj);
            }
            Bytes::from(v.to_string())
        }
        // Unreachable: the body was parsed before; forward it as it came.
        Err(_) => raw.clone(),
    }
}

/// The canonical bytes of a JSON body (object keys sorted, no insignificant whitespace), with
/// one member set on the top-level object first (the output cap the gateway adds), so the same
/// request written differently has one form, and that form matches the body actually sent.
pub fn canonical(body: &[u8], member: Option<(&str, Value)>) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    if let (Some((name, value)), Some(obj)) = (member, v.as_object_mut()) {
        obj.insert(name.to_string(), value);
    }
    let mut out = Vec::with_capacity(body.len());
    write_canonical(&v, &mut out);
    Some(out)
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
                out.push(b':');
                if let Some(val) = m.get(k) {
                    write_canonical(val, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_ignores_key_order_and_whitespace() {
        let a = canonical(
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":0}"#,
            None,
        );
        let b = canonical(
            br#"{ "temperature": 0, "messages": [ {"content":"x", "role":"user"} ], "model": "m" }"#,
            None,
        );
        assert_eq!(a, b);
        let c = canonical(
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":1}"#,
            None,
        );
        assert_ne!(a, c, "generation parameters are part of the key");
    }

    #[test]
    fn nesting_is_measured_outside_strings_only() {
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(nested_deeper_than(deep.as_bytes(), 64));
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(!nested_deeper_than(ok.as_bytes(), 64));
        let quoted = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(100), "{".repeat(100));
        assert!(!nested_deeper_than(quoted.as_bytes(), 64));
    }
}
