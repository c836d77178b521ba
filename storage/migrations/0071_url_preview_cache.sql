-- URL previews (issue 18, item 7): the last preview of each URL, served again until expires_ts.
-- og is the JSON object answered to clients (its og:image already an mxc:// URI of ours).
CREATE TABLE url_preview_cache (
    url TEXT PRIMARY KEY,
    fetched_ts BIGINT NOT NULL,
    expires_ts BIGINT NOT NULL,
    og TEXT NOT NULL
);
CREATE INDEX url_preview_cache_expires ON url_preview_cache (expires_ts);
