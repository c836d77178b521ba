-- The federation sender's persisted queues (federation/sender/). A row stays until the
-- destination has answered 200 to a transaction carrying it, so a restart loses nothing.

-- Per destination backoff, in Synapse's shape (its `destinations` table): retry_last_ts is
-- when the last attempt failed, retry_interval how long to wait after it (0: not backing off).
CREATE TABLE federation_destinations (
    destination TEXT NOT NULL PRIMARY KEY,
    retry_last_ts BIGINT NOT NULL,
    retry_interval BIGINT NOT NULL,
    failure_ts BIGINT,
    last_successful_ts BIGINT
);

-- Our own events still to send to each destination, sent in stream order.
CREATE TABLE federation_pdu_queue (
    destination TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (destination, stream_ordering)
);

-- EDUs still to send (receipts, presence, and whatever send_edu queues), in queue_id order.
-- A keyed EDU replaces the queued one with the same (destination, edu_type, edu_key).
CREATE TABLE federation_edu_queue (
    destination TEXT NOT NULL,
    queue_id BIGINT NOT NULL,
    edu_type TEXT NOT NULL,
    edu_key TEXT,
    content_json TEXT NOT NULL,
    PRIMARY KEY (destination, queue_id)
);
CREATE UNIQUE INDEX federation_edu_queue_key ON federation_edu_queue (destination, edu_type, edu_key);

-- To-device messages for users on other servers: one m.direct_to_device EDU per destination
-- per request, written with the local messages of the same PUT /sendToDevice (so the
-- request's transaction ID deduplicates both). stream_id comes from the "to_device" stream.
CREATE TABLE device_federation_outbox (
    destination TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    content_json TEXT NOT NULL,
    queued_ms BIGINT NOT NULL,
    PRIMARY KEY (destination, stream_id)
);

-- The events-stream position up to which every local event has been queued for its
-- destinations; at start-up, local events after it are queued again (one row, id = 1).
CREATE TABLE federation_sender_position (
    id INTEGER NOT NULL PRIMARY KEY,
    stream_ordering BIGINT NOT NULL
);
