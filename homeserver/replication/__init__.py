"""Replication between the processes of one server (docs/workers.md): the Redis channel
that carries stream advances and cache drops, and HTTP forwarding to the main process."""
