-- Version 1: the per-request spend ledger and the daily spend it adds up to.
--
-- One `ledger` row per admitted request, written when the request settles (before a whole
-- answer is written to the client). Never prompt or answer text. Money in nano-dollars, tokens
-- as counts: integers only.
CREATE TABLE ledger (
    id                 INTEGER PRIMARY KEY,
    -- When it settled (Unix seconds, UTC).
    at                 INTEGER NOT NULL,
    -- The UTC day (days since 1970-01-01) its cost counts on: the day it was admitted.
    day                INTEGER NOT NULL,
    request_id         TEXT    NOT NULL,
    consumer           TEXT    NOT NULL,
    team               TEXT    NOT NULL,
    -- Which of the consumer's keys: an issued key's id, a configured key's label, or
    -- `sha256:` and the first 12 hex digits of its digest.
    key_id             TEXT    NOT NULL,
    model              TEXT    NOT NULL,
    -- The backend that answered or was tried last; empty when none was reached.
    backend            TEXT    NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    reasoning_tokens   INTEGER NOT NULL,
    cost_nanos         INTEGER NOT NULL,
    estimated          INTEGER NOT NULL,
    -- HTTP status the client got, and the outcome (`ok`, `cache_hit`, or the error label).
    status             INTEGER NOT NULL,
    outcome            TEXT    NOT NULL
) STRICT;

-- The spend report selects by the day costs count on.
CREATE INDEX ledger_day ON ledger (day);

-- Spend per UTC day, consumer and team: what budgets restart from after a restart, kept in the
-- same transaction as the ledger rows it sums (so it survives pruning the ledger).
CREATE TABLE spend_daily (
    day        INTEGER NOT NULL,
    consumer   TEXT    NOT NULL,
    team       TEXT    NOT NULL,
    cost_nanos INTEGER NOT NULL,
    requests   INTEGER NOT NULL,
    PRIMARY KEY (day, consumer, team)
) STRICT, WITHOUT ROWID;
