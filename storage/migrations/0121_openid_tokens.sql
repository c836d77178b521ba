-- OpenID tokens (POST /user/{userId}/openid/request_token): short-lived proof of a user's identity that
-- a third party checks at GET /_matrix/federation/v1/openid/userinfo. Only the token's SHA-256 is kept.
CREATE TABLE openid_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    valid_until_ms BIGINT NOT NULL
);
CREATE INDEX openid_tokens_valid_until ON openid_tokens (valid_until_ms);
