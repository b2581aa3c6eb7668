-- An append in one round trip: `caretrail_append` takes the append lock, checks that the
-- snapshot the writer planned against is still the database's, and only then inserts the
-- planned events and command results and notifies subscribers. The writer calls it as a
-- single statement outside any explicit transaction, so the statement's implicit transaction
-- commits (durably, as every commit) before the answer is complete: lock, checks, inserts,
-- notify and COMMIT cost the writer one round trip.
--
-- The writer plans in Rust (positions, stream versions, record times and leaf hashes are
-- computed there) against what it last knew of the log. If another process appended since,
-- or the writer knew nothing yet, the function writes nothing and returns what it read under
-- the lock instead: the head, the current version of every named stream, and the stored
-- results of the command ids the writer believed new. The writer plans again with that.
--
-- Each statement of a VOLATILE PL/pgSQL function takes a new snapshot (READ COMMITTED), so
-- the reads after `pg_advisory_xact_lock` see the commit of the appender the lock waited for.
-- The lock key is `postgres::APPEND_LOCK` ("caretrl1"); a unit test keeps the two equal.
-- The insert triggers of 0001 still check every row.
CREATE FUNCTION caretrail_append(
    expected_head      BIGINT,
    append_streams     TEXT[],
    expected_versions  BIGINT[],
    new_commands       UUID[],
    e_position         BIGINT[],
    e_stream_id        TEXT[],
    e_category         TEXT[],
    e_stream_version   BIGINT[],
    e_event_id         UUID[],
    e_event_type       TEXT[],
    e_schema_version   INTEGER[],
    e_data             TEXT[],
    e_actor_id         TEXT[],
    e_actor_role       TEXT[],
    e_command_id       UUID[],
    e_correlation_id   UUID[],
    e_causation_id     UUID[],
    e_business_date    DATE[],
    e_recorded_at      TIMESTAMPTZ[],
    e_leaf_hash        BYTEA[],
    c_command_id       UUID[],
    c_result           TEXT[],
    c_recorded_at      TIMESTAMPTZ[],
    notify_channel     TEXT,
    OUT written        BOOLEAN,
    OUT head           BIGINT,
    OUT head_at        TIMESTAMPTZ,
    OUT versions       BIGINT[],
    OUT stored_ids     UUID[],
    OUT stored_results TEXT[]
)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7161130662566718513);
    SELECT ev.position, ev.recorded_at INTO head, head_at
      FROM events ev ORDER BY ev.position DESC LIMIT 1;
    head := COALESCE(head, 0);
    versions := ARRAY(SELECT COALESCE((SELECT MAX(ev.stream_version) FROM events ev
                                        WHERE ev.stream_id = t.s), 0)
                        FROM UNNEST(append_streams) WITH ORDINALITY AS t(s, i) ORDER BY t.i);
    SELECT COALESCE(array_agg(c.command_id ORDER BY c.command_id), '{}'),
           COALESCE(array_agg(c.result ORDER BY c.command_id), '{}')
      INTO stored_ids, stored_results
      FROM commands c WHERE c.command_id = ANY(new_commands);
    IF head <> expected_head
       OR versions IS DISTINCT FROM expected_versions
       OR cardinality(stored_ids) > 0 THEN
        written := false;
        RETURN;
    END IF;
    IF cardinality(e_position) > 0 THEN
        INSERT INTO events (position, stream_id, category, stream_version, event_id, event_type,
                            schema_version, data, actor_id, actor_role, command_id,
                            correlation_id, causation_id, business_date, recorded_at, leaf_hash)
        SELECT * FROM UNNEST(e_position, e_stream_id, e_category, e_stream_version, e_event_id,
                             e_event_type, e_schema_version, e_data, e_actor_id, e_actor_role,
                             e_command_id, e_correlation_id, e_causation_id, e_business_date,
                             e_recorded_at, e_leaf_hash);
        PERFORM pg_notify(notify_channel, e_position[cardinality(e_position)]::text);
    END IF;
    IF cardinality(c_command_id) > 0 THEN
        INSERT INTO commands (command_id, result, recorded_at)
        SELECT * FROM UNNEST(c_command_id, c_result, c_recorded_at);
    END IF;
    written := true;
END;
$$;
