//! Issued keys in Redis (`state.backend: redis`), shared by every instance.
//!
//! Keys, under the configured prefix `P` (one hash tag, `{@keys}`, so they share a cluster slot;
//! `@` never appears in a consumer id, so no consumer's keys can collide with them):
//! - `P{@keys}:k:<id>` — a hash per key: `consumer`, `digest` (SHA-256 hex), `created`, and when
//!   set `label`, `expires`, `revoked`, `last_used` (Unix seconds), `models` (a JSON array);
//! - `P{@keys}:digests` — a hash, digest hex → id (how a presented key is found);
//! - `P{@keys}:gen` — a counter incremented (in the same `MULTI`) by every change an instance
//!   polls for; `last_used` is written without it, so use never makes the others reload.
//!
//! Every change is one `MULTI … EXEC`; fields are set one by one (`HSETNX` for `revoked`, so the
//! first revocation stands and no change can clear one). Each call is bounded by the store's
//! timeout; the caller decides what a failure means.

use super::KeyRecord;
use crate::digest::KeyDigest;
use crate::state::redis::{RedisStore, Unavailable};
use redis::Script;
use std::collections::HashMap;
use std::sync::Arc;

/// Lua: records each key's last use, never moving it back, for keys that exist. KEYS: the key
/// hashes; ARGV: the times, in the same order.
const USED: &str = r"
for i, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then
    local cur = tonumber(redis.call('HGET', k, 'last_used') or '0')
    if tonumber(ARGV[i]) > cur then redis.call('HSET', k, 'last_used', ARGV[i]) end
  end
end
return 1
";

/// The shared side of the issued keys.
pub struct SharedKeys {
    redis: Arc<RedisStore>,
    /// `state.limits_on_error: open`: the last index keeps serving when Redis cannot answer.
    pub fail_open: bool,
    used: Script,
}

impl SharedKeys {
    pub fn new(redis: Arc<RedisStore>, fail_open: bool) -> SharedKeys {
        SharedKeys {
            redis,
            fail_open,
            used: Script::new(USED),
        }
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}{{@keys}}:{suffix}", self.redis.prefix())
    }

    fn record_key(&self, id: &str) -> String {
        self.key(&format!("k:{id}"))
    }

    /// The change counter (0 before the first change).
    pub async fn generation(&self) -> Result<u64, Unavailable> {
        let k = self.key("gen");
        let g: Option<u64> = self
            .redis
            .call("keys_poll", |mut conn| async move {
                redis::cmd("GET").arg(&k).query_async(&mut conn).await
            })
            .await?;
        Ok(g.unwrap_or(0))
    }

    /// Every key.
    pub async fn load_all(&self) -> Result<Vec<KeyRecord>, Unavailable> {
        let index = self.key("digests");
        let ids: Vec<String> = self
            .redis
            .call("keys_load", |mut conn| async move {
                redis::cmd("HVALS").arg(&index).query_async(&mut conn).await
            })
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HGETALL").arg(self.record_key(id));
        }
        let hashes: Vec<HashMap<String, String>> = self
            .redis
            .call("keys_load", |mut conn| async move {
                pipe.query_async(&mut conn).await
            })
            .await?;
        Ok(ids
            .iter()
            .zip(hashes)
            .filter_map(|(id, h)| parse(id, &h))
            .collect())
    }

    /// One key by id.
    pub async fn get(&self, id: &str) -> Result<Option<KeyRecord>, Unavailable> {
        let k = self.record_key(id);
        let h: HashMap<String, String> = self
            .redis
            .call("keys_get", |mut conn| async move {
                redis::cmd("HGETALL").arg(&k).query_async(&mut conn).await
            })
            .await?;
        Ok(parse(id, &h))
    }

    /// The key with this digest (two round trips: the index, then the key).
    pub async fn find(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, Unavailable> {
        let (index, hex) = (self.key("digests"), digest.to_hex());
        let id: Option<String> = self
            .redis
            .call("keys_find", |mut conn| async move {
                redis::cmd("HGET")
                    .arg(&index)
                    .arg(&hex)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        match id {
            Some(id) => Ok(self.get(&id).await?.filter(|r| r.digest == *digest)),
            None => Ok(None),
        }
    }

    /// Adds `pipe` the commands storing a new key.
    fn add(&self, pipe: &mut redis::Pipeline, r: &KeyRecord) {
        pipe.cmd("HSET").arg(self.record_key(&r.id));
        for (field, value) in fields(r) {
            pipe.arg(field).arg(value);
        }
        pipe.ignore();
        pipe.cmd("HSET")
            .arg(self.key("digests"))
            .arg(r.digest.to_hex())
            .arg(&*r.id)
            .ignore();
    }

    /// Runs `pipe` atomically with the generation bumped.
    async fn change(&self, op: &'static str, mut pipe: redis::Pipeline) -> Result<(), Unavailable> {
        pipe.cmd("INCR").arg(self.key("gen")).ignore();
        self.redis
            .call(op, |mut conn| async move {
                pipe.query_async::<()>(&mut conn).await
            })
            .await
    }

    pub async fn create(&self, r: &KeyRecord) -> Result<(), Unavailable> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.add(&mut pipe, r);
        self.change("keys_write", pipe).await
    }

    pub async fn revoke(&self, id: &str, at: u64) -> Result<(), Unavailable> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSETNX")
            .arg(self.record_key(id))
            .arg("revoked")
            .arg(at)
            .ignore();
        self.change("keys_write", pipe).await
    }

    pub async fn rotate(
        &self,
        old: &str,
        expires: u64,
        new: &KeyRecord,
    ) -> Result<(), Unavailable> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(self.record_key(old))
            .arg("expires")
            .arg(expires)
            .ignore();
        self.add(&mut pipe, new);
        self.change("keys_write", pipe).await
    }

    pub async fn flush_used(&self, used: &[(Arc<str>, u64)]) -> Result<(), Unavailable> {
        let keys: Vec<String> = used.iter().map(|(id, _)| self.record_key(id)).collect();
        self.redis
            .call("keys_used", |mut conn| {
                let mut inv = self.used.prepare_invoke();
                for (k, (_, at)) in keys.iter().zip(used) {
                    inv.key(k).arg(*at);
                }
                async move { inv.invoke_async::<i64>(&mut conn).await }
            })
            .await
            .map(drop)
    }
}

