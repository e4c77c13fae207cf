//! Issued keys in the embedded store: the `api_keys` table (`migrations/0002_api_keys.sql`).
//! Plain functions over a connection; the writer runs them inside its group commit
//! (`Store::write`), so a key the admin API reported created is committed.

use super::KeyRecord;
use crate::digest::KeyDigest;
use crate::state::store::{int, unsigned};
use rusqlite::{params, Connection};
use std::sync::Arc;

/// Every key in the table.
pub fn load_all(c: &Connection) -> rusqlite::Result<Vec<KeyRecord>> {
    let mut q = c.prepare(
        "SELECT id, consumer, label, digest, created, expires, revoked, models, last_used
         FROM api_keys ORDER BY created, id",
    )?;
    let rows = q.query_map([], |r| {
        let digest: String = r.get(3)?;
        let models: String = r.get(7)?;
        Ok((
            KeyDigest::from_hex(&digest),
            serde_json::from_str::<Vec<String>>(&models).ok(),
            KeyRecord {
                id: Arc::from(r.get::<_, String>(0)?),
                consumer: Arc::from(r.get::<_, String>(1)?),
                label: r.get(2)?,
                digest: KeyDigest::of(b""),
                created: unsigned(r.get(4)?),
                expires: r.get::<_, Option<i64>>(5)?.map(unsigned),
                revoked: r.get::<_, Option<i64>>(6)?.map(unsigned),
                models: Arc::from(Vec::new()),
                last_used: r.get::<_, Option<i64>>(8)?.map(unsigned),
            },
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        match row? {
            (Some(digest), Some(models), record) => out.push(KeyRecord {
                digest,
                models: Arc::from(models),
                ..record
            }),
            // Written by this module only; a row edited by hand into nonsense is left out
            // (its key is refused) rather than stopping the gateway.
            (_, _, record) => log::error!(
                "issued key {} in the store has a malformed digest or models: ignored",
                record.id
            ),
        }
    }
    Ok(out)
}

pub fn insert(c: &Connection, r: &KeyRecord) -> rusqlite::Result<()> {
    let models = serde_json::to_string(&*r.models).unwrap_or_else(|_| "[]".into());
    c.prepare_cached(
        "INSERT INTO api_keys (id, consumer, label, digest, created, expires, revoked, models,
           last_used)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        &*r.id,
        &*r.consumer,
        r.label,
        r.digest.to_hex(),
        int(r.created),
        r.expires.map(int),
        r.revoked.map(int),
        models,
        r.last_used.map(int),
    ])?;
    Ok(())
}

/// Revokes `id` at `at` unless it already is (the first revocation stands).
pub fn revoke(c: &Connection, id: &str, at: u64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE api_keys SET revoked = COALESCE(revoked, ?2) WHERE id = ?1",
        params![id, int(at)],
    )?;
    Ok(())
}

/// The old key's new expiry and the key replacing it, in one transaction (the caller's).
pub fn rotate(c: &Connection, old: &str, expires: u64, new: &KeyRecord) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE api_keys SET expires = ?2 WHERE id = ?1",
        params![old, int(expires)],
    )?;
    insert(c, new)
}

/// Records each key's last use (never moving it back).
pub fn flush_used(c: &Connection, used: &[(Arc<str>, u64)]) -> rusqlite::Result<()> {
    let mut q = c.prepare_cached(
        "UPDATE api_keys SET last_used = MAX(COALESCE(last_used, 0), ?2) WHERE id = ?1",
    )?;
    for (id, at) in used {
        q.execute(params![&**id, int(*at)])?;
    }
    Ok(())
}
