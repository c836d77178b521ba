"""Leaky-bucket rate limiting, keyed by user id, room id, device or IP address.

Each key may take ``burst_count`` actions at once; the bucket drains at
``per_second``.  A denied action says how long until it would fit
(429 M_LIMIT_EXCEEDED with retry_after_ms).  ``enabled: false`` turns a limit off.

Usage from any area: ``hs.get(RateLimiters).message.ratelimit(requester.user_id)``.
Which limiter guards what is listed on ``RateLimiters``; inbound federation
requests go through ``RateLimiters.federation`` (see federation_ratelimit.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from homeserver.config.ratelimits import RateLimit
from homeserver.errors import limit_exceeded
from homeserver.handlers.federation_ratelimit import FederationRateLimiter
from homeserver.server import Server

# Drained buckets are dropped every this many checks, so the table never grows
# beyond the keys that were active recently.
PRUNE_EVERY = 1000


class Ratelimiter:
    def __init__(self, clock: Callable[[], float], limit: RateLimit) -> None:
        self.clock = clock
        self.enabled = limit.enabled
        self.rate = float(limit.per_second)
        self.burst = float(limit.burst_count)
        # key -> (level of the bucket, time that level was measured)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._checks = 0
        #: key -> (per_second, burst_count) set by an admin (rate_limit overrides); 0, 0: no limit.
        self.overrides: dict[str, tuple[float, float]] = {}

    def _limits(self, key: str) -> tuple[float, float]:
        return self.overrides.get(key, (self.rate, self.burst))

    def _level(self, key: str, now: float) -> float:
        level, measured = self._buckets.get(key, (0.0, now))
        return max(0.0, level - (now - measured) * self._limits(key)[0])

    def retry_after(self, key: str, update: bool = True, n: float = 1.0) -> float | None:
        """Seconds to wait if ``n`` more actions would overflow the bucket; else None.

        With ``update`` the actions are counted when allowed.
        """
        if not self.enabled:
            return None
        rate, burst = self._limits(key)
        if rate <= 0 and burst <= 0:
            return None  # an override that switches the limit off for this key
        now = self.clock()
        self._maybe_prune(now)
        level = self._level(key, now)
        if level + n > burst:
            return (level + n - burst) / rate if rate > 0 else 3600.0
        if update:
            self._buckets[key] = (level + n, now)
        return None

    def ratelimit(self, key: str, update: bool = True, n: float = 1.0) -> None:
        """Raise 429 M_LIMIT_EXCEEDED (with retry_after_ms) if the action does not fit."""
        wait = self.retry_after(key, update, n)
        if wait is not None:
            raise limit_exceeded(max(1, math.ceil(wait * 1000)))

    def exceeds_burst(self, n: float) -> bool:
        """Would ``n`` actions at once overflow even an empty bucket?"""
        return self.enabled and n > self.burst

    def record_action(self, key: str, n: float = 1.0) -> None:
        """Count actions even past the limit (e.g. a failure noted after the fact)."""
        if not self.enabled:
            return
        now = self.clock()
        self._buckets[key] = (self._level(key, now) + n, now)

    def _maybe_prune(self, now: float) -> None:
        self._checks += 1
        if self._checks % PRUNE_EVERY:
            return
        drained = [key for key in self._buckets if self._level(key, now) <= 0.0]
        for key in drained:
            del self._buckets[key]


def ratelimit_all(*checks: tuple[Ratelimiter, str]) -> None:
    """One action against several limiters: refused (with the longest wait) unless
    every one has room, and then counted in all of them, so a refusal costs nothing."""
    waits = [wait for limiter, key in checks if (wait := limiter.retry_after(key, update=False)) is not None]
    if waits:
        raise limit_exceeded(max(1, math.ceil(max(waits) * 1000)))
    for limiter, key in checks:
        limiter.record_action(key)


class RateLimiters:
    """The server's configured limiters, built once, with the key each is counted by.

    Limiters for features that have not landed yet (media creation, reports,
    delayed events, remote joins, inbound federation) are built and validated
    here all the same, so those features only have to call them.
    """

    def __init__(self, hs: Server) -> None:
        config = hs.config

        def clock() -> float:
            return float(hs.reactor.seconds())

        def bucket(limit: RateLimit) -> Ratelimiter:
            return Ratelimiter(clock, limit)

        self.message = bucket(config.rc_message)  # sender; also every createRoom
        self.registration = bucket(config.rc_registration)  # client IP
        self.login_address = bucket(config.rc_login.address)  # client IP
        self.login_account = bucket(config.rc_login.account)  # user
        self.login_failed_attempts = bucket(config.rc_login.failed_attempts)  # user
        self.joins_local = bucket(config.rc_joins.local)  # joining user
        self.joins_remote = bucket(config.rc_joins.remote)  # joining user, joins over federation
        self.joins_per_room = bucket(config.rc_joins_per_room)  # room
        self.invites_per_room = bucket(config.rc_invites.per_room)  # room
        self.invites_per_user = bucket(config.rc_invites.per_user)  # invitee
        self.invites_per_issuer = bucket(config.rc_invites.per_issuer)  # inviter
        self.room_creation = bucket(config.rc_room_creation)  # creator
        self.presence = bucket(config.rc_presence.per_user)  # user
        self.key_requests = bucket(config.rc_key_requests)  # sending user and device
        self.threepid_validation = bucket(config.rc_3pid_validation)  # (medium, IP) and (medium, address)
        # Redactions of other people's events; without the key they count as rc_message.
        self.admin_redaction = bucket(config.rc_admin_redaction) if config.rc_admin_redaction else None
        self.media_create = bucket(config.rc_media_create)  # uploader (media repository)
        self.profile = bucket(config.rc_profile)  # user changing their profile
        self.user_directory = bucket(config.rc_user_directory)  # searcher
        self.reports = bucket(config.rc_reports)  # reporter (event, room and user reports)
        self.delayed_event_mgmt = bucket(config.rc_delayed_event_mgmt)  # user (delayed events)
        self.federation = FederationRateLimiter(hs.reactor, config.rc_federation)  # origin server

    def check_threepid_request(self, medium: str, client_ip: str, address: object) -> None:
        """``/requestToken``: per (medium, client IP) and per (medium, address), as Synapse counts."""
        checks = [(self.threepid_validation, f"{medium} ip {client_ip}")]
        if isinstance(address, str):
            checks.append((self.threepid_validation, f"{medium} address {address.strip().lower()}"))
        ratelimit_all(*checks)
