-- A second version, applied after the first.
ALTER TABLE suite_notes ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;
