"""A small builder of rooms and events for auth-rule tests (real Events, no mocks).

Events get readable IDs (`$3:a.example`) rather than hashes: the auth rules never look
at ID format, and readable IDs make failures easy to follow.
"""

from __future__ import annotations

import itertools
from typing import Any

from homeserver.events.auth import auth_types_for_event, check_auth_rules
from homeserver.events.event import Event
from homeserver.events.power_levels import StateKey
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

ALICE = "@alice:a.example"  # the creator
BOB = "@bob:b.example"
CAROL = "@carol:c.example"
DAVE = "@dave:a.example"

ALL_VERSIONS = list(KNOWN_ROOM_VERSIONS)


def versions(condition: Any = None) -> list[str]:
    """Room version identifiers, optionally filtered by a predicate on RoomVersion."""
    return [v for v in ALL_VERSIONS if condition is None or condition(KNOWN_ROOM_VERSIONS[v])]


class Room:
    """A room's state plus helpers that create events and apply them if they pass auth."""

    def __init__(
        self,
        version: str,
        creator: str = ALICE,
        create_content: dict[str, Any] | None = None,
        bootstrap: bool = True,
    ) -> None:
        self.room_version: RoomVersion = KNOWN_ROOM_VERSIONS[version]
        self.state: dict[StateKey, Event] = {}
        self._counter = itertools.count(1)
        self.room_id = "!room:a.example"
        content: dict[str, Any] = {"room_version": version}
        if not self.room_version.implicit_room_creator:
            content["creator"] = creator
        content.update(create_content or {})
        self.create = self.make_create(creator, content)
        if self.room_version.room_id_is_create_event_hash:
            self.room_id = "!" + self.create.event_id[1:]
        self.state[("m.room.create", "")] = self.create
        self.creator = creator
        if bootstrap:
            self.add(self.member(creator, "join", prev=[self.create.event_id]))
            users = {} if self.room_version.privileged_creators else {creator: 100}
            self.add(self.power_levels({"users": users}))
            self.add(self.join_rules("public"))

    # -- building events (not applied) --------------------------------------------------

    def _next_id(self, sender: str) -> str:
        return f"${next(self._counter)}:{sender.split(':', 1)[1]}"

    def make_create(self, sender: str, content: dict[str, Any]) -> Event:
        pdu: dict[str, Any] = {
            "type": "m.room.create",
            "state_key": "",
            "sender": sender,
            "content": content,
            "prev_events": [],
            "auth_events": [],
            "depth": 1,
            "origin_server_ts": 0,
        }
        if not self.room_version.room_id_is_create_event_hash:
            pdu["room_id"] = self.room_id
        return Event.from_pdu(pdu, self.room_version, self._next_id(sender))

    def make(
        self,
        event_type: str,
        sender: str,
        content: dict[str, Any] | None = None,
        state_key: str | None = None,
        prev: list[str] | None = None,
        **extra: Any,
    ) -> Event:
        pdu: dict[str, Any] = {
            "type": event_type,
            "room_id": self.room_id,
            "sender": sender,
            "content": content or {},
            "prev_events": prev if prev is not None else ["$latest:a.example"],
            "auth_events": [],
            "depth": 5,
            "origin_server_ts": 10,
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        pdu.update(extra)
        return Event.from_pdu(pdu, self.room_version, self._next_id(sender))

    def member(
        self,
        target: str,
        membership: str,
        sender: str | None = None,
        prev: list[str] | None = None,
        **content: Any,
    ) -> Event:
        return self.make(
            "m.room.member",
            sender or target,
            {"membership": membership, **content},
            state_key=target,
            prev=prev,
        )

    def power_levels(
        self, content: dict[str, Any], sender: str | None = None, keep_creator: bool = True
    ) -> Event:
        """A power_levels event; before v12 the creator's 100 is kept unless told otherwise."""
        content = dict(content)
        if keep_creator and not self.room_version.privileged_creators:
            users = content.get("users")
            if isinstance(users, dict):
                content["users"] = {self.creator: 100, **users}
        return self.make("m.room.power_levels", sender or self.creator, content, state_key="")

    def join_rules(self, rule: str, sender: str | None = None, **content: Any) -> Event:
        return self.make(
            "m.room.join_rules", sender or self.creator, {"join_rule": rule, **content}, ""
        )

    # -- checking and applying -----------------------------------------------------------

    def auth_state(self, event: Event) -> dict[StateKey, Event]:
        return {k: self.state[k] for k in auth_types_for_event(event) if k in self.state}

    def check(self, event: Event) -> None:
        """Raise AuthError unless the event passes against the current state."""
        check_auth_rules(event, self.auth_state(event))

    def add(self, event: Event) -> Event:
        """Check, then apply to the state (state events only)."""
        self.check(event)
        return self.force(event)

    def force(self, event: Event) -> Event:
        """Apply without checking, to set up states the rules would not produce."""
        if event.state_key is not None:
            self.state[(event.type, event.state_key)] = event
        return event

    def join(self, user: str) -> Event:
        """Make `user` a joined member (forced, whatever the join rule)."""
        return self.force(self.member(user, "join"))

    def set_levels(self, **levels: Any) -> Event:
        """Replace the power levels (forced), keeping the creator at 100 before v12."""
        users = dict(levels.pop("users", {}))
        return self.force(self.power_levels({"users": users, **levels}))
