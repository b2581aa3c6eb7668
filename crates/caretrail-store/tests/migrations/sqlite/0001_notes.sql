-- A table set of the conformance suite's own (tests/suite: other crates' tables).
CREATE TABLE suite_notes (id INTEGER PRIMARY KEY, note TEXT NOT NULL) STRICT;
