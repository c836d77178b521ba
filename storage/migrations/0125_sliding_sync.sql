-- Simplified sliding sync (MSC4186) connection positions: each response's `pos` names the sync token it
-- covered and the rooms the client then held (JSON), so a connection survives restarts. A connection keeps
-- its latest few positions (a client may retry one); older ones are deleted.
CREATE TABLE sliding_sync_positions (
    pos TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    conn_id TEXT NOT NULL,
    token TEXT NOT NULL,
    state TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);
CREATE INDEX sliding_sync_positions_conn ON sliding_sync_positions (user_id, device_id, conn_id, created_ts);
