"""What every workload gets: the target server, an HTTP session, a pool of registered users, the knobs."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import attrs

from bench.client import MatrixClient, MatrixRequestError
from bench.process import CpuMeter, rss_kib
from bench.targets import Target

T = TypeVar("T")
SETUP_CONCURRENCY = 8
# Keep /sync answers small and alike on both servers: lazy-loaded members, a short timeline.
SYNC_FILTER = json.dumps({"room": {"timeline": {"limit": 20}, "state": {"lazy_load_members": True}},
                          "presence": {"types": []}, "account_data": {"types": []}},
                         separators=(",", ":"))


@attrs.define
class Options:
    """Workload sizes; every loop in the harness is bounded by these and by ``workload_timeout_s``."""

    sends: int = 300
    concurrent_senders: int = 20
    concurrent_sends: int = 600
    deliveries: int = 50
    call_invites: int = 200
    members: int = 200
    members_large: int = 1500
    large: bool = True  # the 1,500-member workloads run by default (--no-large skips them)
    fanout_messages: int = 5
    large_fanout_messages: int = 2  # each costs seconds at 1,500 members, on Synapse tens of seconds
    bystanders: int = 4  # senders in another room while the large room fans out
    idle: int = 500
    idle_streams: int = 500  # ws_idle; 10,000 shows the per-socket cost without the base heap's noise
    idle_hold_s: float = 5.0
    rooms: int = 100
    room_version: str = "12"
    media_downloads: int = 50
    media_uploads: int = 200
    workload_timeout_s: float = 600.0
    #: ``--profile``: py-spy raw profiles of the server over each measured phase go here.
    profile_dir: Path | None = None


@attrs.define
class Context:
    target: Target
    session: aiohttp.ClientSession
    options: Options
    run_tag: str = attrs.field(factory=lambda: secrets.token_hex(3))
    _users: list[MatrixClient] = attrs.field(factory=list)
    _shared_rooms: dict[int, str] = attrs.field(factory=dict)
    _sync_filter: str | None | bool = False  # False: not probed yet
    _profiles: int = 0

    def cpu_meter(self) -> CpuMeter:
        profile_to = None
        if self.options.profile_dir is not None:
            self._profiles += 1
            profile_to = self.options.profile_dir / f"{self.target.kind}-{self.target.engine}-{self._profiles}.txt"
        return CpuMeter.start(self.target.pid, self.target.postgres_database, profile_to)

    def rss_kib(self) -> int:
        return rss_kib(self.target.pid)

    def new_client(self) -> MatrixClient:
        return MatrixClient(self.session, self.target.base_url)

    async def users(self, count: int) -> list[MatrixClient]:
        """The first ``count`` users of this server's pool, registering any that are missing."""
        missing = range(len(self._users), count)
        fresh = await gather_limited([self._register(index) for index in missing])
        self._users.extend(fresh)
        return self._users[:count]

    async def _register(self, index: int) -> MatrixClient:
        client = self.new_client()
        await client.register(f"bench{self.run_tag}u{index}")
        return client

    async def sync_filter(self) -> str | None:
        """The inline filter when the server accepts one, else None (then both use no filter)."""
        if self._sync_filter is False:
            probe = (await self.users(1))[0]
            try:
                await probe.sync(sync_filter=SYNC_FILTER)
                self._sync_filter = SYNC_FILTER
            except MatrixRequestError as exc:
                if exc.status == 404 and exc.errcode in (None, "M_UNRECOGNIZED"):
                    raise
                self._sync_filter = None
        return self._sync_filter or None

    async def shared_room(self, members: list[MatrixClient], name: str) -> str:
        """One room per member count, reused by the workloads that need that many members (joining
        1,500 members takes Synapse minutes; a room's history does not change what a fan-out costs)."""
        if len(members) not in self._shared_rooms:
            self._shared_rooms[len(members)] = await self.room_with(members, name=name)
        return self._shared_rooms[len(members)]

    async def room_with(self, members: list[MatrixClient], **create: Any) -> str:
        """A public room made by ``members[0]`` that all the others have joined."""
        room_id = await members[0].create_room(room_version=self.options.room_version, **create)
        await gather_limited([member.join(room_id) for member in members[1:]])
        return room_id


def cpu_metrics(meter: CpuMeter, per: float, unit: str) -> dict[str, float]:
    """Server CPU (and PostgreSQL backend CPU, when there is one) per ``unit``."""
    metrics = {f"cpu_ms_per_{unit}": meter.server_ms() / per}
    db_ms = meter.db_ms()
    if db_ms is not None:
        metrics[f"db_cpu_ms_per_{unit}"] = db_ms / per
    return metrics


async def gather_limited(coroutines: list[Awaitable[T]], limit: int = SETUP_CONCURRENCY) -> list[T]:
    """Run setup calls a few at a time, in order, failing on the first error."""
    semaphore = asyncio.Semaphore(limit)

    async def one(coroutine: Awaitable[T]) -> T:
        async with semaphore:
            return await coroutine

    return list(await asyncio.gather(*(one(c) for c in coroutines)))
