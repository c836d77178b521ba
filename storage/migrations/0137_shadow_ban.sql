-- Shadow-banned accounts (Synapse's users.shadow_banned, /_synapse/admin/v1/users/{id}/shadow_ban):
-- their sends, invites and typing appear to succeed but reach nobody. 0/1.
ALTER TABLE users ADD COLUMN shadow_banned INTEGER NOT NULL DEFAULT 0;
