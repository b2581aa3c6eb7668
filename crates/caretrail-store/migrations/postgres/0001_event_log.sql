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

-- One check per INSERT statement over its transition table (a per-row PL/pgSQL trigger cost
-- about 40% of append throughput): the new rows continue the global log from the head without
-- a gap, sit at its end, keep record time non-decreasing, and continue each stream's versions.
CREATE FUNCTION caretrail_events_check_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    first_new     BIGINT;
    last_new      BIGINT;
    n             BIGINT;
    prev_head     BIGINT;
    prev_recorded TIMESTAMPTZ;
BEGIN
    SELECT MIN(position), MAX(position), COUNT(*) INTO first_new, last_new, n FROM new_rows;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    SELECT position, recorded_at INTO prev_head, prev_recorded
      FROM events WHERE position < first_new ORDER BY position DESC LIMIT 1;
    IF first_new <> COALESCE(prev_head, 0) + 1
       OR last_new - first_new + 1 <> n
       OR last_new <> (SELECT MAX(position) FROM events) THEN
        RAISE EXCEPTION 'caretrail: event position must be the next in the global log'
            USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM (SELECT recorded_at,
                                     lag(recorded_at) OVER (ORDER BY position) AS before
                                FROM new_rows) t
                WHERE t.recorded_at < t.before)
       OR (SELECT recorded_at FROM new_rows ORDER BY position LIMIT 1) < prev_recorded THEN
        RAISE EXCEPTION 'caretrail: record time must not go backwards'
            USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (
        SELECT 1
          FROM (SELECT stream_id, MIN(stream_version) AS lo, MAX(stream_version) AS hi,
                       COUNT(*) AS k
                  FROM new_rows GROUP BY stream_id) s
         WHERE s.hi - s.lo + 1 <> s.k
            OR s.lo <> COALESCE((SELECT MAX(e.stream_version) FROM events e
                                  WHERE e.stream_id = s.stream_id
                                    AND e.position < first_new), 0) + 1
    ) THEN
        RAISE EXCEPTION 'caretrail: stream version must be the next in its stream'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_check_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION caretrail_events_check_insert();

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
