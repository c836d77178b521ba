-- The "device_lists" stream: one row each time a user's devices or cross-signing
-- keys change, so sync and /keys/changes can tell who to re-query.

CREATE TABLE device_lists_stream (
    stream_id BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (stream_id, user_id)
);
CREATE INDEX device_lists_stream_user ON device_lists_stream (user_id, stream_id);
