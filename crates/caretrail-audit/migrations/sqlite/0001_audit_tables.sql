-- The audit tree's tables (caretrail-audit `db.rs`). `IF NOT EXISTS`: databases made before the
-- audit tables were registered with the store created them without a migration record.
CREATE TABLE IF NOT EXISTS audit_merkle_nodes (
    level INTEGER NOT NULL CHECK (level >= 0 AND level < 64),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS audit_checkpoints (
    tree_size INTEGER PRIMARY KEY CHECK (tree_size >= 0),
    root_hash BLOB    NOT NULL CHECK (length(root_hash) = 32),
    signed_at INTEGER NOT NULL,
    note      TEXT    NOT NULL
) STRICT;
