"""The error raised when an event fails the authorization rules."""

from __future__ import annotations


class AuthError(Exception):
    """The event is not allowed; the message names the rule that rejected it."""
