"""MLS across servers: the room's creating server is the group's delivery service (DS).

Handlers may not import federation (tests/test_layering.py), so signed requests go through
``hs.get(MlsRemote).servers``, an ``MlsRemoteServers`` that homeserver/app.py registers with
federation's implementation (federation/mls_client.py).

- A local user's commit for a room whose DS is another server is forwarded to it
  (``PUT .../commit/{roomId}``) and its answer relayed (200, 409 with ``current_epoch``, 4xx).
  An unreachable DS is 502: no commit can be accepted without it.
- The DS, after accepting a commit (its own users' or a forwarded one), queues a small
  persisted EDU ``org.vignette.mls.commit`` ``{room_id, epoch}`` to every other server in the
  room. Each server then pulls the commits from its own current epoch on (``GET .../commits``)
  and appends them to its own log in epoch order, so a lost or reordered notice only delays a
  commit (the next notice, forward or restart fetches everything missing), never loses one.
- A mirrored commit's Welcome is kept when it is for this server's devices (checked against
  the KeyPackageRefs this server handed out), and the ``org.vignette.mls.welcome`` to-device
  notice is sent locally.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from twisted.internet.defer import Deferred, DeferredLock

from homeserver.errors import MatrixError, forbidden, invalid_param, missing_param, not_json
from homeserver.events.identifiers import server_name_of
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.e2ee.to_device import ToDeviceHandler
from homeserver.handlers.mls.common import (
    WELCOME_TO_DEVICE,
    decode_b64,
    epoch_conflict,
    split_identity,
)
from homeserver.handlers.mls.delivery import MlsDeliveryService
from homeserver.handlers.mls.groups import MlsGroups
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.mls import wire
from homeserver.server import Server
from storage.stores.mls import MlsStore, NewCommit

logger = logging.getLogger(__name__)

COMMIT_EDU = "org.vignette.mls.commit"
#: Commit bytes (base64) one federation page of the log carries (at least one commit).
FEDERATION_PAGE_BYTES = 8 * 1024 * 1024
MAX_FEDERATION_PAGE = 50
MAX_ID_LENGTH = 255
#: Retrying a pull the DS did not answer: 5 s, doubling, at most every 10 minutes.
RETRY_FIRST_S = 5.0
RETRY_MAX_S = 600.0


class MlsRemoteUnavailable(Exception):
    """The DS did not answer, or answered with something that is not an answer."""


class MlsRemoteError(Exception):
    """The DS answered a forwarded commit with a 4xx Matrix error: relayed as it is."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body.get('errcode')}")
        self.status = status
        self.body = body


