-- Version 2: API keys issued through the admin API (`POST /keys`).
--
-- Keys issued at runtime are state, like spend: they survive restarts and reloads. The key
-- itself is never stored, only its SHA-256 digest (as the configuration holds configured keys).
-- With `state.backend: redis` the keys live in Redis instead (shared by every instance) and this
-- table stays empty.
CREATE TABLE api_keys (
    -- `key_` and 16 hex digits; what the ledger's `key_id` names.
    id        TEXT    PRIMARY KEY,
    -- A configured consumer's id (the YAML stays the source of truth for consumers: a key whose
    -- consumer is no longer configured is refused).
    consumer  TEXT    NOT NULL,
    label     TEXT,
    -- SHA-256 of the key, lowercase hex.
    digest    TEXT    NOT NULL UNIQUE,
    -- Unix seconds (UTC).
    created   INTEGER NOT NULL,
    -- Refused from this second on; NULL: never expires.
    expires   INTEGER,
    -- When it was revoked; NULL: not revoked.
    revoked   INTEGER,
    -- The models the key may use, a JSON array of names within its consumer's allowlist;
    -- `[]`: every model its consumer may use.
    models    TEXT    NOT NULL DEFAULT '[]',
    -- Last request it authenticated, written out periodically (not per request).
    last_used INTEGER
) STRICT;

CREATE INDEX api_keys_consumer ON api_keys (consumer);
