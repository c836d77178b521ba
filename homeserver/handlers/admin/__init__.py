"""The server admin's tools behind ``/_synapse/admin`` (users, rooms, room deletion)."""
