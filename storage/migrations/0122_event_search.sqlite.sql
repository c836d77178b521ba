-- Server-side search (POST /search): the searchable text of timeline events, one row per event
-- (m.room.message content.body, m.room.name content.name, m.room.topic content.topic), written in the
-- same transaction as the event and deleted with its redaction. Encrypted events have no row.
-- event_search_fts is an FTS5 index over event_search.value (external content: the text is kept once),
-- kept in step by the triggers, so any DELETE FROM event_search (redaction, retention) updates it.
CREATE TABLE event_search (
    stream_ordering INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    key TEXT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX event_search_room ON event_search (room_id, stream_ordering);
CREATE VIRTUAL TABLE event_search_fts USING fts5(
    value, content='event_search', content_rowid='stream_ordering', tokenize='porter unicode61'
);
CREATE TRIGGER event_search_insert AFTER INSERT ON event_search BEGIN
    INSERT INTO event_search_fts (rowid, value) VALUES (new.stream_ordering, new.value);
END;
CREATE TRIGGER event_search_delete AFTER DELETE ON event_search BEGIN
    INSERT INTO event_search_fts (event_search_fts, rowid, value) VALUES ('delete', old.stream_ordering, old.value);
END;
