-- Tokens that let someone register when registration_requires_token is on.
CREATE TABLE registration_tokens (
    token TEXT PRIMARY KEY,
    uses_allowed INTEGER,
    completed INTEGER NOT NULL DEFAULT 0,
    expiry_ms BIGINT,
    created_ms BIGINT NOT NULL
);
