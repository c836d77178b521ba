-- End-to-end encryption keys: device identity keys, one-time keys, fallback keys,
-- cross-signing keys and the signatures users make over each other's keys.
-- JSON is stored as TEXT exactly as the client uploaded it (signatures must verify).

CREATE TABLE e2e_device_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    added_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- upload_seq orders keys by upload so /keys/claim hands out the oldest first,
-- which is what the device expects (it discards its own oldest keys first).
CREATE TABLE e2e_one_time_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    upload_seq BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id)
);
CREATE INDEX e2e_one_time_keys_claim_order
    ON e2e_one_time_keys (user_id, device_id, algorithm, upload_seq);

-- One fallback key per algorithm and device (MSC2732); "used" is 0/1.
CREATE TABLE e2e_fallback_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, device_id, algorithm)
);

-- The current master / self_signing / user_signing key of each user.
CREATE TABLE e2e_cross_signing_keys (
    user_id TEXT NOT NULL,
    key_type TEXT NOT NULL,
    public_key TEXT NOT NULL,
    key_json TEXT NOT NULL,
    added_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, key_type)
);

-- A signature by signer (a user and one of their keys) over a target key: a
-- device (target_key_id = device id) or a cross-signing key (its public key).
CREATE TABLE e2e_signatures (
    signer_user_id TEXT NOT NULL,
    signer_key_id TEXT NOT NULL,
    target_user_id TEXT NOT NULL,
    target_key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (target_user_id, target_key_id, signer_user_id, signer_key_id)
);
