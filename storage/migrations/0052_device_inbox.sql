-- To-device messages waiting for a device. stream_id comes from the "to_device"
-- stream; a message is deleted once the device syncs with a token covering it,
-- or when it outlives to_device_retention.

CREATE TABLE device_inbox (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    sender TEXT NOT NULL,
    event_type TEXT NOT NULL,
    content_json TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, stream_id)
);
CREATE INDEX device_inbox_stream ON device_inbox (stream_id);
CREATE INDEX device_inbox_received ON device_inbox (received_ms);

-- Transaction ids already used by a sending device, so a retried PUT does not
-- deliver twice. Purged together with the messages.
CREATE TABLE device_inbox_txns (
    sender_user_id TEXT NOT NULL,
    sender_device_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (sender_user_id, sender_device_id, txn_id)
);
CREATE INDEX device_inbox_txns_received ON device_inbox_txns (received_ms);

-- The highest stream id ever written, kept even after every message has been
-- acknowledged and deleted, so ids never restart below a token a client holds.
-- Append-only rows (no updates to contend on); the purge keeps only the largest.
CREATE TABLE device_inbox_high_water (
    stream_id BIGINT NOT NULL PRIMARY KEY
);
