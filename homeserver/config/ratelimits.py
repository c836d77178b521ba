"""The rate-limit sections of homeserver.yaml, in Synapse's shapes and with its defaults.

Every client-facing limit is a leaky bucket (``per_second``, ``burst_count``);
Vignette adds ``enabled`` so a limit can be switched off.  ``rc_federation``
is Synapse's request-window limiter for inbound federation instead.
"""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.config.loader import field


def _positive(value: float) -> str | None:
    return None if value > 0 else "expected a number greater than zero"


def _non_negative(value: float) -> str | None:
    return None if value >= 0 else "expected a number of zero or more"


@attrs.frozen(kw_only=True)
class RateLimit:
    """A leaky bucket: ``burst_count`` actions at once, refilled at ``per_second``."""

    per_second: float = field(0.17, check=_positive)
    burst_count: float = field(3.0, check=_positive)
    enabled: bool = field(True)


def bucket(per_second: float, burst_count: float) -> Any:
    """A field whose default bucket differs from RateLimit's own defaults.

    Keys left out of a section keep these defaults (the loader starts from the
    field's default), as in Synapse: ``rc_joins: {local: {per_second: 1}}``
    keeps local's burst of 10.
    """
    return field(factory=lambda: RateLimit(per_second=per_second, burst_count=burst_count))


@attrs.frozen(kw_only=True)
class LoginRateLimits:
    address: RateLimit = bucket(0.003, 5)
    account: RateLimit = bucket(0.003, 5)
    failed_attempts: RateLimit = bucket(0.17, 3)


@attrs.frozen(kw_only=True)
class JoinRateLimits:
    """Joins per user: into rooms this server is in, and over federation."""

    local: RateLimit = bucket(0.1, 10)
    remote: RateLimit = bucket(0.01, 10)


@attrs.frozen(kw_only=True)
class InviteRateLimits:
    """Invites into one room, to one user, and from one user."""

    per_room: RateLimit = bucket(0.3, 10)
    per_user: RateLimit = bucket(0.003, 5)
    per_issuer: RateLimit = bucket(0.3, 10)


@attrs.frozen(kw_only=True)
class PresenceRateLimits:
    per_user: RateLimit = bucket(0.1, 1)


@attrs.frozen(kw_only=True)
class FederationRateLimits:
    """Inbound federation requests per origin server (Synapse's rc_federation).

    Once more than ``sleep_limit`` arrived within ``window_size`` ms, each
    waits ``sleep_delay`` ms; at most ``concurrent`` run at once; while more
    than ``reject_limit`` wait, new ones are refused.
    """

    window_size: int = field(1000, check=_positive)
    sleep_limit: int = field(10, check=_non_negative)
    sleep_delay: int = field(500, check=_non_negative)
    reject_limit: int = field(50, check=_positive)
    concurrent: int = field(3, check=_positive)
    enabled: bool = field(True)
