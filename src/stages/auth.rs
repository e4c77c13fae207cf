//! Authentication: the presented API key → a consumer profile.
//!
//! Input: request headers. The key comes from `X-API-Key` or `Authorization: Bearer`; a missing,
//! empty, oversized, non-printable, duplicated or conflicting key is refused exactly like an
//! unknown one (one 401 message for all). Keys are hashed with SHA-256 and looked up by digest;
//! the stored digest is then compared in constant time. A consumer may have several keys (a
//! rotation); a key past its expiry is refused like an unknown one, from the second it expires.
//! Keys issued through the admin API (`state::keys`) are looked up after the configured ones and
//! decided by [`issued_consumer`]: revoked, expired or orphaned (their consumer no longer
//! configured) keys are refused the same way. Every authenticated request gets a key id: an
//! issued key's id, a configured key's label, or `sha256:` and the start of its digest.
//! The key itself is never logged or kept.

use crate::config::{Consumer, ConsumerKey};
use crate::digest::KeyDigest;
use crate::state::keys::KeyRecord;
use http::HeaderMap;
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Longest key accepted; real keys are ~40–100 bytes.
const MAX_KEY_BYTES: usize = 512;

/// The consumers of one configuration, indexed by key digest and by id, and those known by
/// their client certificate alone. Compact, since a configuration may hold 100,000 consumers: a
/// key's entry is its digest, its consumer and the key's place among the consumer's keys (48
/// bytes), and the id index borrows each id from its consumer.
#[derive(Debug, Default)]
pub struct KeyIndex {
    by_digest: HashMap<KeyDigest, Configured>,
    by_id: HashSet<ById>,
    by_cert: Vec<Arc<Consumer>>,
}

/// A key the configuration lists.
#[derive(Debug)]
struct Configured {
    consumer: Arc<Consumer>,
    /// The key's index in `consumer.keys`.
    key: usize,
}

/// A consumer in the id index, found by its id (`&str`) without a second copy of it.
#[derive(Debug)]
struct ById(Arc<Consumer>);

impl Borrow<str> for ById {
    fn borrow(&self) -> &str {
        &self.0.id
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById {}

impl Hash for ById {
    // As `str` hashes, so a lookup by `&str` finds it.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id.as_str().hash(state);
    }
}

/// Which key a request presented, for the spend ledger: an issued key's id or a configured key's
/// label (shared with the key: naming it allocates nothing), or for a configured key without a
/// label `sha256:` and the first 12 hex digits of its digest (enough to tell keys apart, too few
/// to matter to an attacker), held inline rather than as one string per configured key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyId {
    Named(Arc<str>),
    Digest([u8; 12]),
}

impl KeyId {
    /// A configured key's id.
    pub fn of(key: &ConsumerKey) -> KeyId {
        match &key.label {
            Some(l) => KeyId::Named(Arc::clone(l)),
            None => KeyId::Digest(key.digest.hex_prefix()),
        }
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyId::Named(n) => f.write_str(n),
            KeyId::Digest(hex) => {
                f.write_str("sha256:")?;
                f.write_str(std::str::from_utf8(hex).map_err(|_| fmt::Error)?)
            }
        }
    }
}

/// A verified client certificate: its subject and URI SANs.
#[derive(Debug, Clone, Copy)]
pub struct Certificate<'a> {
    pub subject: &'a str,
    pub uris: &'a [String],
}

impl KeyIndex {
    pub fn new(consumers: &[Arc<Consumer>]) -> Self {
        let keys = consumers.iter().map(|c| c.keys.len()).sum();
        let mut by_digest = HashMap::with_capacity(keys);
        let mut by_id = HashSet::with_capacity(consumers.len());
        for c in consumers {
            for (key, k) in c.keys.iter().enumerate() {
                let consumer = Arc::clone(c);
                by_digest.insert(k.digest, Configured { consumer, key });
            }
            // A later consumer of the same id replaces an earlier one (a valid configuration has
            // none).
            by_id.replace(ById(Arc::clone(c)));
        }
        KeyIndex {
            by_digest,
            by_id,
            by_cert: consumers
                .iter()
                .filter(|c| c.keys.is_empty())
                .cloned()
                .collect(),
        }
    }

