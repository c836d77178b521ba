-- Rooms a server admin blocked (Synapse's blocked_rooms): local users may not join them,
-- and the row outlives the room's purge.
CREATE TABLE blocked_rooms (
    room_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    blocked_ts BIGINT NOT NULL
);
