"""Delivery: how long a sent message takes to reach long-polling /sync clients, one or many."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import attrs

from bench.client import MatrixClient, q
from bench.context import Context, cpu_metrics, gather_limited
from bench.pollers import Poller, StreamPoller, SyncPoller, check_stream_endpoint
from bench.stats import latency_summary

DELIVERY_TIMEOUT_S = 30.0
DELIVERY_TIMEOUT_PER_RECIPIENT_S = 0.05  # a big room's last recipient may legitimately wait seconds
SETTLE_S = 0.3


@attrs.define
class DeliveryTracker:
    """Matches events carrying our ``bench_seq`` marker to the moment their send began."""

    expected: int
    sent_at: dict[str, float] = attrs.field(factory=dict)
    latencies: dict[str, list[float]] = attrs.field(factory=dict)
    done: dict[str, asyncio.Event] = attrs.field(factory=dict)

    def begin(self, marker: str) -> None:
        self.latencies[marker] = []
        self.done[marker] = asyncio.Event()
        self.sent_at[marker] = time.perf_counter()

    def on_event(self, event: dict[str, Any], arrived: float) -> None:
        content = event.get("content")
        marker = content.get("bench_seq") if isinstance(content, dict) else None
        if marker in self.sent_at:
            received = self.latencies[marker]
            received.append(arrived - self.sent_at[marker])
            if len(received) >= self.expected:
                self.done[marker].set()

    async def wait(self, marker: str) -> int:
        """Wait for every recipient (or the timeout); returns how many never got it."""
        try:
            timeout = DELIVERY_TIMEOUT_S + self.expected * DELIVERY_TIMEOUT_PER_RECIPIENT_S
            await asyncio.wait_for(self.done[marker].wait(), timeout)
        except TimeoutError:
            pass
        return self.expected - len(self.latencies[marker])


async def _start_pollers(ctx: Context, clients: list[MatrixClient], tracker: DeliveryTracker,
                         transport: type[Poller] = SyncPoller) -> list[Poller]:
    sync_filter = await ctx.sync_filter()
    pollers = [transport(client, sync_filter, tracker.on_event) for client in clients]
    await gather_limited([poller.prime() for poller in pollers])
    for poller in pollers:
        poller.start()
    await asyncio.gather(*(poller.connected.wait() for poller in pollers))
    return pollers


async def _send_and_track(sender: MatrixClient, room_id: str, tracker: DeliveryTracker, label: str) -> int:
    marker = f"{label}-{secrets.token_hex(4)}"
    tracker.begin(marker)
    await sender.send_message(room_id, label, bench_seq=marker)
    return await tracker.wait(marker)


async def send_to_sync_latency(ctx: Context) -> dict[str, float]:
    """One receiver long-polls; each send waits until it has arrived before the next."""
    sender, receiver = (await ctx.users(2))[:2]
    room_id = await ctx.room_with([sender, receiver], name="latency")
    tracker = DeliveryTracker(expected=1)
    pollers = await _start_pollers(ctx, [receiver], tracker)
    try:
        await asyncio.sleep(SETTLE_S)
        missed = await _send_and_track(sender, room_id, tracker, "warmup")
        for index in range(ctx.options.deliveries):
            missed += await _send_and_track(sender, room_id, tracker, f"latency{index}")
            await asyncio.sleep(0.02)
    finally:
        await _stop(pollers)
    samples = _measured(tracker)
    return {**latency_summary(samples), "missed": missed, "deliveries": len(samples)}


async def fanout(ctx: Context, member_count: int, transport: type[Poller] = SyncPoller,
                 messages: int | None = None) -> dict[str, float]:
    """Every member of a ``member_count`` room waits (long-poll or stream); one member sends."""
    messages = ctx.options.fanout_messages if messages is None else messages
    members = await ctx.users(member_count)
    if transport is StreamPoller:
        await check_stream_endpoint(members[0])
    room_id = await ctx.shared_room(members, f"fanout{member_count}")
    tracker = DeliveryTracker(expected=len(members))
    pollers = await _start_pollers(ctx, members, tracker, transport)
    try:
        await asyncio.sleep(1.0 + member_count / 500)
        missed_warmup = await _send_and_track(members[0], room_id, tracker, "warmup")
        meter, client_cpu_before = ctx.cpu_meter(), time.process_time()
        missed = 0
        for index in range(messages):
            await asyncio.sleep(SETTLE_S + member_count / 2000)  # let every poller park again
            missed += await _send_and_track(members[0], room_id, tracker, f"fanout{index}")
        cpu = cpu_metrics(meter, messages, "message")
        # The harness shares the CPUs; its own CPU per message bounds how much latency is the client's.
        client_cpu = (time.process_time() - client_cpu_before) * 1000 / messages
    finally:
        await _stop(pollers)
    return {**latency_summary(_measured(tracker)), **cpu,
            "client_cpu_ms_per_message": client_cpu,
            "missed": missed, "missed_warmup": missed_warmup, "recipients": len(members),
            "poll_errors": sum(p.errors for p in pollers)}


def _measured(tracker: DeliveryTracker) -> list[float]:
    return [lat for marker, lats in tracker.latencies.items() if not marker.startswith("warmup") for lat in lats]


async def fanout_members(ctx: Context) -> dict[str, float]:
    return await fanout(ctx, ctx.options.members)


async def fanout_large(ctx: Context) -> dict[str, float]:
    return await fanout(ctx, ctx.options.members_large, messages=ctx.options.large_fanout_messages)


async def stream_fanout_members(ctx: Context) -> dict[str, float]:
    return await fanout(ctx, ctx.options.members, StreamPoller)


async def stream_fanout_large(ctx: Context) -> dict[str, float]:
    return await fanout(ctx, ctx.options.members_large, StreamPoller, ctx.options.large_fanout_messages)


async def _stop(pollers: list[Poller]) -> None:
    await asyncio.gather(*(poller.stop() for poller in pollers))


def call_invite_content(marker: str) -> dict[str, Any]:
    """An m.call.invite the size of a real one (an SDP offer of ~2 KB), tagged with the marker."""
    sdp = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + \
        "a=candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host generation 0\r\n" * 25
    return {"call_id": marker, "party_id": "bench", "version": "1", "lifetime": 60000,
            "offer": {"type": "offer", "sdp": sdp}, "bench_seq": marker}


async def call_invite_latency(ctx: Context, transport: type[Poller] = SyncPoller) -> dict[str, float]:
    """The caller sends m.call.invite; how long until the callee (long-poll or stream) has it."""
    caller, callee = (await ctx.users(2))[:2]
    if transport is StreamPoller:
        await check_stream_endpoint(callee)
    room_id = await ctx.room_with([caller, callee], name="call")
    # Both servers refuse call invites in public rooms (they would ring everyone who joins).
    await caller.request("PUT", f"/rooms/{q(room_id)}/state/m.room.join_rules/", {"join_rule": "invite"})
    tracker = DeliveryTracker(expected=1)
    pollers = await _start_pollers(ctx, [callee], tracker, transport)
    missed = 0
    try:
        await asyncio.sleep(SETTLE_S)
        for index in range(ctx.options.call_invites + 1):
            marker = f"{'warmup' if index == 0 else 'invite'}-{index}-{secrets.token_hex(4)}"
            tracker.begin(marker)
            await caller.send_event(room_id, "m.call.invite", call_invite_content(marker))
            missed += await tracker.wait(marker)
            await asyncio.sleep(0.02)
    finally:
        await _stop(pollers)
    samples = _measured(tracker)
    return {**latency_summary(samples), "missed": missed, "deliveries": len(samples)}


async def stream_call_invite_latency(ctx: Context) -> dict[str, float]:
    return await call_invite_latency(ctx, StreamPoller)
