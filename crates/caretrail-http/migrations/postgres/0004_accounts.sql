-- Accounts people sign in with: the credentials the log never holds (the user name, so an
-- erasure or a rename touches only this row; the Argon2id hash as a PHC string), failed
-- sign-ins and the lockout they cause. The account's role and state are in the log
-- (`account-...` streams); a row without an `AccountCreated` event cannot sign in.
-- Times are microseconds since the epoch, on both backends, so the statements are one text.
CREATE TABLE account_credentials (
    account_id    UUID    PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    failed_count  INTEGER NOT NULL DEFAULT 0 CHECK (failed_count >= 0),
    locked_until  BIGINT,
    created_at    BIGINT  NOT NULL
);

-- Browser sessions: only the SHA-256 of the 256-bit cookie value is stored. The role and
-- director are copied from the account's state at sign-in; every change of those ends the
-- account's sessions first, so a session never outlives the role it was made with.
CREATE TABLE account_sessions (
    session_hash BYTEA   PRIMARY KEY CHECK (octet_length(session_hash) = 32),
    session_id   UUID    NOT NULL UNIQUE,
    account_id   UUID    NOT NULL,
    username     TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'director', 'auditor')),
    director_id  UUID,
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    revoked_at   BIGINT,
    CHECK ((role = 'director') = (director_id IS NOT NULL))
);
CREATE INDEX account_sessions_by_account ON account_sessions (account_id);
