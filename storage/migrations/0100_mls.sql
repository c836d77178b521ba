-- The MLS delivery service (docs/mls.md): KeyPackageRefs handed out, one group per
-- room with its current epoch, the commit log outside the room DAG, who sits at
-- each leaf, Welcome recipients and the "mls" sync stream's changes.

-- KeyPackages handed out by /keys/claim, by RefHash (hex), so a Welcome's
-- secrets can be routed to the devices that published them.
CREATE TABLE mls_key_package_refs (
    ref TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    claimed_ms BIGINT NOT NULL
);
CREATE INDEX mls_key_package_refs_claimed ON mls_key_package_refs (claimed_ms);

-- epoch is the group's current epoch: the epoch the next accepted commit must carry.
-- The conditional UPDATE ... WHERE epoch = ? is what makes exactly one commit win.
CREATE TABLE mls_groups (
    room_id TEXT NOT NULL PRIMARY KEY,
    epoch BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    group_info TEXT
);

-- The commit log: one row per accepted commit; (room_id, epoch) is unique, a
-- second guard against two winners. Bodies are unpadded base64, stored once.
CREATE TABLE mls_commits (
    room_id TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    stream_id BIGINT NOT NULL,
    sender TEXT NOT NULL,
    sender_device TEXT NOT NULL,
    commit_b64 TEXT NOT NULL,
    welcome_b64 TEXT,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (room_id, epoch)
);
CREATE INDEX mls_commits_stream ON mls_commits (stream_id);
CREATE INDEX mls_commits_received ON mls_commits (received_ms);

-- The devices a Welcome was encrypted to (from its KeyPackageRefs).
CREATE TABLE mls_welcome_recipients (
    room_id TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    PRIMARY KEY (room_id, epoch, user_id, device_id)
);

-- Which device sits at each leaf of the group's ratchet tree, from public commits:
-- added by the commit of added_epoch (-1: the creator), removed by the commit of
-- removed_epoch (NULL while it is still there). A device needs exactly the commits
-- in (added_epoch, removed_epoch], so sync sends it those and no others.
CREATE TABLE mls_leaves (
    room_id TEXT NOT NULL,
    leaf_index BIGINT NOT NULL,
    added_epoch BIGINT NOT NULL,
    removed_epoch BIGINT,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    PRIMARY KEY (room_id, leaf_index, added_epoch)
);
CREATE INDEX mls_leaves_user ON mls_leaves (user_id, room_id);

-- Leaves whose user left the room (or whose device was deleted), since when:
-- messages are refused once mls_removal_grace has passed.
CREATE TABLE mls_pending_removals (
    room_id TEXT NOT NULL,
    leaf_index BIGINT NOT NULL,
    since_ms BIGINT NOT NULL,
    PRIMARY KEY (room_id, leaf_index)
);

-- Positions of the "mls" stream: a commit or a change of pending removals in a room.
CREATE TABLE mls_stream (
    stream_id BIGINT NOT NULL PRIMARY KEY,
    room_id TEXT NOT NULL
);
