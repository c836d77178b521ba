"""m.room.server_acl matching (pure kernel logic), per the spec's rules."""

from __future__ import annotations

import pytest

from homeserver.events.server_acl import server_allowed_by_acl

ACL = {"allow": ["*"], "deny": ["evil.example", "*.evil.example", "bad?.test"], "allow_ip_literals": False}


@pytest.mark.parametrize(("server", "allowed"), [
    ("good.example", True),
    ("good.example:8448", True),
    ("evil.example", False),
    ("evil.example:443", False),  # the port is ignored
    ("EVIL.Example", False),  # case-insensitive
    ("sub.evil.example", False),
    ("notevil.example", True),
    ("bad1.test", False),
    ("bad12.test", True),  # ? is exactly one character
    ("1.2.3.4", False),
    ("1.2.3.4:8448", False),
    ("[::1]:8448", False),
])
def test_matching(server: str, allowed: bool) -> None:
    assert server_allowed_by_acl(server, ACL) is allowed


def test_defaults() -> None:
    assert server_allowed_by_acl("any.example", {}) is False  # no allow list denies everyone
    assert server_allowed_by_acl("1.2.3.4", {"allow": ["*"]}) is True  # IP literals allowed by default
    assert server_allowed_by_acl("a.example", {"allow": ["a.example"], "deny": "a.example"}) is True
    assert server_allowed_by_acl("a.example", {"allow": [5, "a.*"]}) is True  # non-strings ignored
    assert server_allowed_by_acl("a.example", {"allow": ["a.example.*"]}) is False
    assert server_allowed_by_acl("a.b.example", {"allow": ["a.?.example"]}) is True
    assert server_allowed_by_acl("ab.example", {"allow": ["a[b].example"]}) is False  # no regex leaks
