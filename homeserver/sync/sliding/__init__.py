"""Simplified sliding sync (MSC4186): a third transport over the one sync builder."""
