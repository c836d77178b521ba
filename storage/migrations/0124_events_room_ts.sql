-- timestamp_to_event (jump to date) finds a room's events by origin_server_ts.
CREATE INDEX IF NOT EXISTS events_room_origin_ts ON events (room_id, origin_server_ts);