/// A key's hash fields (those set; `last_used` is written by [`SharedKeys::flush_used`]).
fn fields(r: &KeyRecord) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("consumer", r.consumer.to_string()),
        ("digest", r.digest.to_hex()),
        ("created", r.created.to_string()),
        (
            "models",
            serde_json::to_string(&*r.models).unwrap_or_else(|_| "[]".into()),
        ),
    ];
    if let Some(l) = &r.label {
        f.push(("label", l.clone()));
    }
    if let Some(e) = r.expires {
        f.push(("expires", e.to_string()));
    }
    if let Some(at) = r.revoked {
        f.push(("revoked", at.to_string()));
    }
    f
}

/// A key from its hash; `None` when it is missing or malformed (then refused, never guessed).
fn parse(id: &str, h: &HashMap<String, String>) -> Option<KeyRecord> {
    let time = |name: &str| h.get(name).and_then(|v| v.parse::<u64>().ok());
    let record = (|| {
        Some(KeyRecord {
            id: Arc::from(id),
            consumer: Arc::from(h.get("consumer")?.as_str()),
            label: h.get("label").cloned(),
            digest: KeyDigest::from_hex(h.get("digest")?)?,
            created: time("created")?,
            expires: time("expires"),
            revoked: time("revoked"),
            models: Arc::from(serde_json::from_str::<Vec<String>>(h.get("models")?).ok()?),
            last_used: time("last_used"),
        })
    })();
    if record.is_none() && !h.is_empty() {
        log::error!("issued key {id} in Redis is malformed: ignored (refused)");
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_its_hash_fields() {
        let r = KeyRecord {
            id: "key_0011".into(),
            consumer: "team-a".into(),
            label: Some("ci runner".into()),
            digest: KeyDigest::of(b"tg-x"),
            created: 1_700_000_000,
            expires: Some(1_800_000_000),
            revoked: Some(1_750_000_000),
            models: Arc::from(vec!["gpt-4o".to_string()]),
            last_used: None,
        };
        let h: HashMap<String, String> = fields(&r)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(parse("key_0011", &h), Some(r));
    }

    #[test]
    fn a_hash_missing_its_digest_or_consumer_is_no_key() {
        let mut h = HashMap::new();
        assert_eq!(parse("key_1", &h), None, "absent");
        h.insert("revoked".to_string(), "5".to_string());
        assert_eq!(parse("key_1", &h), None, "only a revocation");
    }
}
