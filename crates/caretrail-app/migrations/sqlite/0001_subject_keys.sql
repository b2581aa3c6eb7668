-- Per-subject data keys for personal data (crypto-shredding), SQLite.
--
-- This table is deliberately mutable and separate from the append-only log: erasing a subject
-- sets its wrapped key to NULL (the database runs with secure_delete, so the old bytes are
-- overwritten), while the events that hold the subject's ciphertext, and their hashes, stay
-- exactly as they were.
CREATE TABLE subject_keys (
    subject_id  BLOB    PRIMARY KEY CHECK (length(subject_id) = 16),
    -- nonce (24 bytes) || XChaCha20-Poly1305 ciphertext of the 32-byte data key (48 bytes)
    wrapped_key BLOB    CHECK (wrapped_key IS NULL OR length(wrapped_key) = 72),
    created_at  INTEGER NOT NULL,
    erased_at   INTEGER,
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
) STRICT, WITHOUT ROWID;

-- A known value wrapped under the master key, to tell "wrong master key" from "corrupt key".
CREATE TABLE master_key_check (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    wrapped BLOB    NOT NULL
) STRICT;
