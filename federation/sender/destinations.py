"""Which servers a room's events and EDUs go to.

Every other server with a joined member in the room's current state; a membership
event also goes to the server of its target (an invite, a knock, a kick or ban of a
user whose server has nobody else in the room), so that server learns of it. Servers
the room's ``m.room.server_acl`` denies get nothing of the room. In a room joined with
partial state (most members still unknown) the servers ``send_join`` named count too.
"""

from __future__ import annotations

from collections.abc import Iterable

from homeserver.events.event import Event
from homeserver.events.identifiers import server_name_of
from homeserver.events.server_acl import server_allowed_by_acl
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.server import Server
from storage.stores.partial_state import PartialStateStore
from storage.stores.room_members import RoomMemberStore


def server_of(user_id: str) -> str | None:
    try:
        return server_name_of(user_id)
    except ValueError:
        return None


def servers_of(user_ids: Iterable[str]) -> set[str]:
    return {server for server in map(server_of, user_ids) if server is not None}


async def servers_in_room(hs: Server, room_id: str) -> set[str]:
    """Servers with a joined member now, ourselves and those the room's ACL denies excluded."""
    servers = servers_of(await hs.get(RoomMemberStore).get_users_in_room(room_id))
    servers |= await partial_state_servers(hs, room_id)
    servers.discard(hs.server_name)
    return await allowed_by_acl(hs, room_id, servers)


async def partial_state_servers(hs: Server, room_id: str) -> set[str]:
    """The servers in a partial-state room by send_join's word (empty once the room is whole)."""
    room = await hs.get(PartialStateStore).get(room_id)
    return set() if room is None else {room.joined_via, *room.servers}


async def allowed_by_acl(hs: Server, room_id: str, servers: set[str]) -> set[str]:
    """``servers`` less those the room's current m.room.server_acl denies."""
    acl = await hs.get(RoomStateHandler).get_current_state_event(room_id, "m.room.server_acl", "")
    content = acl.event.content if acl is not None else None
    if not isinstance(content, dict):
        return servers
    return {server for server in servers if server_allowed_by_acl(server, content)}


def membership_target_server(event: Event, own_server: str) -> str | None:
    """The target's server of a membership event about a user of another server."""
    if event.type != "m.room.member" or event.state_key is None:
        return None
    server = server_of(event.state_key)
    return server if server is not None and server != own_server else None


async def servers_sharing_a_room(hs: Server, user_id: str) -> set[str]:
    """Servers with a member joined to any room ``user_id`` is joined to, ourselves excluded."""
    members = hs.get(RoomMemberStore)
    servers: set[str] = set()
    for room_id in await members.get_rooms_for_user(user_id):
        servers |= servers_of(await members.get_users_in_room(room_id))
        servers |= await partial_state_servers(hs, room_id)
    servers.discard(hs.server_name)
    return servers
