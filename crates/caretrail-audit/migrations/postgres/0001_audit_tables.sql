-- The audit tree's tables (caretrail-audit `db.rs`). `IF NOT EXISTS`: databases made before the
-- audit tables were registered with the store created them without a migration record.
CREATE TABLE IF NOT EXISTS audit_merkle_nodes (
    level SMALLINT NOT NULL CHECK (level >= 0 AND level < 64),
    idx   BIGINT   NOT NULL CHECK (idx >= 0),
    hash  BYTEA    NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TABLE IF NOT EXISTS audit_checkpoints (
    tree_size BIGINT      PRIMARY KEY CHECK (tree_size >= 0),
    root_hash BYTEA       NOT NULL CHECK (octet_length(root_hash) = 32),
    signed_at TIMESTAMPTZ NOT NULL,
    note      TEXT        NOT NULL
);
