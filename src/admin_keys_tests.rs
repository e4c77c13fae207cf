//! The keys admin API over an in-memory key store and the demo configuration.

use super::*;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml");
const NOW: u64 = 1_800_000_000;

fn demo() -> Runtime {
    crate::runtime::load_file(std::path::Path::new(DEMO)).unwrap()
}

async fn call(keys: &IssuedKeys, method: &str, path: &str, body: &str) -> Answer {
    let rt = demo();
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    answer(keys, &rt, method, path, query, body.as_bytes(), NOW).await
}

#[tokio::test]
async fn a_created_key_is_shown_once_and_authenticates_as_its_consumer() {
    let keys = IssuedKeys::default();
    let (status, v) = call(
        &keys,
        "POST",
        "/keys",
        r#"{"consumer":"team-support","label":"bot","models":["gpt-4"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let key = v["key"].as_str().unwrap();
    assert!(key.starts_with("tg-") && key.len() == 67, "{key}");
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("key_") && id.len() == 20, "{id}");
    assert_eq!(v["consumer"], "team-support");
    assert_eq!(v["models"], json!(["gpt-4"]));
    assert_eq!(v["expires"], Value::Null);
    assert_eq!(v["created"], utc_time(NOW));
    let found = keys.find(&KeyDigest::of(key.as_bytes())).await.unwrap();
    assert_eq!(&*found.unwrap().record.id, id);
    // The list and the single view never show the key or its digest.
    let digest = KeyDigest::of(key.as_bytes()).to_hex();
    for path in ["/keys".to_string(), format!("/keys/{id}")] {
        let (status, shown) = call(&keys, "GET", &path, "").await;
        assert_eq!(status, StatusCode::OK);
        let text = shown.to_string();
        assert!(text.contains(id), "{text}");
        assert!(!text.contains(key) && !text.contains(&digest), "{text}");
    }
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let keys = IssuedKeys::default();
    let cases = [
        ("", StatusCode::BAD_REQUEST, "JSON body is required"),
        ("{", StatusCode::BAD_REQUEST, "invalid body"),
        (
            r#"{"consumer":"nobody"}"#,
            StatusCode::NOT_FOUND,
            "no consumer `nobody`",
        ),
        (
            r#"{"consumer":"team-support","extra":1}"#,
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            r#"{"consumer":"team-support","models":["gpt-4o"]}"#,
            StatusCode::BAD_REQUEST,
            "may not use model `gpt-4o`",
        ),
        (
            r#"{"consumer":"team-support","expires":"2020-01-01"}"#,
            StatusCode::BAD_REQUEST,
            "not in the future",
        ),
        (
            r#"{"consumer":"team-support","expires":"tomorrow"}"#,
            StatusCode::BAD_REQUEST,
            "not a UTC date",
        ),
        (
            r#"{"consumer":"team-support","label":"a\nb"}"#,
            StatusCode::BAD_REQUEST,
            "control characters",
        ),
    ];
    for (body, want, says) in cases {
        let (status, v) = call(&keys, "POST", "/keys", body).await;
        assert_eq!(status, want, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    assert!(keys.list().await.unwrap().is_empty(), "nothing was created");
    let (status, _) = call(&keys, "PUT", "/keys", "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = call(&keys, "GET", "/keys/key_nothing/revoke", "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    for (method, path) in [
        ("GET", "/keys/key_nothing"),
        ("DELETE", "/keys/key_nothing"),
        ("POST", "/keys/key_nothing/rotate"),
    ] {
        let (status, v) = call(&keys, method, path, "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {v}");
    }
    let (status, _) = call(&keys, "GET", "/keys?team=x", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_list_filters_by_consumer() {
    let keys = IssuedKeys::default();
    for c in ["team-support", "team-intern", "team-support"] {
        let body = format!(r#"{{"consumer":"{c}"}}"#);
        assert_eq!(
            call(&keys, "POST", "/keys", &body).await.0,
            StatusCode::CREATED
        );
    }
    let (_, all) = call(&keys, "GET", "/keys", "").await;
    assert_eq!(all["keys"].as_array().unwrap().len(), 3);
    let (_, some) = call(&keys, "GET", "/keys?consumer=team-support", "").await;
    let some = some["keys"].as_array().unwrap();
    assert_eq!(some.len(), 2);
    assert!(some.iter().all(|k| k["consumer"] == "team-support"));
}

#[tokio::test]
async fn revoking_refuses_the_key_and_rotating_a_revoked_key_conflicts() {
    let keys = IssuedKeys::default();
    let (_, v) = call(&keys, "POST", "/keys", r#"{"consumer":"team-intern"}"#).await;
    let id = v["id"].as_str().unwrap().to_string();
    let (status, v) = call(&keys, "DELETE", &format!("/keys/{id}"), "").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "revoked");
    assert_eq!(v["revoked"], utc_time(NOW));
    let (status, v) = call(&keys, "POST", &format!("/keys/{id}/revoke"), "").await;
    assert_eq!(status, StatusCode::OK, "revoking twice is fine: {v}");
    let (status, v) = call(&keys, "POST", &format!("/keys/{id}/rotate"), "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
}

#[tokio::test]
async fn rotation_keeps_consumer_label_models_and_expiry_and_bounds_the_old_key() {
    let keys = IssuedKeys::default();
    let (_, v) = call(
        &keys,
        "POST",
        "/keys",
        r#"{"consumer":"team-engineering","label":"ci","models":["gpt-4o"],"expires":"2030-01-01"}"#,
    )
    .await;
    let old_id = v["id"].as_str().unwrap().to_string();
    let (status, new) = call(
        &keys,
        "POST",
        &format!("/keys/{old_id}/rotate"),
        r#"{"overlap_seconds": 120}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{new}");
    assert_ne!(new["id"], json!(old_id));
    assert_ne!(new["key"], v["key"]);
    for field in ["consumer", "label", "models", "expires"] {
        assert_eq!(new[field], v[field], "{field}");
    }
    assert_eq!(new["rotated_from"], json!(old_id));
    assert_eq!(new["old_key_expires"], utc_time(NOW + 121));
    let old = keys.get(&old_id).await.unwrap().unwrap();
    assert_eq!(
        old.expires,
        Some(NOW + 121),
        "at least the overlap, rounded up"
    );
    // The default overlap is the configuration's; an absurd one is refused.
    let (status, _) = call(
        &keys,
        "POST",
        &format!("/keys/{}/rotate", new["id"].as_str().unwrap()),
        r#"{"overlap_seconds": 99999999}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[test]
fn keys_paths_are_recognised() {
    assert!(is_keys_path("/keys"));
    assert!(is_keys_path("/keys/key_1/rotate"));
    assert!(!is_keys_path("/keysmith"));
    assert!(!is_keys_path("/costs"));
}
