"""Ephemeral data: typing notifications, read receipts and presence."""
