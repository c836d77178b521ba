-- The room as a DAG (issue 12): events may be outliers (no state group), rejected or
-- soft-failed; edges, extremities, rejections and the current state group per stream
-- position get their own tables. Existing rooms are linear: their head becomes the one
-- forward extremity and their edges are read back from the stored event JSON.

ALTER TABLE events ALTER COLUMN state_group DROP NOT NULL;
ALTER TABLE events ADD COLUMN outlier INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN rejected INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN soft_failed INTEGER NOT NULL DEFAULT 0;
-- /messages pages in topological order: (depth, stream_ordering).
CREATE INDEX events_room_topological ON events (room_id, depth, stream_ordering);

-- prev_events edges of every event in the DAG (outliers have none until de-outliered).
CREATE TABLE event_edges (
    event_id TEXT NOT NULL,
    prev_event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (event_id, prev_event_id)
);
CREATE INDEX event_edges_prev ON event_edges (prev_event_id);

-- auth_events edges of every stored event, outliers included.
CREATE TABLE event_auth_edges (
    event_id TEXT NOT NULL,
    auth_event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (event_id, auth_event_id)
);

-- The events nothing in the DAG points at yet: a new local event cites them as prev_events.
CREATE TABLE event_forward_extremities (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

-- prev_events we have not got: where backfill must continue.
CREATE TABLE event_backward_extremities (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

-- Events that failed the auth checks: kept (an event citing one is rejected too), never shown.
CREATE TABLE rejections (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    rejected_ts BIGINT NOT NULL
);

-- The state group holding the room's current state, from each events-stream position
-- where it changed: sync's "state at a position" is the last row at or before it.
CREATE TABLE room_stream_state (
    room_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    state_group BIGINT NOT NULL,
    PRIMARY KEY (room_id, stream_ordering)
);

INSERT INTO event_forward_extremities (room_id, event_id) SELECT room_id, event_id FROM room_heads;
DROP TABLE room_heads;

INSERT INTO room_stream_state (room_id, stream_ordering, state_group)
    SELECT room_id, stream_ordering, state_group FROM events WHERE state_key IS NOT NULL;

-- v1/v2 rooms reference events as [event_id, {hashes}], later ones by bare ID.
INSERT INTO event_edges (event_id, prev_event_id, room_id)
    SELECT e.event_id,
        CASE jsonb_typeof(ref.value) WHEN 'array' THEN ref.value ->> 0 ELSE ref.value #>> '{}' END,
        e.room_id
    FROM events e
    CROSS JOIN LATERAL jsonb_array_elements(COALESCE(e.json::jsonb -> 'prev_events', '[]'::jsonb)) AS ref(value)
    ON CONFLICT DO NOTHING;
INSERT INTO event_auth_edges (event_id, auth_event_id, room_id)
    SELECT e.event_id,
        CASE jsonb_typeof(ref.value) WHEN 'array' THEN ref.value ->> 0 ELSE ref.value #>> '{}' END,
        e.room_id
    FROM events e
    CROSS JOIN LATERAL jsonb_array_elements(COALESCE(e.json::jsonb -> 'auth_events', '[]'::jsonb)) AS ref(value)
    ON CONFLICT DO NOTHING;
