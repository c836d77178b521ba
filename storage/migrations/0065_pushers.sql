-- Pushers (POST /pushers/set) and the notifications each one still has to deliver.
-- One pusher per (app_id, pushkey, user_id); it belongs to the device that set it.
CREATE TABLE pushers (
    id BIGINT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT,
    access_token_id BIGINT,
    kind TEXT NOT NULL,
    app_id TEXT NOT NULL,
    app_display_name TEXT NOT NULL,
    device_display_name TEXT NOT NULL,
    pushkey TEXT NOT NULL,
    pushkey_ts BIGINT NOT NULL,
    lang TEXT NOT NULL,
    profile_tag TEXT NOT NULL,
    data TEXT NOT NULL,
    -- The events stream position when it was (last) set: only later events are pushed.
    since_stream BIGINT NOT NULL,
    -- While the gateway fails: since when (ms), and the current backoff (ms).
    failing_since BIGINT,
    backoff_ms BIGINT NOT NULL DEFAULT 0,
    UNIQUE (app_id, pushkey, user_id)
);
CREATE INDEX pushers_by_user ON pushers (user_id, device_id);

-- Notifications queued for a pusher, sent oldest first and deleted once the gateway
-- took them: the rows are the pusher's persisted position.
CREATE TABLE pusher_queue (
    pusher_id BIGINT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    actions TEXT NOT NULL,
    queued_ts BIGINT NOT NULL,
    PRIMARY KEY (pusher_id, stream_ordering)
);
