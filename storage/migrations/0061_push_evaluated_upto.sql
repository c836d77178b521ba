-- Every event at or before this stream position has been through push evaluation: after a
-- crash, evaluation resumes with the events after it (one row).
CREATE TABLE push_evaluated_upto (
    id INTEGER PRIMARY KEY,
    stream_ordering BIGINT NOT NULL
);
