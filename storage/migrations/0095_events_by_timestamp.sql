-- /timestamp_to_event (client v1 and federation): the room's event closest to a time,
-- found by origin_server_ts without scanning the room.
CREATE INDEX IF NOT EXISTS events_room_origin_ts ON events (room_id, origin_server_ts);
