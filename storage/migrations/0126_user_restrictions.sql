-- Account locking and suspension (/_matrix/client/v1/admin/lock|suspend/{userId}): a row per user an admin
-- has locked or suspended (0/1 each); no row means neither.
CREATE TABLE user_restrictions (
    user_id TEXT PRIMARY KEY,
    locked INTEGER NOT NULL DEFAULT 0,
    suspended INTEGER NOT NULL DEFAULT 0,
    updated_ts BIGINT NOT NULL
);
