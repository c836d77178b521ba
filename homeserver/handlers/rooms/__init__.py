"""Rooms: creation, membership, sending, state, history, visibility and the directory."""
