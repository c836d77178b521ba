"""Membership changes: join (by ID or alias, restricted joins), invite, leave, kick,
ban, unban, knock and forget.

A room we are not in (unknown here, or with no member of ours joined) is joined over
federation through the ``RemoteRoomJoiner`` registered on ``RemoteRooms``
(remote_rooms.py), trying the ``via`` servers, the alias's servers, the server that
invited the user and the room's known servers in turn; a remote alias is resolved by
its server. Knocks on such rooms go the same way. Inviting a user of another server
has that server sign the invite first. Rejecting an invite (or taking back a knock)
in a room we are not in goes through a resident server, or is made locally when none
answers (the hook's ``leave``).

Rate limits, as Synapse applies them: a join (unless already joined) counts
against ``rc_joins.local`` for the user and must fit ``rc_joins_per_room`` for
the room; an invite counts per room, per invitee and per inviter
(``rc_invites``).  With ``forget_rooms_on_leave`` a local user who stops being
joined (leaves, is kicked or banned) forgets the room at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from homeserver.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.events.identifiers import is_valid_room_alias, is_valid_room_id, server_name_of
from homeserver.events.power_levels import get_named_level, get_user_power_level
from homeserver.handlers.accounts.profile import ProfileHandler
from homeserver.handlers.accounts.restrictions import check_not_suspended
from homeserver.handlers.ratelimit import RateLimiters, ratelimit_all
from homeserver.handlers.rooms.remote_rooms import RemoteRoomJoiner, RemoteRooms
from homeserver.handlers.rooms.room_state import RoomStateHandler, check_room_id
from homeserver.pipeline import EventPipeline, EventSpec
from homeserver.server import Server
from storage.stores.aliases import AliasStore
from storage.stores.blocked_rooms import BlockedRoomStore
from storage.stores.events import EventStore, StoredEvent
from storage.stores.profiles import ProfileStore
from storage.stores.room_members import RoomMemberStore

logger = logging.getLogger(__name__)

RESTRICTED_RULES = ("restricted", "knock_restricted")


async def member_content(hs: Server, user_id: str, membership: str) -> dict[str, Any]:
    """m.room.member content, with the user's profile for join/invite/knock."""
    content: dict[str, Any] = {"membership": membership}
    if membership in ("join", "invite", "knock") and server_name_of(user_id) == hs.server_name:
        profile = await hs.get(ProfileStore).get_profile(user_id)
        if profile is not None:
            if profile.displayname is not None:
                content["displayname"] = profile.displayname
            if profile.avatar_url is not None:
                content["avatar_url"] = profile.avatar_url
    return content


class RoomMemberHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.pipeline = hs.get(EventPipeline)
        self.state = hs.get(RoomStateHandler)
        self.members = hs.get(RoomMemberStore)
        self.aliases = hs.get(AliasStore)
        self.blocked = hs.get(BlockedRoomStore)
        self.limits = hs.get(RateLimiters)
        self.forget_on_leave: bool = hs.config.forget_rooms_on_leave
        hs.get(ProfileHandler).on_profile_changed.append(self._on_profile_changed)

    async def _on_profile_changed(self, user_id: str, profile: Any) -> None:
        await self.refresh_profile(user_id)

    async def resolve_room(self, room_id_or_alias: str) -> str:
        """A room ID we hold, from a room ID or a local alias (404 otherwise)."""
        if room_id_or_alias.startswith("#"):
            if not is_valid_room_alias(room_id_or_alias):
                raise invalid_param(f"{room_id_or_alias!r} is not a valid room alias")
            found = await self.aliases.get_alias(room_id_or_alias)
            if found is None:
                if server_name_of(room_id_or_alias) != self.server_name:
                    raise not_found("Room alias is on another server; federation is not supported yet")
                raise not_found("Room alias not found")
            return found[0]
        if not is_valid_room_id(room_id_or_alias):
            raise invalid_param(f"{room_id_or_alias!r} is not a valid room ID or alias")
        if await self.state.get_room_version(room_id_or_alias) is None:
            raise not_found("This server does not know the room; joining rooms on other servers"
                            " is not supported yet")
        return room_id_or_alias

    async def join(self, user_id: str, room_id_or_alias: str, extra_content: dict[str, Any] | None = None,
                   is_guest: bool = False, ratelimit: bool = True, via: Sequence[str] = ()) -> str:
        """Join; ``extra_content`` (reason, a per-room displayname...) goes into the member event,
        and the profile fills in displayname and avatar_url where it does not say otherwise.
        ``via``: servers to join through when the room is on another server."""
        if ratelimit:
            await check_not_suspended(self.hs, user_id)
        if room_id_or_alias.startswith("!"):
            await self._check_not_blocked(room_id_or_alias)
        remote = await self._remote_join_target(room_id_or_alias, via, user_id)
        if remote is not None:
            await self._check_not_blocked(remote[0])
            return await self._join_remote(user_id, remote[0], remote[1], extra_content, is_guest, ratelimit)
        room_id = await self.resolve_room(room_id_or_alias)
        await self._check_not_blocked(room_id)
        current = await self.members.get_membership(room_id, user_id)
        if current is not None and current.membership == "join" and not extra_content:
            return room_id
        if ratelimit:
            self.limits.joins_per_room.ratelimit(room_id, update=False)
            self.limits.joins_local.ratelimit(user_id)
        if is_guest:
            guest_access = await self.state.get_current_state_event(room_id, "m.room.guest_access")
            if guest_access is None or guest_access.event.content.get("guest_access") != "can_join":
                raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guests may not join this room")
        content = {**await member_content(self.hs, user_id, "join"), **(extra_content or {})}
        content["membership"] = "join"
        content.pop("join_authorised_via_users_server", None)  # only the server may vouch
        if current is not None and current.membership == "join":
            # Joining again: a new event only if it says something new (Synapse dedupes too).
            own = await self.state.get_current_state_event(room_id, "m.room.member", user_id)
            if own is not None and own.event.content == content:
                return room_id
        elif current is None or current.membership != "invite":
            authoriser = await self._restricted_join_authoriser(room_id, user_id)
            if authoriser is not None:
                content["join_authorised_via_users_server"] = authoriser
        await self._send(room_id, user_id, user_id, content)
        self.limits.joins_per_room.record_action(room_id)
        return room_id

    async def _check_not_blocked(self, room_id: str) -> None:
        """A room a server admin blocked (the admin API) takes no joins from our users."""
        if await self.blocked.blocked_by(room_id) is not None:
            raise forbidden("This room has been blocked on this server")

    async def _remote_join_target(self, room_id_or_alias: str, via: Sequence[str],
                                  user_id: str) -> tuple[str, list[str]] | None:
        """(room ID, servers to try) when the join must go over federation, else None."""
        joiner = self.hs.get(RemoteRooms).joiner
        if joiner is None:
            return None
        servers = list(via)
        if room_id_or_alias.startswith("#"):
            if not is_valid_room_alias(room_id_or_alias) or await self.aliases.get_alias(room_id_or_alias):
                return None
            if server_name_of(room_id_or_alias) == self.server_name:
                return None
            resolved = await joiner.resolve_alias(room_id_or_alias)
            room_id = resolved.room_id
            servers += resolved.servers
        elif is_valid_room_id(room_id_or_alias):
            room_id = room_id_or_alias
        else:
            return None
        members = await self.members.get_users_in_room(room_id)
        if any(server_name_of(member) == self.server_name for member in members):
            return None
        servers += await self._out_of_band_servers(room_id, user_id)
        if ":" in room_id:  # before v12 the room ID names the server that made it
            servers.append(room_id.split(":", 1)[1])
        servers += sorted({server_name_of(member) for member in members})
        candidates = list(dict.fromkeys(s for s in servers if s and s != self.server_name))
        if not candidates:
            return None
        return room_id, candidates

    async def _join_remote(self, user_id: str, room_id: str, servers: list[str],
                           extra_content: dict[str, Any] | None, is_guest: bool, ratelimit: bool) -> str:
        if is_guest:
            raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guests may not join rooms on other servers")
        if ratelimit:
            self.limits.joins_remote.ratelimit(user_id)
        content = {**await member_content(self.hs, user_id, "join"), **(extra_content or {})}
        content["membership"] = "join"
        content.pop("join_authorised_via_users_server", None)  # the resident server vouches
        joiner: RemoteRoomJoiner | None = self.hs.get(RemoteRooms).joiner
        assert joiner is not None
        await joiner.join(user_id, room_id, servers, content)
        return room_id

    async def _out_of_band_servers(self, room_id: str, user_id: str) -> list[str]:
        """For a user invited to (or knocking on) a room we are not in: the inviter's server
        and the servers named by the stripped state that came with the invite or knock."""
        current = await self.members.get_membership(room_id, user_id)
        if current is None or current.membership not in ("invite", "knock"):
            return []
        own = await self.hs.get(EventStore).get_event(current.event_id)
        if own is None:
            return []
        servers = [server_name_of(own.event.sender)]
        unsigned = own.event.pdu.get("unsigned")
        for key in ("invite_room_state", "knock_room_state"):
            stripped = unsigned.get(key) if isinstance(unsigned, dict) else None
            for item in stripped if isinstance(stripped, list) else []:
                if isinstance(item, dict) and isinstance(item.get("sender"), str) and ":" in item["sender"]:
                    servers.append(server_name_of(item["sender"]))
        return [s for s in dict.fromkeys(servers) if s != self.server_name]

    async def _we_are_joined(self, room_id: str) -> bool:
        members = await self.members.get_users_in_room(room_id)
        return any(server_name_of(member) == self.server_name for member in members)

    async def restricted_join_authoriser(self, room_id: str, user_id: str) -> str | None:
        """For restricted rooms: a local member able to invite, if the user qualifies
        (403 when the user is in none of the allowed rooms, or nobody here may invite)."""
        return await self._restricted_join_authoriser(room_id, user_id)

    async def _restricted_join_authoriser(self, room_id: str, user_id: str) -> str | None:
        """For restricted rooms: a local member able to invite, if the user qualifies."""
        join_rules = await self.state.get_current_state_event(room_id, "m.room.join_rules")
        if join_rules is None or join_rules.event.content.get("join_rule") not in RESTRICTED_RULES:
            return None
        version = join_rules.event.room_version
        if not version.restricted_join_rule:
            return None
        allow = join_rules.event.content.get("allow")
        allowed_rooms = [
            item.get("room_id") for item in allow if isinstance(item, dict)
            and item.get("type") == "m.room_membership" and isinstance(item.get("room_id"), str)
        ] if isinstance(allow, list) else []
        user_rooms = await self.members.get_rooms_for_user(user_id)
        if not any(room in user_rooms for room in allowed_rooms):
            raise forbidden("You are not a member of any room this restricted room allows")
        auth_state = await self.state.auth_state(room_id)
        invite_level = get_named_level("invite", auth_state)
        candidates = sorted(await self.members.get_users_in_room(room_id))
        for candidate in candidates:
            if server_name_of(candidate) != self.server_name:
                continue
            member = await self.state.get_current_state_event(room_id, "m.room.member", candidate)
            state = dict(auth_state)
            if member is not None:
                state[("m.room.member", candidate)] = member.event
            if get_user_power_level(candidate, state) >= invite_level:
                return candidate
        raise forbidden("No member of this server can authorise a restricted join")

    async def refresh_profile(self, user_id: str) -> None:
        """After a profile change: a new join event with the new displayname/avatar in every
        room the user is joined to (the accounts area calls this)."""
        for room_id in sorted(await self.members.get_rooms_for_user(user_id)):
            content = await member_content(self.hs, user_id, "join")
            try:
                await self._send(room_id, user_id, user_id, content)
            except MatrixError as exc:  # e.g. the room changed under us; the others still update
                logger.warning("profile update in %s for %s failed: %s", room_id, user_id, exc.message)

    async def knock(self, user_id: str, room_id_or_alias: str, reason: str | None = None,
                    via: Sequence[str] = ()) -> str:
        await check_not_suspended(self.hs, user_id)
        content = await member_content(self.hs, user_id, "knock")
        if reason is not None:
            content["reason"] = reason
        remote = await self._remote_join_target(room_id_or_alias, via, user_id)
        joiner = self.hs.get(RemoteRooms).joiner
        if remote is not None and joiner is not None:
            await joiner.knock(user_id, remote[0], remote[1], content)
            return remote[0]
        room_id = await self.resolve_room(room_id_or_alias)
        await self._send(room_id, user_id, user_id, content)
        return room_id

    async def invite(self, sender: str, room_id: str, target: str, reason: str | None = None,
                     ratelimit: bool = True, shadow_banned: bool = False) -> None:
        """Invite ``target``; a shadow-banned sender's invite seems to work and does nothing."""
        await check_not_suspended(self.hs, sender)
        await self._check_room(room_id, sender)
        if shadow_banned:
            return
        joiner = self.hs.get(RemoteRooms).joiner
        if server_name_of(target) != self.server_name and joiner is None:
            raise forbidden("Inviting users on other servers needs federation")
        if ratelimit:
            ratelimit_all((self.limits.invites_per_room, room_id), (self.limits.invites_per_user, target),
                          (self.limits.invites_per_issuer, sender))
        content = await member_content(self.hs, target, "invite")
        if reason is not None:
            content["reason"] = reason
        if joiner is not None and server_name_of(target) != self.server_name:
            # The invitee's server signs first (it may refuse); then the event enters the room.
            built = await self.pipeline.build_local(room_id, EventSpec("m.room.member", sender, content, target))
            signed = await joiner.invite(built)
            await self.pipeline.submit_local(
                room_id, [EventSpec("m.room.member", sender, content, target, prebuilt=signed)])
            return
        await self._send(room_id, sender, target, content)

    async def leave(self, user_id: str, room_id: str, reason: str | None = None) -> None:
        check_room_id(room_id)
        current = await self.members.get_membership(room_id, user_id)
        if current is None:
            await self._check_room(room_id, user_id)
            raise forbidden(f"User {user_id} is not in room {room_id}")
        if current.membership in ("leave", "ban"):
            return  # already out: leaving again changes nothing
        joiner = self.hs.get(RemoteRooms).joiner
        if current.membership in ("invite", "knock") and joiner is not None and not await self._we_are_joined(room_id):
            servers = await self._out_of_band_servers(room_id, user_id)
            if ":" in room_id and room_id.split(":", 1)[1] != self.server_name:
                servers.append(room_id.split(":", 1)[1])
            await joiner.leave(user_id, room_id, list(dict.fromkeys(servers)),
                               _with_reason({"membership": "leave"}, reason), current.event_id)
            return
        await self._send(room_id, user_id, user_id, _with_reason({"membership": "leave"}, reason))

    async def kick(self, sender: str, room_id: str, target: str, reason: str | None = None) -> None:
        await self._check_room(room_id, sender)
        current = await self.members.get_membership(room_id, target)
        if current is None or current.membership not in ("join", "invite", "knock"):
            raise forbidden(f"{target} is not in the room")
        await self._send(room_id, sender, target, _with_reason({"membership": "leave"}, reason))

    async def ban(self, sender: str, room_id: str, target: str, reason: str | None = None) -> None:
        await self._check_room(room_id, sender)
        await self._send(room_id, sender, target, _with_reason({"membership": "ban"}, reason))

    async def unban(self, sender: str, room_id: str, target: str, reason: str | None = None) -> None:
        await self._check_room(room_id, sender)
        current = await self.members.get_membership(room_id, target)
        if current is None or current.membership != "ban":
            raise forbidden(f"{target} is not banned")
        await self._send(room_id, sender, target, _with_reason({"membership": "leave"}, reason))

    async def forget(self, user_id: str, room_id: str) -> None:
        check_room_id(room_id)
        current = await self.members.get_membership(room_id, user_id)
        if current is None:
            return
        if current.membership in ("join", "invite", "knock"):
            raise MatrixError(400, "M_UNKNOWN", "Leave the room before forgetting it")
        await self.members.forget(room_id, user_id)

    async def _check_room(self, room_id: str, user_id: str) -> None:
        check_room_id(room_id)
        if await self.state.get_room_version(room_id) is None:
            raise forbidden(f"User {user_id} is not in room {room_id}")

    async def _send(self, room_id: str, sender: str, target: str,
                    content: dict[str, Any]) -> Sequence[StoredEvent]:
        if await self.state.get_room_version(room_id) is None:
            raise not_found("Unknown room")
        leaving = (self.forget_on_leave and content.get("membership") in ("leave", "ban")
                   and server_name_of(target) == self.server_name)
        before = await self.members.get_membership(room_id, target) if leaving else None
        spec = EventSpec("m.room.member", sender, content, target)
        stored = await self.pipeline.submit_local(room_id, [spec])
        if before is not None and before.membership == "join":
            await self.members.forget(room_id, target, if_event_id=stored[-1].event_id)
        return stored


def _with_reason(content: dict[str, Any], reason: str | None) -> dict[str, Any]:
    if reason is not None:
        content["reason"] = reason
    return content
