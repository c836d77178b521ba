-- Rooms, events, state groups, current state and memberships (issue 5).

CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator TEXT NOT NULL,
    is_public INTEGER NOT NULL DEFAULT 0,
    created_ts BIGINT NOT NULL
);

-- Every event we hold. `json` is the PDU as stored; once redacted it holds the
-- redacted form (hashes and signatures still verify against it) and
-- `redacted_by` names the redaction. `state_group` is the state AFTER the event.
CREATE TABLE events (
    stream_ordering BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT,
    sender TEXT NOT NULL,
    depth BIGINT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    received_ts BIGINT NOT NULL,
    state_group BIGINT NOT NULL,
    replaces_state TEXT,
    contains_url INTEGER NOT NULL DEFAULT 0,
    txn_scope TEXT,
    txn_id TEXT,
    redacted_by TEXT,
    json TEXT NOT NULL
);
CREATE INDEX events_room_stream ON events (room_id, stream_ordering);

-- State groups: a group is either a snapshot (prev_group NULL, entries = whole
-- state) or a delta on prev_group (entries = what changed). chain_length bounds
-- how many deltas a read walks; a snapshot is written when it gets too long.
CREATE TABLE state_groups (
    id BIGINT PRIMARY KEY,
    room_id TEXT NOT NULL,
    prev_group BIGINT,
    chain_length INTEGER NOT NULL
);
CREATE TABLE state_group_entries (
    state_group BIGINT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (state_group, type, state_key)
);

CREATE TABLE current_state_events (
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, type, state_key)
);

-- The room's forward extremity and head, so a restart resumes the DAG.
CREATE TABLE room_heads (
    room_id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    depth BIGINT NOT NULL,
    state_group BIGINT NOT NULL
);

-- Current membership per (room, user), local and remote users alike.
CREATE TABLE room_members_current (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    membership TEXT NOT NULL,
    event_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    forgotten INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_current_user ON room_members_current (user_id, membership);
CREATE INDEX room_members_current_room ON room_members_current (room_id, membership);

-- Every membership change, for sync's "what changed for this user".
CREATE TABLE room_membership_changes (
    stream_ordering BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    membership TEXT NOT NULL
);
CREATE INDEX room_membership_changes_user ON room_membership_changes (user_id, stream_ordering);

-- Client transaction IDs: (scope, txn_id) -> event, so a retry returns the same event.
CREATE TABLE event_txn_ids (
    txn_scope TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    inserted_ts BIGINT NOT NULL,
    PRIMARY KEY (txn_scope, txn_id)
);

CREATE TABLE event_relations (
    event_id TEXT PRIMARY KEY,
    relates_to_id TEXT NOT NULL,
    rel_type TEXT NOT NULL,
    aggregation_key TEXT,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    sender TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL
);
CREATE INDEX event_relations_target ON event_relations (relates_to_id, stream_ordering);

CREATE TABLE room_aliases (
    alias TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    creator TEXT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);
