-- Server-side search (POST /search): the searchable text of timeline events, one row per event
-- (m.room.message content.body, m.room.name content.name, m.room.topic content.topic), written in the
-- same transaction as the event and deleted with its redaction. Encrypted events have no row.
-- vector is the text's tsvector (English configuration), with a GIN index for @@ queries.
CREATE TABLE event_search (
    stream_ordering BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    key TEXT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    value TEXT NOT NULL,
    vector TSVECTOR NOT NULL
);
CREATE INDEX event_search_room ON event_search (room_id, stream_ordering);
CREATE INDEX event_search_vector ON event_search USING GIN (vector);
