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

/// Sets top-level members of the JSON object in `raw` (which the parser accepted): each
/// `(name, value)` pair (`value` is JSON text) replaces every member of that name the client sent,
/// null or not, however its name is escaped, so the forwarded body carries exactly one member per
/// name and it is the gateway's. When the client sent none of them, the members are added at the
/// start of the object and every other byte is left as it was; otherwise the members are
/// re-joined with their bytes kept, only the whitespace between them lost.
pub fn set_members(raw: &Bytes, members: &[(&str, String)]) -> Bytes {
    edit_members(raw, members, &[])
}

/// As [`set_members`], also removing every member named in `remove`.
pub fn edit_members(raw: &Bytes, members: &[(&str, String)], remove: &[&str]) -> Bytes {
    if members.is_empty() && remove.is_empty() {
        return raw.clone();
    }
    let ours: Vec<String> = members
        .iter()
        .map(|(name, value)| format!("{}:{value}", Value::from(*name)))
        .collect();
    let Some(object) = scan_object(raw) else {
        // Unreachable for a body the parser accepted; forward it as it came.
        return raw.clone();
    };
    let replaced = |m: &MemberSpan| {
        members.iter().any(|(name, _)| m.name == *name) || remove.contains(&m.name.as_str())
    };
    let mut out = Vec::with_capacity(raw.len() + ours.iter().map(|m| m.len() + 1).sum::<usize>());
    out.extend_from_slice(&raw[..=object.open]);
    out.extend_from_slice(ours.join(",").as_bytes());
    if !object.members.iter().any(replaced) {
        if !object.members.is_empty() && !ours.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(&raw[object.open + 1..]);
        return Bytes::from(out);
    }
    let mut first = ours.is_empty();
    for m in object.members.iter().filter(|m| !replaced(m)) {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&raw[m.start..m.end]);
    }
    out.extend_from_slice(&raw[object.close..]);
    Bytes::from(out)
}

/// The JSON text of the top-level member `name` of the object in `raw` (the last one, as
/// backends read duplicates), if it has one.
pub fn member<'a>(raw: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let object = scan_object(raw)?;
    let m = object.members.iter().rev().find(|m| m.name == name)?;
    Some(&raw[m.value..m.end])
}

/// Where the top-level object and its members are in a body.
struct ObjectSpans {
    /// Offsets of the opening and the closing brace.
    open: usize,
    close: usize,
    members: Vec<MemberSpan>,
}

struct MemberSpan {
    /// The name, decoded (escapes resolved).
    name: String,
    /// From the name's opening quote to the end of the value.
    start: usize,
    /// Where the value starts.
    value: usize,
    end: usize,
}

/// Finds the members of the top-level object of `raw`; `None` when it is not an object.
fn scan_object(raw: &[u8]) -> Option<ObjectSpans> {
    let ws = |mut i: usize| {
        while raw.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        i
    };
    let open = ws(0);
    if raw.get(open) != Some(&b'{') {
        return None;
    }
    let mut members = Vec::new();
    let mut i = ws(open + 1);
    if raw.get(i) == Some(&b'}') {
        return Some(ObjectSpans {
            open,
            close: i,
            members,
        });
    }
    loop {
        let start = i;
        let name_end = string_end(raw, start)?;
        let name: String = serde_json::from_slice(&raw[start..name_end]).ok()?;
        i = ws(name_end);
        if raw.get(i) != Some(&b':') {
            return None;
        }
        let value = ws(i + 1);
        let end = value_end(raw, value)?;
        members.push(MemberSpan {
            name,
            start,
            value,
            end,
        });
        i = ws(end);
        match raw.get(i) {
            Some(b',') => i = ws(i + 1),
            Some(b'}') => {
                return Some(ObjectSpans {
                    open,
                    close: i,
                    members,
                })
            }
            _ => return None,
        }
    }
}

