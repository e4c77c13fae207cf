//! The issued-key index and its embedded store, without Redis (see `tests/keys.rs` for that).

use super::*;

fn record(id: &str, key: &[u8]) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        consumer: "c".into(),
        label: None,
        digest: KeyDigest::of(key),
        created: 100,
        expires: None,
        revoked: None,
        models: Arc::from(Vec::new()),
        last_used: None,
    }
}

#[tokio::test]
async fn a_created_key_is_found_by_its_digest_and_nothing_else_is() {
    let keys = IssuedKeys::default();
    keys.create(record("key_a", b"tg-a")).await.unwrap();
    let e = keys.find(&KeyDigest::of(b"tg-a")).await.unwrap().unwrap();
    assert_eq!(&*e.record.id, "key_a");
    assert!(keys.find(&KeyDigest::of(b"tg-b")).await.unwrap().is_none());
}

#[tokio::test]
async fn a_revoked_key_stays_indexed_but_is_no_longer_valid() {
    let keys = IssuedKeys::default();
    keys.create(record("key_a", b"tg-a")).await.unwrap();
    let r = keys.revoke("key_a", 150).await.unwrap();
    assert_eq!(r.revoked, Some(150));
    let again = keys.revoke("key_a", 160).await.unwrap();
    assert_eq!(again.revoked, Some(150), "the first revocation stands");
    let e = keys.find(&KeyDigest::of(b"tg-a")).await.unwrap().unwrap();
    assert!(!e.record.valid_at(151));
    assert_eq!(keys.revoke("key_x", 1).await, Err(KeysError::NotFound));
}

#[test]
fn a_key_works_until_the_second_it_expires() {
    let mut r = record("key_a", b"tg-a");
    r.expires = Some(200);
    assert!(r.valid_at(199));
    assert!(!r.valid_at(200));
}

#[test]
fn a_key_allowlist_narrows_and_default_stays_allowed() {
    let mut r = record("key_a", b"tg-a");
    assert!(r.allows("gpt-4"), "empty: the consumer's allowlist decides");
    r.models = Arc::from(vec!["gpt-4o".to_string()]);
    assert!(r.allows("gpt-4o"));
    assert!(!r.allows("gpt-4"));
    assert!(r.allows("default"));
}

#[tokio::test]
async fn rotation_stores_both_keys_and_the_old_one_expires_when_planned() {
    let keys = IssuedKeys::default();
    keys.create(record("key_a", b"tg-a")).await.unwrap();
    let old = keys
        .rotate("key_a", |old| {
            let mut new = record("key_b", b"tg-b");
            new.consumer = old.consumer.clone();
            Ok((500, new))
        })
        .await
        .unwrap();
    assert_eq!(old.expires, Some(500));
    let a = keys.find(&KeyDigest::of(b"tg-a")).await.unwrap().unwrap();
    assert!(a.record.valid_at(499) && !a.record.valid_at(500));
    assert!(keys.find(&KeyDigest::of(b"tg-b")).await.unwrap().is_some());
    let refused = keys
        .rotate("key_a", |_| Err(KeysError::Conflict("no".into())))
        .await;
    assert_eq!(refused, Err(KeysError::Conflict("no".into())));
}

#[tokio::test]
async fn use_is_kept_in_memory_carried_across_a_reload_and_flushed_once() {
    let keys = IssuedKeys::default();
    keys.create(record("key_a", b"tg-a")).await.unwrap();
    let e = keys.find(&KeyDigest::of(b"tg-a")).await.unwrap().unwrap();
    e.touch(300);
    e.touch(250);
    assert_eq!(e.last_used(), Some(300), "the latest use wins");
    // A reload from the store (which has not seen the use yet) keeps it.
    assert!(keys.replace_if(None, vec![record("key_a", b"tg-a")]));
    let listed = keys.list().await.unwrap();
    assert_eq!(listed[0].last_used, Some(300));
    assert_eq!(keys.flush_used().await.unwrap(), 1);
    assert_eq!(keys.flush_used().await.unwrap(), 0, "nothing new to write");
}

#[test]
fn what_was_read_before_a_change_is_not_applied_after_it() {
    let keys = IssuedKeys::default();
    let seen = keys.epoch();
    keys.put(record("key_a", b"tg-a"));
    let mut stale = record("key_a", b"tg-a");
    stale.label = Some("stale".into());
    assert!(!keys.put_if(Some(seen), stale.clone()));
    assert!(!keys.replace_if(Some(seen), vec![stale]));
    let now = keys.epoch();
    let mut revoked = record("key_a", b"tg-a");
    revoked.revoked = Some(1);
    keys.put(revoked);
    assert!(
        !keys.put_if(Some(now), record("key_a", b"tg-a")),
        "a revocation stands"
    );
    let e = keys.index.load().by_id.get("key_a").cloned().unwrap();
    assert_eq!(e.record.revoked, Some(1));
}

#[test]
fn a_shared_index_goes_stale_when_not_refreshed() {
    let keys = IssuedKeys::default();
    assert!(keys.stale(0), "never synced");
    keys.synced_ms.store(1_001, Ordering::Release);
    assert!(!keys.stale(1_000 + STALE_AFTER.as_millis() as u64));
    assert!(keys.stale(1_001 + STALE_AFTER.as_millis() as u64));
}

#[tokio::test]
async fn keys_in_the_embedded_store_survive_reopening() {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-keys-{}-{}",
        std::process::id(),
        crate::digest::random_id_hex()
    ));
    let path = dir.join("t.db");
    let open =
        || Arc::new(Store::open(&path, super::super::store::Durability::Process, false).unwrap());
    let keys = IssuedKeys::embedded(open());
    let mut r = record("key_a", b"tg-a");
    r.models = Arc::from(vec!["gpt-4o".to_string()]);
    r.label = Some("ci".into());
    keys.create(r.clone()).await.unwrap();
    keys.create(record("key_b", b"tg-b")).await.unwrap();
    keys.revoke("key_b", 120).await.unwrap();
    keys.find(&KeyDigest::of(b"tg-a"))
        .await
        .unwrap()
        .unwrap()
        .touch(130);
    keys.flush_used().await.unwrap();
    let mut c = record("key_c", b"tg-c");
    c.created = 140;
    keys.rotate("key_a", |_| Ok((500, c.clone())))
        .await
        .unwrap();
    drop(keys);
    let again = IssuedKeys::embedded(open());
    assert_eq!(again.load_now().unwrap(), 3);
    let all = again.list().await.unwrap();
    assert_eq!(
        all[0],
        KeyRecord {
            last_used: Some(130),
            expires: Some(500),
            ..r
        }
    );
    assert_eq!(all[1].revoked, Some(120));
    assert_eq!(all[2], c);
    assert!(again.find(&KeyDigest::of(b"tg-c")).await.unwrap().is_some());
    let _ = std::fs::remove_dir_all(dir);
}
