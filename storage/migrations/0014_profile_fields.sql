-- Extended profile fields (spec v1.16): any namespaced key with a JSON value.
-- displayname and avatar_url stay in the profiles table.
CREATE TABLE profile_fields (
    user_id TEXT NOT NULL,
    field_name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (user_id, field_name)
);
