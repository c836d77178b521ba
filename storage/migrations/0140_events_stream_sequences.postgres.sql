-- Ids of the "events" stream when several persisters write it (stream_writers.events with
-- more than one instance, docs/workers.md): one sequence keeps them unique across processes
-- (storage/sharded_stream.py moves it past the ids a single writer allocated before).
-- Outliers take negated values of the second one; state groups the third's.
CREATE SEQUENCE IF NOT EXISTS events_stream_seq;
CREATE SEQUENCE IF NOT EXISTS events_outlier_seq;
CREATE SEQUENCE IF NOT EXISTS state_group_id_seq
