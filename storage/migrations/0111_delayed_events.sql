-- Delayed events (MSC4140): events a client scheduled to be sent later. Each has a
-- timer row (kind 'delayed_event', timer_key = delay_id) due at running_since + delay_ms.
-- The row is deleted once the event is sent, cancelled, or fails for good.
-- scheduled_pos is the "events" stream position when it was scheduled: state set by
-- someone else after it cancels a delayed state event.
CREATE TABLE delayed_events (
    delay_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT,
    room_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    state_key TEXT,
    content TEXT NOT NULL,
    delay_ms BIGINT NOT NULL,
    running_since BIGINT NOT NULL,
    scheduled_pos BIGINT NOT NULL
);
CREATE INDEX delayed_events_user ON delayed_events (user_id, running_since);
CREATE INDEX delayed_events_room ON delayed_events (room_id);

-- Client transaction IDs of delayed sends, so a retried PUT returns the first delay_id,
-- even after the event was sent.
CREATE TABLE delayed_event_txns (
    txn_scope TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    delay_id TEXT NOT NULL,
    inserted_ts BIGINT NOT NULL,
    PRIMARY KEY (txn_scope, txn_id)
);
