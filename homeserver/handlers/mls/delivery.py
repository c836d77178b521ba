"""The commit log: accept exactly one commit per epoch, route its Welcome, serve the log.

The server reads only a commit's public framing (homeserver/mls/wire.py). A
commit is checked in full before anything is written, so a refused one changes
nothing; the store's conditional epoch advance then picks the one winner. Only a
winner's Welcome goes out, as a small to-device message per device naming the
epoch; the Welcome itself is stored once, with its commit, and fetched by each
device it was encrypted to.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from homeserver.async_utils import SharedLookups
from homeserver.errors import bad_json, forbidden, invalid_param, not_found
from homeserver.events.identifiers import server_name_of
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.e2ee.to_device import TO_DEVICE_STREAM, ToDeviceHandler
from homeserver.handlers.mls.common import (
    SYNC_SECTION,
    WELCOME_TO_DEVICE,
    bad_epoch,
    decode_b64,
    epoch_conflict,
    identity_of,
    parse_or_400,
    split_identity,
)
from homeserver.handlers.mls.groups import MlsGroups
from homeserver.mls import wire
from homeserver.server import Server
from storage.stores.mls import Leaf, MlsStore, NewCommit, StoredCommit

logger = logging.getLogger(__name__)

#: Commit bodies kept in memory for the members fetching them at once (bytes of base64).
BODY_CACHE_BYTES = 64 * 1024 * 1024
MAX_COMMITS_PER_PAGE = 100

#: Told (room_id, stream position) of each accepted commit after it is stored and before it is announced.
AcceptedListener = Callable[[str, int], Awaitable[None]]
#: Sends one shared sync frame to streams of some devices: (room the frame is about, or None; each device's
#: position in the stream; stream; the position all of them must be at; the sync sections) -> how many took it.
#: With a room, ``quiet_rest``: the position the room's other streams at ``after`` may move to without a frame.
FramePusher = Callable[[str | None, dict[tuple[str, str], int], str, int, dict[str, Any], int | None], int]


@attrs.frozen
class CheckedCommit:
    framed: wire.Framed
    removed: tuple[int, ...]
    added: tuple[tuple[str, str], ...]
    recipients: tuple[tuple[str, str], ...]


class MlsDeliveryService:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(MlsStore)
        self.groups = hs.get(MlsGroups)
        self.max_size = int(hs.config.mls_max_message_size)
        self.max_group_size: int = hs.config.max_group_size
        self._bodies: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._cached_bytes = 0
        self._reading = SharedLookups[tuple[str, int], str]()
        self.accepted_listeners: list[AcceptedListener] = []
        self.pushers: list[FramePusher] = []

    # -- POST .../commit -------------------------------------------------------------------

    async def submit_commit(self, user_id: str, device_id: str, room_id: str, body: dict[str, Any]) -> int:
        """Accept the commit for the group's current epoch; returns the new epoch (else 4xx/409)."""
        commit_b64 = body.get("commit")
        if commit_b64 is None:
            raise bad_json("commit is required")
        commit_bytes = decode_b64(commit_b64, "commit", self.max_size)
        welcome_b64, welcome = self._optional(body, "welcome")
        group_info_b64, group_info = self._optional(body, "group_info")
        suite = await self.groups.require_member_of_mls_room(user_id, room_id)
        framed = parse_or_400(wire.parse_framed, commit_bytes, "commit")
        current = await self.store.current_epoch(room_id)
        if framed.epoch < current and await self._already_accepted(user_id, room_id, framed.epoch, commit_b64):
            return framed.epoch + 1
        checked = await self._check(user_id, device_id, room_id, suite, framed, current, welcome)
        if group_info is not None and parse_or_400(wire.wire_format_of, group_info, "group_info") \
                != wire.WIRE_GROUP_INFO:
            raise invalid_param("group_info must be an MLS GroupInfo message")
        writer = await self.store.stream_writer()
        new = NewCommit(room_id, framed.epoch, user_id, device_id, _canonical(commit_b64), welcome_b64,
                        group_info_b64, checked.removed, checked.added, checked.recipients,
                        device_id if framed.epoch == 0 else None)
        async with writer.allocate(1) as ids:
            won = await self.store.accept_commit(new, ids[0], now_ms(self.hs))
        if not won:
            if await self._already_accepted(user_id, room_id, framed.epoch, commit_b64):
                return framed.epoch + 1  # a retry that raced the original
            raise epoch_conflict(await self.store.current_epoch(room_id))
        for listener in self.accepted_listeners:
            try:  # the shared push to the members' streams; the announce below wakes whoever it missed
                await listener(room_id, ids[0])
            except Exception:
                logger.exception("pushing commit %s epoch %d failed", room_id, framed.epoch)
        # The joiners' notes go out before the commit's wake, so a joiner's stream takes its note
        # as one pushed frame instead of first building a (for it, empty) answer for the commit.
        await self._send_welcomes(user_id, device_id, room_id, framed.epoch, checked.recipients)
        writer.announce(ids[0], rooms={room_id})
        return framed.epoch + 1

    async def _already_accepted(self, user_id: str, room_id: str, epoch: int, commit_b64: str) -> bool:
        """Is this very commit the one accepted for its epoch? (A retry after a lost response gets 200 again.)"""
        for stored in await self.store.commits_from(room_id, epoch, await self.store.position(), 1):
            if stored.epoch == epoch and stored.sender == user_id:
                return await self.body(room_id, stored) == _canonical(commit_b64)
        return False

    def _optional(self, body: dict[str, Any], field: str) -> tuple[str | None, bytes | None]:
        value = body.get(field)
        if value is None:
            return None, None
        return _canonical(value), decode_b64(value, field, self.max_size)

    async def _check(self, user_id: str, device_id: str, room_id: str, suite: int, framed: wire.Framed,
                     current: int, welcome: bytes | None) -> CheckedCommit:
        if framed.wire_format != wire.WIRE_PUBLIC or framed.commit is None:
            raise invalid_param("commit must be an MLS PublicMessage carrying a Commit")
        if framed.group_id != room_id.encode():
            raise invalid_param("The commit is for another group: group_id must be the room ID")
        if framed.epoch > current:
            raise bad_epoch(f"The commit is for epoch {framed.epoch}, ahead of the group's {current}", current)
        if framed.epoch < current:
            raise epoch_conflict(current)
        if framed.sender_type != wire.SENDER_MEMBER or framed.sender_index is None:
            raise invalid_param("Only members' commits are accepted (no external commits)")
        if framed.commit.by_reference:
            raise invalid_param("Proposals must be included by value: this server relays no proposals")
        leaves = {leaf.index: leaf for leaf in await self.store.leaves(room_id)}
        sender = leaves.get(framed.sender_index)
        if framed.epoch == 0 and not leaves:
            if framed.sender_index != 0:
                raise invalid_param("A group's first commit comes from leaf 0, its creator")
            sender = Leaf(0, user_id, device_id)
        if sender is None or sender.user_id != user_id:
            raise forbidden("The commit's sender leaf is not one of your devices")
        path = framed.commit.path_leaf
        if path is not None and path.identity != identity_of(sender.user_id, sender.device_id):
            raise invalid_param("The commit's new leaf names a different device than its sender leaf")
        removed, added = await self._proposals(room_id, suite, framed.commit, leaves)
        size = len(set(leaves) | {sender.index}) - len(removed) + len(added)
        if size > self.max_group_size:
            raise forbidden(f"The group would have {size} members; this server allows {self.max_group_size}")
        recipients = await self._welcome_recipients(suite, framed.commit, welcome)
        return CheckedCommit(framed, removed, added, recipients)

    async def _proposals(self, room_id: str, suite: int, commit: wire.Commit,
                         leaves: dict[int, Leaf]) -> tuple[tuple[int, ...], tuple[tuple[str, str], ...]]:
        removed: list[int] = []
        added: list[tuple[str, str]] = []
        may_join: set[str] | None = None
        for proposal in commit.proposals:
            if proposal.removed is not None:
                if proposal.removed not in leaves:
                    raise invalid_param(f"Leaf {proposal.removed} is not in the group")
                removed.append(proposal.removed)
            elif proposal.key_package is not None:
                kp = proposal.key_package
                who = split_identity(kp.identity)
                if kp.cipher_suite != suite or who is None:
                    raise invalid_param("An added KeyPackage has the wrong ciphersuite or identity")
                if may_join is None:
                    may_join = await self.groups.joined_or_invited(room_id)
                if who[0] not in may_join:
                    raise forbidden(f"{who[0]} is not joined to or invited into the room")
                added.append(who)
        if len(set(added)) != len(added):
            raise invalid_param("The commit adds one device twice")
        return tuple(removed), tuple(added)

    async def _welcome_recipients(self, suite: int, commit: wire.Commit,
                                  welcome_bytes: bytes | None) -> tuple[tuple[str, str], ...]:
        if welcome_bytes is None:
            return ()
        welcome = parse_or_400(wire.parse_welcome, welcome_bytes, "welcome")
        if welcome.cipher_suite != suite:
            raise invalid_param("The Welcome's ciphersuite is not the room's")
        added_refs = {p.key_package.ref().hex() for p in commit.proposals if p.key_package is not None}
        refs = [ref.hex() for ref in welcome.new_members]
        if not refs or not set(refs) <= added_refs:
            raise invalid_param("The Welcome names KeyPackages this commit does not add")
        devices = await self.store.devices_for_refs(refs)
        # Another server's devices: their KeyPackages were handed out (and their refs recorded) by
        # their own server, which checks its refs again before it delivers the Welcome.
        devices.update({ref: who for p in commit.proposals if p.key_package is not None
                        for ref in [p.key_package.ref().hex()] if ref not in devices
                        for who in [split_identity(p.key_package.identity)]
                        if who is not None and server_name_of(who[0]) != self.hs.server_name})
        missing = [ref for ref in refs if ref not in devices]
        if missing:
            raise invalid_param(f"The Welcome is for a KeyPackage this server never handed out ({missing[0]})")
        return tuple(dict.fromkeys(devices[ref] for ref in refs))

    async def _send_welcomes(self, user_id: str, device_id: str, room_id: str, epoch: int,
                             recipients: tuple[tuple[str, str], ...]) -> None:
        messages: dict[str, dict[str, Any]] = {}
        for target_user, target_device in recipients:
            if server_name_of(target_user) != self.hs.server_name:
                continue  # its server sends the notice once it has the commit and its Welcome
            messages.setdefault(target_user, {})[target_device] = {"room_id": room_id, "epoch": epoch}
        if not messages:
            return
        to_device = self.hs.get(ToDeviceHandler)
        try:
            positions = await to_device.send(user_id, device_id, WELCOME_TO_DEVICE,
                                             f"org.vignette.mls.welcome {room_id} {epoch}", {"messages": messages})
        except Exception:  # the commit stands; the joiners can still fetch the Welcome
            logger.exception("could not queue the Welcome of %s epoch %d", room_id, epoch)
            return
        if not positions or not self.pushers:
            return
        # The notes are one batch of consecutive positions, each for its own device: a stream at the
        # position before the batch has exactly its own note in (before, its position], the same
        # event for every joiner, so it is encoded once and pushed (the announce wakes the rest).
        first, last = min(positions.values()), max(positions.values())
        if last - first + 1 != len(positions) or to_device.streams.current_position(TO_DEVICE_STREAM) < last:
            return
        event = {"sender": user_id, "type": WELCOME_TO_DEVICE, "content": {"room_id": room_id, "epoch": epoch}}
        for pusher in self.pushers:
            pusher(None, positions, TO_DEVICE_STREAM, first - 1, {"to_device": {"events": [event]}}, None)

    # -- reading the log -------------------------------------------------------------------

    async def commits_from(self, user_id: str, room_id: str, from_epoch: int, limit: int) -> dict[str, Any]:
        await self.groups.require_member_of_mls_room(user_id, room_id)
        limit = max(1, min(limit, MAX_COMMITS_PER_PAGE))
        upto = await self.store.position()
        commits = await self.store.commits_from(room_id, from_epoch, upto, limit)
        entries = [await self.entry(room_id, c) for c in commits]
        current = await self.store.current_epoch(room_id)
        response: dict[str, Any] = {"epoch": current, "commits": entries}
        if commits and commits[-1].epoch + 1 < current:
            response["next_epoch"] = commits[-1].epoch + 1
        return response

    async def entry(self, room_id: str, commit: StoredCommit) -> dict[str, Any]:
        return {"epoch": commit.epoch, "sender": commit.sender, "device_id": commit.sender_device,
                "commit": await self.body(room_id, commit)}

    async def body(self, room_id: str, commit: StoredCommit) -> str:
        """A commit's base64, read once from the database and shared by every member reading it.

        The 1,500 devices one commit wakes all ask at once: the first read is shared by the
        ones asking while it runs, not only by those who come after it.
        """
        key = (room_id, commit.epoch)
        cached = self._bodies.get(key)
        if cached is not None:
            self._bodies.move_to_end(key)
            return cached
        return await self._reading.run(key, lambda: self._read_body(key))

    async def _read_body(self, key: tuple[str, int]) -> str:
        text = await self.store.commit_body(*key)
        self._bodies[key] = text
        self._cached_bytes += len(text)
        while self._cached_bytes > BODY_CACHE_BYTES and len(self._bodies) > 1:
            _, dropped = self._bodies.popitem(last=False)
            self._cached_bytes -= len(dropped)
        return text

    async def welcome(self, user_id: str, device_id: str, room_id: str, epoch: int) -> dict[str, Any]:
        """The Welcome of an accepted commit, for a device it was encrypted to."""
        welcome = await self.store.welcome_for(room_id, epoch, user_id, device_id)
        if welcome is None:
            raise not_found("No Welcome for this device at that epoch")
        return {"room_id": room_id, "epoch": epoch, "welcome": welcome}

    async def group_info(self, user_id: str, room_id: str) -> dict[str, Any]:
        await self.groups.require_member_of_mls_room(user_id, room_id)
        info = await self.store.group_info(room_id)
        if info is None:
            raise not_found("No GroupInfo has been published for this group")
        return {"epoch": await self.store.current_epoch(room_id), "group_info": info}