    /// The consumer owning `key`, if any and the key has not expired.
    pub fn authenticate(&self, key: &[u8]) -> Option<&Arc<Consumer>> {
        self.authenticate_at(key, crate::state::unix_now())
    }

    /// The consumer owning `key` at `now` (Unix seconds).
    pub fn authenticate_at(&self, key: &[u8], now: u64) -> Option<&Arc<Consumer>> {
        self.find(&KeyDigest::of(key), now).map(|(_, c)| c)
    }

    /// The configured key with this digest, valid at `now`: its id and its consumer.
    pub fn find(&self, digest: &KeyDigest, now: u64) -> Option<(KeyId, &Arc<Consumer>)> {
        // The map lookup runs over digests, which tell an attacker nothing about the key; the
        // final comparison is constant-time anyway so no code path compares secrets early-exit.
        let found = self.by_digest.get(digest)?;
        let key = found.consumer.keys.get(found.key)?;
        (key.digest.ct_eq(digest) && key.valid_at(now)).then(|| (KeyId::of(key), &found.consumer))
    }

    /// The configured consumer with this id.
    pub fn consumer(&self, id: &str) -> Option<&Arc<Consumer>> {
        self.by_id.get(id).map(|c| &c.0)
    }

    /// The consumer without a key whose bound certificate `cert` is, if any.
    pub fn by_certificate(&self, cert: Certificate<'_>) -> Option<&Arc<Consumer>> {
        self.by_cert.iter().find(|c| {
            c.client_cert
                .as_ref()
                .is_some_and(|b| b.matches(cert.subject, cert.uris))
        })
    }
}

/// The consumer an issued key (`state::keys`) authenticates as at `now`: the digest matches
/// (constant time), the key is neither revoked nor expired, and its consumer is still configured
/// — a key whose consumer left the configuration is refused, and the refusal logged.
pub fn issued_consumer<'a>(
    key: &KeyRecord,
    digest: &KeyDigest,
    now: u64,
    index: &'a KeyIndex,
) -> Option<&'a Arc<Consumer>> {
    if !key.digest.ct_eq(digest) || !key.valid_at(now) {
        return None;
    }
    let consumer = index.consumer(&key.consumer);
    if consumer.is_none() {
        log::warn!(
            target: "tollgate::audit",
            "issued key {} belongs to consumer {}, which is no longer configured: refused",
            key.id,
            key.consumer
        );
    }
    consumer
}

/// The API key presented in `headers`, or `None` when there is no single well-formed key.
pub fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    let from_x_api_key = single(headers, "x-api-key")?;
    let from_bearer = match single(headers, http::header::AUTHORIZATION.as_str())? {
        None => None,
        Some(v) => Some(bearer_token(v)?),
    };
    let key = match (from_x_api_key, from_bearer) {
        (Some(a), Some(b)) if a == b => a,
        (Some(_), Some(_)) => return None,
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return None,
    };
    let well_formed =
        !key.is_empty() && key.len() <= MAX_KEY_BYTES && key.iter().all(|b| b.is_ascii_graphic());
    well_formed.then_some(key)
}

