-- Abuse reports from clients: of an event, a room or a user (kind 'event', 'room', 'user').
-- ids are random positive integers below 2^53 (so JavaScript admin tools read them exactly);
-- event_sender is the reported event's sender, kept for the admin API's filter.
CREATE TABLE content_reports (
    id BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    received_ts BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    room_id TEXT,
    event_id TEXT,
    event_sender TEXT,
    target_user_id TEXT,
    reason TEXT,
    score BIGINT
);
CREATE INDEX content_reports_kind_ts ON content_reports (kind, received_ts);
