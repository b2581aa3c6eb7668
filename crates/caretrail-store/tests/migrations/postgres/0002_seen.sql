-- A second version, applied after the first.
ALTER TABLE suite_notes ADD COLUMN seen BIGINT NOT NULL DEFAULT 0;
