-- What push-rule evaluation decided for each local user and each event that notifies them:
-- the unread counts in /sync, GET /notifications and the pushers read it.
-- thread_id is 'main' for events outside a thread, else the thread root's event ID.
-- An event has one stream position, so (user_id, stream_ordering) names a row; the
-- primary key also serves GET /notifications (a user's rows, newest first).
CREATE TABLE event_push_actions (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    thread_id TEXT NOT NULL,
    notif INTEGER NOT NULL,
    highlight INTEGER NOT NULL,
    actions TEXT NOT NULL,
    received_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, stream_ordering)
);
-- Unread counts: a user's rows in a room after a position.
CREATE INDEX event_push_actions_user_room ON event_push_actions (user_id, room_id, stream_ordering);
