-- Self-destructing messages (docs/self-destruct.md): one row per stored event that asked
-- to be expunged, until it is. expires_at is the absolute time (org.matrix.self_destruct_after);
-- after_read_ms the delay after everyone has read it (org.matrix.self_destruct), read_ts
-- when that happened. Each row with a known time has a timer (kind 'self_destruct',
-- timer_key = event_id). thread_id is the thread root ('' for the main timeline): a receipt
-- in that thread counts as having read it.
CREATE TABLE self_destruct_events (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    thread_id TEXT NOT NULL,
    expires_at BIGINT,
    after_read_ms BIGINT,
    read_ts BIGINT
);
CREATE INDEX self_destruct_events_room ON self_destruct_events (room_id);
