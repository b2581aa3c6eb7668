-- The request each Idempotency-Key was first used with: the command id the key and the actor
-- make, and SHA-256 of the command's name and canonical body. A row is written before its
-- command runs and never changes, so a later request under the same key with another body is
-- refused instead of being answered with the first command's result.
CREATE TABLE idempotency_keys (
    command_id  UUID        PRIMARY KEY,
    fingerprint BYTEA       NOT NULL CHECK (octet_length(fingerprint) = 32),
    created_at  TIMESTAMPTZ NOT NULL
);
