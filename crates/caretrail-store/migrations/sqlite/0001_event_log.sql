-- The append-only event log, its idempotency ledger and consumer checkpoints (SQLite).
--
-- Positions are assigned by the single writer inside a `BEGIN IMMEDIATE` transaction as
-- head + 1, head + 2, ...; the triggers below make the database itself refuse anything else:
-- a position that is not exactly the next one, a stream version that skips or repeats, a
-- record time that goes backwards, and any UPDATE or DELETE of a stored event.

CREATE TABLE events (
    position        INTEGER PRIMARY KEY CHECK (position >= 1),
    stream_id       TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version >= 1),
    event_id        BLOB    NOT NULL UNIQUE CHECK (length(event_id) = 16),
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL CHECK (schema_version >= 1),
    data            TEXT    NOT NULL,
    actor_id        TEXT    NOT NULL,
    actor_role      TEXT    NOT NULL,
    command_id      BLOB    CHECK (command_id IS NULL OR length(command_id) = 16),
    correlation_id  BLOB    CHECK (correlation_id IS NULL OR length(correlation_id) = 16),
    causation_id    BLOB    CHECK (causation_id IS NULL OR length(causation_id) = 16),
    business_date   TEXT    CHECK (business_date IS NULL OR business_date GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    -- Microseconds since the Unix epoch, UTC.
    recorded_at     INTEGER NOT NULL,
    leaf_hash       BLOB    NOT NULL CHECK (length(leaf_hash) = 32),
    UNIQUE (stream_id, stream_version)
) STRICT;

CREATE INDEX events_by_category ON events (category, position);
CREATE INDEX events_by_type ON events (event_type, position);
CREATE INDEX events_by_recorded_at ON events (recorded_at, position);

CREATE TRIGGER events_position_is_next BEFORE INSERT ON events
WHEN NEW.position IS NOT (SELECT COALESCE(MAX(position), 0) + 1 FROM events)
BEGIN
    SELECT RAISE(ABORT, 'caretrail: event position must be the next in the global log');
END;

CREATE TRIGGER events_stream_version_is_next BEFORE INSERT ON events
WHEN NEW.stream_version IS NOT
     (SELECT COALESCE(MAX(stream_version), 0) + 1 FROM events WHERE stream_id = NEW.stream_id)
BEGIN
    SELECT RAISE(ABORT, 'caretrail: stream version must be the next in its stream');
END;

CREATE TRIGGER events_record_time_monotonic BEFORE INSERT ON events
WHEN NEW.recorded_at < (SELECT recorded_at FROM events WHERE position = NEW.position - 1)
BEGIN
    SELECT RAISE(ABORT, 'caretrail: record time must not go backwards');
END;

CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'caretrail: events are append-only; UPDATE is refused');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'caretrail: events are append-only; DELETE is refused');
END;

-- One row per command id that produced an append: a retry of the same command returns this
-- stored result instead of writing again.
CREATE TABLE commands (
    command_id  BLOB    PRIMARY KEY CHECK (length(command_id) = 16),
    result      TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE consumer_checkpoints (
    name       TEXT    PRIMARY KEY,
    position   INTEGER NOT NULL CHECK (position >= 0),
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
