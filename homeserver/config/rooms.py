"""Config sections about rooms and users: directory rules, the user directory,
remote-room limits and auto-joined rooms, in Synapse's shapes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import attrs

from homeserver.config.loader import field
from homeserver.config.names import server_name_problem


@functools.lru_cache(maxsize=256)
def glob_pattern(glob: str) -> re.Pattern[str]:
    """``*`` matches any run of characters and ``?`` one; the rest is literal.

    The whole string must match, ignoring case, as Synapse's rule globs do.
    """
    parts = [".*" if char == "*" else "." if char == "?" else re.escape(char) for char in glob]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


@attrs.frozen(kw_only=True)
class DirectoryRule:
    """One entry of alias_creation_rules or room_list_publication_rules."""

    user_id: str = field("*")
    alias: str = field("*")
    room_id: str = field("*")
    action: Literal["allow", "deny"] = field("allow")

    def matches(self, user_id: str, room_id: str, aliases: Iterable[str]) -> bool:
        if not glob_pattern(self.user_id).fullmatch(user_id):
            return False
        if not glob_pattern(self.room_id).fullmatch(room_id):
            return False
        if self.alias == "*":
            return True
        # A room without aliases only matches rules that do not name one.
        return any(glob_pattern(self.alias).fullmatch(alias) for alias in aliases)


def rules_allow(rules: Sequence[DirectoryRule] | None, user_id: str, room_id: str,
                aliases: Iterable[str], unset_allows: bool) -> bool:
    """The first matching rule decides; none matching denies; ``None`` means unset."""
    if rules is None:
        return unset_allows
    aliases = list(aliases)
    for rule in rules:
        if rule.matches(user_id, room_id, aliases):
            return rule.action == "allow"
    return False


@attrs.frozen(kw_only=True)
class UserDirectorySection:
    enabled: bool = field(True)
    search_all_users: bool = field(False)
    prefer_local_users: bool = field(False)
    exclude_remote_users: bool = field(False)
    show_locked_users: bool = field(False)


@attrs.frozen(kw_only=True)
class ServerNoticesSection:
    """Synapse's ``server_notices``: off until ``system_mxid_localpart`` names the sender."""

    system_mxid_localpart: str | None = field(None)
    system_mxid_display_name: str | None = field(None)
    system_mxid_avatar_url: str | None = field(None)
    room_name: str = field("Server Notices")
    room_topic: str | None = field(None)
    auto_join: bool = field(False)


@attrs.frozen(kw_only=True)
class LimitRemoteRooms:
    """Refuse joins over federation into rooms more complex than ``complexity``."""

    enabled: bool = field(False)
    complexity: float = field(1.0, check=lambda v: None if v > 0 else "expected a number greater than zero")
    complexity_error: str = field("This room is too complex for this server to join.")
    admins_can_join: bool = field(False)


def alias_list_problem(values: list[str]) -> str | None:
    for value in values:
        localpart, colon, server = value[1:].partition(":")
        if not value.startswith("#") or not colon or not localpart or server_name_problem(server):
            return f"expected room aliases such as #lobby:example.com, got {value!r}"
    return None


_MIME_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9*][A-Za-z0-9!#$&^_.+*-]*$")


def mime_type_list_problem(values: list[str]) -> str | None:
    for value in values:
        if not _MIME_TYPE.match(value):
            return f"expected MIME types such as image/png, got {value!r}"
    return None
