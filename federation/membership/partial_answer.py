"""What a partial-state ``send_join`` answer holds (MSC3706, spec v2 ``send_join`` with
``omit_members=true``): every state event but the ``m.room.member`` ones, except the joiner's
own membership (an auth event of the join) and, in a room with neither a name nor a
canonical alias, the heroes' memberships, so the joiner can name the room at once. The auth
chain is then the one the returned state and the join need, less the returned state itself
(the spec lets it go)."""

from __future__ import annotations

from collections.abc import Mapping

from storage.stores.state import StateMap

#: Members a client names an unnamed room after (the spec's room summary heroes).
MAX_HEROES = 5


def heroes(memberships: Mapping[str, str], joiner: str) -> list[str]:
    """The first joined, then invited members (by user ID) other than the joiner, as our
    sync's room summary picks them."""
    found: list[str] = []
    for wanted in ("join", "invite"):
        for user in sorted(u for u, m in memberships.items() if m == wanted and u != joiner):
            if len(found) == MAX_HEROES:
                return found
            found.append(user)
    return found


def partial_state_ids(state_ids: StateMap, joiner: str, memberships: Mapping[str, str]) -> StateMap:
    """The state before the join that a partial-state answer returns."""
    kept = {key: event_id for key, event_id in state_ids.items() if key[0] != "m.room.member"}
    wanted = {joiner}
    if ("m.room.name", "") not in state_ids and ("m.room.canonical_alias", "") not in state_ids:
        wanted.update(heroes(memberships, joiner))
    for user in wanted:
        event_id = state_ids.get(("m.room.member", user))
        if event_id is not None:
            kept[("m.room.member", user)] = event_id
    return kept
