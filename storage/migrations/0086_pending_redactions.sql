-- Remote redactions whose target we did not hold when they arrived: applied (or dropped) when
-- the target is stored. `privileged` (0/1): the redacter had the redact level (or the room
-- version's auth rules decided), so it applies whoever sent the target; otherwise it applies
-- only to a target sent by a user of the redacter's server.
CREATE TABLE pending_redactions (
    target_event_id TEXT NOT NULL,
    redaction_event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    redaction_sender TEXT NOT NULL,
    privileged INTEGER NOT NULL,
    PRIMARY KEY (target_event_id, redaction_event_id)
);
