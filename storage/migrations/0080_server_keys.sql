-- Other servers' signing keys, as fetched from them or from a notary.
-- valid_until_ts is how long the key may verify signatures: the response's valid_until_ts for a
-- current key, its expired_ts for an old one (expired_ts is then also set). key_json is the whole
-- key document the key came in, with only its owner's signatures, so we can answer as a notary.
CREATE TABLE server_signing_keys (
    server_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    verify_key TEXT NOT NULL,
    valid_until_ts BIGINT NOT NULL,
    expired_ts BIGINT,
    fetched_ts BIGINT NOT NULL,
    from_server TEXT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (server_name, key_id)
);