def _needs(windows: list[tuple[int, int | None]], epoch: int) -> bool:
    """A device processes the commits after the one that added it, up to the one that removed it."""
    return any(added < epoch and (removed is None or epoch <= removed) for added, removed in windows)


def _canonical(value: str) -> str:
    """Unpadded base64, as stored and served."""
    return value.rstrip("=")



#: Answers shared between the devices syncing the same stream range.
SHARED_ANSWERS = 1024
#: Commit bytes (base64) one sync response carries before it says ``limited`` and leaves the rest to GET .../commits.
SYNC_BUDGET = 8 * 1024 * 1024


class MlsSyncView:
    """The ``org.vignette.mls`` sync section: per room, new commits in epoch order, the epoch, pending removals.

    When one commit wakes 1,500 devices they all ask the same questions for the same stream
    range, at the same moment, so the answers are shared, keyed by stream positions (every
    change to a group writes a new position, so an answer for a given ``upto`` never goes
    stale), and a question being answered is asked once while the others wait for it. Which
    commits a device needs comes from the room's leaves, read once per position too.
    """

    def __init__(self, hs: Server) -> None:
        self.store = hs.get(MlsStore)
        self.delivery = hs.get(MlsDeliveryService)
        self._shared: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._asking = SharedLookups[tuple[Any, ...], Any]()
        self.delivery.accepted_listeners.append(self._push_commit)

    def add_pusher(self, pusher: FramePusher) -> None:
        """A stream transport (the WebSocket hub) that takes one shared frame for many devices."""
        self.delivery.pushers.append(pusher)

    async def _push_commit(self, room_id: str, position: int) -> None:
        """Build the sync section of a commit that is alone at its stream position once, for every member.

        For a device whose token is just before ``position`` the section is the same for all
        who need the commit (the answer of ``section`` for (position - 1, position]), so it is
        computed for one and handed, as one value, to the pushers; those devices skip their own
        sync build. Devices that do not need it, or are elsewhere in the stream, are left to
        the announce, as before.
        """
        if not self.delivery.pushers or self.current_position() < position:
            return
        after = position - 1
        commits: list[StoredCommit] = await self._once(
            ("commits", room_id, after, position),
            lambda: self.store.commits_in_range(room_id, after, position, MAX_COMMITS_PER_PAGE + 1))
        if len(commits) != 1:
            return
        in_room: dict[tuple[str, str], list[tuple[int, int | None]]] = await self._once(
            ("windows", room_id, position), lambda: self.store.room_windows(room_id))
        needers = {who for who, windows in in_room.items() if _needs(windows, commits[0].epoch)}
        if not needers:
            return
        user_id, device_id = next(iter(needers))
        section = await self.section(user_id, device_id, {room_id}, after, position)
        if not section:
            return
        # The others' section (no commit for them) says nothing unless a removal is pending.
        quiet = None if section["rooms"][room_id]["pending_removals"] else position
        for pusher in self.delivery.pushers:
            pusher(room_id, dict.fromkeys(needers, position), "mls", after, {SYNC_SECTION: section}, quiet)

    async def prepare(self) -> None:
        await self.store.stream_writer()

    def current_position(self) -> int:
        return self.store.streams.current_position("mls")

    async def _once(self, key: tuple[Any, ...], compute: Any) -> Any:
        if key in self._shared:
            self._shared.move_to_end(key)
            return self._shared[key]

        async def remember() -> Any:
            value = await compute()
            self._shared[key] = value
            while len(self._shared) > SHARED_ANSWERS:
                self._shared.popitem(last=False)
            return value

        return await self._asking.run(key, remember)

    async def _room_state(self, room_id: str, upto: int) -> tuple[int, list[dict[str, Any]]]:
        async def compute() -> tuple[int, list[dict[str, Any]]]:
            removals = [{"user_id": p.leaf.user_id, "device_id": p.leaf.device_id, "leaf_index": p.leaf.index,
                         "since_ts": p.since_ms} for p in await self.store.pending_removals(room_id)]
            return await self.store.current_epoch(room_id), removals

        result: tuple[int, list[dict[str, Any]]] = await self._once(("state", room_id, upto), compute)
        return result

    async def section(self, user_id: str, device_id: str | None, joined: set[str], since: int | None,
                      upto: int) -> dict[str, Any]:
        if since is None:  # initial: the groups this device is in, with their epoch and hygiene
            rooms = {room for room, _ in await self.store.device_leaves(user_id, device_id or "")} & joined
        elif upto > since:
            changed: set[str] = await self._once(("changed", since, upto),
                                                 lambda: self.store.changed_rooms(since, upto))
            rooms = changed & joined
        else:
            rooms = set()
        budget = SYNC_BUDGET
        result: dict[str, Any] = {}
        for room_id in sorted(rooms):
            epoch, removals = await self._room_state(room_id, upto)
            entry: dict[str, Any] = {"epoch": epoch}
            if since is not None:
                commits: list[StoredCommit] = await self._once(
                    ("commits", room_id, since, upto),
                    lambda room_id=room_id: self.store.commits_in_range(room_id, since, upto,
                                                                        MAX_COMMITS_PER_PAGE + 1))
                in_room: dict[tuple[str, str], list[tuple[int, int | None]]] = await self._once(
                    ("windows", room_id, upto), lambda room_id=room_id: self.store.room_windows(room_id))
                windows = in_room.get((user_id, device_id or ""), [])
                needed = [c for c in commits[:MAX_COMMITS_PER_PAGE] if _needs(windows, c.epoch)]
                entry["commits"] = []
                for commit in needed:
                    if budget <= 0:
                        break
                    item = await self.delivery.entry(room_id, commit)
                    budget -= len(item["commit"])
                    entry["commits"].append(item)
                entry["limited"] = len(entry["commits"]) < len(needed) or len(commits) > MAX_COMMITS_PER_PAGE
            entry["pending_removals"] = removals
            result[room_id] = entry
        return {"rooms": result} if result else {}
