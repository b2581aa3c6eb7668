-- Record time never decreases along positions (the trigger events_record_time_monotonic has
-- refused every row that would make it, since the first migration), and positions have no
-- holes, so the last event recorded at or before a time is found by a binary search over
-- positions (`position_at`). The index on record time answered nothing else, and every append
-- paid for it with one more B-tree written per event and one more page per commit.
DROP INDEX IF EXISTS events_by_recorded_at;
