-- Inbound federation transactions (PUT /send/{txnId}), deduplicated by (origin, txn_id).
-- response_json is NULL while the transaction is being worked on; its raw PDUs wait in
-- federation_inbound_pdus until then, so a crash mid-transaction loses nothing (they are
-- worked on again at start-up, and a retry of the same transaction waits for that answer).
CREATE TABLE federation_inbound_transactions (
    origin TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    received_ts BIGINT NOT NULL,
    response_json TEXT,
    PRIMARY KEY (origin, txn_id)
);
CREATE INDEX federation_inbound_transactions_received ON federation_inbound_transactions (received_ts);

CREATE TABLE federation_inbound_pdus (
    origin TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    pdu_json TEXT NOT NULL,
    PRIMARY KEY (origin, txn_id, idx)
);
