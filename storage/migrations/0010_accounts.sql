-- Accounts: users, their devices, and the tokens that authenticate them.
-- Booleans are INTEGER 0/1 on both engines; times are milliseconds since the epoch.

CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    password_hash TEXT,
    created_ms BIGINT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    is_guest INTEGER NOT NULL DEFAULT 0,
    deactivated INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    display_name TEXT,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT,
    last_seen_ip TEXT,
    PRIMARY KEY (user_id, device_id)
);

-- Only the SHA-256 of a token is stored, so a leaked database cannot be replayed.
CREATE TABLE access_tokens (
    id BIGINT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    device_id TEXT,
    created_ms BIGINT NOT NULL,
    valid_until_ms BIGINT,
    refresh_token_id BIGINT
);
CREATE INDEX access_tokens_user_device ON access_tokens (user_id, device_id);

CREATE TABLE refresh_tokens (
    id BIGINT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_user_device ON refresh_tokens (user_id, device_id);
