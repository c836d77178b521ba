-- One-use login tokens (MSC3882 POST /_matrix/client/v1/login/get_token, spent by m.login.token at /login).
-- Only the token's SHA-256 is kept.
CREATE TABLE login_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    valid_until_ms BIGINT NOT NULL
);
CREATE INDEX login_tokens_valid_until ON login_tokens (valid_until_ms);
