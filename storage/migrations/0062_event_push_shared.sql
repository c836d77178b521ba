-- Push evaluation's one row per event for the members on the server's default rules
-- (homeserver/handlers/push/shared.py, docs/push.md): what the event does to every local
-- member joined at the time, except its sender and the members with a row of their own in
-- event_push_actions (which then decides for them, notif = 0 included). Written only when
-- that outcome notifies. Unread counts and GET /notifications read both tables.
CREATE TABLE event_push_shared (
    stream_ordering BIGINT NOT NULL PRIMARY KEY,
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    highlight INTEGER NOT NULL,
    actions TEXT NOT NULL,
    received_ts BIGINT NOT NULL
);
-- Unread counts and GET /notifications: a room's shared rows after a position.
CREATE INDEX event_push_shared_room ON event_push_shared (room_id, stream_ordering);
-- The per-member exceptions of one room (unread counts for a whole woken batch at once).
CREATE INDEX event_push_actions_room ON event_push_actions (room_id, stream_ordering);
