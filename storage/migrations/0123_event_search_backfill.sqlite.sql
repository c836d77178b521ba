-- Index the searchable events stored before 0122 (new ones are indexed as they are persisted).
INSERT INTO event_search (stream_ordering, event_id, room_id, sender, key, origin_server_ts, value)
SELECT stream_ordering, event_id, room_id, sender, 'content.' || field, origin_server_ts, value FROM (
    SELECT e.stream_ordering, e.event_id, e.room_id, e.sender, e.origin_server_ts, f.field,
           json_extract(e.json, '$.content.' || f.field) AS value,
           json_type(e.json, '$.content.' || f.field) AS kind
    FROM events e
    JOIN (SELECT 'm.room.message' AS type, 'body' AS field, 1 AS message
          UNION ALL SELECT 'm.room.name', 'name', 0
          UNION ALL SELECT 'm.room.topic', 'topic', 0) f ON f.type = e.type
    WHERE e.outlier = 0 AND e.rejected = 0 AND e.soft_failed = 0 AND e.redacted_by IS NULL
      AND ((f.message = 1 AND e.state_key IS NULL) OR (f.message = 0 AND e.state_key = ''))
      AND json_valid(e.json)
) WHERE kind = 'text' AND trim(value) != ''
ON CONFLICT DO NOTHING;
