-- Integrations' subscriptions (caretrail-integrations, table set `integrations`).
-- Identical on both backends but for the attempts' sequence column. Times are microseconds
-- since the Unix epoch (UTC); flags are 0/1.

-- One row per subscription, written by the registry consumer from the log's subscription
-- events (name, filter, target, paused, disabled, deleted, generation, and the cursor on a
-- rewind) and by the delivering node (cursor, failures, last attempt, lease).
CREATE TABLE integration_subscriptions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    filter_types TEXT NOT NULL,
    filter_categories TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    owner_token_id TEXT,
    created_at BIGINT NOT NULL,
    created_position BIGINT NOT NULL,
    paused BIGINT NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    deleted BIGINT NOT NULL DEFAULT 0,
    generation BIGINT NOT NULL DEFAULT 1,
    delivered_position BIGINT NOT NULL,
    epoch BIGINT NOT NULL DEFAULT 0,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    failing_since BIGINT,
    last_attempt_at BIGINT,
    last_status BIGINT,
    last_error TEXT,
    next_attempt_at BIGINT,
    delivered_total BIGINT NOT NULL DEFAULT 0,
    failed_total BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT
);

-- Webhook signing secrets, sealed under the subscription's own data key (the key ring), by
-- generation; `retire_at` ends a rotated-out secret's grace period. Deleting a subscription
-- destroys the key, so every sealed copy becomes unreadable.
CREATE TABLE integration_secrets (
    subscription_id TEXT NOT NULL,
    generation BIGINT NOT NULL,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retire_at BIGINT,
    PRIMARY KEY (subscription_id, generation)
);

-- The most recent delivery attempts of each subscription (older ones are pruned).
CREATE TABLE integration_attempts (
    seq BIGSERIAL PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    attempted_at BIGINT NOT NULL,
    status BIGINT,
    latency_us BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    response_excerpt TEXT
);
CREATE INDEX integration_attempts_by_subscription ON integration_attempts (subscription_id, seq);
