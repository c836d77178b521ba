-- Per-user message rate limits set by a server admin (Synapse's ratelimit_override);
-- 0 and 0 switch the limit off for that user.
CREATE TABLE ratelimit_overrides (
    user_id TEXT PRIMARY KEY,
    messages_per_second BIGINT NOT NULL,
    burst_count BIGINT NOT NULL
);
