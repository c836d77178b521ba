"""Rate-limited responses (429 M_LIMIT_EXCEEDED with retry_after_ms), on a server with limits on."""

from __future__ import annotations

from homeserver.config.schema import RateLimit
from homeserver.handlers.ratelimit import Ratelimiter
from tests.support.accounts import V3, admin_register, password_auth, password_login
from tests.support.client import Client, random_localpart
from tests.support.server import RunningServer


def test_failed_logins_are_limited(limited_server: RunningServer) -> None:
    user = {"type": "m.id.user", "user": random_localpart()}
    statuses = [password_login(limited_server.base_url, user, "wrong") for _ in range(3)]
    assert [r.status for r in statuses[:2]] == [403, 403]
    limited = statuses[2]
    assert (limited.status, limited.errcode) == (429, "M_LIMIT_EXCEEDED")
    assert isinstance(limited.body["retry_after_ms"], int) and limited.body["retry_after_ms"] > 0


def test_logins_per_address_are_limited(limited_server: RunningServer) -> None:
    responses = [password_login(limited_server.base_url, random_localpart(), "pw") for _ in range(6)]
    assert responses[-1].status == 429
    assert responses[-1].body["retry_after_ms"] > 0


def test_registrations_are_limited(limited_server: RunningServer) -> None:
    client = Client(limited_server.base_url)
    statuses = []
    for _ in range(3):
        response = client.post(f"{V3}/register", {"username": random_localpart(),
                                                  "auth": {"type": "m.login.dummy"}})
        statuses.append(response)
    assert [r.status for r in statuses] == [200, 200, 429]
    assert statuses[2].errcode == "M_LIMIT_EXCEEDED" and statuses[2].body["retry_after_ms"] > 0


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_leaky_bucket_drains_at_the_configured_rate() -> None:
    clock = ManualClock()
    limiter = Ratelimiter(clock, RateLimit(per_second=0.5, burst_count=2))
    assert limiter.retry_after("alice") is None
    assert limiter.retry_after("alice") is None
    assert limiter.retry_after("alice") == 2.0  # one action's worth drains in 2 s
    assert limiter.retry_after("bob") is None  # keys are independent
    clock.now += 2.0
    assert limiter.retry_after("alice") is None
    assert limiter.retry_after("alice") is not None


def test_disabled_limit_never_refuses() -> None:
    limiter = Ratelimiter(ManualClock(), RateLimit(per_second=0.001, burst_count=1, enabled=False))
    assert all(limiter.retry_after("alice") is None for _ in range(100))


def test_check_without_update_does_not_count() -> None:
    limiter = Ratelimiter(ManualClock(), RateLimit(per_second=1, burst_count=1))
    assert all(limiter.retry_after("alice", update=False) is None for _ in range(5))
    limiter.record_action("alice")
    assert limiter.retry_after("alice", update=False) == 1.0



def test_wrong_passwords_in_uia_count_as_failed_attempts(limited_server: RunningServer) -> None:
    localpart = random_localpart()
    registered = admin_register(limited_server, localpart)
    assert registered.status == 200, registered
    client = Client(limited_server.base_url, registered.body["access_token"], registered.body["user_id"])
    statuses = []
    for _ in range(3):
        body = {"devices": [], "auth": password_auth(client, "wrong")}
        statuses.append(client.post(f"{V3}/delete_devices", body))
    assert [r.status for r in statuses[:2]] == [401, 401]
    assert (statuses[2].status, statuses[2].errcode) == (429, "M_LIMIT_EXCEEDED")
    assert statuses[2].body["retry_after_ms"] > 0