class MlsRemoteServers(Protocol):
    async def forward_commit(self, ds: str, room_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``PUT .../commit/{roomId}`` on the DS; MlsRemoteError for its 4xx, else MlsRemoteUnavailable."""
        ...

    async def fetch_commits(self, ds: str, room_id: str, from_epoch: int) -> dict[str, Any]:
        """``GET .../commits/{roomId}?from_epoch=N`` on the DS; MlsRemoteUnavailable on failure."""
        ...

    async def notify(self, destinations: set[str], room_id: str, epoch: int) -> None:
        """Queue the persisted ``org.vignette.mls.commit`` EDU to each destination."""
        ...


class MlsRemote:
    """Holds the registered implementation (one per process)."""

    def __init__(self, hs: Server) -> None:
        self.servers: MlsRemoteServers | None = None

    def get(self) -> MlsRemoteServers:
        if self.servers is None:
            raise MlsRemoteUnavailable("federation is not set up in this process")
        return self.servers


def ds_unreachable(ds: str) -> MatrixError:
    return MatrixError(502, "M_UNKNOWN", f"The group's delivery service {ds} cannot be reached; "
                       "no commit can be accepted until it is back (messages still flow)", ds_server=ds)


class MlsFederation:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.store = hs.get(MlsStore)
        self.groups = hs.get(MlsGroups)
        self.delivery = hs.get(MlsDeliveryService)
        self.state = hs.get(RoomStateHandler)
        self._locks: dict[str, DeferredLock] = {}
        self._retry_s: dict[str, float] = {}
        self._retry_pending: set[str] = set()

    async def ds_of(self, room_id: str) -> str:
        """The server of the room creator (the create event's sender; in v12 rooms the only way)."""
        create = await self.state.get_current_state_event(room_id, "m.room.create")
        if create is None:
            raise forbidden("Unknown room")
        return server_name_of(create.event.sender)

    # -- the client's commit ----------------------------------------------------------------

    async def submit_commit(self, user_id: str, device_id: str, room_id: str, body: dict[str, Any]) -> int:
        """Accept here when we are the DS, else forward to the DS and relay its answer."""
        await self.groups.require_member_of_mls_room(user_id, room_id)
        ds = await self.ds_of(room_id)
        if ds == self.server_name:
            epoch = await self.delivery.submit_commit(user_id, device_id, room_id, body)
            await self._notify(room_id, epoch)
            return epoch
        forwarded = {key: body[key] for key in ("commit", "welcome", "group_info") if body.get(key) is not None}
        forwarded.update(user_id=user_id, device_id=device_id)
        try:
            answer = await self.hs.get(MlsRemote).get().forward_commit(ds, room_id, forwarded)
        except MlsRemoteError as exc:
            if exc.status == 409:
                await self.catch_up(room_id)  # the client processes the winner's commit next
            raise _relayed(exc) from None
        except MlsRemoteUnavailable as exc:
            logger.info("forwarding a commit for %s to %s failed: %s", room_id, ds, exc)
            raise ds_unreachable(ds) from None
        new_epoch = answer.get("epoch")
        if not isinstance(new_epoch, int) or isinstance(new_epoch, bool):
            raise ds_unreachable(ds)
        await self.catch_up(room_id)  # so the committer's own sync shows it at once
        return new_epoch

    # -- the DS side -------------------------------------------------------------------------

    async def federated_commit(self, origin: str, room_id: str, body: Any) -> int:
        """A commit another server forwarded for one of its users."""
        if not isinstance(body, dict):
            raise not_json("The body must be a JSON object")
        user_id, device_id = body.get("user_id"), body.get("device_id")
        for name, value in (("user_id", user_id), ("device_id", device_id)):
            if value is None:
                raise missing_param(name)
        if not isinstance(user_id, str) or not isinstance(device_id, str) or not device_id \
                or len(user_id) > MAX_ID_LENGTH or len(device_id) > MAX_ID_LENGTH:
            raise invalid_param("user_id and device_id are required strings")
        try:
            user_server = server_name_of(user_id)
        except ValueError:
            raise invalid_param("user_id is not a user ID") from None
        if user_server != origin:
            raise forbidden("A server may forward only its own users' commits")
        if await self.ds_of(room_id) != self.server_name:
            raise forbidden("This server is not the delivery service of this room's group")
        await self.groups.require_member_of_mls_room(user_id, room_id)  # before any body is parsed
        epoch = await self.delivery.submit_commit(user_id, device_id, room_id, body)
        await self._notify(room_id, epoch)
        return epoch

    async def _notify(self, room_id: str, epoch: int) -> None:
        servers = {server_name_of(user) for user in await self.groups.joined(room_id)} - {self.server_name}
        if not servers:
            return
        try:
            await self.hs.get(MlsRemote).get().notify(servers, room_id, epoch)
        except Exception:  # the commit stands; each server catches up on its next notice or forward
            logger.exception("could not queue the commit notice of %s epoch %d", room_id, epoch)

    async def serve_commits(self, origin: str, room_id: str, from_epoch: int) -> dict[str, Any]:
        """The log from ``from_epoch`` for a server with a joined member, Welcomes for its devices."""
        if not any(server_name_of(user) == origin for user in await self.groups.joined(room_id)):
            raise forbidden("Your server has no member joined to this room")
        upto = await self.store.position()
        commits = await self.store.commits_from(room_id, from_epoch, upto, MAX_FEDERATION_PAGE + 1)
        entries: list[dict[str, Any]] = []
        budget = FEDERATION_PAGE_BYTES
        for commit in commits[:MAX_FEDERATION_PAGE]:
            if entries and budget <= 0:
                break
            entry = await self.delivery.entry(room_id, commit)
            welcome, added = await self.store.welcome_with_added(room_id, commit.epoch)
            if welcome is not None and any(server_name_of(user) == origin for user in added):
                entry["welcome"] = welcome
            budget -= len(entry["commit"]) + len(entry.get("welcome", ""))
            entries.append(entry)
        current = await self.store.current_epoch(room_id)
        response: dict[str, Any] = {"epoch": current, "commits": entries}
        if entries and entries[-1]["epoch"] + 1 < current:
            response["next_epoch"] = entries[-1]["epoch"] + 1
        return response

    # -- the receiving side ------------------------------------------------------------------

    async def on_commit_edu(self, origin: str, content: Any) -> None:
        """The DS says a commit was accepted: pull whatever we lack."""
        if not isinstance(content, dict) or not isinstance(content.get("room_id"), str):
            return
        room_id = content["room_id"]
        if await self.groups.suite_of(room_id) is None or await self.ds_of(room_id) != origin:
            return
        await self.catch_up(room_id)

    async def catch_up(self, room_id: str) -> None:
        """Fetch the DS's log from our current epoch on and append it, one room at a time."""
        lock = self._locks.setdefault(room_id, DeferredLock())
        await lock.acquire()
        try:
            await self._catch_up(room_id)
            self._retry_s.pop(room_id, None)
        except MlsRemoteUnavailable as exc:
            logger.info("catching up MLS commits of %s failed: %s", room_id, exc)
            self._retry_later(room_id)
        finally:
            lock.release()

    def _retry_later(self, room_id: str) -> None:
        """The DS told us of a commit but did not serve it: try again, backing off, until it does."""
        if room_id in self._retry_pending:
            return
        delay = min(self._retry_s.get(room_id, RETRY_FIRST_S / 2) * 2, RETRY_MAX_S)
        self._retry_s[room_id] = delay
        self._retry_pending.add(room_id)

        def retry() -> None:
            self._retry_pending.discard(room_id)
            Deferred.fromCoroutine(self.catch_up(room_id)).addErrback(
                lambda failure: logger.error("MLS catch-up of %s failed: %s", room_id, failure.getErrorMessage()))

        self.hs.reactor.callLater(delay, retry)

    async def start(self) -> None:
        """At start-up, pull what the DSs of the groups we copy accepted while we were away."""
        for room_id in await self.store.group_rooms():
            try:
                if await self.ds_of(room_id) != self.server_name:
                    await self.catch_up(room_id)
            except MatrixError:
                continue

    async def _catch_up(self, room_id: str) -> None:
        ds = await self.ds_of(room_id)
        if ds == self.server_name:
            return
        remote = self.hs.get(MlsRemote).get()
        while True:
            current = await self.store.current_epoch(room_id)
            page = await remote.fetch_commits(ds, room_id, current)
            entries = page.get("commits")
            if not isinstance(entries, list) or not entries:
                return
            for entry in entries:
                if not await self._mirror(room_id, current, entry):
                    return
                current += 1
            if not isinstance(page.get("next_epoch"), int):
                return

    async def _mirror(self, room_id: str, current: int, entry: Any) -> bool:
        """Append one commit of the DS's log; False (and nothing written) if it is not the next one."""
        try:
            new = await self._as_new_commit(room_id, current, entry)
        except (MatrixError, wire.WireError, ValueError, KeyError, TypeError) as exc:
            logger.warning("the DS's commit for %s epoch %d is unusable: %s", room_id, current, exc)
            return False
        writer = await self.store.stream_writer()
        async with writer.allocate(1) as ids:
            won = await self.store.accept_commit(new, ids[0], now_ms(self.hs))
        if not won:
            return False
        writer.announce(ids[0], rooms={room_id})
        await self._local_welcomes(new)
        return True

    async def _as_new_commit(self, room_id: str, current: int, entry: dict[str, Any]) -> NewCommit:
        max_size = self.delivery.max_size
        commit_b64, sender, device = entry["commit"], entry["sender"], entry["device_id"]
        if not isinstance(sender, str) or not isinstance(device, str) or entry["epoch"] != current:
            raise ValueError("not the next commit")
        framed = wire.parse_framed(decode_b64(commit_b64, "commit", max_size))
        if framed.commit is None or framed.group_id != room_id.encode() or framed.epoch != current:
            raise ValueError("the commit does not match its log entry")
        removed = tuple(p.removed for p in framed.commit.proposals if p.removed is not None)
        added = tuple(who for p in framed.commit.proposals if p.key_package is not None
                      for who in [split_identity(p.key_package.identity)] if who is not None)
        welcome_b64 = entry.get("welcome")
        recipients: tuple[tuple[str, str], ...] = ()
        if isinstance(welcome_b64, str):
            recipients = await self._local_recipients(framed.commit, decode_b64(welcome_b64, "welcome", max_size))
        return NewCommit(room_id, current, sender, device, commit_b64.rstrip("="),
                         welcome_b64.rstrip("=") if recipients and isinstance(welcome_b64, str) else None,
                         None, removed, added, recipients, device if current == 0 else None)

    async def _local_recipients(self, commit: wire.Commit, welcome_bytes: bytes) -> tuple[tuple[str, str], ...]:
        """Our devices the Welcome is for: refs the commit adds that this server handed out."""
        welcome = wire.parse_welcome(welcome_bytes)
        added = {p.key_package.ref().hex() for p in commit.proposals if p.key_package is not None}
        refs = [ref.hex() for ref in welcome.new_members if ref.hex() in added]
        devices = await self.store.devices_for_refs(refs)
        return tuple(dict.fromkeys(d for d in devices.values() if server_name_of(d[0]) == self.server_name))

    async def _local_welcomes(self, new: NewCommit) -> None:
        if not new.welcome_recipients:
            return
        messages: dict[str, dict[str, Any]] = {}
        for user_id, device_id in new.welcome_recipients:
            messages.setdefault(user_id, {})[device_id] = {"room_id": new.room_id, "epoch": new.epoch}
        try:
            await self.hs.get(ToDeviceHandler).send(new.sender, new.sender_device, WELCOME_TO_DEVICE,
                                                    f"org.vignette.mls.welcome {new.room_id} {new.epoch}",
                                                    {"messages": messages})
        except Exception:  # the commit stands; the joiners can still fetch the Welcome
            logger.exception("could not queue the Welcome of %s epoch %d", new.room_id, new.epoch)


def _relayed(exc: MlsRemoteError) -> MatrixError:
    body = exc.body
    errcode = body.get("errcode")
    current = body.get("current_epoch")
    if exc.status == 409 and isinstance(current, int):
        return epoch_conflict(current)
    extra = {"current_epoch": current} if isinstance(current, int) else {}
    error = body.get("error")
    message = error if isinstance(error, str) else "The delivery service refused the commit"
    return MatrixError(exc.status, errcode if isinstance(errcode, str) else "M_UNKNOWN", message, **extra)
