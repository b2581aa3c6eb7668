-- API bearer tokens, stored only as SHA-256 hashes (the tokens are 256-bit random values, so a
-- fast hash is enough: there is nothing to brute-force). Mutable: tokens can be revoked.
CREATE TABLE api_tokens (
    token_hash  BYTEA       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    token_id    UUID        NOT NULL UNIQUE,
    name        TEXT        NOT NULL,
    role        TEXT        NOT NULL CHECK (role IN ('admin', 'director', 'auditor', 'integration')),
    director_id UUID,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ,
    CHECK ((role = 'director') = (director_id IS NOT NULL))
);
