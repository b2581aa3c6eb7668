-- API bearer tokens, stored only as SHA-256 hashes (the tokens are 256-bit random values, so a
-- fast hash is enough: there is nothing to brute-force). Mutable: tokens can be revoked.
CREATE TABLE api_tokens (
    token_hash  BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
    token_id    BLOB    NOT NULL UNIQUE CHECK (length(token_id) = 16),
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL CHECK (role IN ('admin', 'director', 'auditor', 'integration')),
    director_id BLOB    CHECK (director_id IS NULL OR length(director_id) = 16),
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    CHECK ((role = 'director') = (director_id IS NOT NULL))
) STRICT, WITHOUT ROWID;