/// The offset just past the string starting at `start` (its opening quote).
fn string_end(raw: &[u8], start: usize) -> Option<usize> {
    if raw.get(start) != Some(&b'"') {
        return None;
    }
    let mut escaped = false;
    for (i, &b) in raw.iter().enumerate().skip(start + 1) {
        match (escaped, b) {
            (true, _) => escaped = false,
            (false, b'\\') => escaped = true,
            (false, b'"') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// The offset just past the value starting at `start`: a string, or everything up to the `,` or
/// `}` that ends it at its own depth (trailing whitespace excluded).
fn value_end(raw: &[u8], start: usize) -> Option<usize> {
    if raw.get(start) == Some(&b'"') {
        return string_end(raw, start);
    }
    let mut depth = 0usize;
    let mut i = start;
    while i < raw.len() {
        match raw[i] {
            b'"' => {
                i = string_end(raw, i)?;
                continue;
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' if depth > 0 => depth -= 1,
            b',' | b'}' if depth == 0 => break,
            _ => {}
        }
        i += 1;
    }
    let mut end = i;
    while end > start && raw[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    (end > start).then_some(end)
}

/// A JSON string as a typed view reads it: borrowed from the document when it has no escapes
/// (no allocation), decoded into its own buffer when it has. (serde's own `Cow<str>` borrows only
/// as a bare field, not inside an `Option`.)
#[derive(Debug)]
pub struct Str<'a>(pub std::borrow::Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(std::borrow::Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Str<'de>, E> {
                Ok(Str(std::borrow::Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Whether `pred` holds for some string value of the JSON document `body` (escapes resolved;
/// object keys are names, not values), reading the document once without building it: no
/// allocation unless a string has escapes. `None` when `body` is not JSON.
pub fn any_string_value(body: &[u8], mut pred: impl FnMut(&str) -> bool) -> Option<bool> {
    let mut found = false;
    let mut de = serde_json::Deserializer::from_slice(body);
    serde::de::DeserializeSeed::deserialize(StringValues(&mut pred, &mut found), &mut de).ok()?;
    de.end().ok()?;
    Some(found)
}

/// Visits every value of a document, calling the predicate on strings until it holds once.
struct StringValues<'a, F>(&'a mut F, &'a mut bool);

impl<'de, F: FnMut(&str) -> bool> serde::de::DeserializeSeed<'de> for StringValues<'_, F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(&str) -> bool> serde::de::Visitor<'de> for StringValues<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        if !*self.1 && (self.0)(s) {
            *self.1 = true;
        }
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(StringValues(&mut *self.0, &mut *self.1))?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            map.next_value_seed(StringValues(&mut *self.0, &mut *self.1))?;
        }
        Ok(())
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

/// Writes `v` with its object keys in order and no insignificant whitespace; keys and scalars
/// are written straight into `out` (serde_json's own escaping), nothing is allocated but `out`.
fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            out.push(b'{');
            // serde_json's map keeps its keys in order, unless a crate in the build turns on its
            // `preserve_order`: only then are they sorted here.
            if m.keys().is_sorted() {
                for (i, (k, val)) in m.iter().enumerate() {
                    write_member(i, k, val, out);
                }
            } else {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                for (i, k) in keys.into_iter().enumerate() {
                    if let Some(val) = m.get(k) {
                        write_member(i, k, val, out);
                    }
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
        // Writing to a `Vec` cannot fail.
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

fn write_member(i: usize, key: &str, value: &Value, out: &mut Vec<u8>) {
    if i > 0 {
        out.push(b',');
    }
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
    write_canonical(value, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_is_borrowed_unless_it_has_escapes() {
        #[derive(serde::Deserialize)]
        struct T<'a> {
            #[serde(borrow)]
            a: Option<Str<'a>>,
            #[serde(borrow)]
            b: Option<Str<'a>>,
        }
        let t: T = serde_json::from_str(r#"{"a":"plain","b":"tab\there"}"#).unwrap();
        let (a, b) = (t.a.unwrap(), t.b.unwrap());
        assert!(matches!(a.0, std::borrow::Cow::Borrowed("plain")));
        assert!(matches!(&b.0, std::borrow::Cow::Owned(s) if s == "tab\there"));
        assert!(serde_json::from_str::<T>(r#"{"a":1}"#).is_err());
    }

    #[test]
    fn every_string_value_is_seen_and_names_are_not() {
        let body = br#"{"a":"x","list":[1,true,null,{"b":"caf\u00e9"}],"name-only":2.5}"#;
        let mut seen = Vec::new();
        let found = any_string_value(body, |s| {
            seen.push(s.to_string());
            false
        });
        assert_eq!(found, Some(false));
        assert_eq!(seen, ["x", "café"]);
        assert_eq!(any_string_value(body, |s| s == "café"), Some(true));
        assert_eq!(any_string_value(body, |s| s == "name-only"), Some(false));
        assert_eq!(any_string_value(b"{\"a\":", |_| true), None);
        assert_eq!(any_string_value(b"\"x\" trailing", |_| true), None);
    }

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

    /// The key the cache has always used: each key and scalar written by `Value`'s `Display`.
    #[test]
    fn canonical_bytes_are_unchanged_from_writing_each_key_and_scalar_as_a_value() {
        fn by_value(v: &Value, out: &mut Vec<u8>) {
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
                        by_value(&m[k], out);
                    }
                    out.push(b'}');
                }
                Value::Array(a) => {
                    out.push(b'[');
                    for (i, x) in a.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        by_value(x, out);
                    }
                    out.push(b']');
                }
                other => out.extend_from_slice(other.to_string().as_bytes()),
            }
        }
        for body in [
            r#"{"z":1,"a":[1.5,-2,1e300,0.1,true,null],"m":{"é":"\u00e9\n\"q\"\\","B":"\ud83d\ude00","":{}}}"#,
            r#"[{"b":[],"a":"\u0001\u001f<\/>"},18446744073709551615,-9223372036854775808]"#,
            r#""just a string""#,
            r#"{"max_tokens":5,"messages":[{"role":"user","content":"x"}],"stream":false}"#,
        ] {
            let v: Value = serde_json::from_str(body).unwrap();
            let mut expected = Vec::new();
            by_value(&v, &mut expected);
            assert_eq!(canonical(body.as_bytes(), None), Some(expected), "{body}");
        }
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

    fn set(raw: &str, members: &[(&str, &str)]) -> String {
        let members: Vec<(&str, String)> =
            members.iter().map(|(n, v)| (*n, v.to_string())).collect();
        String::from_utf8(set_members(&Bytes::from(raw.to_string()), &members).to_vec()).unwrap()
    }

    #[test]
    fn a_member_the_client_did_not_send_is_added_without_touching_other_bytes() {
        assert_eq!(
            set(" {\"a\" : [1, 2],\n \"b\":\"x\"}", &[("max_tokens", "5")]),
            " {\"max_tokens\":5,\"a\" : [1, 2],\n \"b\":\"x\"}"
        );
        assert_eq!(set("{ }", &[("m", "1")]), "{\"m\":1 }");
    }

    #[test]
    fn the_gateway_member_replaces_the_clients_null_or_not_however_escaped() {
        for body in [
            r#"{"model":"m","max_tokens":null,"messages":[]}"#,
            r#"{"max_tokens":99,"model":"m","messages":[]}"#,
            r#"{"model":"m","messages":[],"max\u005ftokens":null}"#,
        ] {
            let out = set(body, &[("max_tokens", "5")]);
            let v: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["max_tokens"], 5, "{out}");
            assert_eq!(
                out.matches("tokens").count(),
                1,
                "one member per name: {out}"
            );
            assert_eq!(v["model"], "m");
            assert_eq!(v["messages"], serde_json::json!([]));
        }
    }

    #[test]
    fn values_with_commas_braces_and_quotes_are_kept_whole() {
        let body = r#"{"a":{"x":[1,{"y":"},\"{"}]},"model":"old","z":"a,b}"}"#;
        let out = set(body, &[("model", "\"new\"")]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["a"]["x"][1]["y"], "},\"{");
        assert_eq!(v["z"], "a,b}");
        assert_eq!(v["model"], "new");
        assert_eq!(
            member(out.as_bytes(), "a"),
            Some(&br#"{"x":[1,{"y":"},\"{"}]}"#[..])
        );
        assert_eq!(member(out.as_bytes(), "nothing"), None);
    }

    #[test]
    fn members_can_be_removed_too() {
        let out = edit_members(
            &Bytes::from_static(br#"{"max_tokens":null,"a":1,"max_completion_tokens":null}"#),
            &[("max_completion_tokens", "7".into())],
            &["max_tokens"],
        );
        assert_eq!(&out[..], br#"{"max_completion_tokens":7,"a":1}"#);
        let only = edit_members(&Bytes::from_static(br#"{"x":null}"#), &[], &["x"]);
        assert_eq!(&only[..], b"{}");
    }
}
