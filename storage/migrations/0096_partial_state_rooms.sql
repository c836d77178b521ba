-- Partial-state joins (MSC3706): a room we joined with send_join's omit_members holds
-- its state without most m.room.member events until the background resync fills them in.
-- One row per such room while it lasts; the servers send_join named are whom we ask.
CREATE TABLE IF NOT EXISTS partial_state_rooms (
    room_id TEXT NOT NULL PRIMARY KEY,
    join_event_id TEXT NOT NULL,
    joined_via TEXT NOT NULL,
    servers TEXT NOT NULL
);
-- When each room's state became complete (an "events" stream position): sync shows the
-- room as newly joined then, with its whole state.
CREATE TABLE IF NOT EXISTS partial_state_completions (
    room_id TEXT NOT NULL PRIMARY KEY,
    stream_ordering BIGINT NOT NULL
);
