-- A table set of the conformance suite's own (tests/suite: other crates' tables).
CREATE TABLE suite_notes (id BIGINT PRIMARY KEY, note TEXT NOT NULL);
