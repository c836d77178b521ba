-- Sync-side tables: saved filters, read receipts (with their stream) and presence (with its stream).
-- Typing notifications live only in memory.

CREATE TABLE user_filters (
    user_id TEXT NOT NULL,
    filter_id BIGINT NOT NULL,
    filter_json TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);

-- One row per (room, type, user, thread): a newer receipt replaces the older one and takes
-- a new stream_id, so "changes since N" is a range scan. thread_id '' means unthreaded.
CREATE TABLE receipts (
    stream_id BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    receipt_type TEXT NOT NULL,
    user_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
);
CREATE INDEX receipts_stream ON receipts (stream_id);
CREATE INDEX receipts_user ON receipts (user_id, room_id);

-- The latest presence of each user; stream_id moves on every change.
CREATE TABLE presence (
    user_id TEXT PRIMARY KEY,
    stream_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    status_msg TEXT,
    last_active_ms BIGINT NOT NULL,
    last_sync_ms BIGINT NOT NULL
);
CREATE INDEX presence_stream ON presence (stream_id);
