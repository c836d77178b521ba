-- Persisted timers (homeserver/handlers/timers.py): one row per pending timer, of any
-- kind (delayed events now; self-destructing messages later). A timer lives until its
-- owner has acted on it, so one that fell due while the server was down fires at
-- start-up. (kind, timer_key) names what to act on; the owner keeps the details.
CREATE TABLE timers (
    kind TEXT NOT NULL,
    timer_key TEXT NOT NULL,
    due_ts BIGINT NOT NULL,
    PRIMARY KEY (kind, timer_key)
);
CREATE INDEX timers_due ON timers (due_ts);
