-- Device lists across servers (issue 15).
--
-- device_lists_stream rows now name the device that changed (NULL: the user's
-- cross-signing keys changed, or a change recorded before this migration), so the
-- federation sender can send one m.device_list_update per device and stream id.
ALTER TABLE device_lists_stream ADD COLUMN device_id TEXT;

-- The remote users whose device lists we cache (only while we share a room with
-- them). stream_id is the position of their server's device-list stream that the
-- cache reflects (NULL when the keys came from /user/keys/query, which gives none);
-- stale = 1 when an update was missed and a /user/devices resync is owed.
CREATE TABLE remote_device_lists (
    user_id TEXT NOT NULL PRIMARY KEY,
    stream_id BIGINT,
    stale INTEGER NOT NULL DEFAULT 0,
    master_key TEXT,
    self_signing_key TEXT,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX remote_device_lists_stale ON remote_device_lists (stale);

-- Their devices' signed identity keys, as their server gave them.
CREATE TABLE remote_device_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_json TEXT,
    display_name TEXT,
    PRIMARY KEY (user_id, device_id)
);
