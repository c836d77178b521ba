-- The media repository (issue 18): what we know of each file; the bytes live under media_store_path.

-- Media uploaded here. A row made by POST /_matrix/media/v1/create has media_length
-- NULL until its upload arrives; created_ts then bounds how long it waits.
-- authenticated = 1: uploaded while enable_authenticated_media was on, so never served
-- by the legacy unauthenticated endpoints.
CREATE TABLE local_media (
    media_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    media_type TEXT,
    media_length BIGINT,
    upload_name TEXT,
    sha256 TEXT,
    last_access_ts BIGINT,
    quarantined_by TEXT,
    authenticated INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX local_media_user ON local_media (user_id, created_ts);
CREATE INDEX local_media_sha256 ON local_media (sha256);
CREATE INDEX local_media_created ON local_media (created_ts);

-- Copies of other servers' media. file_id names our file (never the remote media ID,
-- which is the other server's choice and so never part of a path).
CREATE TABLE remote_media_cache (
    media_origin TEXT NOT NULL,
    media_id TEXT NOT NULL,
    file_id TEXT NOT NULL UNIQUE,
    media_type TEXT NOT NULL,
    media_length BIGINT NOT NULL,
    upload_name TEXT,
    sha256 TEXT,
    created_ts BIGINT NOT NULL,
    last_access_ts BIGINT,
    quarantined_by TEXT,
    authenticated INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (media_origin, media_id)
);
CREATE INDEX remote_media_cache_sha256 ON remote_media_cache (sha256);
CREATE INDEX remote_media_cache_access ON remote_media_cache (last_access_ts);
