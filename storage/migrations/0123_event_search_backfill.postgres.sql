-- Index the searchable events stored before 0122 (new ones are indexed as they are persisted).
-- Events whose JSON holds an escaped NUL are skipped: PostgreSQL text cannot hold one.
INSERT INTO event_search (stream_ordering, event_id, room_id, sender, key, origin_server_ts, value, vector)
SELECT stream_ordering, event_id, room_id, sender, 'content.' || field, origin_server_ts, value,
       to_tsvector('english', value) FROM (
    SELECT e.stream_ordering, e.event_id, e.room_id, e.sender, e.origin_server_ts, f.field,
           (e.json::json -> 'content') ->> f.field AS value,
           json_typeof((e.json::json -> 'content') -> f.field) AS kind
    FROM events e
    JOIN (VALUES ('m.room.message', 'body', 1), ('m.room.name', 'name', 0), ('m.room.topic', 'topic', 0))
        AS f (type, field, message) ON f.type = e.type
    WHERE e.outlier = 0 AND e.rejected = 0 AND e.soft_failed = 0 AND e.redacted_by IS NULL
      AND ((f.message = 1 AND e.state_key IS NULL) OR (f.message = 0 AND e.state_key = ''))
      AND strpos(e.json, '\u0000') = 0
) AS candidates WHERE kind = 'string' AND btrim(value) != ''
ON CONFLICT DO NOTHING;
