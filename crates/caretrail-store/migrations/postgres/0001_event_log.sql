-- The append-only event log, its idempotency ledger and consumer checkpoints (PostgreSQL).
--
-- Appends are serialised by a transaction-scoped advisory lock, so positions are assigned as
-- head + 1, head + 2, ... and commit in position order, across every server process on the
-- database. The triggers below make the database itself refuse anything else: a position that
-- is not exactly the next one, a stream version that skips or repeats, a record time that goes
-- backwards, and any UPDATE, DELETE or TRUNCATE of stored events.

CREATE TABLE events (
    position        BIGINT      PRIMARY KEY CHECK (position >= 1),
    stream_id       TEXT        NOT NULL,
    category        TEXT        NOT NULL,
    stream_version  BIGINT      NOT NULL CHECK (stream_version >= 1),
    event_id        UUID        NOT NULL UNIQUE,
    event_type      TEXT        NOT NULL,
    schema_version  INTEGER     NOT NULL CHECK (schema_version >= 1),
    -- TEXT, not JSONB: the leaf hash commits to these exact bytes, and JSONB would reorder keys.
    data            TEXT        NOT NULL,
    actor_id        TEXT        NOT NULL,
    actor_role      TEXT        NOT NULL,
    command_id      UUID,
    correlation_id  UUID,
    causation_id    UUID,
    business_date   DATE,
    recorded_at     TIMESTAMPTZ NOT NULL,
    leaf_hash       BYTEA       NOT NULL CHECK (octet_length(leaf_hash) = 32),
    UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_by_category ON events (category, position);
CREATE INDEX events_by_type ON events (event_type, position);
CREATE INDEX events_by_recorded_at ON events (recorded_at, position);

CREATE FUNCTION caretrail_events_check_insert() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    head_position BIGINT;
    head_recorded TIMESTAMPTZ;
BEGIN
    SELECT position, recorded_at INTO head_position, head_recorded
      FROM events ORDER BY position DESC LIMIT 1;
    IF NEW.position IS DISTINCT FROM COALESCE(head_position, 0) + 1 THEN
        RAISE EXCEPTION 'caretrail: event position must be the next in the global log'
            USING ERRCODE = 'check_violation';
    END IF;
    IF head_recorded IS NOT NULL AND NEW.recorded_at < head_recorded THEN
        RAISE EXCEPTION 'caretrail: record time must not go backwards'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.stream_version IS DISTINCT FROM
       COALESCE((SELECT MAX(stream_version) FROM events WHERE stream_id = NEW.stream_id), 0) + 1 THEN
        RAISE EXCEPTION 'caretrail: stream version must be the next in its stream'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_check_insert BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION caretrail_events_check_insert();

CREATE FUNCTION caretrail_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'caretrail: events are append-only; % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION caretrail_events_refuse_change();
CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION caretrail_events_refuse_change();

-- One row per command id that produced an append: a retry of the same command returns this
-- stored result instead of writing again.
CREATE TABLE commands (
    command_id  UUID        PRIMARY KEY,
    result      TEXT        NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE consumer_checkpoints (
    name       TEXT        PRIMARY KEY,
    position   BIGINT      NOT NULL CHECK (position >= 0),
    updated_at TIMESTAMPTZ NOT NULL
);
