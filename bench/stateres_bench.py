"""Benchmark: resolve two conflicting 100-event forks of a 1,500-member room.

Run from the repository root:  python -m bench.stateres_bench [--rounds N] [--room-version V]

The room: create, the creator's join, power levels (two admins), join rules (public),
1,500 joins. Then each admin writes a fork of 100 state events on top of that state:
topic and name changes, display-name changes by members, kicks, and every tenth event a
power-levels change, each citing the auth events the spec selects. The forks share the
1,500-member base, so both state maps hold ~1,600 entries and ~200 conflict.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.events.stateres import StateKey, resolve_state

MEMBERS = 1500
FORK_LENGTH = 100
ALICE = "@alice:example.com"
BOB = "@bob:example.com"


class BenchRoom:
    """Builds events with readable fake IDs and tracks the state as they are added."""

    def __init__(self, room_version: RoomVersion) -> None:
        self.room_version = room_version
        self.events: dict[str, Event] = {}
        self.room_id: str | None = None
        self.ts = 0

    def add(
        self,
        event_id: str,
        event_type: str,
        sender: str,
        state_key: str,
        content: dict[str, Any],
        auth: list[str],
        state: dict[StateKey, str],
    ) -> str:
        self.ts += 1
        pdu: dict[str, Any] = {
            "event_id": event_id,
            "type": event_type,
            "sender": sender,
            "state_key": state_key,
            "content": content,
            "origin_server_ts": self.ts,
            "depth": self.ts,
            "prev_events": [],
            # v12 events never cite the create event; their room ID names it.
            "auth_events": [
                a for a in auth if not (self.room_version.privileged_creators and a == "$create")
            ],
        }
        if self.room_id is not None:
            pdu["room_id"] = self.room_id
        self.events[event_id] = Event.from_pdu(pdu, self.room_version, event_id=event_id)
        state[(event_type, state_key)] = event_id
        return event_id


def build_room(
    room_version: RoomVersion, members: int = MEMBERS, fork_length: int = FORK_LENGTH
) -> tuple[BenchRoom, list[dict[StateKey, str]]]:
    room = BenchRoom(room_version)
    base: dict[StateKey, str] = {}
    create_content: dict[str, Any] = {"room_version": room_version.identifier}
    if not room_version.implicit_room_creator:
        create_content["creator"] = ALICE
    if room_version.privileged_creators:
        create_content["additional_creators"] = [BOB]
    else:
        room.room_id = "!bench:example.com"
    room.add("$create", "m.room.create", ALICE, "", create_content, [], base)
    if room.room_id is None:
        room.room_id = "!create"
    member = "m.room.member"
    room.add("$join-alice", member, ALICE, ALICE, {"membership": "join"}, ["$create"], base)
    admins = {} if room_version.privileged_creators else {ALICE: 100, BOB: 100}
    room.add(
        "$pl-0",
        "m.room.power_levels",
        ALICE,
        "",
        {"users": admins, "state_default": 50, "kick": 50},
        ["$create", "$join-alice"],
        base,
    )
    core = ["$create", "$pl-0"]
    room.add(
        "$join-rules",
        "m.room.join_rules",
        ALICE,
        "",
        {"join_rule": "public"},
        [*core, "$join-alice"],
        base,
    )
    join_auth = [*core, "$join-rules"]
    room.add("$join-bob", member, BOB, BOB, {"membership": "join"}, join_auth, base)
    for n in range(members):
        user = f"@user{n}:example.com"
        room.add(f"$join-{n}", member, user, user, {"membership": "join"}, join_auth, base)

    forks = []
    for admin, tag in ((ALICE, "a"), (BOB, "b")):
        state = dict(base)
        admin_join = base[(member, admin)]
        for i in range(fork_length):
            event_id = f"${tag}-{i:03d}"
            pl = state[("m.room.power_levels", "")]
            auth = ["$create", pl, admin_join]
            kind = i % 10
            if kind == 9:
                users = {} if room_version.privileged_creators else {ALICE: 100, BOB: 100}
                users[f"@user{i}:example.com"] = 10 + i // 10
                content = {"users": users, "state_default": 50, "kick": 50}
                room.add(event_id, "m.room.power_levels", admin, "", content, auth, state)
            elif kind in (1, 5):
                target = f"@user{(i * 7 + (0 if tag == 'a' else 3)) % members}:example.com"
                auth.append(state[(member, target)])
                content = {"membership": "leave"}
                room.add(event_id, member, admin, target, content, auth, state)
            elif kind in (2, 6):
                user = f"@user{(i * 11 + (1 if tag == 'a' else 2)) % members}:example.com"
                own = state[(member, user)]
                if room.events[own].membership != "join":
                    continue
                content = {"membership": "join", "displayname": f"{user} {tag}{i}"}
                user_auth = ["$create", pl, "$join-rules", own]
                room.add(event_id, member, user, user, content, user_auth, state)
            elif kind in (3, 7):
                room.add(event_id, "m.room.name", admin, "", {"name": f"{tag}{i}"}, auth, state)
            else:
                room.add(event_id, "m.room.topic", admin, "", {"topic": f"{tag}{i}"}, auth, state)
        forks.append(state)
    return room, forks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--room-version", default="10")
    parser.add_argument("--members", type=int, default=MEMBERS)
    parser.add_argument("--fork-length", type=int, default=FORK_LENGTH)
    args = parser.parse_args()
    room_version = KNOWN_ROOM_VERSIONS[args.room_version]
    room, forks = build_room(room_version, args.members, args.fork_length)
    conflicted = sum(
        1 for key in forks[0].keys() | forks[1].keys() if forks[0].get(key) != forks[1].get(key)
    )
    print(
        f"room version {room_version.identifier}: {len(room.events)} events, "
        f"state maps of {len(forks[0])} and {len(forks[1])} entries, {conflicted} keys conflict"
    )
    resolved = resolve_state(room_version, forks, room.events)  # warm-up, and a sanity check
    assert len(resolved) >= args.members
    timings = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        resolve_state(room_version, forks, room.events)
        timings.append((time.perf_counter() - start) * 1000)
    print(
        f"resolve_state: median {statistics.median(timings):.1f} ms, "
        f"min {min(timings):.1f} ms, max {max(timings):.1f} ms over {args.rounds} rounds"
    )


if __name__ == "__main__":
    main()