/// `Ok(None)` when the header is absent, `None` (outer) when it appears more than once.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<Option<&'a [u8]>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return None;
    }
    Some(first.map(|v| v.as_bytes().trim_ascii()))
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
pub(crate) fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    use http::HeaderValue;

    fn consumer(id: &str, key: &str) -> Arc<Consumer> {
        Arc::new(Consumer::basic(id, "t", key.as_bytes()))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn known_key_finds_its_consumer_and_unknown_does_not() {
        let idx = KeyIndex::new(&[consumer("a", "key-a"), consumer("b", "key-b")]);
        assert_eq!(idx.authenticate(b"key-b").unwrap().id, "b");
        assert!(idx.authenticate(b"key-c").is_none());
        assert!(idx.authenticate(b"").is_none());
    }

    #[test]
    fn every_key_of_a_consumer_works_until_it_expires() {
        use crate::config::ConsumerKey;
        let mut c = Consumer::basic("a", "t", b"old-key");
        c.keys.push(ConsumerKey {
            digest: KeyDigest::of(b"new-key"),
            expires: Some(1_000),
            label: Some("rotation".into()),
        });
        let idx = KeyIndex::new(&[Arc::new(c)]);
        for key in [&b"old-key"[..], b"new-key"] {
            assert_eq!(idx.authenticate_at(key, 999).unwrap().id, "a");
        }
        assert!(
            idx.authenticate_at(b"new-key", 1_000).is_none(),
            "refused from the second it expires"
        );
        assert_eq!(idx.authenticate_at(b"old-key", 1_000).unwrap().id, "a");
    }

    #[test]
    fn a_configured_key_is_named_by_its_label_or_its_digest_prefix() {
        let mut c = Consumer::basic("a", "t", b"plain-key");
        c.keys.push(ConsumerKey {
            digest: KeyDigest::of(b"labelled"),
            expires: None,
            label: Some("ci 2026".into()),
        });
        let idx = KeyIndex::new(&[Arc::new(c)]);
        let (id, _) = idx.find(&KeyDigest::of(b"labelled"), 0).unwrap();
        assert_eq!(id.to_string(), "ci 2026");
        let (id, _) = idx.find(&KeyDigest::of(b"plain-key"), 0).unwrap();
        let hex = KeyDigest::of(b"plain-key").to_hex();
        assert_eq!(id.to_string(), format!("sha256:{}", &hex[..12]));
    }

    #[test]
    fn an_issued_key_authenticates_only_while_valid_and_its_consumer_is_configured() {
        let idx = KeyIndex::new(&[consumer("a", "key-a")]);
        let digest = KeyDigest::of(b"tg-issued");
        let mut key = KeyRecord {
            id: "key_1".into(),
            consumer: "a".into(),
            label: None,
            digest,
            created: 10,
            expires: Some(100),
            revoked: None,
            models: Arc::from(Vec::new()),
            last_used: None,
        };
        assert_eq!(issued_consumer(&key, &digest, 99, &idx).unwrap().id, "a");
        assert!(
            issued_consumer(&key, &digest, 100, &idx).is_none(),
            "expired"
        );
        assert!(
            issued_consumer(&key, &KeyDigest::of(b"other"), 50, &idx).is_none(),
            "another digest"
        );
        key.revoked = Some(60);
        assert!(
            issued_consumer(&key, &digest, 50, &idx).is_none(),
            "revoked"
        );
        key.revoked = None;
        key.consumer = "gone".into();
        assert!(
            issued_consumer(&key, &digest, 50, &idx).is_none(),
            "its consumer left the configuration"
        );
    }

    #[test]
    fn key_comes_from_x_api_key_or_bearer() {
        assert_eq!(
            presented_key(&headers(&[("x-api-key", "k1")])),
            Some(&b"k1"[..])
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer k2")])),
            Some(&b"k2"[..])
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "bearer   k3 ")])),
            Some(&b"k3"[..])
        );
    }

    #[test]
    fn malformed_or_ambiguous_keys_are_refused() {
        for h in [
            headers(&[]),
            headers(&[("x-api-key", "")]),
            headers(&[("authorization", "Basic abc")]),
            headers(&[("authorization", "Bearer")]),
            headers(&[("authorization", "Bearer ")]),
            headers(&[("x-api-key", "a"), ("x-api-key", "b")]),
            headers(&[("x-api-key", "a"), ("authorization", "Bearer b")]),
            headers(&[("x-api-key", "has space")]),
            headers(&[("x-api-key", &"k".repeat(MAX_KEY_BYTES + 1))]),
        ] {
            assert_eq!(presented_key(&h), None, "{h:?}");
        }
    }

    #[test]
    fn the_same_key_in_both_headers_is_fine() {
        let h = headers(&[("x-api-key", "k"), ("authorization", "Bearer k")]);
        assert_eq!(presented_key(&h), Some(&b"k"[..]));
    }
}
