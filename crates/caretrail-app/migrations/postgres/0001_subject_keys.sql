-- Per-subject data keys for personal data (crypto-shredding), PostgreSQL.
--
-- This table is deliberately mutable and separate from the append-only log: erasing a subject
-- sets its wrapped key to NULL, while the events that hold the subject's ciphertext, and their
-- hashes, stay exactly as they were.
CREATE TABLE subject_keys (
    subject_id  UUID        PRIMARY KEY,
    -- nonce (24 bytes) || XChaCha20-Poly1305 ciphertext of the 32-byte data key (48 bytes)
    wrapped_key BYTEA       CHECK (wrapped_key IS NULL OR octet_length(wrapped_key) = 72),
    created_at  TIMESTAMPTZ NOT NULL,
    erased_at   TIMESTAMPTZ,
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);

-- A known value wrapped under the master key, to tell "wrong master key" from "corrupt key".
CREATE TABLE master_key_check (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    wrapped BYTEA   NOT NULL
);
