"""The ``retention:`` section (MSC1763, with Synapse's keys): room message retention policies
and the purge jobs that enforce them. docs/retention.md describes it."""

from __future__ import annotations

import attrs

from homeserver.config.loader import Duration, field

#: Synapse's purge job when none is configured: every room, once a day.
DEFAULT_PURGE_INTERVAL = Duration(86_400_000)


@attrs.frozen(kw_only=True)
class RetentionPolicy:
    """A room's policy when it has no m.room.retention state event."""

    min_lifetime: Duration | None = field(None)
    max_lifetime: Duration | None = field(None)


def _job_problem(job: PurgeJob) -> str | None:
    if job.shortest_max_lifetime is not None and job.longest_max_lifetime is not None \
            and job.shortest_max_lifetime > job.longest_max_lifetime:
        return "shortest_max_lifetime may not be greater than longest_max_lifetime"
    if job.interval <= 0:
        return "interval must be greater than zero"
    return None


@attrs.frozen(kw_only=True)
class PurgeJob:
    """Purges the rooms whose max_lifetime is in (shortest_max_lifetime, longest_max_lifetime]
    (an unset bound is open), every ``interval``."""

    longest_max_lifetime: Duration | None = field(None)
    shortest_max_lifetime: Duration | None = field(None)
    interval: Duration = field(DEFAULT_PURGE_INTERVAL)

    @property
    def job_id(self) -> str:
        """Stable across restarts while the job's range is unchanged (its timer's key)."""
        def bound(value: int | None) -> str:
            return "any" if value is None else str(int(value))
        return f"{bound(self.shortest_max_lifetime)}-{bound(self.longest_max_lifetime)}"

    def covers(self, max_lifetime: int) -> bool:
        if self.shortest_max_lifetime is not None and max_lifetime <= self.shortest_max_lifetime:
            return False
        return self.longest_max_lifetime is None or max_lifetime <= self.longest_max_lifetime


def _section_problem(section: RetentionSection) -> str | None:
    low, high = section.allowed_lifetime_min, section.allowed_lifetime_max
    if low is not None and high is not None and low > high:
        return "allowed_lifetime_min may not be greater than allowed_lifetime_max"
    policy = section.default_policy
    if policy.min_lifetime is not None and policy.max_lifetime is not None \
            and policy.min_lifetime > policy.max_lifetime:
        return "default_policy.min_lifetime may not be greater than its max_lifetime"
    for job in section.purge_jobs:
        problem = _job_problem(job)
        if problem is not None:
            return f"purge_jobs: {problem}"
    return None


@attrs.frozen(kw_only=True)
class RetentionSection:
    enabled: bool = field(False)
    default_policy: RetentionPolicy = field(factory=RetentionPolicy)
    allowed_lifetime_min: Duration | None = field(None)
    allowed_lifetime_max: Duration | None = field(None)
    purge_jobs: list[PurgeJob] = field(factory=list)

    def jobs(self) -> list[PurgeJob]:
        """The configured jobs, or Synapse's default one (every room, daily)."""
        return list(self.purge_jobs) or [PurgeJob()]

    def clamp(self, max_lifetime: int) -> int:
        if self.allowed_lifetime_min is not None:
            max_lifetime = max(max_lifetime, int(self.allowed_lifetime_min))
        if self.allowed_lifetime_max is not None:
            max_lifetime = min(max_lifetime, int(self.allowed_lifetime_max))
        return max_lifetime


RETENTION_CHECK = _section_problem
